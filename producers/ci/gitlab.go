package ci

// gitlabCI reads GitLab CI/CD's predefined variables:
// https://docs.gitlab.com/ci/variables/predefined_variables/
//
// GITLAB_USER_LOGIN is who started the pipeline, or in a manual job who
// started the job (CI_JOB_MANUAL=true).
func gitlabCI(e env) Info {
	info := Info{
		System:      GitLabCI,
		Commit:      e.get("CI_COMMIT_SHA"),
		RunID:       e.get("CI_PIPELINE_ID"),
		RunURL:      e.get("CI_PIPELINE_URL"),
		Pipeline:    e.first("CI_PIPELINE_NAME", "CI_JOB_NAME"),
		Actor:       e.get("GITLAB_USER_LOGIN"),
		Event:       e.get("CI_PIPELINE_SOURCE"),
		PullRequest: digits(e.get("CI_MERGE_REQUEST_IID")),
		ManualJob:   e.get("CI_JOB_MANUAL") == "true",
	}
	switch {
	case e.get("CI_PROJECT_URL") != "":
		info.Repository = NormalizeRepository(e.get("CI_PROJECT_URL"))
	case e.get("CI_SERVER_HOST") != "" && e.get("CI_PROJECT_PATH") != "":
		info.Repository = NormalizeRepository(e.get("CI_SERVER_HOST") + "/" + e.get("CI_PROJECT_PATH"))
	default:
		info.Repository = e.get("CI_PROJECT_PATH")
	}
	// CI_COMMIT_BRANCH is absent in merge request pipelines and for tags;
	// CI_COMMIT_REF_NAME is the tag name in tag pipelines.
	switch {
	case e.get("CI_COMMIT_BRANCH") != "":
		info.Branch = e.get("CI_COMMIT_BRANCH")
	case e.get("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME") != "":
		info.Branch = e.get("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME")
	case e.get("CI_COMMIT_TAG") == "":
		info.Branch = e.get("CI_COMMIT_REF_NAME")
	}
	return info
}
