package jira

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/evidencepipeline/evidence/producers/webhook"
)

// links is what a ticket says it covers (the catalog's links object).
type links struct {
	Repositories []string    `json:"repositories,omitempty"`
	Commits      []string    `json:"commits,omitempty"`
	Changes      []changeRef `json:"changes,omitempty"`
}

type changeRef struct {
	Repository string `json:"repository"`
	Number     int64  `json:"number"`
	URL        string `json:"url,omitempty"`
}

// The catalog's limits on links.
const (
	maxRepositories = 100
	maxCommits      = 1000
	maxChanges      = 100
)

// parseLinks reads repositories, merge or pull requests and commits from
// free text: web addresses of repositories
// (https://gitlab.example.com/group/project), of merge requests
// (.../-/merge_requests/7) and pull requests (.../pull/42), of commits
// (.../commit/<sha>), and full commit SHAs. Anything else is skipped. It
// returns nil when nothing was found.
func parseLinks(texts ...string) *links {
	l := &links{}
	seen := map[string]bool{}
	addRepo := func(r string) {
		if r != "" && !seen["r "+r] && len(l.Repositories) < maxRepositories {
			seen["r "+r] = true
			l.Repositories = append(l.Repositories, r)
		}
	}
	addCommit := func(c string) {
		if !seen["c "+c] && len(l.Commits) < maxCommits {
			seen["c "+c] = true
			l.Commits = append(l.Commits, c)
		}
	}
	for _, text := range texts {
		for _, tok := range strings.FieldsFunc(text, func(r rune) bool {
			return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == ',' || r == ';' || r == '|'
		}) {
			tok = strings.Trim(tok, `<>()[]{}"'`)
			if c := strings.ToLower(tok); (len(c) == 40 || len(c) == 64) && webhook.IsCommitSHA(c) {
				addCommit(c)
				continue
			}
			u, err := url.Parse(tok)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				continue
			}
			path := strings.TrimSuffix(u.Path, "/")
			repoPart, rest := path, ""
			for _, sep := range []string{"/-/", "/pull/", "/commit/", "/commits/", "/tree/", "/blob/"} {
				if i := strings.Index(path, sep); i >= 0 && i < len(repoPart) {
					repoPart, rest = path[:i], path[i:]
				}
			}
			repo, err := webhook.Repository("links", u.Scheme+"://"+u.Host+repoPart)
			if err != nil {
				continue
			}
			rest = strings.TrimPrefix(rest, "/-")
			segs := strings.Split(strings.Trim(rest, "/"), "/")
			switch {
			case len(segs) >= 2 && (segs[0] == "merge_requests" || segs[0] == "pull"):
				n, err := strconv.ParseInt(segs[1], 10, 64)
				if err != nil || n < 1 {
					addRepo(repo)
					continue
				}
				addRepo(repo)
				key := "m " + repo + "#" + segs[1]
				if !seen[key] && len(l.Changes) < maxChanges {
					seen[key] = true
					l.Changes = append(l.Changes, changeRef{Repository: repo, Number: n, URL: webhook.WebURL(tok)})
				}
			case len(segs) >= 2 && (segs[0] == "commit" || segs[0] == "commits"):
				if c := strings.ToLower(segs[1]); webhook.IsCommitSHA(c) {
					addCommit(c)
				}
				addRepo(repo)
			default:
				addRepo(repo)
			}
		}
	}
	if len(l.Repositories) == 0 && len(l.Commits) == 0 && len(l.Changes) == 0 {
		return nil
	}
	return l
}
