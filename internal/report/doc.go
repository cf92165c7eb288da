// Package report builds the auditor's reports from ClickHouse (through
// internal/store, read-only): the population of production deployments of
// a period with their change and verdicts, a reproducible sample of it,
// the control summary, the trace of one change with the raw events behind
// it, and the signed evidence package that bundles them, with its offline
// verification. docs/reports.md describes each report, the sampling
// algorithm and the package format; the CLI (evidence report, evidence
// verify package) is a thin layer over it.
package report
