package cdevents

// The draft approval events of the unreleased spec (main branch, spec
// version 0.6.0-draft): schemas/approval{created,updated,closed}.json and
// their links. Only these events are accepted with 0.6.0-draft; the draft
// may still change, and so will this table (TestTableMatchesSchemas compares
// it with the draft schemas of the corpus).

// domainID is links/domainid of the draft: a canonical CDEvents domain ID
// URN for a resource in a system that does not emit CDEvents.
func domainID() *schema {
	return str().as(fmtURIRef).match(`^cdevents:v0:[^:]*:[^:]*:[^:]*:([^:/]([^:]*[^:/])?)?:[^:]+:.+$`)
}

// linksDraft is the draft's embeddedlinksarray: a link end is a contextId
// or a domainId.
var linksDraft = &schema{kind: kindLinks, links: map[string]*schema{
	"END": obj(
		req("linkType", str().is("END")),
		opt("from", openObj(opt("contextId", nonEmpty()), opt("domainId", str().as(fmtURIRef))).atLeastOne("contextId", "domainId")),
		opt("tags", openObj()),
	),
	"PATH": obj(
		req("linkType", str().is("PATH")),
		req("from", openObj(opt("contextId", nonEmpty()), opt("domainId", str().as(fmtURIRef))).atLeastOne("contextId", "domainId")),
		opt("tags", openObj()),
	),
	"RELATION": obj(
		req("linkType", str().is("RELATION")),
		req("linkKind", nonEmpty()),
		req("target", openObj(opt("contextId", nonEmpty()), opt("domainId", domainID())).atLeastOne("contextId", "domainId")),
		opt("tags", openObj()),
	),
}}

func approval(extra ...prop) *schema {
	return obj(append([]prop{
		req("approvalDetailsUrl", nonEmpty()),
		req("resourceTargetUrl", nonEmpty()),
	}, extra...)...)
}

func decision() *schema {
	return str().is("escalated", "delegate", "deferred", "requestChanges", "approved", "rejected")
}

var specDraft = newSpec(&spec{
	name:     "0.6.0-draft",
	release:  "0.6.0-draft",
	field:    "specversion",
	accepts:  func(v string) bool { return v == "0.6.0-draft" },
	envelope: envelope05(linksDraft),
}, []def{
	{"approval.created", "0.1.0", approval(req("requestor", nonEmpty().as(fmtURI)))},
	{"approval.updated", "0.1.0", approval(
		req("responder", str().as(fmtURI)),
		req("decision", decision()),
	)},
	{"approval.closed", "0.1.0", approval(
		req("responder", str().as(fmtURI)),
		req("decision", decision()),
		req("status", str().is("approved", "rejected", "cancelled", "expired")),
	)},
}).finish()
