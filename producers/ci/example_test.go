package ci_test

import (
	"fmt"

	"github.com/evidencepipeline/evidence/producers/ci"
)

func ExampleDetect() {
	env := map[string]string{
		"GITLAB_CI":          "true",
		"CI_PROJECT_URL":     "https://gitlab.example.com/platform/api",
		"CI_COMMIT_SHA":      "8f3a1c9b2d4e6f708192a3b4c5d6e7f809a1b2c3",
		"CI_COMMIT_BRANCH":   "main",
		"CI_PIPELINE_ID":     "1234567",
		"CI_PIPELINE_SOURCE": "push",
		"GITLAB_USER_LOGIN":  "jdoe",
	}
	info := ci.Detect(func(k string) string { return env[k] }) // os.Getenv in a program
	fmt.Println(info.System, info.Repository, info.Branch, info.RunID, info.Actor)
	// Output: gitlab-ci gitlab.example.com/platform/api main 1234567 jdoe
}

func ExampleInfo_Require() {
	info := ci.Detect(func(string) string { return "" })                    // no CI
	info.Repository = ci.NormalizeRepository("git@github.com:octo/app.git") // from --repo
	if err := info.Require(ci.FieldRepository, ci.FieldCommit, ci.FieldRunID); err != nil {
		fmt.Println(err)
	}
	// Output: unknown commit and run id (no CI system detected): pass --commit and --run-id, or set EVIDENCE_COMMIT and EVIDENCE_RUN_ID
}
