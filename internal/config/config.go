// Package config is evidenced's configuration: a plain struct with
// documented fields, filled from flags, each flag with an environment
// variable (the flag wins), then defaults, then Validate with messages that
// name the bad flag and its variable.
package config

import (
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/evidencepipeline/evidence/internal/jobtoken"
	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/producers/jira"
	"github.com/evidencepipeline/evidence/producers/ticketkeys"
)

// Config is evidenced's configuration.
type Config struct {
	// HTTPAddr is where the HTTP API listens.
	HTTPAddr string
	// DataDir holds the embedded NATS store (and other local state).
	DataDir string
	// NATSURL is an external NATS server; empty runs an embedded one.
	NATSURL string
	// NATSListen, with the embedded server, is where it accepts NATS
	// clients (for producers that publish directly); empty: in-process
	// only.
	NATSListen string
	// ClickHouseURL is clickhouse://[user[:password]@]host[:port]/database.
	ClickHouseURL string
	// TokensFile is the bearer-token file; without it the API is open and
	// must listen on loopback.
	TokensFile string
	// OIDCIssuers are the issuers whose CI job tokens (OIDC ID tokens of
	// GitHub Actions or GitLab CI) are accepted as producer credentials,
	// each with the audience its tokens must name (--oidc-issuer
	// URL=AUDIENCE, repeatable). They need TokensFile.
	OIDCIssuers []jobtoken.Issuer
	// MaxBodyBytes limits request bodies.
	MaxBodyBytes int64
	// StreamMaxAge bounds how long events stay in JetStream.
	StreamMaxAge time.Duration
	// DedupeWindow is JetStream's duplicate window for retried posts.
	DedupeWindow time.Duration
	// StreamReplicas is the least number of replicas of the streams
	// (more needs a NATS cluster); existing streams are never lowered.
	StreamReplicas int
	// KVReplicas is the least number of replicas of the key-value
	// buckets; existing buckets are never lowered.
	KVReplicas int
	// Archive runs the archive stage in this process.
	Archive bool
	// ArchiveLeaseTTL: the archive's writer that has not renewed its
	// lease for this long is replaced by a standby replica.
	ArchiveLeaseTTL time.Duration
	// Correlate runs the correlation stage (every replica may) and serves
	// change records and the gate from its live state.
	Correlate bool
	// Access runs the access stage (issue 17): access events -> access
	// records (KV EVIDENCE_ACCESS, ClickHouse access_grants and
	// protection_settings) -> AC-1..AC-4 results; one replica at a time.
	Access bool
	// ProductionRepos are repositories (host/owner/name) judged by the AC
	// controls besides those deployed to a production environment.
	ProductionRepos []string
	// AccessRequiredReviews: the least approving reviews a protected
	// branch must require (AC-1).
	AccessRequiredReviews int
	// AccessReviewDeadline: how long after a quarter's end its access
	// review may be signed off (AC-4 pending) before it fails.
	AccessReviewDeadline time.Duration
	// AccessInterval: how often every access record is written and judged
	// again (time passes; deployments make repositories production).
	AccessInterval time.Duration
	// CorrelateCacheFacts bounds the correlation state's cache of decoded
	// KV entries, in facts (0: no cache).
	CorrelateCacheFacts int
	// CorrelateSinkCache bounds, in bytes of records, the rows the
	// ClickHouse sink keeps of what it wrote last, so that retiring a
	// record written recently does not read it back (chsink.KeepRecent).
	CorrelateSinkCache int64
	// PoliciesDir adds custom controls (*.rego) to the built-in pack.
	PoliciesDir string
	// Demo sends a continuous stream of demo evidence (internal/demo)
	// through the HTTP API, seeded by DemoSeed.
	Demo     bool
	DemoSeed int
	// The built-in controls' parameters (evaluate.Params; docs/gate.md).
	ProductionEnvironments []string
	EmergencyWindow        time.Duration
	ScanSeverityThreshold  string
	RequiredScanCategories []string // empty: none required
	PipelineIdentities     []string // empty: none
	PipelineSystems        []string // empty: none
	ManualTriggerByAuthor  string   // allow or fail
	ProtectedBranches      []string
	PendingDeadline        time.Duration
	// VerdictDelay: how long after a production deployment's arrival in
	// the event stream evidence still counts for its verdict (judged as
	// of the deployment), for evidence still in transit.
	VerdictDelay time.Duration
	// ArchiveBatchSize and ArchiveFlushInterval tune the archive.
	ArchiveBatchSize     int
	ArchiveFlushInterval time.Duration
	// ShutdownTimeout bounds the drain at SIGTERM.
	ShutdownTimeout time.Duration
	// MemoryLimit is the Go runtime's soft memory limit
	// (runtime/debug.SetMemoryLimit) in bytes: the garbage collector
	// works harder as the heap nears it, so that RSS stays near the limit
	// instead of twice the live heap. 0: none; MemoryLimitAuto: 90% of
	// the cgroup's memory limit when there is one, unless GOMEMLIMIT is
	// set (then the runtime's).
	MemoryLimit int64
	// PprofAddr, when set, serves net/http/pprof on its own listener:
	// loopback only, unless a tokens file is set (then an admin token is
	// required).
	PprofAddr string
	// SigningKey is the ed25519 key (PKCS#8 PEM, mode 0600) that signs the
	// archive's checkpoints; empty: DataDir/evidence-signing.key, made at
	// first start.
	SigningKey string
	// CheckpointEvery and CheckpointInterval: a checkpoint every so many
	// archived events, or after so long when events were archived since
	// the last one.
	CheckpointEvery    int
	CheckpointInterval time.Duration
	// LogLevel is debug, info, warn or error; LogFormat text or json.
	LogLevel  string
	LogFormat string
	// Webhook secrets; an empty one refuses that webhook's deliveries.
	GitHubSecret     string
	GitLabToken      string
	JiraSecret       string
	ServiceNowSecret string
	// TicketPatterns are the regular expressions that find change-ticket
	// keys in PR titles and branch names (empty: Jira keys and ServiceNow
	// CHG numbers).
	TicketPatterns []string
	// Jira: which issue types are change tickets, which statuses approve
	// or reject, where the change type and the links are, the site URL.
	JiraChangeTypes      []string
	JiraApprovedStatuses []string
	JiraRejectedStatuses []string
	JiraTypeField        string
	JiraLinksField       string
	JiraBaseURL          string
}

