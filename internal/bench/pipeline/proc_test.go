package main

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/bench/benchkit"
)

func TestParseStatCPU(t *testing.T) {
	// A command name with spaces and a parenthesis; utime 1234, stime 66.
	stat := []byte("4242 (evid ced) x) S 1 4242 4242 0 -1 4194560 5000 0 0 0 1234 66 0 0 20 0 12 0 100 2000000 3000 18446744073709551615\n")
	d, err := parseStatCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	if want := 13*time.Second + 0*time.Millisecond; d != want {
		t.Fatalf("cpu %v, want %v", d, want)
	}
	if _, err := parseStatCPU([]byte("4242 (x) S 1 2")); err == nil {
		t.Fatal("short stat accepted")
	}
}

func TestParseStatusKB(t *testing.T) {
	status := []byte("Name:\tevidenced\nVmPeak:\t 2000000 kB\nVmHWM:\t  401408 kB\nVmRSS:\t  300000 kB\n")
	n, err := parseStatusKB(status, "VmHWM")
	if err != nil || n != 401408<<10 {
		t.Fatalf("VmHWM %d, %v", n, err)
	}
	if _, err := parseStatusKB(status, "VmSwap"); err == nil {
		t.Fatal("missing line accepted")
	}
}

func TestShuffleWindows(t *testing.T) {
	var groups [][]int
	for g := range 10 {
		groups = append(groups, []int{g * 10, g*10 + 1, g*10 + 2})
	}
	out := shuffleWindows(groups, 4, rand.New(rand.NewPCG(1, 2)))
	if len(out) != 30 {
		t.Fatalf("%d items, want 30", len(out))
	}
	// Each item stays within its window: groups 0-3, 4-7, 8-9.
	for i, v := range out {
		if g := v / 10; g/4 != min(i/12, 2) {
			t.Fatalf("item %d (group %d) at %d left its window", v, g, i)
		}
	}
	s := slices.Clone(out)
	slices.Sort(s)
	if s[0] != 0 || s[29] != 92 || slices.Equal(s, out) {
		t.Fatalf("not a shuffle of the input: %v", out)
	}
}

func TestPercentileAndRatio(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	rand.Shuffle(len(ds), func(i, j int) { ds[i], ds[j] = ds[j], ds[i] })
	if p := benchkit.Percentile(ds, 50); p != 50*time.Millisecond {
		t.Fatalf("p50 %v", p)
	}
	if p := benchkit.Percentile(ds, 99); p != 99*time.Millisecond {
		t.Fatalf("p99 %v", p)
	}
	if p := benchkit.Percentile(ds[:1], 99); p != ds[0] {
		t.Fatalf("p99 of one %v", p)
	}
	if m := benchkit.Median([]float64{3, 1, 2, 10}); m != 2.5 {
		t.Fatalf("median %v", m)
	}
	if r := ratio(1, 0); r != 0 {
		t.Fatalf("ratio by 0: %v", r)
	}
	if r := ratio(1, 4); r != 0.25 {
		t.Fatalf("ratio %v", r)
	}
}
