# A control new in version 2: the change names a ticket (always true of
# the scenario's change).
package evidence.controls.ticketed

import data.evidence.lib

metadata := {
	"id": "CUST-2",
	"title": "Ticketed",
	"description": "The change names a change ticket.",
	"risk": "Untracked changes.",
	"severity": "low",
}

result := {"status": "pass", "reasons": ["names a ticket"], "evidence": []} if {
	count(lib.rec.tickets) > 0
} else := {"status": "fail", "reasons": ["names no ticket"], "evidence": []}
