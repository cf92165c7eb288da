// Package dashboards holds the Grafana dashboards of the evidence tables
// (one JSON file per dashboard, for the grafana-clickhouse-datasource
// plugin), embedded so that `evidence dashboards push` works anywhere, and
// their provisioning files for docker-compose (provisioning/).
//
// The JSON files are generated from Go definitions in this package's tests
// with Grafana's own dashboard types (grafana-foundation-sdk) and checked
// against them: edit the definitions in defs_test.go, then run
//
//	go test ./dashboards -run TestGenerated -update
//
// The same tests run every panel's query against a real ClickHouse filled
// with a known scenario and assert what each panel shows
// (docs/dashboards.md).
package dashboards

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"sort"
)

//go:embed *.json
var files embed.FS

// Folder is the Grafana folder the dashboards go to, as provisioned
// (provisioning/dashboards/evidence.yaml) and pushed by default.
const (
	FolderTitle = "Evidence"
	FolderUID   = "evidence"
)

// Dashboard is one dashboard file.
type Dashboard struct {
	File  string // file name in this directory, e.g. posture.json
	UID   string // the dashboard's stable uid
	Title string
	JSON  []byte // the file's content: the dashboard model
}

// All is every dashboard, sorted by file name.
func All() ([]Dashboard, error) {
	names, err := fs.Glob(files, "*.json")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	out := make([]Dashboard, 0, len(names))
	for _, name := range names {
		b, err := files.ReadFile(name)
		if err != nil {
			return nil, err
		}
		var head struct {
			UID   string `json:"uid"`
			Title string `json:"title"`
		}
		if err := json.Unmarshal(b, &head); err != nil {
			return nil, fmt.Errorf("dashboards/%s: %w", name, err)
		}
		if head.UID == "" || head.Title == "" {
			return nil, fmt.Errorf("dashboards/%s: no uid or title", name)
		}
		out = append(out, Dashboard{File: name, UID: head.UID, Title: head.Title, JSON: b})
	}
	return out, nil
}
