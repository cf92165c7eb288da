package report

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
)

// SampleAlgorithm describes the draw, as the reports print it.
const SampleAlgorithm = "score = lowercase hex SHA-256 of (seed, a line feed, key); sort by score; the sample is the rows with the lowest scores"

// SampleKey describes the key a row's score hashes.
const SampleKey = "<environment>/<service>/<deployment_key> of the row"

// NewSeed is a random seed: a decimal number below 10^12, short enough to
// copy by hand.
func NewSeed() (string, error) {
	var b [8]byte
	if _, err := io.ReadFull(rand.Reader, b[:]); err != nil {
		return "", fmt.Errorf("random seed: %w", err)
	}
	return strconv.FormatUint(binary.BigEndian.Uint64(b[:])%1_000_000_000_000, 10), nil
}

// Sample is a drawn sample of a population.
type Sample struct {
	Info  SampleInfo
	Rows  []Row // the population
	Picks []Pick
}

// DrawSample draws plan.Size rows of the population under seed (all of
// them when the population is smaller).
func DrawSample(rows []Row, seed string, plan SizePlan) (Sample, error) {
	keys := make([]string, len(rows))
	for i, r := range rows {
		keys[i] = r.Key()
	}
	picks, err := Draw(seed, keys, plan.Size)
	if err != nil {
		return Sample{}, err
	}
	return Sample{
		Info: SampleInfo{Seed: seed, Algorithm: SampleAlgorithm, Key: SampleKey, Plan: plan,
			Population: len(rows), Drawn: len(picks)},
		Rows: rows, Picks: picks,
	}, nil
}

// Write writes the sample's rows, in population order, with their rank
// and score.
func (s Sample) Write(w io.Writer, format string, p Period) error {
	info := s.Info
	tw, err := NewTableWriter(w, format, Header{Report: "sample", Period: p, Sample: &info})
	if err != nil {
		return err
	}
	for i := range s.Picks {
		if err := tw.Write(s.Rows[s.Picks[i].Index], &s.Picks[i]); err != nil {
			return err
		}
	}
	return tw.Close()
}

// ChangeIDs are the distinct changes of the sampled rows, sorted.
func (s Sample) ChangeIDs() []string {
	rows := make([]Row, len(s.Picks))
	for i, p := range s.Picks {
		rows[i] = s.Rows[p.Index]
	}
	return changeIDs(rows)
}
