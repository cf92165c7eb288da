package evidence.controls.cm4

import data.evidence.lib

metadata := {
	"id": "CM-4",
	"title": "Tests passed",
	"description": "Tests passed on the deployed commit (the latest result of every suite run on it).",
	"risk": "Defective code reaches production.",
	"severity": "medium",
}

on(c) := [t | some t in lib.rec.tests; t.commit == c]

# latest: the latest result of each suite on the commit (a re-run replaces
# an earlier result of the same suite on the same commit).
latest(c) := {t |
	some t in on(c)
	not superseded(t, c)
}

superseded(t, c) if {
	some u in on(c)
	u.suite == t.suite
	lib.ns(u.at) > lib.ns(t.at)
}

fails contains sprintf("suite %s failed on the deployed commit %s (%d failed, %d errors)", [t.suite, lib.short(c), t.failed, t.errors]) if {
	some c in lib.deployed_commits
	some t in latest(c)
	t.outcome != "passed"
}

missing contains "the deployed commit is not known" if count(lib.deployed_commits) == 0

missing contains sprintf("no test results on the deployed commit %s", [lib.short(c)]) if {
	some c in lib.deployed_commits
	count(on(c)) == 0
}

passes contains sprintf("suite %s passed on the deployed commit %s (%d tests)", [t.suite, lib.short(c), t.tests]) if {
	some c in lib.deployed_commits
	some t in latest(c)
	t.outcome == "passed"
}

evidence contains e if {
	some c in lib.deployed_commits
	some t in latest(c)
	some e in t.events
}

result := lib.decide(fails, missing, passes, evidence)
