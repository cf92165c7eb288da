package dashboards_test

import (
	"strings"
)

// The dashboards, as Go definitions. gen_test.go turns them into the JSON
// files of this directory (go test ./dashboards -run TestGenerated -update)
// with Grafana's dashboard types; dashboards_test.go runs every panel's
// query against ClickHouse and asserts what it shows.
//
// Conventions of the SQL (docs/dashboards.md explains them to users):
//   - "now" is the end of the dashboard's time range ($__toTime), so that a
//     past period shows as it was then;
//   - ReplacingMergeTree tables are read with FINAL; control_results'
//     verdict in force is its newest row per change and control;
//   - the service, repository and team variables are multi-valued with a
//     custom all value '__all__', so "All" also matches rows whose value is
//     not (yet) among the options;
//   - a service's team comes from service_teams, else it is the owner of the
//     repository (schemas/clickhouse/0005_teams.sql);
//   - ClickHouse 18.16 and current releases: no window functions, no
//     JSONExtract, one JOIN per SELECT, no toStartOfInterval (so no
//     $__timeInterval: trends are per day).

type dashDef struct {
	file, uid, title, desc string
	tags                   []string
	from                   string // default time range start, e.g. now-30d
	vars                   []varDef
	panels                 []panelDef
}

type varDef struct {
	name, label string
	kind        string // query, textbox
	query       string // for query variables: the SQL whose first column gives the options
	multi       bool   // multi-valued with All = '__all__'
	current     string // default value (single-valued)
	desc        string
}

type panelDef struct {
	title, desc string
	kind        string // stat, table, timeseries
	sql         string
	unit        string
	w, h        int
	changeLink  bool // the change_id column links to the change trace
}

const (
	chType = "grafana-clickhouse-datasource"
	chUID  = "clickhouse"
	// traceUID is the change trace dashboard's uid, which links point at.
	traceUID = "evidence-change-trace"
)

// sql fills the shared fragments of a query.
var sqlFragments = strings.NewReplacer(
	// The team of a row with service and repository columns.
	"{TEAM_JOIN}", "ANY LEFT JOIN (SELECT service, team AS mapped_team FROM service_teams FINAL) USING service",
	"{TEAM}", "if(mapped_team = '', splitByChar('/', repository)[2], mapped_team)",
	// The variable filters, for a row with service, repository and a
	// {TEAM_JOIN}.
	"{FILTERS}", "('__all__' IN (${service:singlequote}) OR service IN (${service:singlequote}))"+
		" AND ('__all__' IN (${repository:singlequote}) OR repository IN (${repository:singlequote}))"+
		" AND ('__all__' IN (${team:singlequote}) OR if(mapped_team = '', splitByChar('/', repository)[2], mapped_team) IN (${team:singlequote}))",
)

// changesIn is the condition "change_id is that of a change with a
// deployment to env matching the variable filters".
func changesIn(env string) string {
	return "change_id IN (SELECT change_id FROM deployments FINAL {TEAM_JOIN} WHERE environment = " + env + " AND {FILTERS})"
}

// inForce is the verdict in force, as of the end of the time range, of
// every control on every live change deployed to env matching the filters.
func inForce(env string) string {
	return `SELECT change_id, control_id,
  argMax(control_title, evaluated_at_ns) AS control_title,
  argMax(status, evaluated_at_ns) AS status,
  argMax(reasons, evaluated_at_ns) AS reasons,
  argMax(deadline, evaluated_at_ns) AS deadline,
  argMax(exception_id, evaluated_at_ns) AS exception_id,
  argMax(repository, evaluated_at_ns) AS repository
FROM control_results
WHERE evaluated_at <= $__toTime
  AND change_id IN (SELECT change_id FROM changes FINAL WHERE retired = 0)
  AND ` + changesIn(env) + `
GROUP BY change_id, control_id`
}

// share is the passing share of production deployments over a window.
func share(window string) string {
	return `SELECT if(count() = 0, NULL, round(100 * countIf(verdict = 'pass') / count(), 1)) AS passing
FROM deployment_verdicts FINAL {TEAM_JOIN}
WHERE environment = 'production' AND ` + window + ` AND deployed_at <= $__toTime AND {FILTERS}`
}

