package cdevents

// CDEvents 0.5: the table is the official v0.5.1 JSON Schemas
// (github.com/cdevents/spec, tag v0.5.1, schemas/*.json), written as data.
// TestTableMatchesSchemas reads those schemas and fails on any difference.

// envelope05 is the whole event of v0.5.1: every object is closed.
func envelope05(links *schema) func(e *event) *schema {
	return func(e *event) *schema {
		source, subjectSource := nonEmpty().as(fmtURIRef), nonEmpty().as(fmtURIRef)
		if e.plainSources {
			source, subjectSource = nonEmpty(), str()
		}
		subject := []prop{
			req("id", nonEmpty()),
			opt("source", subjectSource),
		}
		if e.subjectType != nil {
			subject = append(subject, opt("type", e.subjectType))
		}
		subject = append(subject, req("content", e.contentSchema()))
		return obj(
			req("context", obj(
				req("specversion", nonEmpty()),
				req("id", nonEmpty()),
				req("source", source),
				req("type", &schema{kind: kindString, eventType: true}),
				req("timestamp", str().as(fmtDateTime)),
				opt("schemaUri", nonEmpty().as(fmtURI)),
				opt("chainId", nonEmpty()),
				opt("links", links),
			)),
			req("subject", obj(subject...)),
			opt("customData", &schema{kind: kindObjectOrString}),
			opt("customDataContentType", str()),
		)
	}
}

// links05 is links/embeddedlinksarray of v0.5.1: an array of END, PATH or
// RELATION links.
var links05 = &schema{kind: kindLinks, links: map[string]*schema{
	"END": obj(
		req("linkType", str().is("END")),
		opt("from", openObj(req("contextId", nonEmpty()))),
		opt("tags", openObj()),
	),
	"PATH": obj(
		req("linkType", str().is("PATH")),
		req("from", openObj(req("contextId", nonEmpty()))),
		opt("tags", openObj()),
	),
	"RELATION": obj(
		req("linkType", str().is("RELATION")),
		req("linkKind", nonEmpty()),
		req("target", openObj(opt("contextId", nonEmpty()))),
		opt("tags", openObj()),
	),
}}

// Shared shapes of v0.5.1 content.

// ref05 is a reference to another subject: environment, service,
// repository, change, pipelineRun.
func ref05() *schema {
	return obj(req("id", nonEmpty()), opt("source", nonEmpty().as(fmtURIRef)))
}

// runRef05 references a test run (testSuiteRun, testCaseRun): its source has
// no format.
func runRef05() *schema { return obj(req("id", nonEmpty()), opt("source", str())) }

func sbom05() *schema { return obj(req("uri", nonEmpty().as(fmtURIRef))) }

func outcome05() *schema  { return str().is("success", "failure", "cancel", "error") }
func severity05() *schema { return str().is("low", "medium", "high", "critical") }

func trigger05() *schema {
	return openObj(
		opt("type", str().is("manual", "pipeline", "event", "schedule", "other")),
		opt("uri", str().as(fmtURI)),
	)
}

func testCase05() *schema {
	return obj(
		req("id", nonEmpty()),
		opt("version", str()),
		opt("name", str()),
		opt("type", str().is("performance", "functional", "unit", "security", "compliance", "integration", "e2e", "other")),
		opt("uri", str().as(fmtURI)),
	)
}

func testSuite05() *schema {
	return obj(
		req("id", nonEmpty()),
		opt("version", str()),
		opt("name", str()),
		opt("uri", str().as(fmtURI)),
	)
}

