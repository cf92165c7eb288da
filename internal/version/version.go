// Package version is the build's version, for --version, /healthz, the
// evidence_build_info metric and the ClickHouse client info. Releases set
// it at link time (.goreleaser.yaml):
//
//	go build -ldflags "-X github.com/evidencepipeline/evidence/internal/version.Version=1.4.0 -X github.com/evidencepipeline/evidence/internal/version.Commit=SHA"
//
// Otherwise it is the module version go install recorded, or "devel",
// and the commit is the VCS revision the go command stamped. It imports
// only the standard library (the CLI links it).
package version

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// Set with -ldflags -X.
var (
	Version = ""
	Commit  = ""
)

// Info is what a build says about itself.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	GoVersion string `json:"go_version"`
}

// Get returns the build's version, commit and Go version.
func Get() Info {
	i := Info{Version: strings.TrimPrefix(Version, "v"), Commit: Commit, GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if i.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			i.Version = strings.TrimPrefix(bi.Main.Version, "v")
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && i.Commit == "" {
				i.Commit = s.Value
			}
		}
	}
	if i.Version == "" {
		i.Version = "devel"
	}
	return i
}

// String is "VERSION (commit SHORT, GOVERSION)", the --version line
// after the program's name.
func (i Info) String() string {
	s := i.Version + " ("
	if i.Commit != "" {
		c := i.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		s += "commit " + c + ", "
	}
	return s + i.GoVersion + ")"
}
