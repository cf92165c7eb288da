package report

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"

	"github.com/xuri/excelize/v2"
)

// Formats of the population and the sample.
var Formats = []string{"csv", "json", "xlsx"}

// SampleInfo is what the sample adds to a table: how it was drawn, so the
// auditor can re-perform it.
type SampleInfo struct {
	Seed       string   `json:"seed"`
	Algorithm  string   `json:"algorithm"`
	Key        string   `json:"key"`
	Plan       SizePlan `json:"size_plan"`
	Population int      `json:"population"`
	Drawn      int      `json:"drawn"`
}

// Header is what a table report says of itself.
type Header struct {
	Report string // population or sample
	Period Period
	Sample *SampleInfo
	// Log is the transparency log's newest signed checkpoint when the
	// population was read (nil: the log had none).
	Log *LogCheckpoint
}

// LogCheckpoint is the signed log checkpoint a report states it was
// computed against: the events archived up to it are the leaves
// 0..TreeSize-1 of the tree it signs.
type LogCheckpoint struct {
	Origin   string `json:"origin"`
	TreeSize int64  `json:"tree_size"`
	Root     string `json:"root"`
	// Note is the signed note, as GET /v1/log/checkpoint serves it.
	Note string `json:"note"`
}

// TableWriter writes the rows of a population or a sample in one format.
type TableWriter interface {
	// Write adds a row; pick is its draw in a sample, nil in a
	// population.
	Write(r Row, pick *Pick) error
	// Close ends the table (and writes the XLSX workbook).
	Close() error
}

// NewTableWriter writes the table to w in format (csv, json or xlsx).
func NewTableWriter(w io.Writer, format string, h Header) (TableWriter, error) {
	switch format {
	case "csv":
		cw := csv.NewWriter(w)
		return &csvTable{w: cw, sample: h.Sample != nil}, cw.Write(header(h))
	case "json":
		bw := bufio.NewWriter(w)
		jt := &jsonTable{w: bw}
		return jt, jt.start(h)
	case "xlsx":
		return newXLSXTable(w, h)
	}
	return nil, fmt.Errorf("format %q: want csv, json or xlsx", format)
}

func header(h Header) []string {
	cols := append([]string{}, Columns...)
	if h.Sample != nil {
		cols = append(cols, "rank", "score")
	}
	return append(cols, LateColumn)
}

type csvTable struct {
	w      *csv.Writer
	sample bool
}

func (t *csvTable) Write(r Row, pick *Pick) error {
	cells := r.Cells()
	if t.sample {
		rank, score := "", ""
		if pick != nil {
			rank, score = fmt.Sprint(pick.Rank), pick.Score
		}
		cells = append(cells, rank, score)
	}
	return t.w.Write(append(cells, r.LateCell()))
}

func (t *csvTable) Close() error {
	t.w.Flush()
	return t.w.Error()
}

type jsonTable struct {
	w *bufio.Writer
	n int
}

func (t *jsonTable) start(h Header) error {
	head := struct {
		Report      string         `json:"report"`
		Environment string         `json:"environment"`
		From        string         `json:"from"`
		To          string         `json:"to"`
		Sample      *SampleInfo    `json:"sample,omitempty"`
		Log         *LogCheckpoint `json:"log_checkpoint,omitempty"`
	}{h.Report, h.Period.Environment, stamp(h.Period.From), stamp(h.Period.To), h.Sample, h.Log}
	b, err := json.Marshal(head)
	if err != nil {
		return err
	}
	// {"report":...,"sample":{...},"rows":[ one row a line ],"count":N}
	_, err = t.w.Write(append(b[:len(b)-1], []byte(",\n\"rows\":[")...))
	return err
}

func (t *jsonTable) Write(r Row, pick *Pick) error {
	j := r.json()
	if pick != nil {
		j.Rank, j.Score = pick.Rank, pick.Score
	}
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	sep := ",\n"
	if t.n == 0 {
		sep = "\n"
	}
	t.n++
	if _, err := t.w.WriteString(sep); err != nil {
		return err
	}
	_, err = t.w.Write(b)
	return err
}

func (t *jsonTable) Close() error {
	if _, err := fmt.Fprintf(t.w, "\n],\n\"count\":%d}\n", t.n); err != nil {
		return err
	}
	return t.w.Flush()
}

type xlsxTable struct {
	out    io.Writer
	f      *excelize.File
	sw     *excelize.StreamWriter
	row    int
	sample bool
}

func newXLSXTable(w io.Writer, h Header) (*xlsxTable, error) {
	f := excelize.NewFile()
	if err := f.SetSheetName("Sheet1", h.Report); err != nil {
		return nil, err
	}
	// The "about" sheet: what the table is, and for a sample how it was
	// drawn.
	if _, err := f.NewSheet("about"); err != nil {
		return nil, err
	}
	about := [][2]string{{"report", h.Report}, {"environment", h.Period.Environment},
		{"from", stamp(h.Period.From)}, {"to (excluded)", stamp(h.Period.To)}}
	if s := h.Sample; s != nil {
		about = append(about, [][2]string{{"seed", s.Seed}, {"algorithm", s.Algorithm}, {"key", s.Key},
			{"population", fmt.Sprint(s.Population)}, {"drawn", fmt.Sprint(s.Drawn)}, {"sample size", fmt.Sprint(s.Plan.Size)},
			{"size method", s.Plan.Method}}...)
	}
	if l := h.Log; l != nil {
		about = append(about, [][2]string{{"log checkpoint origin", l.Origin}, {"log checkpoint tree size", fmt.Sprint(l.TreeSize)},
			{"log checkpoint root", l.Root}, {"log checkpoint note", l.Note}}...)
	}
	for i, kv := range about {
		if err := f.SetSheetRow("about", fmt.Sprintf("A%d", i+1), &[]any{kv[0], kv[1]}); err != nil {
			return nil, err
		}
	}
	sw, err := f.NewStreamWriter(h.Report)
	if err != nil {
		return nil, err
	}
	t := &xlsxTable{out: w, f: f, sw: sw, row: 1, sample: h.Sample != nil}
	cols := header(h)
	cells := make([]any, len(cols))
	for i, c := range cols {
		cells[i] = c
	}
	return t, sw.SetRow("A1", cells)
}

func (t *xlsxTable) Write(r Row, pick *Pick) error {
	t.row++
	s := r.Cells()
	cells := make([]any, 0, len(s)+3)
	cells = append(cells, r.N) // a number, so the sheet sorts by it
	for _, v := range s[1:] {
		cells = append(cells, v)
	}
	if t.sample {
		if pick != nil {
			cells = append(cells, pick.Rank, pick.Score)
		} else {
			cells = append(cells, "", "")
		}
	}
	cells = append(cells, r.LateCell())
	cell, err := excelize.CoordinatesToCellName(1, t.row)
	if err != nil {
		return err
	}
	return t.sw.SetRow(cell, cells)
}

func (t *xlsxTable) Close() error {
	defer t.f.Close()
	if err := t.sw.Flush(); err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	if err := t.f.Write(t.out); err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	return nil
}
