package nodes

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bootctl/boot/internal/sshtest"
)

// A key or known_hosts file that cannot be used is an ErrConfig naming the
// file, found fast and before the host is contacted: devices and named pipes
// are not read, oversized files are refused from their size.
func TestUnusableLocalFiles(t *testing.T) {
	key := sshtest.NewKey(t, "")
	s, cfg := rootServer(t, key)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sparse := func(name string, size int64) string {
		p := write(name, "")
		if err := os.Truncate(p, size); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	connections := func() int { return strings.Count(s.Log(), "Connection from") }
	before := connections()

	for _, tc := range []struct {
		name, key, known, want string
	}{
		{"key missing", filepath.Join(dir, "none"), "", "no such file"},
		{"key is a directory", dir, "", "not a regular file (a directory)"},
		{"key is a named pipe", fifo, "", "not a regular file (a named pipe)"},
		{"key is /dev/zero", "/dev/zero", "", "not a regular file (a character device)"},
		{"key too big", sparse("big_key", maxKeyFile+1), "", "more than the limit of 1 MiB"},
		{"key malformed", write("bad_key", "not a key\n"), "", "no key found"},
		{"known_hosts is a directory", "", dir, "not a regular file (a directory)"},
		{"known_hosts is a named pipe", "", fifo, "not a regular file (a named pipe)"},
		{"known_hosts is /dev/zero", "", "/dev/zero", "not a regular file (a character device)"},
		{"known_hosts too big", "", sparse("big_known_hosts", maxKnownHostsFile+1), "more than the limit of 16 MiB"},
		{"known_hosts malformed", "", write("bad_known_hosts", s.KnownHostsLine()+"!\n"), "line 1: illegal base64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, path := cfg, tc.key
			if tc.key != "" {
				c.KeyPath = tc.key
			} else {
				c.KnownHostsPath, path = tc.known, tc.known
			}
			start := time.Now()
			_, err := Dial(testCtx(t), c, fastRetry)
			took := time.Since(start)
			if !errors.Is(err, ErrConfig) || errors.Is(err, ErrAuth) || errors.Is(err, ErrUnreachable) {
				t.Fatalf("want ErrConfig only, got %v", err)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error does not name %s and say %q: %v", path, tc.want, err)
			}
			if took > 500*time.Millisecond {
				t.Errorf("took %s", took)
			}
		})
	}

	// Nothing above contacted the server: the one connection since is this one.
	mustRun(t, mustDial(t, cfg), "true")
	if got := connections() - before; got != 1 {
		t.Errorf("sshd saw %d connections, want 1:\n%s", got, s.Log())
	}
}
