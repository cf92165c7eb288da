package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/evidencepipeline/evidence/dashboards"
	"github.com/evidencepipeline/evidence/internal/cli"
)

// fakeGrafana answers like Grafana's HTTP API (folders and dashboards/db)
// and checks the requests' format: paths, methods, bearer token, JSON
// bodies.
type fakeGrafana struct {
	t          *testing.T
	token      string
	mu         sync.Mutex
	folders    map[string]string // uid -> title
	dashboards map[string]map[string]any
	versions   map[string]int
	calls      []string
	failWith   map[string]int // "METHOD path" -> status to answer
}

func newFakeGrafana(t *testing.T) (*fakeGrafana, *httptest.Server) {
	g := &fakeGrafana{t: t, token: "glsa_test", folders: map[string]string{}, dashboards: map[string]map[string]any{},
		versions: map[string]int{}, failWith: map[string]int{}}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return g, srv
}

func (g *fakeGrafana) answer(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (g *fakeGrafana) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	call := r.Method + " " + r.URL.Path
	g.calls = append(g.calls, call)
	if got := r.Header.Get("Authorization"); got != "Bearer "+g.token {
		g.answer(w, 401, map[string]string{"message": "invalid API key"})
		return
	}
	if code := g.failWith[call]; code != 0 {
		g.answer(w, code, map[string]string{"message": "refused by test"})
		return
	}
	var body map[string]any
	if r.Method == http.MethodPost || r.Method == http.MethodPut {
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			g.t.Errorf("%s: Content-Type %q, want application/json", call, ct)
		}
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &body); err != nil {
			g.t.Errorf("%s: body is not a JSON object: %v", call, err)
			g.answer(w, 400, map[string]string{"message": "bad json"})
			return
		}
	}
	switch {
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/grafana/api/folders/"):
		uid := strings.TrimPrefix(r.URL.Path, "/grafana/api/folders/")
		title, ok := g.folders[uid]
		if !ok {
			g.answer(w, 404, map[string]string{"message": "folder not found", "status": "not-found"})
			return
		}
		g.answer(w, 200, map[string]any{"id": 1, "uid": uid, "title": title, "version": 1})
	case r.Method == http.MethodPost && r.URL.Path == "/grafana/api/folders":
		uid, _ := body["uid"].(string)
		title, _ := body["title"].(string)
		if uid == "" || title == "" {
			g.t.Errorf("create folder without uid or title: %v", body)
		}
		g.folders[uid] = title
		g.answer(w, 200, map[string]any{"id": 1, "uid": uid, "title": title, "version": 1})
	case r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/grafana/api/folders/"):
		uid := strings.TrimPrefix(r.URL.Path, "/grafana/api/folders/")
		if body["overwrite"] != true {
			g.t.Errorf("update folder without overwrite: %v", body)
		}
		g.folders[uid], _ = body["title"].(string)
		g.answer(w, 200, map[string]any{"id": 1, "uid": uid, "title": g.folders[uid], "version": 2})
	case r.Method == http.MethodPost && r.URL.Path == "/grafana/api/dashboards/db":
		d, _ := body["dashboard"].(map[string]any)
		uid, _ := d["uid"].(string)
		folder, _ := body["folderUid"].(string)
		if d == nil || uid == "" || d["title"] == nil || d["panels"] == nil {
			g.t.Errorf("dashboards/db: no dashboard with uid, title and panels: %.200v", body)
		}
		if _, ok := d["id"]; ok {
			g.t.Errorf("dashboards/db: dashboard %s sent with an id", uid)
		}
		if body["overwrite"] != true {
			g.t.Errorf("dashboards/db: overwrite = %v, want true", body["overwrite"])
		}
		if _, ok := g.folders[folder]; !ok {
			g.answer(w, 400, map[string]string{"message": "folder not found"})
			g.t.Errorf("dashboards/db: folderUid %q does not exist", folder)
			return
		}
		g.versions[uid]++
		g.dashboards[uid] = body
		g.answer(w, 200, map[string]any{"id": len(g.dashboards), "uid": uid, "url": "/grafana/d/" + uid + "/x",
			"status": "success", "version": g.versions[uid], "slug": "x", "folderUid": folder})
	default:
		g.t.Errorf("unexpected request %s", call)
		g.answer(w, 404, map[string]string{"message": "not found"})
	}
}

func push(t *testing.T, srv *httptest.Server, token string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), append([]string{"dashboards", "push"}, args...), cli.Env{
		Stdout: &out, Stderr: &errb, Getenv: func(k string) string {
			if k == "GRAFANA_TOKEN" {
				return token
			}
			return ""
		},
	})
	return code, out.String(), errb.String()
}

