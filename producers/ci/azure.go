package ci

import (
	"net/url"
	"strings"
)

// azurePipelines reads Azure Pipelines' predefined variables (exposed to
// scripts upper-cased with '.' replaced by '_'):
// https://learn.microsoft.com/en-us/azure/devops/pipelines/build/variables
func azurePipelines(e env) Info {
	info := Info{
		System:     AzurePipelines,
		Repository: NormalizeRepository(e.get("BUILD_REPOSITORY_URI")),
		Commit:     e.get("BUILD_SOURCEVERSION"),
		RunID:      e.get("BUILD_BUILDID"),
		Pipeline:   e.get("BUILD_DEFINITIONNAME"),
		// The e-mail identifies the person; the display name may not.
		Actor: e.first("BUILD_REQUESTEDFOREMAIL", "BUILD_REQUESTEDFOR"),
		Event: e.get("BUILD_REASON"),
		// PULLREQUESTNUMBER is set for GitHub repositories; for Azure Repos
		// the PULLREQUESTID is the pull request's number.
		PullRequest: digits(e.first("SYSTEM_PULLREQUEST_PULLREQUESTNUMBER", "SYSTEM_PULLREQUEST_PULLREQUESTID")),
	}
	// BUILD_SOURCEBRANCHNAME is only the last path segment ("feature/x"
	// gives "x"), so it is a last resort.
	switch src := e.get("BUILD_SOURCEBRANCH"); {
	case e.get("SYSTEM_PULLREQUEST_SOURCEBRANCH") != "":
		info.Branch = branchFromRef(e.get("SYSTEM_PULLREQUEST_SOURCEBRANCH"))
	case src != "":
		info.Branch = branchFromRef(src)
	default:
		info.Branch = e.get("BUILD_SOURCEBRANCHNAME")
	}
	collection, project := e.get("SYSTEM_COLLECTIONURI"), e.get("SYSTEM_TEAMPROJECT")
	if collection != "" && project != "" && info.RunID != "" {
		info.RunURL = strings.TrimSuffix(collection, "/") + "/" + url.PathEscape(project) +
			"/_build/results?buildId=" + url.QueryEscape(info.RunID)
	}
	return info
}