// Flag describes one setting: its flag, environment variable and default.
type Flag struct {
	Name, Env, Default, Usage string
	// Secret values are not shown in usage or logs.
	Secret bool
	// Bool flags may be given alone (--demo), meaning true.
	Bool bool
	// Repeat flags may be given more than once, each adding a value; the
	// environment variable holds a comma-separated list, which the first
	// flag replaces.
	Repeat bool
	set    func(string) error
}

func (c *Config) flags() []Flag {
	str := func(p *string) func(string) error { return func(v string) error { *p = v; return nil } }
	dur := func(p *time.Duration) func(string) error {
		return func(v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("not a duration (like 30s, 10m, 720h): %q", v)
			}
			*p = d
			return nil
		}
	}
	num := func(p *int64) func(string) error {
		return func(v string) error {
			n, err := parseSize(v)
			*p = n
			return err
		}
	}
	inum := func(p *int) func(string) error {
		return func(v string) error {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("not an integer: %q", v)
			}
			*p = n
			return nil
		}
	}
	list := func(p *[]string) func(string) error {
		return func(v string) error {
			*p = nil
			for _, part := range strings.Split(v, ",") {
				if part = strings.TrimSpace(part); part != "" {
					*p = append(*p, part)
				}
			}
			return nil
		}
	}
	boolean := func(p *bool) func(string) error {
		return func(v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("not a boolean (true or false): %q", v)
			}
			*p = b
			return nil
		}
	}
	return []Flag{
		{Name: "http-addr", Env: "EVIDENCE_HTTP_ADDR", Default: "127.0.0.1:8080", Usage: "address of the HTTP API", set: str(&c.HTTPAddr)},
		{Name: "data-dir", Env: "EVIDENCE_DATA_DIR", Default: "./data", Usage: "directory of local state (the embedded NATS store)", set: str(&c.DataDir)},
		{Name: "nats-url", Env: "EVIDENCE_NATS_URL", Default: "", Usage: "external NATS server URL; empty runs an embedded NATS with JetStream", set: str(&c.NATSURL)},
		{Name: "nats-listen", Env: "EVIDENCE_NATS_LISTEN", Default: "", Usage: "with the embedded NATS: host:port to accept NATS clients on, with the users generated in DATA_DIR/nats-users (evidenced, producer); empty: in-process only", set: str(&c.NATSListen)},
		{Name: "clickhouse-url", Env: "EVIDENCE_CLICKHOUSE_URL", Default: "clickhouse://127.0.0.1:9000/evidence", Usage: "ClickHouse, native protocol: clickhouse://[user[:password]@]host[:port]/database", Secret: true, set: str(&c.ClickHouseURL)},
		{Name: "tokens-file", Env: "EVIDENCE_TOKENS_FILE", Default: "", Usage: "bearer tokens (ROLE SHA256 NAME per line); without it the API is open and listens on loopback only", set: str(&c.TokensFile)},
		{Name: "oidc-issuer", Env: "EVIDENCE_OIDC_ISSUERS", Repeat: true, Usage: "ISSUER_URL=AUDIENCE: accept CI job tokens (OIDC ID tokens) of this issuer naming this audience as producer credentials for their own run's evidence, e.g. https://token.actions.githubusercontent.com=https://evidence.example.com or https://gitlab.com=https://evidence.example.com; repeatable (the variable: comma-separated); needs --tokens-file", set: issuers(&c.OIDCIssuers)},
		{Name: "max-body-bytes", Env: "EVIDENCE_MAX_BODY_BYTES", Default: "10MiB", Usage: "largest request body (bytes, or with KiB/MiB)", set: num(&c.MaxBodyBytes)},
		{Name: "stream-max-age", Env: "EVIDENCE_STREAM_MAX_AGE", Default: "720h", Usage: "how long events stay in JetStream (0: forever); the archive must catch up within it", set: dur(&c.StreamMaxAge)},
		{Name: "dedupe-window", Env: "EVIDENCE_DEDUPE_WINDOW", Default: "10m", Usage: "window in which a re-posted event (same source and id) is stored once", set: dur(&c.DedupeWindow)},
		{Name: "stream-replicas", Env: "EVIDENCE_STREAM_REPLICAS", Default: "1", Usage: "least number of replicas of the JetStream streams (1 to 5; above 1 needs a NATS cluster); an existing stream is never lowered", set: inum(&c.StreamReplicas)},
		{Name: "kv-replicas", Env: "EVIDENCE_KV_REPLICAS", Default: "1", Usage: "least number of replicas of the JetStream key-value buckets (1 to 5; above 1 needs a NATS cluster); an existing bucket is never lowered", set: inum(&c.KVReplicas)},
		{Name: "archive", Env: "EVIDENCE_ARCHIVE", Default: "true", Usage: "run the archive (events -> ClickHouse) and sign its checkpoints; with several replicas one writes at a time (a lease), the others stand by", set: boolean(&c.Archive)},
		{Name: "archive-lease-ttl", Env: "EVIDENCE_ARCHIVE_LEASE_TTL", Default: "10s", Usage: "with several --archive replicas: one writes, the others take over within this time after it dies (at once when it stops)", set: dur(&c.ArchiveLeaseTTL)},
		{Name: "correlate", Env: "EVIDENCE_CORRELATE", Default: "true", Usage: "run the correlation stage (events -> change records; replicas share the work) and serve /v1/changes", set: boolean(&c.Correlate)},
		{Name: "access", Env: "EVIDENCE_ACCESS", Default: "true", Usage: "run the access stage (access events -> access records in KV and ClickHouse -> AC-1..AC-4 results); with several replicas one runs at a time (a lease), the others stand by", set: boolean(&c.Access)},
		{Name: "production-repos", Env: "EVIDENCE_PRODUCTION_REPOS", Default: "", Usage: "comma-separated repositories (host/owner/name) the access controls judge besides those deployed to a production environment", set: list(&c.ProductionRepos)},
		{Name: "access-required-reviews", Env: "EVIDENCE_ACCESS_REQUIRED_REVIEWS", Default: "1", Usage: "least approving reviews a protected branch's rule must require (AC-1)", set: inum(&c.AccessRequiredReviews)},
		{Name: "access-review-deadline", Env: "EVIDENCE_ACCESS_REVIEW_DEADLINE", Default: "720h", Usage: "how long after a quarter's end its access list may still be signed off (AC-4 pending) before AC-4 fails", set: dur(&c.AccessReviewDeadline)},
		{Name: "access-interval", Env: "EVIDENCE_ACCESS_INTERVAL", Default: "1m", Usage: "how often every access record is written to ClickHouse and judged again (what changed is judged at once)", set: dur(&c.AccessInterval)},
		{Name: "correlate-cache-facts", Env: "EVIDENCE_CORRELATE_CACHE_FACTS", Default: "200000", Usage: "most facts the correlation stage keeps decoded in memory (the KV entries it read last; the rest are read again); 0: none", set: inum(&c.CorrelateCacheFacts)},
		{Name: "demo", Env: "EVIDENCE_DEMO", Default: "false", Usage: "send a continuous stream of demo evidence (sources https://demo.evidence.invalid/...) for the live page", Bool: true, set: boolean(&c.Demo)},
		{Name: "correlate-sink-cache", Env: "EVIDENCE_CORRELATE_SINK_CACHE", Default: "32MiB", Usage: "bytes of change records the ClickHouse sink keeps of what it wrote last, so that retiring a record it wrote recently does not read it back from changes; 0: none", set: num(&c.CorrelateSinkCache)},
		{Name: "demo-seed", Env: "EVIDENCE_DEMO_SEED", Default: "1", Usage: "with --demo: the seed that decides the demo's changes (the same seed, the same story)", set: inum(&c.DemoSeed)},
		{Name: "policies-dir", Env: "EVIDENCE_POLICIES_DIR", Usage: "directory of custom controls (*.rego) added to the built-in CM-1..CM-8 pack", set: str(&c.PoliciesDir)},
		{Name: "production-environments", Env: "EVIDENCE_PRODUCTION_ENVIRONMENTS", Default: "production,prod", Usage: "comma-separated environments the controls apply to (case-insensitive)", set: list(&c.ProductionEnvironments)},
		{Name: "emergency-window", Env: "EVIDENCE_EMERGENCY_WINDOW", Default: "24h", Usage: "how long after the deployment an emergency change's ticket may be approved (CM-1)", set: dur(&c.EmergencyWindow)},
		{Name: "scan-severity-threshold", Env: "EVIDENCE_SCAN_SEVERITY_THRESHOLD", Default: "high", Usage: "an open finding at or above it fails CM-5: low, medium, high or critical", set: str(&c.ScanSeverityThreshold)},
		{Name: "required-scan-categories", Env: "EVIDENCE_REQUIRED_SCAN_CATEGORIES", Default: "sast,dependency", Usage: "comma-separated scan categories that must have run on the deployed commit (CM-5); none for none", set: list(&c.RequiredScanCategories)},
		{Name: "pipeline-identities", Env: "EVIDENCE_PIPELINE_IDENTITIES", Default: "github-actions[bot]", Usage: "comma-separated logins of the automated builders and deployers (CM-3, CM-6, CM-7); none for none", set: list(&c.PipelineIdentities)},
		{Name: "pipeline-systems", Env: "EVIDENCE_PIPELINE_SYSTEMS", Default: "github-actions,gitlab-ci,jenkins,circleci,azure-pipelines,buildkite,tekton", Usage: "comma-separated CI systems whose pipelines deploy as themselves: a deployment by a service identity of a run of one of them is automated (CM-3) and authorized (CM-7); none for none", set: list(&c.PipelineSystems)},
		{Name: "manual-trigger-by-author", Env: "EVIDENCE_MANUAL_TRIGGER_BY_AUTHOR", Default: "allow", Usage: "when the change's author started the deploying pipeline run on demand (any trigger but push, schedule and pipeline, or none reported): allow (CM-3 passes and names it) or fail", set: str(&c.ManualTriggerByAuthor)},
		{Name: "protected-branches", Env: "EVIDENCE_PROTECTED_BRANCHES", Default: "main,master", Usage: "comma-separated branches changes must be merged into (CM-7)", set: list(&c.ProtectedBranches)},
		{Name: "pending-deadline", Env: "EVIDENCE_PENDING_DEADLINE", Default: "1h", Usage: "how long after a production deployment missing evidence may still arrive (pending), before the control fails", set: dur(&c.PendingDeadline)},
		{Name: "verdict-delay", Env: "EVIDENCE_VERDICT_DELAY", Default: "1m", Usage: "how long after a production deployment's arrival in the event stream evidence still counts for its verdict (judged as of the deployment; decided once the correlation has taken in everything that arrived by then), so that evidence sent before it and delivered after it counts; 0: only what arrived with it", set: dur(&c.VerdictDelay)},
		{Name: "archive-batch-size", Env: "EVIDENCE_ARCHIVE_BATCH_SIZE", Default: "10000", Usage: "most rows per ClickHouse insert", set: inum(&c.ArchiveBatchSize)},
		{Name: "archive-flush-interval", Env: "EVIDENCE_ARCHIVE_FLUSH_INTERVAL", Default: "200ms", Usage: "longest an event waits for its batch", set: dur(&c.ArchiveFlushInterval)},
		{Name: "signing-key", Env: "EVIDENCE_SIGNING_KEY", Usage: "ed25519 key signing the archive's checkpoints (PKCS#8 PEM, mode 0600; evidence keys new); empty: DATA_DIR/evidence-signing.key, made at first start", set: str(&c.SigningKey)},
		{Name: "checkpoint-every", Env: "EVIDENCE_CHECKPOINT_EVERY", Default: "10000", Usage: "sign the archive's chain every so many events", set: inum(&c.CheckpointEvery)},
		{Name: "checkpoint-interval", Env: "EVIDENCE_CHECKPOINT_INTERVAL", Default: "1m", Usage: "sign the archive's chain at least this often while events arrive", set: dur(&c.CheckpointInterval)},
		{Name: "shutdown-timeout", Env: "EVIDENCE_SHUTDOWN_TIMEOUT", Default: "30s", Usage: "how long SIGTERM waits for in-flight work", set: dur(&c.ShutdownTimeout)},
		{Name: "memory-limit", Env: "EVIDENCE_MEMORY_LIMIT", Default: "auto", Usage: "soft limit of the Go heap (bytes, or with KiB/MiB/GiB): the GC works harder near it, keeping RSS near the limit; auto: 90% of the container's (cgroup) memory limit, or GOMEMLIMIT when set, else none; 0: none", set: memLimit(&c.MemoryLimit)},
		{Name: "pprof-addr", Env: "EVIDENCE_PPROF_ADDR", Default: "", Usage: "host:port serving Go's profiler (net/http/pprof) on its own listener; empty: off; loopback only unless --tokens-file is set, which then requires an admin token", set: str(&c.PprofAddr)},
		{Name: "log-level", Env: "EVIDENCE_LOG_LEVEL", Default: "info", Usage: "debug, info, warn or error", set: str(&c.LogLevel)},
		{Name: "log-format", Env: "EVIDENCE_LOG_FORMAT", Default: "text", Usage: "text or json", set: str(&c.LogFormat)},
		{Name: "github-secret", Env: "EVIDENCE_GITHUB_SECRET", Usage: "GitHub webhook secret", Secret: true, set: str(&c.GitHubSecret)},
		{Name: "gitlab-token", Env: "EVIDENCE_GITLAB_TOKEN", Usage: "GitLab webhook secret token", Secret: true, set: str(&c.GitLabToken)},
		{Name: "jira-secret", Env: "EVIDENCE_JIRA_SECRET", Usage: "Jira webhook secret", Secret: true, set: str(&c.JiraSecret)},
		{Name: "servicenow-secret", Env: "EVIDENCE_SERVICENOW_SECRET", Usage: "ServiceNow webhook secret", Secret: true, set: str(&c.ServiceNowSecret)},
		{Name: "ticket-patterns", Env: "EVIDENCE_TICKET_PATTERNS", Usage: "comma-separated regular expressions finding ticket keys in PR titles and branches (default: Jira keys and CHG numbers)", set: list(&c.TicketPatterns)},
		{Name: "jira-change-types", Env: "EVIDENCE_JIRA_CHANGE_TYPES", Usage: "comma-separated Jira issue types that are change tickets (default: Change, Change Request)", set: list(&c.JiraChangeTypes)},
		{Name: "jira-approved-statuses", Env: "EVIDENCE_JIRA_APPROVED_STATUSES", Usage: "comma-separated Jira statuses that approve a change (default: Approved)", set: list(&c.JiraApprovedStatuses)},
		{Name: "jira-rejected-statuses", Env: "EVIDENCE_JIRA_REJECTED_STATUSES", Usage: "comma-separated Jira statuses that reject a change (default: Rejected, Declined)", set: list(&c.JiraRejectedStatuses)},
		{Name: "jira-type-field", Env: "EVIDENCE_JIRA_TYPE_FIELD", Usage: "Jira field holding the change type (normal/standard/emergency): labels (default) or a field id like customfield_10010", set: str(&c.JiraTypeField)},
		{Name: "jira-links-field", Env: "EVIDENCE_JIRA_LINKS_FIELD", Usage: "Jira field id listing the repositories, pull requests and commits a ticket covers", set: str(&c.JiraLinksField)},
		{Name: "jira-base-url", Env: "EVIDENCE_JIRA_BASE_URL", Usage: "Jira site URL (default: read from each issue's self link)", set: str(&c.JiraBaseURL)},
	}
}

