package daemon

import (
	"io/fs"
	"testing"
)

// TestMemoryLimit: where the soft memory limit comes from, hand-worked
// for each source: the flag, none, GOMEMLIMIT, cgroup v2 and v1 limits
// (90% of them), and the unlimited values of both.
func TestMemoryLimit(t *testing.T) {
	const gib = 1 << 30
	v2 := map[string]string{"/proc/self/cgroup": "0::/kubepods/pod1/c1\n", "/sys/fs/cgroup/kubepods/pod1/c1/memory.max": "2147483648\n"}
	v2max := map[string]string{"/proc/self/cgroup": "0::/\n", "/sys/fs/cgroup/memory.max": "max\n"}
	v1 := map[string]string{"/proc/self/cgroup": "4:memory:/docker/abc\n1:cpu:/docker/abc\n", "/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": "1073741824"}
	v1root := map[string]string{"/proc/self/cgroup": "4:memory:/docker/abc\n", "/sys/fs/cgroup/memory/memory.limit_in_bytes": "1073741824"}
	v1none := map[string]string{"/proc/self/cgroup": "4:memory:/x\n", "/sys/fs/cgroup/memory/x/memory.limit_in_bytes": "9223372036854771712"}
	cases := []struct {
		name   string
		flag   int64
		env    string
		files  map[string]string
		want   int64
		source string
	}{
		{"flag", 768 << 20, "", v2, 768 << 20, "--memory-limit"},
		{"off", 0, "", v2, 0, ""},
		{"GOMEMLIMIT wins over auto", -1, "1GiB", v2, 0, "GOMEMLIMIT (the runtime's)"},
		{"cgroup v2", -1, "", v2, 2 * gib / 10 * 9, "90% of the cgroup's limit /sys/fs/cgroup/kubepods/pod1/c1/memory.max"},
		{"cgroup v2 max", -1, "", v2max, 0, ""},
		{"cgroup v1", -1, "", v1, gib / 10 * 9, "90% of the cgroup's limit /sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes"},
		{"cgroup v1 at the root", -1, "", v1root, gib / 10 * 9, "90% of the cgroup's limit /sys/fs/cgroup/memory/memory.limit_in_bytes"},
		{"cgroup v1 unlimited", -1, "", v1none, 0, ""},
		{"no cgroup", -1, "", map[string]string{}, 0, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			getenv := func(k string) string {
				if k == "GOMEMLIMIT" {
					return c.env
				}
				return ""
			}
			read := func(p string) ([]byte, error) {
				if v, ok := c.files[p]; ok {
					return []byte(v), nil
				}
				return nil, fs.ErrNotExist
			}
			got, source := memoryLimit(c.flag, getenv, read)
			if got != c.want || source != c.source {
				t.Errorf("memoryLimit = %d %q, want %d %q", got, source, c.want, c.source)
			}
		})
	}
}
