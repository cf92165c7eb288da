package report

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/evidencepipeline/evidence/internal/store"
	itlog "github.com/evidencepipeline/evidence/internal/tlog"
	"github.com/evidencepipeline/evidence/internal/verify"
)

// The evidence package (docs/reports.md, "Evidence package"): a zip of
// the reports of a period, the trace of each sampled change with its raw
// events, and manifest.json, which lists every other file with its size
// and SHA-256, signed with ed25519 in manifest.sig.

// Package file names.
const (
	ManifestFile  = "manifest.json"
	SignatureFile = "manifest.sig"
	// PackageFormat is manifest.json's format.
	PackageFormat = "evidence-package/2"
	// PackageFormatV1 is the format of packages made before inclusion
	// proofs: still verified, without them.
	PackageFormatV1 = "evidence-package/1"
)

// Manifest is manifest.json.
type Manifest struct {
	Format      string         `json:"format"`
	CreatedAt   string         `json:"created_at"`
	Environment string         `json:"environment"`
	From        string         `json:"from"`
	To          string         `json:"to"`
	Population  int            `json:"population"`
	Sample      ManifestSample `json:"sample"`
	Signature   ManifestSig    `json:"signature"`
	// Log is the signed log checkpoint the inclusion proofs are against
	// (absent in format 1).
	Log   *ManifestLog    `json:"log,omitempty"`
	Files []ManifestEntry `json:"files"`
}

// ManifestSample is the draw the package holds.
type ManifestSample struct {
	Seed    string `json:"seed"`
	Size    int    `json:"size"`
	Drawn   int    `json:"drawn"`
	Changes int    `json:"changes"`
}

// ManifestSig says how the manifest is signed.
type ManifestSig struct {
	Algorithm string `json:"algorithm"`
	KeyID     string `json:"key_id"`
	File      string `json:"file"`
	Signs     string `json:"signs"`
}

// ManifestEntry is one file of the package.
type ManifestEntry struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// PackageOptions are what BuildPackage needs.
type PackageOptions struct {
	Period Period
	Plan   SizePlan
	Seed   string
	Key    ed25519.PrivateKey
	Now    time.Time
	// TraceText writes a trace for people (trace.txt); nil: none.
	TraceText func(io.Writer, Trace) error
	// Progress is told what is being done; nil: nothing.
	Progress func(what string)
}

// PackageSummary is what BuildPackage made.
type PackageSummary struct {
	Manifest Manifest
	Files    int
}

