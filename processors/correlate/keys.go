package correlate

import (
	"strconv"
	"strings"
)

// Key is a correlation key: what a fact is about, as "<kind>:<value>".
//
// Link keys tie facts together; a change record is derived by walking
// them (see the package doc):
//
//	commit:<repository>@<sha>         a commit of a repository
//	change:<repository>#<number>      a pull or merge request
//	ticket:<KEY>                      a change ticket (key in upper case)
//	run:<repository>#<run_id>         a pipeline run
//	artifact:sha256:<hex>             an artifact by digest
//	artifact:pkg:<purl>               an artifact by package URL
//	exception:<id>                    a control exception
//	deployment:<env>/<service>/<id>   the facts of one deployment (started and
//	                                  finished), by deployment_id or run
//	deploy:<env>/<service>/<target>   the deployments of one target (digest,
//	                                  purl or repository@commit) to one
//	                                  service and environment
//
// Attribute keys label a fact for queries; only exceptions are filed
// under them (an exception may be scoped to a whole service):
//
//	env:<environment>   service:<service>   repo:<repository>
//
// A repository never contains '#' or '@', so the first of them after the
// prefix ends the repository in commit, change and run keys (a run id may
// itself contain '/', '#' or '@').
type Key string

// Kind is the part of the key before the first ':'.
func (k Key) Kind() string {
	s, _, _ := strings.Cut(string(k), ":")
	return s
}

// Value is the part of the key after the first ':'.
func (k Key) Value() string {
	_, v, _ := strings.Cut(string(k), ":")
	return v
}

// Key kinds.
const (
	KeyCommit     = "commit"
	KeyChange     = "change"
	KeyTicket     = "ticket"
	KeyRun        = "run"
	KeyArtifact   = "artifact"
	KeyException  = "exception"
	KeyDeployment = "deployment"
	KeyDeploy     = "deploy"
	KeyEnv        = "env"
	KeyService    = "service"
	KeyRepo       = "repo"
)

// CommitKey is commit:<repository>@<sha>.
func CommitKey(repo, sha string) Key { return Key(KeyCommit + ":" + repo + "@" + sha) }

// ChangeKey is change:<repository>#<number>.
func ChangeKey(repo string, number int64) Key {
	return Key(KeyChange + ":" + repo + "#" + strconv.FormatInt(number, 10))
}

// TicketKey is ticket:<KEY>.
func TicketKey(key string) Key { return Key(KeyTicket + ":" + key) }

// RunKey is run:<repository>#<run_id>.
func RunKey(repo, runID string) Key { return Key(KeyRun + ":" + repo + "#" + runID) }

// ArtifactKey is artifact:<digest> (sha256:<hex>) or artifact:<purl>.
func ArtifactKey(digestOrPurl string) Key { return Key(KeyArtifact + ":" + digestOrPurl) }

// ExceptionKey is exception:<id>.
func ExceptionKey(id string) Key { return Key(KeyException + ":" + id) }

// EnvKey, ServiceKey and RepoKey are attribute keys.
func EnvKey(env string) Key       { return Key(KeyEnv + ":" + env) }
func ServiceKey(s string) Key     { return Key(KeyService + ":" + s) }
func RepoKey(repo string) Key     { return Key(KeyRepo + ":" + repo) }
func deployKey(target string) Key { return Key(KeyDeploy + ":" + target) }

// filed reports whether a fact of kind k is filed (indexed, and stored in
// the key's KV entry) under key. Attribute keys hold exceptions only.
func filed(key Key, k Kind) bool {
	switch key.Kind() {
	case KeyEnv, KeyService, KeyRepo:
		return k == KindException
	}
	return true
}
