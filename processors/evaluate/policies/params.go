package policies

import (
	"strings"
	"time"
)

// Params configure the built-in controls. Zero fields take the defaults.
type Params struct {
	// ProductionEnvironments are the deployment environments the controls
	// apply to (compared case-insensitively). Default production, prod.
	ProductionEnvironments []string `json:"production_environments"`
	// EmergencyWindow: how long after the deployment an emergency change's
	// ticket may be approved (CM-1). Default 24h.
	EmergencyWindow time.Duration `json:"emergency_window"`
	// ScanSeverityThreshold: an open finding at or above it fails CM-5
	// (low, medium, high, critical). Default high.
	ScanSeverityThreshold string `json:"scan_severity_threshold"`
	// RequiredScanCategories must each have run on the deployed commit
	// (CM-5). Default sast, dependency.
	RequiredScanCategories []string `json:"required_scan_categories"`
	// PipelineIdentities are the logins of automated deployers and
	// builders (CM-3, CM-6, CM-7). Default github-actions[bot].
	PipelineIdentities []string `json:"pipeline_identities"`
	// PipelineSystems are the CI systems (the catalog's ci_system slugs)
	// whose pipelines deploy as themselves: a deployment whose deployer is
	// a service identity and whose system is one of these is the
	// pipeline's (CM-3: automated; CM-7: an authorized path), as is one by
	// a PipelineIdentities login. evidence emit deploy in CI and the
	// GitHub and GitLab webhooks of CI-run deployments report such
	// deployers. Default the seven systems evidence emit detects:
	// github-actions, gitlab-ci, jenkins, circleci, azure-pipelines,
	// buildkite, tekton. Empty (not nil): none.
	PipelineSystems []string `json:"pipeline_systems"`
	// ManualTriggerByAuthor is what CM-3 does when the change's author
	// started the deploying pipeline run on demand (any trigger but push,
	// schedule and pipeline: manual, api, tag, pull_request, other, or
	// not reported): "allow" (default) passes and names it in the
	// result's reasons; "fail" is a violation. A run started by the
	// merge's push, a schedule or an upstream pipeline follows from the
	// merge and is not on demand.
	ManualTriggerByAuthor string `json:"manual_trigger_by_author"`
	// ProtectedBranches: changes must be merged into one (CM-7). Default
	// main, master.
	ProtectedBranches []string `json:"protected_branches"`
	// PendingDeadline: how long after the (first production) deployment
	// missing evidence may still arrive; until then a control missing
	// evidence is pending, then it fails. Default 1h.
	PendingDeadline time.Duration `json:"pending_deadline"`
}

// The values of Params.ManualTriggerByAuthor.
const (
	AllowManualTriggerByAuthor = "allow"
	FailManualTriggerByAuthor  = "fail"
)

// DefaultParams are the defaults.
func DefaultParams() Params {
	return Params{
		ProductionEnvironments: []string{"production", "prod"},
		EmergencyWindow:        24 * time.Hour,
		ScanSeverityThreshold:  "high",
		RequiredScanCategories: []string{"sast", "dependency"},
		PipelineIdentities:     []string{"github-actions[bot]"},
		PipelineSystems:        []string{"github-actions", "gitlab-ci", "jenkins", "circleci", "azure-pipelines", "buildkite", "tekton"},
		ManualTriggerByAuthor:  AllowManualTriggerByAuthor,
		ProtectedBranches:      []string{"main", "master"},
		PendingDeadline:        time.Hour,
	}
}

// WithDefaults gives every zero field its default.
func (p Params) WithDefaults() Params {
	d := DefaultParams()
	if len(p.ProductionEnvironments) == 0 {
		p.ProductionEnvironments = d.ProductionEnvironments
	}
	if p.EmergencyWindow <= 0 {
		p.EmergencyWindow = d.EmergencyWindow
	}
	if p.ScanSeverityThreshold == "" {
		p.ScanSeverityThreshold = d.ScanSeverityThreshold
	}
	if p.RequiredScanCategories == nil {
		p.RequiredScanCategories = d.RequiredScanCategories
	}
	if p.PipelineIdentities == nil {
		p.PipelineIdentities = d.PipelineIdentities
	}
	if p.PipelineSystems == nil {
		p.PipelineSystems = d.PipelineSystems
	}
	if p.ManualTriggerByAuthor == "" {
		p.ManualTriggerByAuthor = d.ManualTriggerByAuthor
	}
	if len(p.ProtectedBranches) == 0 {
		p.ProtectedBranches = d.ProtectedBranches
	}
	if p.PendingDeadline <= 0 {
		p.PendingDeadline = d.PendingDeadline
	}
	return p
}

func lowerAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToLower(s)
	}
	return out
}

// Input is the params as the policies see them (input.params), for
// params with their defaults (WithDefaults).
func (p Params) Input() map[string]any {
	return map[string]any{
		"production_environments":  lowerAll(p.ProductionEnvironments),
		"emergency_window":         p.EmergencyWindow.String(),
		"emergency_window_ns":      p.EmergencyWindow.Nanoseconds(),
		"scan_severity_threshold":  strings.ToLower(p.ScanSeverityThreshold),
		"required_scan_categories": lowerAll(p.RequiredScanCategories),
		"pipeline_identities":      lowerAll(p.PipelineIdentities),
		"pipeline_systems":         lowerAll(p.PipelineSystems),
		"manual_trigger_by_author": strings.ToLower(p.ManualTriggerByAuthor),
		"protected_branches":       lowerAll(p.ProtectedBranches),
		"pending_deadline":         p.PendingDeadline.String(),
		"pending_deadline_ns":      p.PendingDeadline.Nanoseconds(),
	}
}
