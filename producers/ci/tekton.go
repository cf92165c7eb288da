package ci

// tekton reads the variables a Tekton Task maps from its context (see the
// package documentation): Tekton itself sets none. Repository and commit come
// from EVIDENCE_REPO and EVIDENCE_COMMIT.
func tekton(e env) Info {
	info := Info{
		System:   Tekton,
		RunID:    e.first("TEKTON_PIPELINE_RUN", "TEKTON_TASK_RUN"),
		Pipeline: e.get("TEKTON_PIPELINE"),
	}
	// Run names are unique within a namespace only.
	if ns := e.get("TEKTON_NAMESPACE"); ns != "" {
		info.RunID = ns + "/" + info.RunID
	}
	return info
}
