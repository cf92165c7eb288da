package junit_test

import (
	"fmt"
	"strings"

	"github.com/evidencepipeline/evidence/producers/junit"
)

func ExampleParse() {
	report := `<testsuite name="ledger" time="0.5">
  <testcase name="TestBalance" classname="ledger"/>
  <testcase name="TestTransfer" classname="ledger"><failure message="got 10, want 0"/></testcase>
  <testcase name="TestPostgres" classname="ledger"><skipped/></testcase>
</testsuite>`
	s, err := junit.Parse(strings.NewReader(report))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d tests: %d passed, %d failed, %d skipped in %v\n", s.Tests, s.Passed, s.Failed, s.Skipped, s.Duration)
	for _, suite := range s.Suites {
		for _, c := range suite.Failures {
			fmt.Printf("%s %s.%s: %s\n", c.Kind, c.Classname, c.Name, c.Message)
		}
	}
	// Output:
	// 3 tests: 1 passed, 1 failed, 1 skipped in 500ms
	// failure ledger.TestTransfer: got 10, want 0
}