// issuers is the setter of --oidc-issuer: "" empties the list, any other
// value adds its comma-separated issuers.
func issuers(p *[]jobtoken.Issuer) func(string) error {
	return func(v string) error {
		if strings.TrimSpace(v) == "" {
			*p = nil
			return nil
		}
		for part := range strings.SplitSeq(v, ",") {
			if strings.TrimSpace(part) == "" {
				continue
			}
			is, err := jobtoken.ParseIssuer(part)
			if err != nil {
				return err
			}
			for _, prev := range *p {
				if prev.URL == is.URL {
					return fmt.Errorf("issuer %s is given twice", is.URL)
				}
			}
			*p = append(*p, is)
		}
		return nil
	}
}

// FieldError is a bad setting, named by flag and environment variable.
type FieldError struct {
	Flag, Env string
	Err       error
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("--%s (%s): %v", e.Flag, e.Env, e.Err)
}

func (e *FieldError) Unwrap() error { return e.Err }

// Parse fills a Config from args and the environment (getenv), flag over
// variable over default.
func Parse(name string, args []string, getenv func(string) string) (*Config, *flag.FlagSet, error) {
	c := &Config{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	flags := c.flags()
	byName := map[string]*Flag{}
	for i := range flags {
		f := &flags[i]
		byName[f.Name] = f
		def := f.Default
		if f.Secret {
			def = ""
		}
		usage := f.Usage + " (env " + f.Env + ")"
		switch {
		case f.Bool:
			fs.BoolFunc(f.Name, usage, func(v string) error { return f.set(v) })
		case f.Repeat:
			given := false // the first flag replaces the variable's list
			fs.Func(f.Name, usage, func(v string) error {
				if !given {
					given = true
					_ = f.set("")
				}
				return f.set(v)
			})
		default:
			fs.Func(f.Name, usage, func(v string) error { return f.set(v) })
		}
		if def != "" {
			// Show the default in -help the flag package's way.
			fs.Lookup(f.Name).DefValue = def
		}
	}
	// Defaults, then the environment, then the flags.
	for _, f := range flags {
		if err := f.set(f.Default); err != nil && f.Default != "" {
			panic(fmt.Sprintf("default of --%s: %v", f.Name, err))
		}
	}
	for _, f := range flags {
		if v := getenv(f.Env); v != "" {
			if err := f.set(v); err != nil {
				return nil, fs, &FieldError{Flag: f.Name, Env: f.Env, Err: err}
			}
		}
	}
	if err := fs.Parse(args); err != nil {
		// The flag package names the flag; add the variable.
		for n, f := range byName {
			if strings.Contains(err.Error(), "-"+n+":") || strings.Contains(err.Error(), "-"+n+" ") {
				return nil, fs, &FieldError{Flag: n, Env: f.Env, Err: err}
			}
		}
		return nil, fs, err
	}
	if fs.NArg() > 0 {
		return nil, fs, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return c, fs, c.Validate()
}

// Validate checks every field and returns the first problem, naming the
// flag and its variable.
func (c *Config) Validate() error {
	bad := func(flag, env, format string, a ...any) error {
		return &FieldError{Flag: flag, Env: env, Err: fmt.Errorf(format, a...)}
	}
	host, port, err := net.SplitHostPort(c.HTTPAddr)
	if err != nil {
		return bad("http-addr", "EVIDENCE_HTTP_ADDR", "want host:port, got %q", c.HTTPAddr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return bad("http-addr", "EVIDENCE_HTTP_ADDR", "bad port %q", port)
	}
	if c.TokensFile == "" && !IsLoopback(host) {
		return bad("http-addr", "EVIDENCE_HTTP_ADDR",
			"%q is not a loopback address: without --tokens-file the API is open, so it listens on loopback only (127.0.0.1, ::1, localhost); give a tokens file to listen on %s", c.HTTPAddr, host)
	}
	if c.PprofAddr != "" {
		host, port, err := net.SplitHostPort(c.PprofAddr)
		if err != nil {
			return bad("pprof-addr", "EVIDENCE_PPROF_ADDR", "want host:port, got %q", c.PprofAddr)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			return bad("pprof-addr", "EVIDENCE_PPROF_ADDR", "bad port %q", port)
		}
		if c.TokensFile == "" && !IsLoopback(host) {
			return bad("pprof-addr", "EVIDENCE_PPROF_ADDR",
				"%q is not a loopback address: without --tokens-file the profiler is open, so it listens on loopback only (127.0.0.1, ::1, localhost); give a tokens file (an admin token is then required) to listen on %s", c.PprofAddr, host)
		}
	}
	if c.TokensFile != "" {
		if _, err := os.Stat(c.TokensFile); err != nil {
			return bad("tokens-file", "EVIDENCE_TOKENS_FILE", "%v", err)
		}
	}
	if len(c.OIDCIssuers) > 0 && c.TokensFile == "" {
		return bad("oidc-issuer", "EVIDENCE_OIDC_ISSUERS", "needs --tokens-file: without one the API is open (loopback only) and checks no token")
	}
	if c.PoliciesDir != "" {
		if fi, err := os.Stat(c.PoliciesDir); err != nil || !fi.IsDir() {
			return bad("policies-dir", "EVIDENCE_POLICIES_DIR", "%q is not a directory", c.PoliciesDir)
		}
	}
	if len(c.ProductionEnvironments) == 0 {
		return bad("production-environments", "EVIDENCE_PRODUCTION_ENVIRONMENTS", "give at least one environment")
	}
	if c.EmergencyWindow <= 0 {
		return bad("emergency-window", "EVIDENCE_EMERGENCY_WINDOW", "must be positive, got %s", c.EmergencyWindow)
	}
	if c.VerdictDelay < 0 {
		return bad("verdict-delay", "EVIDENCE_VERDICT_DELAY", "must not be negative, got %s", c.VerdictDelay)
	}
	if c.PendingDeadline <= 0 {
		return bad("pending-deadline", "EVIDENCE_PENDING_DEADLINE", "must be positive, got %s", c.PendingDeadline)
	}
	switch c.ScanSeverityThreshold {
	case "low", "medium", "high", "critical":
	default:
		return bad("scan-severity-threshold", "EVIDENCE_SCAN_SEVERITY_THRESHOLD", "%q: want low, medium, high or critical", c.ScanSeverityThreshold)
	}
	if len(c.ProtectedBranches) == 0 {
		return bad("protected-branches", "EVIDENCE_PROTECTED_BRANCHES", "give at least one branch")
	}
	if c.AccessRequiredReviews < 0 {
		return bad("access-required-reviews", "EVIDENCE_ACCESS_REQUIRED_REVIEWS", "must not be negative, got %d", c.AccessRequiredReviews)
	}
	if c.AccessReviewDeadline < 0 {
		return bad("access-review-deadline", "EVIDENCE_ACCESS_REVIEW_DEADLINE", "must not be negative, got %s", c.AccessReviewDeadline)
	}
	if c.AccessInterval <= 0 {
		return bad("access-interval", "EVIDENCE_ACCESS_INTERVAL", "must be positive, got %s", c.AccessInterval)
	}
	for i, r := range c.ProductionRepos {
		r = strings.ToLower(strings.TrimSpace(r))
		if strings.Count(r, "/") != 2 || strings.Contains(r, "//") || strings.HasPrefix(r, "/") || strings.HasSuffix(r, "/") {
			return bad("production-repos", "EVIDENCE_PRODUCTION_REPOS", "%q: want host/owner/name, e.g. github.com/acme/payments", c.ProductionRepos[i])
		}
		c.ProductionRepos[i] = r
	}
	c.RequiredScanCategories = noneIsEmpty(c.RequiredScanCategories)
	c.PipelineIdentities = noneIsEmpty(c.PipelineIdentities)
	c.PipelineSystems = noneIsEmpty(c.PipelineSystems)
	switch c.ManualTriggerByAuthor {
	case "allow", "fail":
	default:
		return bad("manual-trigger-by-author", "EVIDENCE_MANUAL_TRIGGER_BY_AUTHOR", "%q: want allow or fail", c.ManualTriggerByAuthor)
	}
	if c.NATSURL == "" && c.DataDir == "" {
		return bad("data-dir", "EVIDENCE_DATA_DIR", "required with the embedded NATS")
	}
	if c.NATSURL != "" {
		if !strings.Contains(c.NATSURL, "://") {
			return bad("nats-url", "EVIDENCE_NATS_URL", "want nats://host:port, got %q", c.NATSURL)
		}
		if c.NATSListen != "" {
			return bad("nats-listen", "EVIDENCE_NATS_LISTEN", "only applies to the embedded NATS, but --nats-url is set")
		}
	}
	if c.NATSListen != "" {
		if _, _, err := net.SplitHostPort(c.NATSListen); err != nil {
			return bad("nats-listen", "EVIDENCE_NATS_LISTEN", "want host:port, got %q", c.NATSListen)
		}
	}
	if _, err := store.ParseURL(c.ClickHouseURL); err != nil {
		return bad("clickhouse-url", "EVIDENCE_CLICKHOUSE_URL", "%v", err)
	}
	if c.MaxBodyBytes < 1024 {
		return bad("max-body-bytes", "EVIDENCE_MAX_BODY_BYTES", "at least 1KiB, got %d", c.MaxBodyBytes)
	}
	if c.StreamMaxAge < 0 {
		return bad("stream-max-age", "EVIDENCE_STREAM_MAX_AGE", "must not be negative")
	}
	if c.DedupeWindow <= 0 {
		return bad("dedupe-window", "EVIDENCE_DEDUPE_WINDOW", "must be positive")
	}
	if c.StreamMaxAge > 0 && c.DedupeWindow > c.StreamMaxAge {
		return bad("dedupe-window", "EVIDENCE_DEDUPE_WINDOW", "%s is longer than --stream-max-age %s", c.DedupeWindow, c.StreamMaxAge)
	}
	if c.ArchiveLeaseTTL < time.Second {
		return bad("archive-lease-ttl", "EVIDENCE_ARCHIVE_LEASE_TTL", "at least 1s, got %s", c.ArchiveLeaseTTL)
	}
	if c.StreamReplicas < 1 || c.StreamReplicas > 5 {
		return bad("stream-replicas", "EVIDENCE_STREAM_REPLICAS", "must be between 1 and 5 (JetStream's limit), got %d", c.StreamReplicas)
	}
	if c.KVReplicas < 1 || c.KVReplicas > 5 {
		return bad("kv-replicas", "EVIDENCE_KV_REPLICAS", "must be between 1 and 5 (JetStream's limit), got %d", c.KVReplicas)
	}
	if c.CorrelateCacheFacts < 0 {
		return bad("correlate-cache-facts", "EVIDENCE_CORRELATE_CACHE_FACTS", "must be 0 or more, got %d", c.CorrelateCacheFacts)
	}
	if c.ArchiveBatchSize < 1 || c.ArchiveBatchSize > 1_000_000 {
		return bad("archive-batch-size", "EVIDENCE_ARCHIVE_BATCH_SIZE", "must be between 1 and 1000000, got %d", c.ArchiveBatchSize)
	}
	if c.ArchiveFlushInterval <= 0 {
		return bad("archive-flush-interval", "EVIDENCE_ARCHIVE_FLUSH_INTERVAL", "must be positive")
	}
	if c.SigningKey != "" {
		if fi, err := os.Stat(c.SigningKey); err != nil {
			return bad("signing-key", "EVIDENCE_SIGNING_KEY", "%v (make one with: evidence keys new --out DIR)", err)
		} else if fi.IsDir() {
			return bad("signing-key", "EVIDENCE_SIGNING_KEY", "%q is a directory; give the key file (evidence-signing.key)", c.SigningKey)
		}
	}
	if c.CheckpointEvery < 1 {
		return bad("checkpoint-every", "EVIDENCE_CHECKPOINT_EVERY", "must be at least 1, got %d", c.CheckpointEvery)
	}
	if c.CheckpointInterval <= 0 {
		return bad("checkpoint-interval", "EVIDENCE_CHECKPOINT_INTERVAL", "must be positive")
	}
	if c.ShutdownTimeout <= 0 {
		return bad("shutdown-timeout", "EVIDENCE_SHUTDOWN_TIMEOUT", "must be positive")
	}
	if _, err := ticketkeys.New(c.TicketPatterns...); err != nil && len(c.TicketPatterns) > 0 {
		return bad("ticket-patterns", "EVIDENCE_TICKET_PATTERNS", "%v", err)
	}
	if err := c.JiraOptions().Validate(); err != nil {
		if strings.Contains(err.Error(), "BaseURL") {
			return bad("jira-base-url", "EVIDENCE_JIRA_BASE_URL", "%v", err)
		}
		return bad("jira-approved-statuses", "EVIDENCE_JIRA_APPROVED_STATUSES", "%v (check --jira-rejected-statuses too)", err)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return bad("log-level", "EVIDENCE_LOG_LEVEL", "want debug, info, warn or error, got %q", c.LogLevel)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return bad("log-format", "EVIDENCE_LOG_FORMAT", "want text or json, got %q", c.LogFormat)
	}
	return nil
}

// JiraOptions are the Jira adapter's options from the configuration.
func (c *Config) JiraOptions() jira.Options {
	return jira.Options{
		BaseURL: c.JiraBaseURL, ChangeIssueTypes: c.JiraChangeTypes,
		ApprovedStatuses: c.JiraApprovedStatuses, RejectedStatuses: c.JiraRejectedStatuses,
		TypeField: c.JiraTypeField, LinksField: c.JiraLinksField,
	}
}

// Tickets is the ticket-key matcher of the configuration.
func (c *Config) Tickets() *ticketkeys.Matcher {
	if len(c.TicketPatterns) == 0 {
		return ticketkeys.Default()
	}
	m, err := ticketkeys.New(c.TicketPatterns...)
	if err != nil {
		return ticketkeys.Default() // Validate refused this already
	}
	return m
}

// IsLoopback reports whether host is a loopback name or address.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// MemoryLimitAuto is Config.MemoryLimit's "auto".
const MemoryLimitAuto = -1

func memLimit(p *int64) func(string) error {
	return func(v string) error {
		if strings.TrimSpace(v) == "auto" {
			*p = MemoryLimitAuto
			return nil
		}
		n, err := parseSize(v)
		if err != nil {
			return fmt.Errorf("not auto or a size (like 768MiB or 2GiB): %q", v)
		}
		if n > 0 && n < 64<<20 {
			return fmt.Errorf("%q is below 64MiB: evidenced would spend its time collecting garbage", v)
		}
		*p = n
		return nil
	}
}

func parseSize(v string) (int64, error) {
	mult := int64(1)
	s := strings.TrimSpace(v)
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "KB": 1000, "MB": 1000 * 1000, "GB": 1000 * 1000 * 1000} {
		if strings.HasSuffix(s, suffix) {
			mult, s = m, strings.TrimSuffix(s, suffix)
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("not a size (like 1048576, 512KiB or 10MiB): %q", v)
	}
	return n * mult, nil
}

// noneIsEmpty turns the list "none" (or no list) into an empty, non-nil
// list: nothing required.
func noneIsEmpty(l []string) []string {
	if len(l) == 0 || len(l) == 1 && strings.EqualFold(l[0], "none") {
		return []string{}
	}
	return l
}
