package cdevents

// CDEvents 0.4: the official v0.4.1 schemas are not available here, so this
// table is narrower than the 0.5 one and never stricter than the spec:
//
//   - the event versions of every v0.4.1 type (as the official SDKs list
//     them for spec 0.4.1: cdevents/sdk-rust, module spec_0_4_1);
//   - the envelope: context.version (0.4 names the spec version "version";
//     0.5 renamed it "specversion"), id, source, type, timestamp, the
//     optional schemaUri, chainId and links; subject.id and subject.content;
//   - for the types below that carry a content schema, the content members
//     as the official SDK code generated from the v0.4.1 schemas defines
//     them: required members, their JSON types, non-empty strings and
//     closed enums. Other types get the envelope checks only.
//
// Unknown members are never rejected in 0.4 (the 0.4 schemas do close their
// objects, but without them at hand a missing member here must not refuse a
// valid event), enums are checked only where listed, and subject.type (which
// 0.4 has on every subject) is checked to be a non-empty string when present.
// docs/cdevents.md lists what is checked for each type.

func envelope04(e *event) *schema {
	return openObj(
		req("context", openObj(
			req("version", nonEmpty()),
			req("id", nonEmpty()),
			req("source", nonEmpty().as(fmtURIRef)),
			req("type", &schema{kind: kindString, eventType: true}),
			req("timestamp", str().as(fmtDateTime)),
			opt("schemaUri", nonEmpty().as(fmtURI)),
			opt("chainId", nonEmpty()),
			opt("links", arr(openObj())),
		)),
		req("subject", openObj(
			req("id", nonEmpty()),
			opt("source", nonEmpty().as(fmtURIRef)),
			opt("type", nonEmpty()),
			req("content", e.contentSchema()),
		)),
		opt("customData", &schema{kind: kindObjectOrString}),
		opt("customDataContentType", str()),
	)
}

func ref04() *schema {
	return openObj(req("id", nonEmpty()), opt("source", str().as(fmtURIRef)))
}

func ticket04(required []string, extra ...prop) *schema {
	props := []prop{
		opt("assignees", arr(str())),
		opt("creator", nonEmpty()),
		opt("group", str()),
		opt("labels", arr(str())),
		opt("milestone", str()),
		opt("priority", str()),
		opt("summary", str()),
		opt("ticketType", str()),
		opt("uri", str().as(fmtURIRef)),
	}
	props = append(props, extra...)
	for i := range props {
		for _, r := range required {
			if props[i].name == r {
				props[i].required = true
			}
		}
	}
	return openObj(props...)
}

var specV04 = newSpec(&spec{
	name:     "0.4",
	release:  "0.4.1",
	field:    "version",
	accepts:  minorOf("0.4"),
	envelope: envelope04,
}, []def{
	{"artifact.deleted", "0.1.0", nil},
	{"artifact.downloaded", "0.1.0", openObj(opt("user", nonEmpty()))},
	{"artifact.packaged", "0.2.0", openObj(
		req("change", ref04()),
		opt("sbom", openObj(req("uri", str().as(fmtURIRef)))),
	)},
	{"artifact.published", "0.2.0", openObj(
		opt("sbom", openObj(req("uri", str().as(fmtURIRef)))),
		opt("user", nonEmpty()),
	)},
	{"artifact.signed", "0.2.0", openObj(req("signature", nonEmpty()))},

	{"branch.created", "0.2.0", nil},
	{"branch.deleted", "0.2.0", nil},

	{"build.finished", "0.2.0", nil},
	{"build.queued", "0.2.0", nil},
	{"build.started", "0.2.0", nil},

	{"change.abandoned", "0.2.0", nil},
	{"change.created", "0.3.0", openObj(opt("description", nonEmpty()), opt("repository", ref04()))},
	{"change.merged", "0.2.0", nil},
	{"change.reviewed", "0.2.0", nil},
	{"change.updated", "0.2.0", nil},

	{"environment.created", "0.2.0", nil},
	{"environment.deleted", "0.2.0", nil},
	{"environment.modified", "0.2.0", nil},

	{"incident.detected", "0.2.0", nil},
	{"incident.reported", "0.2.0", openObj(
		opt("artifactId", nonEmpty()),
		opt("description", str()),
		req("environment", ref04()),
		opt("service", ref04()),
		req("ticketURI", str().as(fmtURI)),
	)},
	{"incident.resolved", "0.2.0", nil},

	{"pipelinerun.finished", "0.2.0", nil},
	{"pipelinerun.queued", "0.2.0", nil},
	{"pipelinerun.started", "0.2.0", openObj(req("pipelineName", str()), req("url", str()))},

	{"repository.created", "0.2.0", nil},
	{"repository.deleted", "0.2.0", nil},
	{"repository.modified", "0.2.0", nil},

	{"service.deployed", "0.2.0", nil},
	{"service.published", "0.2.0", nil},
	{"service.removed", "0.2.0", nil},
	{"service.rolledback", "0.2.0", openObj(req("artifactId", nonEmpty()), req("environment", ref04()))},
	{"service.upgraded", "0.2.0", nil},

	{"taskrun.finished", "0.2.0", openObj(
		opt("errors", str()),
		opt("outcome", str()),
		opt("pipelineRun", ref04()),
		opt("taskName", str()),
		opt("url", str()),
	)},
	{"taskrun.started", "0.2.0", nil},

	{"testcaserun.finished", "0.2.0", nil},
	{"testcaserun.queued", "0.2.0", nil},
	{"testcaserun.skipped", "0.1.0", openObj(
		opt("environment", ref04()),
		opt("reason", str()),
		opt("testCase", openObj(
			req("id", nonEmpty()),
			opt("name", str()),
			opt("type", str().is("performance", "functional", "unit", "security", "compliance", "integration", "e2e", "other")),
			opt("uri", str().as(fmtURI)),
			opt("version", str()),
		)),
		opt("testSuiteRun", openObj(req("id", nonEmpty()), opt("source", str()))),
	)},
	{"testcaserun.started", "0.2.0", nil},
	{"testoutput.published", "0.2.0", nil},
	{"testsuiterun.finished", "0.2.0", nil},
	{"testsuiterun.queued", "0.2.0", nil},
	{"testsuiterun.started", "0.2.0", nil},

	{"ticket.closed", "0.1.0", ticket04([]string{"resolution", "uri"},
		opt("resolution", str()),
		opt("updatedBy", str()),
	)},
	{"ticket.created", "0.1.0", ticket04([]string{"creator", "summary", "uri"})},
	{"ticket.updated", "0.1.0", ticket04([]string{"uri"}, opt("updatedBy", str()))},
}).finish()