// ticket05 lists the members of ticket content; extra adds the members of
// one predicate, required says which are required.
func ticket05(required []string, extra ...prop) *schema {
	props := []prop{
		opt("summary", str()),
		opt("ticketType", str().suggest("bug", "enhancement", "incident", "task", "question")),
		opt("group", str()),
		opt("creator", nonEmpty()),
		opt("assignees", arr(str())),
		opt("priority", str().suggest("low", "medium", "high")),
		opt("labels", arr(str())),
		opt("milestone", str()),
		opt("uri", nonEmpty().as(fmtURIRef)),
	}
	props = append(props, extra...)
	for i := range props {
		for _, r := range required {
			if props[i].name == r {
				props[i].required = true
			}
		}
	}
	return obj(props...)
}

var specV05 = func() *spec {
	s := newSpec(&spec{
		name:     "0.5",
		release:  "0.5.1",
		field:    "specversion",
		accepts:  minorOf("0.5"),
		envelope: envelope05(links05),
	}, []def{
		{"artifact.deleted", "0.2.0", obj(opt("user", nonEmpty()))},
		{"artifact.downloaded", "0.2.0", obj(opt("user", nonEmpty()))},
		{"artifact.packaged", "0.3.0", obj(req("change", ref05()), opt("sbom", sbom05()))},
		{"artifact.published", "0.3.0", obj(opt("sbom", sbom05()), opt("user", nonEmpty()))},
		{"artifact.signed", "0.3.0", obj(req("signature", nonEmpty()))},

		{"branch.created", "0.3.0", obj(opt("repository", ref05()))},
		{"branch.deleted", "0.3.0", obj(opt("repository", ref05()))},

		{"build.finished", "0.3.0", obj(opt("artifactId", str()))},
		{"build.queued", "0.3.0", obj()},
		{"build.started", "0.3.0", obj()},

		{"change.abandoned", "0.3.0", obj(opt("repository", ref05()))},
		{"change.created", "0.4.0", obj(opt("description", nonEmpty()), opt("repository", ref05()))},
		{"change.merged", "0.3.0", obj(opt("repository", ref05()))},
		{"change.reviewed", "0.3.0", obj(opt("repository", ref05()))},
		{"change.updated", "0.3.0", obj(opt("repository", ref05()))},

		{"environment.created", "0.3.0", obj(opt("name", str()), opt("uri", str().as(fmtURI)))},
		{"environment.deleted", "0.3.0", obj(opt("name", str()))},
		{"environment.modified", "0.3.0", obj(opt("name", str()), opt("uri", str().as(fmtURI)))},

		{"incident.detected", "0.3.0", obj(
			opt("description", str()),
			req("environment", ref05()),
			opt("service", ref05()),
			opt("artifactId", nonEmpty()),
		)},
		{"incident.reported", "0.3.0", obj(
			opt("description", str()),
			req("environment", ref05()),
			req("ticketURI", nonEmpty().as(fmtURI)),
			opt("service", ref05()),
			opt("artifactId", nonEmpty()),
		)},
		{"incident.resolved", "0.3.0", obj(
			opt("description", str()),
			req("environment", ref05()),
			opt("service", ref05()),
			opt("artifactId", nonEmpty()),
		)},

		{"pipelinerun.finished", "0.3.0", obj(
			opt("pipelineName", str()),
			opt("uri", str().as(fmtURI)),
			opt("outcome", outcome05()),
			opt("errors", str()),
		)},
		{"pipelinerun.queued", "0.3.0", obj(opt("pipelineName", str()), opt("uri", str().as(fmtURI)))},
		{"pipelinerun.started", "0.3.0", obj(req("pipelineName", str()), req("uri", str().as(fmtURI)))},

		{"repository.created", "0.3.0", obj(
			req("name", nonEmpty()),
			opt("owner", str()),
			req("uri", str().as(fmtURI)),
			opt("viewUrl", str().as(fmtURI)),
		)},
		{"repository.deleted", "0.3.0", obj(
			opt("name", str()),
			opt("owner", str()),
			opt("uri", str().as(fmtURI)),
			opt("viewUrl", str().as(fmtURI)),
		)},
		{"repository.modified", "0.3.0", obj(
			opt("name", str()),
			opt("owner", str()),
			opt("uri", str().as(fmtURI)),
			opt("viewUrl", str().as(fmtURI)),
		)},

		{"service.deployed", "0.3.0", obj(req("environment", ref05()), req("artifactId", nonEmpty()))},
		{"service.published", "0.3.0", obj(opt("environment", ref05()))},
		{"service.removed", "0.3.0", obj(opt("environment", ref05()))},
		{"service.rolledback", "0.3.0", obj(req("environment", ref05()), req("artifactId", nonEmpty()))},
		{"service.upgraded", "0.3.0", obj(req("environment", ref05()), req("artifactId", nonEmpty()))},

		{"taskrun.finished", "0.3.0", obj(
			opt("taskName", str()),
			opt("uri", str().as(fmtURI)),
			opt("pipelineRun", ref05()),
			opt("outcome", str()),
			opt("errors", str()),
		)},
		{"taskrun.started", "0.3.0", obj(
			opt("taskName", str()),
			opt("uri", str().as(fmtURI)),
			opt("pipelineRun", ref05()),
		)},

		{"testcaserun.finished", "0.3.0", obj(
			req("outcome", outcome05()),
			opt("severity", severity05()),
			opt("reason", str()),
			req("environment", ref05()),
			opt("testSuiteRun", runRef05()),
			opt("testCase", testCase05()),
		)},
		{"testcaserun.queued", "0.3.0", obj(
			opt("trigger", trigger05()),
			req("environment", ref05()),
			opt("testSuiteRun", runRef05()),
			opt("testCase", testCase05()),
		)},
		{"testcaserun.skipped", "0.2.0", obj(
			opt("reason", str()),
			opt("environment", ref05()),
			opt("testSuiteRun", runRef05()),
			opt("testCase", testCase05()),
		)},
		{"testcaserun.started", "0.3.0", obj(
			opt("trigger", trigger05()),
			req("environment", ref05()),
			opt("testSuiteRun", runRef05()),
			opt("testCase", testCase05()),
		)},
		{"testoutput.published", "0.3.0", obj(
			req("outputType", str().is("report", "video", "image", "log", "other")),
			req("format", str()),
			opt("uri", str().as(fmtURI)),
			opt("testCaseRun", runRef05()),
		)},
		{"testsuiterun.finished", "0.3.0", obj(
			req("environment", ref05()),
			opt("testSuite", testSuite05()),
			req("outcome", outcome05()),
			opt("severity", severity05()),
			opt("reason", str()),
		)},
		{"testsuiterun.queued", "0.3.0", obj(
			opt("trigger", trigger05()),
			req("environment", ref05()),
			opt("testSuite", testSuite05()),
		)},
		{"testsuiterun.started", "0.3.0", obj(
			opt("trigger", trigger05()),
			req("environment", ref05()),
			opt("testSuite", testSuite05()),
		)},

		{"ticket.closed", "0.2.0", ticket05([]string{"uri", "resolution"},
			opt("resolution", nonEmpty().suggest("completed", "withdrawn", "duplicate")),
			opt("updatedBy", str()),
		)},
		{"ticket.created", "0.2.0", ticket05([]string{"summary", "creator", "uri"})},
		{"ticket.updated", "0.2.0", ticket05([]string{"uri"}, opt("updatedBy", str()))},
	})
	// The v0.5.1 ticket.closed schema (only it) still defines subject.type.
	s.events["ticket.closed"].subjectType = nonEmpty().is("ticket")
	// The schemas of the test events give context.source and subject.source
	// no format, and subject.source no minLength.
	for _, n := range []string{
		"testcaserun.finished", "testcaserun.queued", "testcaserun.skipped", "testcaserun.started",
		"testoutput.published", "testsuiterun.finished", "testsuiterun.queued", "testsuiterun.started",
	} {
		s.events[n].plainSources = true
	}
	return s.finish()
}()
