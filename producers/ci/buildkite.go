package ci

// buildkite reads the Buildkite agent's variables:
// https://buildkite.com/docs/pipelines/configure/environment-variables
func buildkite(e env) Info {
	info := Info{
		System:     Buildkite,
		Repository: NormalizeRepository(e.get("BUILDKITE_REPO")),
		// May be "HEAD" until the agent resolves it; Detect drops that.
		Commit:   e.get("BUILDKITE_COMMIT"),
		Branch:   e.get("BUILDKITE_BRANCH"),
		RunID:    e.get("BUILDKITE_BUILD_ID"),
		RunURL:   e.get("BUILDKITE_BUILD_URL"),
		Pipeline: e.get("BUILDKITE_PIPELINE_SLUG"),
		// The creator is who triggered the build; the author (of the
		// commit) is a fallback for webhook builds that lack one.
		Actor: e.first("BUILDKITE_BUILD_CREATOR_EMAIL", "BUILDKITE_BUILD_CREATOR", "BUILDKITE_BUILD_AUTHOR_EMAIL", "BUILDKITE_BUILD_AUTHOR"),
		Event: e.get("BUILDKITE_SOURCE"),
	}
	if pr := e.get("BUILDKITE_PULL_REQUEST"); pr != "false" {
		info.PullRequest = digits(pr)
	}
	return info
}
