package ci

import "strings"

// circleCI reads CircleCI's built-in variables:
// https://circleci.com/docs/reference/variables/
//
// CircleCI has no variable for the trigger, so Event stays empty.
func circleCI(e env) Info {
	info := Info{
		System:   CircleCI,
		Commit:   e.get("CIRCLE_SHA1"),
		Branch:   e.get("CIRCLE_BRANCH"),
		RunID:    e.first("CIRCLE_WORKFLOW_ID", "CIRCLE_BUILD_NUM"),
		RunURL:   e.get("CIRCLE_BUILD_URL"),
		Pipeline: e.get("CIRCLE_JOB"),
		Actor:    e.get("CIRCLE_USERNAME"),
	}
	if u := e.get("CIRCLE_REPOSITORY_URL"); u != "" {
		info.Repository = NormalizeRepository(u)
	} else if owner, name := e.get("CIRCLE_PROJECT_USERNAME"), e.get("CIRCLE_PROJECT_REPONAME"); owner != "" && name != "" {
		// The host (GitHub or Bitbucket) is not known here.
		info.Repository = owner + "/" + name
	}
	// CIRCLE_PR_NUMBER is set for pull requests from forks only;
	// CIRCLE_PULL_REQUEST is the pull request's URL, ending in its number.
	info.PullRequest = digits(e.get("CIRCLE_PR_NUMBER"))
	if info.PullRequest == "" {
		u := strings.TrimSuffix(e.get("CIRCLE_PULL_REQUEST"), "/")
		info.PullRequest = digits(u[strings.LastIndex(u, "/")+1:])
	}
	return info
}
