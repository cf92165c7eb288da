// Package ci detects the CI system a command runs in and what it tells about
// the running job: repository, commit, branch, run, actor, trigger and pull
// request.
//
// Detection is pure: [Detect] reads variables through the getenv function it
// is given (os.Getenv in the CLI, a map lookup in tests) and never touches the
// process environment itself. Only the variables each system documents are
// read:
//
//   - GitHub Actions (GITHUB_ACTIONS=true)
//   - GitLab CI (GITLAB_CI=true)
//   - Jenkins (JENKINS_URL set; git plugin and multibranch variables)
//   - CircleCI (CIRCLECI=true)
//   - Azure Pipelines (TF_BUILD=True)
//   - Buildkite (BUILDKITE=true)
//   - Tekton (TEKTON_PIPELINE_RUN or TEKTON_TASK_RUN set, see below)
//
// # Tekton
//
// Tekton exposes nothing about the run to a step's environment by default.
// A Task that emits evidence maps Tekton's context variables and its own
// parameters into the step's environment:
//
//	env:
//	  - name: TEKTON_PIPELINE_RUN
//	    value: $(context.pipelineRun.name)
//	  - name: TEKTON_NAMESPACE       # optional, makes the run id unique per cluster
//	    value: $(context.pipelineRun.namespace)
//	  - name: TEKTON_PIPELINE        # optional, the pipeline's name
//	    value: $(context.pipeline.name)
//	  - name: EVIDENCE_REPO
//	    value: $(params.repo-url)
//	  - name: EVIDENCE_COMMIT
//	    value: $(params.revision)
//
// A Task run outside a Pipeline sets TEKTON_TASK_RUN
// ($(context.taskRun.name)) instead of TEKTON_PIPELINE_RUN.
//
// # Overrides
//
// Whatever the system, these variables win over detected values, so that any
// pipeline (or one whose system is not supported) can state the facts
// explicitly:
//
//	EVIDENCE_REPO     Repository (normalized like detected values)
//	EVIDENCE_COMMIT   Commit
//	EVIDENCE_RUN_ID   RunID
//	EVIDENCE_RUN_URL  RunURL (credentials removed)
//	EVIDENCE_ACTOR    Actor
//
// CLI flags (--repo, --commit, --run-id, --actor) win over both; [Info.Require]
// names the flag and the variable to set when a required value is unknown.
//
// # Repositories
//
// [NormalizeRepository] turns every form a system reports (https and ssh URLs,
// the scp-like git@host:owner/name.git, with or without .git) into
// "host/owner/name", so that evidence from every producer and webhook
// correlates on the same key. Credentials embedded in a URL never reach the
// result.
package ci