var filterVars = []varDef{
	{name: "service", label: "Service", kind: "query", multi: true,
		query: "SELECT DISTINCT service FROM deployments ORDER BY service",
		desc:  "services, as deployments name them"},
	{name: "repository", label: "Repository", kind: "query", multi: true,
		query: "SELECT DISTINCT repository FROM deployments WHERE repository != '' ORDER BY repository",
		desc:  "repositories, as deployments name them"},
	{name: "team", label: "Team", kind: "query", multi: true,
		query: "SELECT DISTINCT {TEAM} AS team FROM deployments FINAL {TEAM_JOIN} ORDER BY team",
		desc:  "teams: service_teams, else the repository owner"},
}

var envVar = varDef{name: "environment", label: "Environment", kind: "query", current: "production",
	query: "SELECT DISTINCT environment FROM deployments ORDER BY environment",
	desc:  "the environment deployed to"}

func withEnv() []varDef { return append([]varDef{envVar}, filterVars...) }

var defs = []dashDef{
	{
		file: "posture.json", uid: "evidence-posture", title: "Evidence: compliance posture",
		desc: "Share of production deployments that passed every control, open violations, pending controls and unmatched deployments.",
		tags: []string{"evidence", "sox"}, from: "now-30d", vars: filterVars,
		panels: []panelDef{
			{title: "Passing, last 24 h", kind: "stat", unit: "percent", w: 6, h: 4,
				desc: "Production deployments of the 24 hours before the end of the range whose verdict at deployment was pass (every control passed or was waived).",
				sql:  share("deployed_at > $__toTime - 86400")},
			{title: "Passing, last 7 days", kind: "stat", unit: "percent", w: 6, h: 4,
				desc: "As the 24 h figure, over 7 days.",
				sql:  share("deployed_at > $__toTime - 604800")},
			{title: "Passing, last 30 days", kind: "stat", unit: "percent", w: 6, h: 4,
				desc: "As the 24 h figure, over 30 days.",
				sql:  share("deployed_at > $__toTime - 2592000")},
			{title: "Passing, quarter to date", kind: "stat", unit: "percent", w: 6, h: 4,
				desc: "As the 24 h figure, from the start of the calendar quarter (server time zone).",
				sql:  share("deployed_at >= toStartOfQuarter($__toTime)")},
			{title: "Open violations", kind: "stat", unit: "none", w: 6, h: 4,
				desc: "Controls whose verdict in force is fail, on live changes deployed to production (one per change and control).",
				sql:  "SELECT count() AS open_violations FROM (" + inForce("'production'") + ") WHERE status = 'fail'"},
			{title: "Unmatched production deployments", kind: "stat", unit: "none", w: 6, h: 4,
				desc: "Production deployments started in the range that match no change record (CM-8) as of now.",
				sql: `SELECT count() AS unmatched_deployments FROM deployments FINAL {TEAM_JOIN}
WHERE environment = 'production' AND unmatched = 1 AND $__timeFilter(started_at) AND {FILTERS}`},
			{title: "Pending controls nearing their deadline", kind: "table", w: 12, h: 8, changeLink: true,
				desc: "Controls still pending on production changes whose deadline is less than 24 hours after the end of the range (or passed): they fail when it passes without the evidence.",
				sql: `SELECT change_id, control_id, deadline, round((toInt64(toUInt32(deadline)) - toInt64(toUInt32($__toTime))) / 3600, 1) AS hours_left
FROM (` + inForce("'production'") + `)
WHERE status = 'pending' AND toUInt32(deadline) > 0 AND deadline <= $__toTime + 86400
ORDER BY deadline, change_id, control_id`},
			{title: "Passing share per day", kind: "timeseries", unit: "percent", w: 24, h: 8,
				desc: "Per day of the range, the share of production deployments that passed every control.",
				sql: `SELECT toStartOfDay(deployed_at) AS time, round(100 * countIf(verdict = 'pass') / count(), 1) AS passing
FROM deployment_verdicts FINAL {TEAM_JOIN}
WHERE environment = 'production' AND $__timeFilter(deployed_at) AND {FILTERS}
GROUP BY time ORDER BY time`},
		},
	},
	{
		file: "controls.json", uid: "evidence-controls", title: "Evidence: control detail",
		desc: "Per control: results over time, verdicts in force, top failing services and teams, failing changes.",
		tags: []string{"evidence", "sox"}, from: "now-30d",
		vars: append(withEnv(), varDef{name: "control", label: "Control", kind: "query", current: "CM-1",
			query: "SELECT DISTINCT control_id FROM control_results ORDER BY control_id", desc: "the control of the per-day panel"}),
		panels: []panelDef{
			{title: "Control ${control} at deployment, per day", kind: "timeseries", unit: "none", w: 24, h: 8,
				desc: "Per day, the deployments to the environment by the status the control had in their verdict at deployment.",
				sql: `SELECT toStartOfDay(deployed_at) AS time, countIf(st = 'pass') AS pass, countIf(st = 'fail') AS fail,
  countIf(st = 'pending') AS pending, countIf(st = 'waived') AS waived
FROM (SELECT deployed_at, service, repository,
    multiIf(has(failing, ${control:sqlstring}), 'fail', has(pending, ${control:sqlstring}), 'pending', has(waived, ${control:sqlstring}), 'waived', 'pass') AS st
  FROM deployment_verdicts FINAL
  WHERE environment = ${environment:sqlstring} AND $__timeFilter(deployed_at))
{TEAM_JOIN}
WHERE {FILTERS}
GROUP BY time ORDER BY time`},
			{title: "Verdicts in force per control", kind: "table", w: 12, h: 8,
				desc: "Per control, how many live changes deployed to the environment it passes, fails, leaves pending or has waived, as of the end of the range.",
				sql: `SELECT control_id, any(control_title) AS title, countIf(status = 'pass') AS pass, countIf(status = 'fail') AS fail,
  countIf(status = 'pending') AS pending, countIf(status = 'waived') AS waived
FROM (` + inForce("${environment:sqlstring}") + `)
GROUP BY control_id ORDER BY control_id`},
			{title: "Top failing services", kind: "table", w: 6, h: 8,
				desc: "Services by their deployments in the range whose verdict at deployment was fail.",
				sql: `SELECT service, countIf(verdict = 'fail') AS failing, count() AS deployments
FROM deployment_verdicts FINAL {TEAM_JOIN}
WHERE environment = ${environment:sqlstring} AND $__timeFilter(deployed_at) AND {FILTERS}
GROUP BY service HAVING failing > 0 ORDER BY failing DESC, service LIMIT 10`},
			{title: "Top failing teams", kind: "table", w: 6, h: 8,
				desc: "Teams by their deployments in the range whose verdict at deployment was fail.",
				sql: `SELECT {TEAM} AS team, countIf(verdict = 'fail') AS failing, count() AS deployments
FROM deployment_verdicts FINAL {TEAM_JOIN}
WHERE environment = ${environment:sqlstring} AND $__timeFilter(deployed_at) AND {FILTERS}
GROUP BY team HAVING failing > 0 ORDER BY failing DESC, team LIMIT 10`},
			{title: "Failing changes", kind: "table", w: 24, h: 8, changeLink: true,
				desc: "Live changes deployed to the environment with a control whose verdict in force is fail, and why. The change links to its trace.",
				sql: `SELECT change_id, control_id, repository, arrayStringConcat(reasons, '; ') AS reasons
FROM (` + inForce("${environment:sqlstring}") + `)
WHERE status = 'fail' ORDER BY change_id, control_id`},
		},
	},
	{
		file: "change-trace.json", uid: traceUID, title: "Evidence: change trace",
		desc: "One change: its commit, pull request, reviews, tickets, builds, tests, scans, deployments and verdicts.",
		tags: []string{"evidence", "sox"}, from: "now-90d",
		vars: []varDef{{name: "change", label: "Change", kind: "textbox", desc: "the change id: <repository>@<commit>"}},
		panels: []panelDef{
			{title: "Change", kind: "table", w: 24, h: 5,
				desc: "The change record's summary (changes, newest version).",
				sql: `SELECT change_id, repository, commit, pr_number, pr_title, author, merged_by, merged_at,
  arrayStringConcat(ticket_keys, ', ') AS tickets, direct_push, unmatched, retired, event_count, record_hash
FROM changes FINAL WHERE change_id = ${change:sqlstring}`},
			{title: "Reviews", kind: "table", w: 12, h: 7,
				desc: "Every review of the pull request: who, the decision, on which head commit, and whether a later push made it stale.",
				sql: `SELECT extract(r, '"login":"([^"]*)"') AS reviewer, extract(r, '"decision":"([^"]*)"') AS decision,
  extract(r, '"head_commit":"([^"]*)"') AS head_commit, extract(r, '"stale":(true|false)') AS stale
FROM changes FINAL
ARRAY JOIN extractAll(visitParamExtractRaw(record, 'reviews'), '\\{"reviewer":\\{[^{}]*\\},"decision":"[^"]*","head_commit":"[^"]*","stale":(?:true|false)') AS r
WHERE change_id = ${change:sqlstring}`},
			{title: "Tickets and approvals", kind: "table", w: 12, h: 7,
				desc: "The change tickets, their type and status, and who approved them.",
				sql: `SELECT extract(t, '"key":"([^"]*)"') AS ticket, extract(t, '^\\{"key":"[^"]*","found_in":\\[[^\\]]*\\](?:,"system":"[^"]*")?,"type":"([^"]*)"') AS type,
  extract(t, '"status":"([^"]*)"') AS status,
  arrayStringConcat(extractAll(extract(t, '"approvals":\\[(.*?)\\],"rejections"'), '"by":\\{"login":"([^"]*)"'), ', ') AS approved_by
FROM changes FINAL
ARRAY JOIN extractAll(visitParamExtractRaw(record, 'tickets'), '\\{"key":"[^"]*",.*?"rejections":') AS t
WHERE change_id = ${change:sqlstring}`},
			{title: "Builds, tests and scans", kind: "table", w: 24, h: 7,
				desc: "Pipeline runs, test reports and security scans on the change's commits, with their outcome.",
				sql: `SELECT kind, name, outcome FROM (
  SELECT 'build' AS kind, extract(x, '"run_id":"([^"]*)"') AS name, extract(x, '"outcome":"([^"]*)"') AS outcome
  FROM changes FINAL ARRAY JOIN extractAll(visitParamExtractRaw(record, 'runs'), '\\{"repository":"[^"]*","run_id":"[^"]*",.*?"events":') AS x
  WHERE change_id = ${change:sqlstring}
  UNION ALL
  SELECT 'test' AS kind, extract(x, '"suite":"([^"]*)"') AS name, extract(x, '"suite":"[^"]*","outcome":"([^"]*)"') AS outcome
  FROM changes FINAL ARRAY JOIN extractAll(visitParamExtractRaw(record, 'tests'), '\\{"repository":"[^"]*","commit":"[^"]*",.*?"events":') AS x
  WHERE change_id = ${change:sqlstring}
  UNION ALL
  SELECT 'scan' AS kind, concat(extract(x, '"tool":"([^"]*)"'), ' ', extract(x, '"category":"([^"]*)"')) AS name, extract(x, '"outcome":"([^"]*)"') AS outcome
  FROM changes FINAL ARRAY JOIN extractAll(visitParamExtractRaw(record, 'scans'), '\\{"repository":"[^"]*","commit":"[^"]*",.*?"events":') AS x
  WHERE change_id = ${change:sqlstring}
) ORDER BY kind, name`},
			{title: "Deployments", kind: "table", w: 24, h: 7,
				desc: "Every deployment of the change (deployments, newest version).",
				sql: `SELECT environment, service, deployment_key, deployer, outcome, started_at, finished_at, arrayStringConcat(matched_by, ', ') AS matched_by
FROM deployments FINAL
WHERE (environment, service, deployment_key) IN (SELECT environment, service, deployment_key FROM deployments WHERE change_id = ${change:sqlstring})
  AND change_id = ${change:sqlstring}
ORDER BY started_at_ns, environment, service, deployment_key`},
			{title: "Controls in force", kind: "table", w: 12, h: 8,
				desc: "Each control's newest verdict on the change, with its reasons and the exception that waived it, if any.",
				sql: `SELECT control_id, argMax(status, evaluated_at_ns) AS status, argMax(arrayStringConcat(reasons, '; '), evaluated_at_ns) AS reasons,
  argMax(exception_id, evaluated_at_ns) AS exception
FROM control_results WHERE change_id = ${change:sqlstring}
GROUP BY control_id ORDER BY control_id`},
			{title: "Verdicts at deployment", kind: "table", w: 12, h: 8,
				desc: "The verdict in force at the moment of each production deployment of the change, decided once.",
				sql: `SELECT deployed_at, environment, service, verdict, arrayStringConcat(failing, ', ') AS failing,
  arrayStringConcat(pending, ', ') AS pending, arrayStringConcat(waived, ', ') AS waived, deployer
FROM deployment_verdicts FINAL WHERE change_id = ${change:sqlstring} ORDER BY deployed_at_ns`},
		},
	},
	{
		file: "segregation.json", uid: "evidence-segregation", title: "Evidence: segregation of duties and exceptions",
		desc: "Who wrote, reviewed, approved, merged and deployed each production change; active and expired exceptions.",
		tags: []string{"evidence", "sox"}, from: "now-30d", vars: filterVars,
		panels: []panelDef{
			{title: "Who approved what", kind: "table", w: 24, h: 9, changeLink: true,
				desc: "Production changes deployed in the range: the author, the reviewers who approved, the ticket approvers, who merged and who deployed, and the segregation of duties control (CM-3) in force.",
				sql: `SELECT change_id, author, approving_reviewers, ticket_approvers, merged_by, deployers, cm3 FROM (
  SELECT change_id, author, merged_by,
    arrayStringConcat(arraySort(arrayDistinct(extractAll(visitParamExtractRaw(record, 'reviews'), '"reviewer":\\{"login":"([^"]*)"[^{}]*\\},"decision":"approved"'))), ', ') AS approving_reviewers,
    arrayStringConcat(arraySort(arrayDistinct(arrayReduce('groupArrayArray', arrayMap(a -> extractAll(a, '"by":\\{"login":"([^"]*)"'), extractAll(visitParamExtractRaw(record, 'tickets'), '"approvals":\\[(.*?)\\],"rejections"'))))), ', ') AS ticket_approvers,
    deployers
  FROM changes FINAL
  ANY LEFT JOIN (
    SELECT change_id, arrayStringConcat(arraySort(groupUniqArray(deployer)), ', ') AS deployers
    FROM deployments FINAL WHERE environment = 'production' GROUP BY change_id
  ) USING change_id
  WHERE retired = 0 AND change_id IN (SELECT change_id FROM deployments FINAL {TEAM_JOIN}
    WHERE environment = 'production' AND $__timeFilter(started_at) AND {FILTERS})
)
ANY LEFT JOIN (
  SELECT change_id, argMax(status, evaluated_at_ns) AS cm3 FROM control_results
  WHERE control_id = 'CM-3' AND evaluated_at <= $__toTime GROUP BY change_id
) USING change_id
ORDER BY change_id`},
			{title: "Exceptions", kind: "table", w: 24, h: 8,
				desc: "Exceptions recorded on live changes: the control waived, who approved, when it expires, and its state at the end of the range (requested, active or expired).",
				sql:  exceptions(`SELECT id, control, state, approver, expires_at, changes FROM ({EXC}) ORDER BY id`)},
			{title: "Active exceptions", kind: "stat", unit: "none", w: 12, h: 4,
				desc: "Granted exceptions not expired at the end of the range.",
				sql:  exceptions(`SELECT count() AS active FROM ({EXC}) WHERE state = 'active'`)},
			{title: "Expired exceptions", kind: "stat", unit: "none", w: 12, h: 4,
				desc: "Granted exceptions expired at the end of the range.",
				sql:  exceptions(`SELECT count() AS expired FROM ({EXC}) WHERE state = 'expired'`)},
		},
	},
	{
		file: "delivery.json", uid: "evidence-delivery", title: "Evidence: delivery metrics",
		desc: "Deployment frequency, lead time for changes, change failure rate and time to restore, from the same evidence.",
		tags: []string{"evidence", "dora"}, from: "now-30d", vars: withEnv(),
		panels: []panelDef{
			{title: "Deployment frequency", kind: "stat", unit: "none", w: 6, h: 4,
				desc: "Successful deployments to the environment per day, over the range.",
				sql: `SELECT round(count() / greatest(1, (toUInt32($__toTime) - toUInt32($__fromTime)) / 86400), 2) AS per_day
FROM deployments FINAL {TEAM_JOIN}
WHERE environment = ${environment:sqlstring} AND outcome = 'success' AND $__timeFilter(finished_at) AND {FILTERS}`},
			{title: "Lead time for changes", kind: "stat", unit: "h", w: 6, h: 4,
				desc: "Median hours from a change's merge to its first deployment to the environment, for changes first deployed in the range.",
				sql: `SELECT round(quantileExact(0.5)(toInt64(toUInt32(first_deploy)) - toInt64(toUInt32(merged_at))) / 3600, 1) AS lead_time_hours
FROM (
  SELECT change_id, min(if(started_at_ns = 0, finished_at, started_at)) AS first_deploy
  FROM deployments FINAL {TEAM_JOIN}
  WHERE environment = ${environment:sqlstring} AND unmatched = 0 AND {FILTERS}
  GROUP BY change_id
)
ANY INNER JOIN (SELECT change_id, merged_at FROM changes FINAL WHERE retired = 0 AND merged_at_ns > 0) USING change_id
WHERE $__timeFilter(first_deploy)`},
			{title: "Change failure rate", kind: "stat", unit: "percent", w: 6, h: 4,
				desc: "Of the deployments to the environment finished in the range with outcome success or failure, the share that failed.",
				sql: `SELECT if(count() = 0, NULL, round(100 * countIf(outcome = 'failure') / count(), 1)) AS failure_rate
FROM deployments FINAL {TEAM_JOIN}
WHERE environment = ${environment:sqlstring} AND outcome IN ('success', 'failure') AND $__timeFilter(finished_at) AND {FILTERS}`},
			{title: "Time to restore", kind: "stat", unit: "h", w: 6, h: 4,
				desc: "Median hours from a failed deployment's finish to the finish of the next successful deployment of the same service to the environment, for failures in the range that were followed by one.",
				sql: `SELECT round(quantileExact(0.5)(toInt64(toUInt32(restored_at)) - toInt64(toUInt32(failed_at))) / 3600, 1) AS restore_hours
FROM (
  SELECT failed_at, arrayFirst(t -> t > failed_at, successes) AS restored_at
  FROM (
    SELECT service, groupArrayIf(finished_at, outcome = 'failure') AS failures, arraySort(groupArrayIf(finished_at, outcome = 'success')) AS successes
    FROM deployments FINAL {TEAM_JOIN}
    WHERE environment = ${environment:sqlstring} AND {FILTERS}
    GROUP BY service
  )
  ARRAY JOIN failures AS failed_at
  WHERE $__timeFilter(failed_at)
)
WHERE toUInt32(restored_at) > 0`},
			{title: "Deployments per day", kind: "timeseries", unit: "none", w: 24, h: 8,
				desc: "Deployments to the environment finished per day, by outcome.",
				sql: `SELECT toStartOfDay(finished_at) AS time, countIf(outcome = 'success') AS success, countIf(outcome = 'failure') AS failure
FROM deployments FINAL {TEAM_JOIN}
WHERE environment = ${environment:sqlstring} AND outcome IN ('success', 'failure') AND $__timeFilter(finished_at) AND {FILTERS}
GROUP BY time ORDER BY time`},
		},
	},
}

