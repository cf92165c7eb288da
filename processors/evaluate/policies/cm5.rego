package evidence.controls.cm5

import data.evidence.lib

metadata := {
	"id": "CM-5",
	"title": "Security scans",
	"description": "Security scans (SAST and dependency scan) ran on the deployed commit with no open finding at or above the severity threshold.",
	"risk": "Known vulnerabilities reach production.",
	"severity": "high",
}

rank := {"low": 1, "medium": 2, "high": 3, "critical": 4}

threshold := rank[lower(input.params.scan_severity_threshold)]

# scans of a deployed commit, or of a deployed artifact.
scans contains s if {
	some s in lib.rec.scans
	s.commit in lib.deployed_commits
}

scans contains s if {
	some s in lib.rec.scans
	object.get(s, "digest", "") in lib.deployed_digests
}

latest contains s if {
	some s in scans
	not superseded(s)
}

superseded(s) if {
	some u in scans
	u.tool == s.tool
	u.category == s.category
	u.commit == s.commit
	lib.ns(u.at) > lib.ns(s.at)
}

above(s) := sum([n | some sev, r in rank; r >= threshold; n := object.get(s.findings, sev, 0)])

fails contains sprintf("%s (%s) on %s: %d open findings at or above %s (critical %d, high %d)", [s.tool, s.category, lib.short(s.commit), above(s), input.params.scan_severity_threshold, object.get(s.findings, "critical", 0), object.get(s.findings, "high", 0)]) if {
	some s in latest
	above(s) > 0
}

missing contains "the deployed commit is not known" if count(lib.deployed_commits) == 0

missing contains sprintf("no %s scan on the deployed commit %s", [cat, lib.short(c)]) if {
	some c in lib.deployed_commits
	some cat in input.params.required_scan_categories
	not scanned(c, cat)
}

scanned(c, cat) if {
	some s in scans
	s.commit == c
	s.category == cat
}

passes contains sprintf("%s (%s) on %s: no findings at or above %s", [s.tool, s.category, lib.short(s.commit), input.params.scan_severity_threshold]) if {
	some s in latest
	above(s) == 0
}

evidence contains e if {
	some s in latest
	some e in s.events
}

result := lib.decide(fails, missing, passes, evidence)