// BuildPackage writes the evidence package of the period to out (a zip).
func BuildPackage(ctx context.Context, st *store.Store, out io.Writer, o PackageOptions) (PackageSummary, error) {
	progress := o.Progress
	if progress == nil {
		progress = func(string) {}
	}
	if o.Key == nil {
		return PackageSummary{}, fmt.Errorf("no signing key")
	}
	p := o.Period
	progress("reading the population")
	rows, err := Rows(ctx, st, p, func(n int) { progress(fmt.Sprintf("reading the population: %d rows", n)) })
	if err != nil {
		return PackageSummary{}, err
	}
	sample, err := DrawSample(rows, o.Seed, o.Plan)
	if err != nil {
		return PackageSummary{}, err
	}
	progress("summarizing the controls")
	controls, err := LoadControls(ctx, st, p)
	if err != nil {
		return PackageSummary{}, err
	}
	ids := sample.ChangeIDs()
	progress(fmt.Sprintf("tracing %d sampled changes", len(ids)))
	traces, err := LoadTraces(ctx, st, ids)
	if err != nil {
		return PackageSummary{}, err
	}
	progress(fmt.Sprintf("proving the events of %d changes in the log", len(traces)))
	logNote, logCP, inclusions, err := loadInclusions(ctx, st, traces)
	if err != nil {
		return PackageSummary{}, err
	}

	z := &zipper{w: zip.NewWriter(out), at: o.Now.UTC()}
	m := Manifest{Format: PackageFormat, CreatedAt: stamp(o.Now), Environment: p.Environment, From: stamp(p.From), To: stamp(p.To),
		Population: len(rows), Sample: ManifestSample{Seed: o.Seed, Size: o.Plan.Size, Drawn: len(sample.Picks), Changes: len(ids)},
		Signature: ManifestSig{Algorithm: "ed25519", KeyID: verify.KeyID(o.Key.Public().(ed25519.PublicKey)), File: SignatureFile,
			Signs: "the bytes of manifest.json"}}
	m.Log = &ManifestLog{Checkpoint: LogCheckpointFile, Origin: logCP.Origin, TreeSize: logCP.Tree.N,
		Root: base64.StdEncoding.EncodeToString(logCP.Tree.Hash[:])}
	for _, ti := range inclusions {
		m.Log.Events += len(ti.Events)
	}

	var dirs []string
	for _, t := range traces {
		dirs = append(dirs, TraceDir(t.ChangeID))
	}
	if err := z.file("README.txt", func(w io.Writer) error { return writeReadme(w, m, dirs) }); err != nil {
		return PackageSummary{}, err
	}
	for _, format := range []string{"csv", "json"} {
		if err := z.file("population."+format, func(w io.Writer) error {
			tw, err := NewTableWriter(w, format, Header{Report: "population", Period: p})
			if err != nil {
				return err
			}
			for _, r := range rows {
				if err := tw.Write(r, nil); err != nil {
					return err
				}
			}
			return tw.Close()
		}); err != nil {
			return PackageSummary{}, err
		}
		if err := z.file("sample."+format, func(w io.Writer) error { return sample.Write(w, format, p) }); err != nil {
			return PackageSummary{}, err
		}
	}
	if err := z.file(LogCheckpointFile, func(w io.Writer) error { _, err := w.Write(logNote); return err }); err != nil {
		return PackageSummary{}, err
	}
	if err := z.file("controls.json", controls.WriteJSON); err != nil {
		return PackageSummary{}, err
	}
	if err := z.file("controls.txt", controls.WriteText); err != nil {
		return PackageSummary{}, err
	}
	for i, t := range traces {
		dir := dirs[i]
		if err := z.file(dir+"/trace.json", func(w io.Writer) error { return WriteTraceJSON(w, t) }); err != nil {
			return PackageSummary{}, err
		}
		if err := z.file(dir+"/"+InclusionFile, func(w io.Writer) error {
			b, err := json.MarshalIndent(inclusions[i], "", "  ")
			if err != nil {
				return err
			}
			_, err = w.Write(append(b, '\n'))
			return err
		}); err != nil {
			return PackageSummary{}, err
		}
		if o.TraceText != nil {
			if err := z.file(dir+"/trace.txt", func(w io.Writer) error { return o.TraceText(w, t) }); err != nil {
				return PackageSummary{}, err
			}
		}
	}
	m.Files = z.entries
	slices.SortFunc(m.Files, func(a, b ManifestEntry) int { return strings.Compare(a.Path, b.Path) })
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return PackageSummary{}, err
	}
	mb = append(mb, '\n')
	sig := ed25519.Sign(o.Key, mb)
	if err := z.raw(ManifestFile, mb); err != nil {
		return PackageSummary{}, err
	}
	if err := z.raw(SignatureFile, []byte(base64.StdEncoding.EncodeToString(sig)+"\n")); err != nil {
		return PackageSummary{}, err
	}
	if err := z.w.Close(); err != nil {
		return PackageSummary{}, fmt.Errorf("write the zip: %w", err)
	}
	return PackageSummary{Manifest: m, Files: len(m.Files) + 2}, nil
}