func TestDashboardsPush(t *testing.T) {
	all, err := dashboards.All()
	if err != nil {
		t.Fatal(err)
	}
	g, srv := newFakeGrafana(t)

	code, out, errs := push(t, srv, "glsa_test", "--grafana-url", srv.URL+"/grafana/")
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	// The folder is created, then every dashboard saved into it.
	if g.folders["evidence"] != "Evidence" {
		t.Errorf("folders = %v, want evidence: Evidence", g.folders)
	}
	want := []string{"GET /grafana/api/folders/evidence", "POST /grafana/api/folders"}
	for range all {
		want = append(want, "POST /grafana/api/dashboards/db")
	}
	if fmt.Sprint(g.calls) != fmt.Sprint(want) {
		t.Errorf("requests:\n %v\nwant\n %v", g.calls, want)
	}
	for _, d := range all {
		body, ok := g.dashboards[d.UID]
		if !ok {
			t.Errorf("dashboard %s not pushed", d.UID)
			continue
		}
		if body["folderUid"] != "evidence" {
			t.Errorf("dashboard %s: folderUid %v", d.UID, body["folderUid"])
		}
		var file map[string]any
		_ = json.Unmarshal(d.JSON, &file)
		sent, _ := json.Marshal(body["dashboard"])
		local, _ := json.Marshal(file)
		if !bytes.Equal(sent, local) {
			t.Errorf("dashboard %s: the model sent differs from the embedded file", d.UID)
		}
		if !strings.Contains(out, fmt.Sprintf("dashboard %q (uid %s): saved, version 1, %s/grafana/d/%s/x", d.Title, d.UID, srv.URL, d.UID)) {
			t.Errorf("output does not report %s:\n%s", d.UID, out)
		}
	}
	if !strings.Contains(out, `folder "Evidence" (uid evidence): created`) || !strings.Contains(out, fmt.Sprintf("%d dashboards pushed", len(all))) {
		t.Errorf("output:\n%s", out)
	}

	// Again, into a renamed folder: the folder is renamed in place, the
	// dashboards are overwritten (version 2), nothing is created twice.
	g.calls = nil
	code, out, errs = push(t, srv, "glsa_test", "--grafana-url", srv.URL+"/grafana", "--folder", "Audit")
	if code != cli.ExitOK {
		t.Fatalf("second push: exit %d: %s", code, errs)
	}
	if g.folders["evidence"] != "Audit" || len(g.folders) != 1 {
		t.Errorf("folders after rename = %v", g.folders)
	}
	if g.calls[1] != "PUT /grafana/api/folders/evidence" || len(g.dashboards) != len(all) {
		t.Errorf("second push: requests %v, %d dashboards", g.calls, len(g.dashboards))
	}
	if !strings.Contains(out, "renamed") || !strings.Contains(out, "saved, version 2") {
		t.Errorf("second push output:\n%s", out)
	}
}

func TestDashboardsPushErrors(t *testing.T) {
	g, srv := newFakeGrafana(t)
	url := srv.URL + "/grafana"

	cases := []struct {
		name  string
		token string
		fail  map[string]int
		args  []string
		code  int
		want  string
	}{
		{"wrong token", "nope", nil, []string{"--grafana-url", url}, cli.ExitFail, "401 Unauthorized: invalid API key): check GRAFANA_TOKEN"},
		{"viewer token", "glsa_test", map[string]int{"POST /grafana/api/folders": 403}, []string{"--grafana-url", url}, cli.ExitFail, "403 Forbidden: refused by test): its service account needs the Editor role"},
		{"not grafana", "glsa_test", map[string]int{"GET /grafana/api/folders/evidence": 200, "POST /grafana/api/dashboards/db": 404}, []string{"--grafana-url", url}, cli.ExitFail, "404 Not Found: refused by test): is --grafana-url Grafana's root URL?"},
		{"same title", "glsa_test", map[string]int{"POST /grafana/api/dashboards/db": 412}, []string{"--grafana-url", url}, cli.ExitFail, "dashboard change-trace.json (Evidence: change trace, uid evidence-change-trace): Grafana refused to save (412 Precondition Failed: refused by test)"},
		{"no url", "glsa_test", nil, nil, cli.ExitUsage, "--grafana-url is required"},
		{"bad url", "glsa_test", nil, []string{"--grafana-url", "grafana:3000"}, cli.ExitUsage, `--grafana-url "grafana:3000" is not an http(s) URL`},
		{"no token", "", nil, []string{"--grafana-url", url}, cli.ExitUsage, "no token: set GRAFANA_TOKEN"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g.mu.Lock()
			g.failWith, g.folders = map[string]int{}, map[string]string{}
			for k, v := range c.fail {
				g.failWith[k] = v
			}
			if c.fail["GET /grafana/api/folders/evidence"] == 200 {
				delete(g.failWith, "GET /grafana/api/folders/evidence")
				g.folders["evidence"] = "Evidence"
			}
			g.mu.Unlock()
			code, _, errs := push(t, srv, c.token, c.args...)
			if code != c.code || !strings.Contains(errs, c.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, errs, c.code, c.want)
			}
		})
	}
}
