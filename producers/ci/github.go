package ci

import "strings"

// githubActions reads the default variables of GitHub Actions:
// https://docs.github.com/en/actions/reference/variables-reference
//
// For pull_request events GITHUB_SHA is the merge commit GitHub created, not
// the head of the pull request (that is only in the event payload).
func githubActions(e env) Info {
	server := strings.TrimSuffix(e.get("GITHUB_SERVER_URL"), "/")
	repo := e.get("GITHUB_REPOSITORY")
	info := Info{
		System:     GitHubActions,
		Commit:     e.get("GITHUB_SHA"),
		RunID:      e.get("GITHUB_RUN_ID"),
		RunAttempt: e.get("GITHUB_RUN_ATTEMPT"),
		Pipeline:   e.get("GITHUB_WORKFLOW"),
		// GITHUB_ACTOR started the run's first attempt; a re-run
		// attempt is started by GITHUB_TRIGGERING_ACTOR.
		Actor: e.first("GITHUB_TRIGGERING_ACTOR", "GITHUB_ACTOR"),
		Event: e.get("GITHUB_EVENT_NAME"),
	}
	if repo != "" {
		host := server
		if host == "" {
			host = "https://github.com"
		}
		info.Repository = NormalizeRepository(host + "/" + repo)
		if info.RunID != "" {
			info.RunURL = host + "/" + repo + "/actions/runs/" + info.RunID
		}
	}

	ref := e.get("GITHUB_REF")
	switch {
	case e.get("GITHUB_HEAD_REF") != "":
		// Set only for pull_request and pull_request_target events.
		info.Branch = e.get("GITHUB_HEAD_REF")
	case strings.HasPrefix(ref, "refs/"):
		info.Branch = branchFromRef(ref)
	case e.get("GITHUB_REF_TYPE") != "tag":
		info.Branch = e.get("GITHUB_REF_NAME")
	}
	// refs/pull/123/merge (or /head) for pull_request events.
	if rest, ok := strings.CutPrefix(ref, "refs/pull/"); ok {
		n, _, _ := strings.Cut(rest, "/")
		info.PullRequest = digits(n)
	}
	return info
}
