package deploy_test

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The token documented in deploy/tokens.example and deploy/README.md.
const devAdminToken = "dev-admin-token-change-me"

type tokenLine struct {
	line             int
	role, hash, name string
}

// readTokens parses a tokens file: "ROLE SHA256-HEX NAME" per line, blank
// lines and # comments ignored.
func readTokens(t *testing.T, path string) []tokenLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []tokenLine
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		if len(fields) != 3 {
			t.Errorf("line %d: %d fields, want ROLE SHA256-HEX NAME", n, len(fields))
			continue
		}
		out = append(out, tokenLine{line: n, role: fields[0], hash: fields[1], name: fields[2]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestTokensExample(t *testing.T) {
	lines := readTokens(t, filepath.Join(repoRoot(t), "deploy", "tokens.example"))
	if len(lines) == 0 {
		t.Fatal("no token line")
	}
	roles := map[string]bool{"producer": true, "gate": true, "auditor": true, "admin": true}
	names := map[string]int{}
	for _, l := range lines {
		if !roles[l.role] {
			t.Errorf("line %d: role %q, want producer, gate, auditor or admin", l.line, l.role)
		}
		if b, err := hex.DecodeString(l.hash); err != nil || len(b) != sha256.Size || l.hash != strings.ToLower(l.hash) {
			t.Errorf("line %d: %q is not a lowercase hex SHA-256", l.line, l.hash)
		}
		if prev, dup := names[l.name]; dup {
			t.Errorf("line %d: name %q already used on line %d", l.line, l.name, prev)
		}
		names[l.name] = l.line
	}

	sum := sha256.Sum256([]byte(devAdminToken))
	want := hex.EncodeToString(sum[:])
	found := false
	for _, l := range lines {
		if l.hash == want {
			found = true
			if l.role != "admin" {
				t.Errorf("line %d: the dev token has role %q, documented as admin", l.line, l.role)
			}
		}
	}
	if !found {
		t.Errorf("no line holds sha256(%q) = %s", devAdminToken, want)
	}
}
