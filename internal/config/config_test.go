package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/config"
	"github.com/evidencepipeline/evidence/processors/evaluate/policies"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, _, err := config.Parse("evidenced", nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:8080" || c.DataDir != "./data" || c.NATSURL != "" ||
		c.ClickHouseURL != "clickhouse://127.0.0.1:9000/evidence" || c.TokensFile != "" ||
		c.MaxBodyBytes != 10<<20 || c.DedupeWindow != 10*time.Minute || !c.Archive || c.ArchiveBatchSize != 10000 ||
		c.CorrelateCacheFacts != 200_000 || c.MemoryLimit != config.MemoryLimitAuto || c.CorrelateSinkCache != 32<<20 {
		t.Fatalf("defaults: %+v", c)
	}
}

// TestControlDefaults: evidenced's defaults for the built-in controls'
// parameters are the policies' own, and "none" empties a list.
func TestControlDefaults(t *testing.T) {
	c, _, err := config.Parse("evidenced", nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	d := policies.DefaultParams()
	if !slices.Equal(c.PipelineIdentities, d.PipelineIdentities) || !slices.Equal(c.PipelineSystems, d.PipelineSystems) ||
		c.ManualTriggerByAuthor != d.ManualTriggerByAuthor || !slices.Equal(c.ProtectedBranches, d.ProtectedBranches) ||
		!slices.Equal(c.ProductionEnvironments, d.ProductionEnvironments) || !slices.Equal(c.RequiredScanCategories, d.RequiredScanCategories) {
		t.Errorf("control defaults %+v, want the policies' %+v", c, d)
	}
	c, _, err = config.Parse("evidenced", []string{"--pipeline-systems", "none", "--manual-trigger-by-author", "fail"}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.PipelineSystems == nil || len(c.PipelineSystems) != 0 || c.ManualTriggerByAuthor != "fail" {
		t.Errorf("pipeline systems %#v, manual trigger by author %q", c.PipelineSystems, c.ManualTriggerByAuthor)
	}
}

func TestFlagOverEnvOverDefault(t *testing.T) {
	c, _, err := config.Parse("evidenced", []string{"--data-dir", "/flag"}, env(map[string]string{
		"EVIDENCE_DATA_DIR": "/env", "EVIDENCE_NATS_URL": "nats://n:4222", "EVIDENCE_MAX_BODY_BYTES": "512KiB",
		"EVIDENCE_ARCHIVE": "false",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/flag" || c.NATSURL != "nats://n:4222" || c.MaxBodyBytes != 512<<10 || c.Archive {
		t.Fatalf("got %+v", c)
	}
}

func TestErrorsNameTheField(t *testing.T) {
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{args: []string{"--http-addr", "0.0.0.0:8080"}, want: `--http-addr (EVIDENCE_HTTP_ADDR): "0.0.0.0:8080" is not a loopback address`},
		{env: map[string]string{"EVIDENCE_HTTP_ADDR": "8080"}, want: "--http-addr (EVIDENCE_HTTP_ADDR): want host:port"},
		{args: []string{"--tokens-file", "/nonexistent/tokens"}, want: "--tokens-file (EVIDENCE_TOKENS_FILE):"},
		{args: []string{"--clickhouse-url", "http://ch:8123/x"}, want: `--clickhouse-url (EVIDENCE_CLICKHOUSE_URL): scheme "http"`},
		{env: map[string]string{"EVIDENCE_DEDUPE_WINDOW": "soon"}, want: "--dedupe-window (EVIDENCE_DEDUPE_WINDOW): not a duration"},
		{args: []string{"--archive-batch-size", "ten"}, want: "--archive-batch-size (EVIDENCE_ARCHIVE_BATCH_SIZE):"},
		{args: []string{"--archive-batch-size", "0"}, want: "--archive-batch-size (EVIDENCE_ARCHIVE_BATCH_SIZE): must be between 1 and 1000000"},
		{args: []string{"--correlate-cache-facts", "-1"}, want: "--correlate-cache-facts (EVIDENCE_CORRELATE_CACHE_FACTS): must be 0 or more"},
		{env: map[string]string{"EVIDENCE_MEMORY_LIMIT": "lots"}, want: `--memory-limit (EVIDENCE_MEMORY_LIMIT): not auto or a size (like 768MiB or 2GiB): "lots"`},
		{env: map[string]string{"EVIDENCE_MEMORY_LIMIT": "12MiB"}, want: `--memory-limit (EVIDENCE_MEMORY_LIMIT): "12MiB" is below 64MiB`},
		{args: []string{"--log-level", "loud"}, want: "--log-level (EVIDENCE_LOG_LEVEL): want debug, info, warn or error"},
		{args: []string{"--nats-url", "n:4222"}, want: "--nats-url (EVIDENCE_NATS_URL): want nats://host:port"},
		{args: []string{"--nats-url", "nats://n:4222", "--nats-listen", "127.0.0.1:4222"}, want: "--nats-listen (EVIDENCE_NATS_LISTEN): only applies to the embedded NATS"},
		{args: []string{"--max-body-bytes", "12"}, want: "--max-body-bytes (EVIDENCE_MAX_BODY_BYTES): at least 1KiB"},
		{args: []string{"--dedupe-window", "48h", "--stream-max-age", "24h"}, want: "--dedupe-window (EVIDENCE_DEDUPE_WINDOW): 48h0m0s is longer than --stream-max-age"},
		{args: []string{"stray"}, want: `unexpected argument "stray"`},
		{args: []string{"--manual-trigger-by-author", "warn"}, want: `--manual-trigger-by-author (EVIDENCE_MANUAL_TRIGGER_BY_AUTHOR): "warn": want allow or fail`},
	} {
		_, _, err := config.Parse("evidenced", tc.args, env(tc.env))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("args %v env %v: error %v, want one containing %q", tc.args, tc.env, err, tc.want)
		}
	}
	// With a tokens file, any address is allowed.
	if _, _, err := config.Parse("evidenced", []string{"--http-addr", "0.0.0.0:8080", "--tokens-file", tokens}, env(nil)); err != nil {
		t.Fatalf("with a tokens file: %v", err)
	}
	var fe *config.FieldError
	_, _, err := config.Parse("evidenced", []string{"--log-format", "xml"}, env(nil))
	if !errors.As(err, &fe) || fe.Flag != "log-format" || fe.Env != "EVIDENCE_LOG_FORMAT" {
		t.Fatalf("error %v is not a FieldError for log-format", err)
	}
}

func TestTicketAndJiraSettings(t *testing.T) {
	c, _, err := config.Parse("evidenced", []string{"--ticket-patterns", `\bOPS-[0-9]+\b, (INC[0-9]{6})`,
		"--jira-change-types", "Change, Emergency Change", "--jira-approved-statuses", "CAB Approved"}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Tickets().Find("fix OPS-12 and INC123456"); strings.Join(got, ",") != "OPS-12,INC123456" {
		t.Fatalf("Tickets().Find = %v", got)
	}
	if o := c.JiraOptions(); strings.Join(o.ChangeIssueTypes, "|") != "Change|Emergency Change" || o.ApprovedStatuses[0] != "CAB Approved" {
		t.Fatalf("JiraOptions = %+v", o)
	}
	for args, want := range map[string]string{
		"--ticket-patterns=(":        "--ticket-patterns (EVIDENCE_TICKET_PATTERNS):",
		"--jira-base-url=ftp://jira": "--jira-base-url (EVIDENCE_JIRA_BASE_URL):",
		"--jira-approved-statuses=Done --jira-rejected-statuses=Done": "--jira-approved-statuses (EVIDENCE_JIRA_APPROVED_STATUSES):",
	} {
		_, _, err := config.Parse("evidenced", strings.Fields(args), env(nil))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", args, err, want)
		}
	}
}

// --oidc-issuer is repeatable; its variable is a comma-separated list,
// which the flags replace; each is ISSUER_URL=AUDIENCE; it needs a tokens
// file.
func TestOIDCIssuers(t *testing.T) {
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	const gh, gl = "https://token.actions.githubusercontent.com", "https://gitlab.example.com"
	vars := env(map[string]string{"EVIDENCE_TOKENS_FILE": tokens, "EVIDENCE_OIDC_ISSUERS": gh + "=aud-1, " + gl + "=aud-2"})
	c, _, err := config.Parse("evidenced", nil, vars)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.OIDCIssuers) != 2 || c.OIDCIssuers[0].URL != gh || c.OIDCIssuers[0].Audience != "aud-1" || c.OIDCIssuers[1].URL != gl || c.OIDCIssuers[1].Audience != "aud-2" {
		t.Errorf("from the variable: %+v", c.OIDCIssuers)
	}
	c, _, err = config.Parse("evidenced", []string{"--oidc-issuer", gl + "=aud-3", "--oidc-issuer", "https://gitlab.com=aud-4"}, vars)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.OIDCIssuers) != 2 || c.OIDCIssuers[0].Audience != "aud-3" || c.OIDCIssuers[1].URL != "https://gitlab.com" {
		t.Errorf("flags over the variable: %+v", c.OIDCIssuers)
	}
	for _, tc := range []struct {
		args []string
		vars map[string]string
		want string
	}{
		{[]string{"--oidc-issuer", gh}, map[string]string{"EVIDENCE_TOKENS_FILE": tokens}, "--oidc-issuer (EVIDENCE_OIDC_ISSUERS): invalid value"},
		{[]string{"--oidc-issuer", gh + "=a", "--oidc-issuer", gh + "=b"}, map[string]string{"EVIDENCE_TOKENS_FILE": tokens}, "is given twice"},
		{[]string{"--oidc-issuer", gh + "=a"}, nil, "--oidc-issuer (EVIDENCE_OIDC_ISSUERS): needs --tokens-file"},
		{nil, map[string]string{"EVIDENCE_OIDC_ISSUERS": "http://gitlab.example.com=a"}, "--oidc-issuer (EVIDENCE_OIDC_ISSUERS): \"http://gitlab.example.com\": an issuer is https"},
	} {
		_, _, err := config.Parse("evidenced", tc.args, env(tc.vars))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: got %v, want %q", tc.args, tc.vars, err, tc.want)
		}
	}
}
