package daemon

import (
	"bufio"
	"bytes"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"

	"github.com/evidencepipeline/evidence/internal/config"
)

// applyMemoryLimit sets the Go runtime's soft memory limit from
// --memory-limit and logs where it came from. The heap of evidenced (the
// embedded NATS server's included) holds bounded caches and transient
// batches; without a limit the collector lets the heap grow to twice what
// is live before it runs, which is most of evidenced's peak RSS under a
// burst. With one, it collects earlier as the heap nears the limit.
func applyMemoryLimit(cfg *config.Config, log *slog.Logger) {
	limit, source := memoryLimit(cfg.MemoryLimit, os.Getenv, os.ReadFile)
	if limit > 0 {
		debug.SetMemoryLimit(limit)
	}
	if source != "" {
		log.Info("memory limit", "bytes", limit, "MiB", limit>>20, "from", source)
	}
}

// memoryLimit is the limit to set (0: leave the runtime's) and where it
// comes from ("" when there is none).
func memoryLimit(flag int64, getenv func(string) string, readFile func(string) ([]byte, error)) (int64, string) {
	switch {
	case flag > 0:
		return flag, "--memory-limit"
	case flag == 0:
		return 0, ""
	}
	if v := getenv("GOMEMLIMIT"); v != "" && v != "off" {
		return 0, "GOMEMLIMIT (the runtime's)"
	}
	if l, where := cgroupMemoryLimit(readFile); l > 0 {
		return l / 10 * 9, "90% of the cgroup's limit " + where
	}
	return 0, ""
}

// cgroupMemoryLimit reads the memory limit of this process's cgroup (v2
// memory.max, or v1 memory.limit_in_bytes), 0 when there is none.
func cgroupMemoryLimit(readFile func(string) ([]byte, error)) (int64, string) {
	raw, err := readFile("/proc/self/cgroup")
	if err != nil {
		return 0, ""
	}
	var paths []string
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		// hierarchy-id:controllers:path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			paths = append(paths, "/sys/fs/cgroup"+parts[2]+"/memory.max", "/sys/fs/cgroup/unified"+parts[2]+"/memory.max")
		case slices.Contains(strings.Split(parts[1], ","), "memory"):
			paths = append(paths, "/sys/fs/cgroup/memory"+parts[2]+"/memory.limit_in_bytes")
		}
	}
	// Inside a container the cgroup is often mounted at the root.
	paths = append(paths, "/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
	for _, p := range paths {
		b, err := readFile(p)
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(b))
		if v == "max" {
			return 0, ""
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 || n >= math.MaxInt64/2 { // v1's "unlimited" is near 2^63
			return 0, ""
		}
		return n, p
	}
	return 0, ""
}
