package sarif_test

import (
	"fmt"
	"os"

	"github.com/evidencepipeline/evidence/producers/sarif"
)

func ExampleSummary_Above() {
	f, err := os.Open("testdata/trivy.sarif")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	s, err := sarif.Parse(f)
	if err != nil {
		fmt.Println(err)
		return
	}
	threshold, err := sarif.ParseSeverity("HIGH") // a threshold given by the user
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%v: %d results, %d at or above %s\n", s.Tools, s.Results, s.Above(threshold), threshold)
	fmt.Println(s.Findings[0].Severity, s.Findings[0].RuleID, s.Findings[0].Location)
	// Output:
	// [Trivy]: 6 results, 3 at or above high
	// critical CVE-2024-5535 library/alpine:1
}