// exceptions fills {EXC} with the exceptions on live changes matching the
// filters, one row per exception id, and its state at the end of the range.
func exceptions(q string) string {
	return strings.Replace(q, "{EXC}", `SELECT id, any(control) AS control, any(status) AS status, any(approver) AS approver, any(expires_at) AS expires_at,
  multiIf(status != 'granted', 'requested', expires_at <= $__toTime, 'expired', 'active') AS state,
  arrayStringConcat(arraySort(groupUniqArray(change_id)), ', ') AS changes
FROM (
  SELECT change_id, extract(x, '"id":"([^"]*)"') AS id, extract(x, '"control":"([^"]*)"') AS control,
    extract(x, '"status":"([^"]*)"') AS status, extract(x, '"approver":\\{"login":"([^"]*)"') AS approver,
    toDateTimeOrZero(substring(replaceOne(extract(x, '"expires_at":"([^"]*)"'), 'T', ' '), 1, 19), 'UTC') AS expires_at
  FROM changes FINAL
  ARRAY JOIN extractAll(visitParamExtractRaw(record, 'exceptions'), '\\{"id":"[^"]*","control":"[^"]*",.*?"events":') AS x
  WHERE retired = 0 AND change_id IN (SELECT change_id FROM deployments FINAL {TEAM_JOIN} WHERE {FILTERS})
)
GROUP BY id`, 1)
}