// TraceDir is the package folder of a change's trace: traces/, the id
// with every character but letters, digits, '.', '-' and '_' replaced by
// '_' (at most 80), a '-', and the first 8 hex digits of the id's SHA-256
// (so two ids that read alike stay apart).
func TraceDir(id string) string {
	var b strings.Builder
	for _, r := range id {
		if b.Len() >= 80 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	sum := sha256.Sum256([]byte(id))
	return "traces/" + b.String() + "-" + hex.EncodeToString(sum[:4])
}

type zipper struct {
	w       *zip.Writer
	at      time.Time
	entries []ManifestEntry
}

type counter struct {
	n int64
}

func (c *counter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// file adds a file written by fill, recording its size and digest.
func (z *zipper) file(name string, fill func(io.Writer) error) error {
	zw, err := z.w.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: z.at})
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	h, c := sha256.New(), &counter{}
	if err := fill(io.MultiWriter(zw, h, c)); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	z.entries = append(z.entries, ManifestEntry{Path: name, Size: c.n, SHA256: hex.EncodeToString(h.Sum(nil))})
	return nil
}

// raw adds a file that the manifest does not list (the manifest and its
// signature).
func (z *zipper) raw(name string, b []byte) error {
	zw, err := z.w.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: z.at})
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	_, err = zw.Write(b)
	return err
}

func writeReadme(w io.Writer, m Manifest, dirs []string) error {
	_, err := fmt.Fprintf(w, `Evidence package: %s deployments from %s to %s (excluded)

population.csv, population.json   every deployment of the period (%d), its change and verdicts
sample.csv, sample.json           the sample drawn from it (%d rows of %d changes), seed %s
controls.txt, controls.json       per control: passes, failures, waivers, pending; failing changes
traces/*/trace.json, trace.txt    each sampled change: record, results, verdicts and raw events
traces/*/inclusion.json           each of those events proven a leaf of the signed log (%d events)
log/checkpoint.note               the transparency log's signed checkpoint: %s, %d leaves
manifest.json                     every file above with its size and SHA-256
manifest.sig                      ed25519 signature of manifest.json (base64), key id %s

Check it with the signer's public key:  evidence verify package FILE.zip --public-key evidence-signing.pub
(and the log's key, --log-key, when another key than the package's signed the log)
Re-perform the sample: docs/reports.md, "Sampling".
Traces: %d folders.
`, m.Environment, m.From, m.To, m.Population, m.Sample.Drawn, m.Sample.Changes, m.Sample.Seed, m.Log.Events, m.Log.Origin, m.Log.TreeSize, m.Signature.KeyID, len(dirs))
	return err
}

// VerifyResult is what VerifyPackage found.
type VerifyResult struct {
	Manifest Manifest
	// Files is the number of files whose digest was checked and matched.
	Files int
	// Proven is the number of trace events proven in the log against Log.
	Proven int
	Log    *itlog.Checkpoint
	// Cosignatures are the valid witness cosignatures of Log's
	// checkpoint, of the keys VerifyPackageWitnessed was given.
	Cosignatures []itlog.Cosignature
	// Notes say what was not checked (a format 1 package has no proofs).
	Notes []string
	// Problems name each thing that is wrong, a sentence each; none means
	// the package is intact and signed by the key.
	Problems []string
}

// VerifyPackage checks the package in r (a zip of size bytes) offline:
// the manifest's signature with pub, every listed file's size and digest,
// that no file is missing or extra, and every trace event's inclusion
// proof against the package's log checkpoint, signed by one of logKeys
// (note verifier keys; none: the log evidenced signs with pub,
// PackageLogKey). Every problem found is reported.
func VerifyPackage(r io.ReaderAt, size int64, pub ed25519.PublicKey, logKeys ...string) VerifyResult {
	return VerifyPackageWitnessed(r, size, pub, logKeys, Witnesses{})
}

// Witnesses is what verify package requires of the package's log
// checkpoint: Need valid cosignatures from distinct Keys (witness
// cosignature/v1 verifier keys).
type Witnesses struct {
	Keys []string
	Need int
}

