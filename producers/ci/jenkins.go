package ci

import "strings"

// jenkins reads the variables of Jenkins core, the Git plugin, multibranch
// pipelines (BRANCH_NAME, CHANGE_*) and the Build User Vars plugin
// (BUILD_USER_ID): https://www.jenkins.io/doc/book/pipeline/jenkins-file/#using-environment-variables
//
// Jenkins has no notion of a trigger event, so Event stays empty.
func jenkins(e env) Info {
	info := Info{
		System:      Jenkins,
		Repository:  NormalizeRepository(e.first("GIT_URL", "GIT_URL_1")),
		Commit:      e.get("GIT_COMMIT"),
		RunURL:      e.get("BUILD_URL"),
		Pipeline:    e.get("JOB_NAME"),
		Actor:       e.get("BUILD_USER_ID"),
		PullRequest: digits(e.get("CHANGE_ID")),
	}
	// BUILD_TAG is "jenkins-${JOB_NAME}-${BUILD_NUMBER}": unique across jobs,
	// which BUILD_NUMBER alone is not.
	switch job, num := e.get("JOB_NAME"), e.get("BUILD_NUMBER"); {
	case e.get("BUILD_TAG") != "":
		info.RunID = e.get("BUILD_TAG")
	case job != "" && num != "":
		info.RunID = job + "#" + num
	default:
		info.RunID = num
	}
	switch {
	case info.PullRequest != "" && e.get("CHANGE_BRANCH") != "":
		// In a change request build BRANCH_NAME is "PR-123".
		info.Branch = e.get("CHANGE_BRANCH")
	case e.get("BRANCH_NAME") != "":
		info.Branch = e.get("BRANCH_NAME")
	default:
		// The Git plugin reports the remote-tracking branch: "origin/main".
		b := e.get("GIT_BRANCH")
		b = strings.TrimPrefix(b, "refs/remotes/")
		b = strings.TrimPrefix(b, "origin/")
		info.Branch = branchFromRef(b)
	}
	return info
}