// VerifyPackageWitnessed is VerifyPackage that also requires w's witness
// cosignatures on the package's log checkpoint (res.Cosignatures lists
// those found).
func VerifyPackageWitnessed(r io.ReaderAt, size int64, pub ed25519.PublicKey, logKeys []string, w Witnesses) VerifyResult {
	var res VerifyResult
	bad := func(format string, a ...any) { res.Problems = append(res.Problems, fmt.Sprintf(format, a...)) }
	zr, err := zip.NewReader(r, size)
	if err != nil {
		bad("not a readable zip archive: %v", err)
		return res
	}
	files := map[string]*zip.File{}
	var names []string
	for _, f := range zr.File {
		if _, dup := files[f.Name]; dup {
			bad("%s: stored twice in the archive (a second copy can hide what a reader sees)", f.Name)
			continue
		}
		files[f.Name] = f
		names = append(names, f.Name)
	}
	mf, sf := files[ManifestFile], files[SignatureFile]
	if mf == nil {
		bad("%s is missing: nothing says what the package holds", ManifestFile)
		return res
	}
	mb, err := readAll(mf)
	if err != nil {
		bad("%s: unreadable: %v", ManifestFile, err)
		return res
	}
	switch {
	case sf == nil:
		bad("%s is missing: the manifest is not signed", SignatureFile)
	default:
		sb, err := readAll(sf)
		if err != nil {
			bad("%s: unreadable: %v", SignatureFile, err)
			break
		}
		sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(sb)))
		switch {
		case err != nil:
			bad("%s: not base64: %v", SignatureFile, err)
		case len(sig) != ed25519.SignatureSize:
			bad("%s: %d bytes, an ed25519 signature has %d", SignatureFile, len(sig), ed25519.SignatureSize)
		case !ed25519.Verify(pub, mb, sig):
			bad("%s: the signature does not match %s with the public key %s: the manifest was altered, or signed by another key",
				SignatureFile, ManifestFile, verify.KeyID(pub))
		}
	}
	dec := json.NewDecoder(bytes.NewReader(mb))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res.Manifest); err != nil {
		bad("%s: not a manifest: %v", ManifestFile, err)
		return res
	}
	switch res.Manifest.Format {
	case PackageFormat:
	case PackageFormatV1:
		res.Notes = append(res.Notes, "format "+PackageFormatV1+": made before inclusion proofs, its events are not proven in the log")
	default:
		bad("%s: format %q, want %q", ManifestFile, res.Manifest.Format, PackageFormat)
	}
	listed := map[string]bool{}
	for _, e := range res.Manifest.Files {
		if listed[e.Path] {
			bad("%s: lists %s twice", ManifestFile, e.Path)
			continue
		}
		listed[e.Path] = true
		f := files[e.Path]
		if f == nil {
			bad("%s is missing: the manifest lists it (%d bytes, sha256 %s)", e.Path, e.Size, e.SHA256)
			continue
		}
		n, sum, err := digest(f)
		switch {
		case err != nil:
			bad("%s: unreadable: %v", e.Path, err)
		case sum != e.SHA256:
			bad("%s was altered: its sha256 is %s, the manifest says %s", e.Path, sum, e.SHA256)
		case n != e.Size:
			bad("%s was altered: %d bytes, the manifest says %d", e.Path, n, e.Size)
		default:
			res.Files++
		}
	}
	for _, name := range names {
		if name != ManifestFile && name != SignatureFile && !listed[name] {
			bad("%s is an extra file: the manifest does not list it", name)
		}
	}
	if res.Manifest.Format == PackageFormat {
		if len(logKeys) == 0 {
			k, err := PackageLogKey(pub)
			if err != nil {
				bad("the log key of public key %s: %v", verify.KeyID(pub), err)
				return res
			}
			logKeys = []string{k}
		}
		res.Proven, res.Log, res.Cosignatures = verifyInclusions(files, res.Manifest, logKeys, w, bad)
	}
	return res
}

func readAll(f *zip.File) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, 64<<20))
}

func digest(f *zip.File) (int64, string, error) {
	rc, err := f.Open()
	if err != nil {
		return 0, "", err
	}
	defer rc.Close()
	var h hash.Hash = sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		return n, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}
