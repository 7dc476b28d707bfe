package cmd

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bootctl/boot/internal/testenv"
)

// --log-file is written 0600 and only into a regular file of ours: boot runs
// as root, so a symbolic link, a named pipe or another user's file is refused
// (exit 2, before any host is contacted) and left as it was.
func TestLogFile(t *testing.T) {
	testenv.Root(t, "giving a file to another user")
	dir := t.TempDir()
	// The key is missing: each run stops at connecting, contacting nothing.
	inv, contacted := closedHosts(t, filepath.Join(dir, "id_none"), filepath.Join(dir, "known_hosts"))
	write := func(name string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("earlier\n"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		return p
	}
	logTo := func(path string) (int, string) {
		t.Helper()
		code, _, stderr := runBoot(t, "up", "-i", inv, "--dry-run", "--log-file", path)
		if contacted() {
			t.Error("a host was contacted")
		}
		return code, stderr
	}

	t.Run("an existing file of ours is made 0600 and appended to", func(t *testing.T) {
		p := write("ours.log", 0o644)
		if code, stderr := logTo(p); code != ExitInvalid || strings.Contains(stderr, "--log-file") {
			t.Fatalf("exit %d (want %d, for the missing key); stderr:\n%s", code, ExitInvalid, stderr)
		}
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("mode %v, want 0600 (%v)", st.Mode(), err)
		}
		if b, _ := os.ReadFile(p); !strings.HasPrefix(string(b), "earlier\n") || !strings.Contains(string(b), "connect failed") {
			t.Errorf("log file:\n%s", b)
		}
	})

	target := write("target", 0o644)
	link := filepath.Join(dir, "link.log")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(dir, "dangling.log")
	if err := os.Symlink(filepath.Join(dir, "created-through-link"), dangling); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo.log")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	theirs := write("theirs.log", 0o644)
	if err := os.Chown(theirs, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, path, want string }{
		{"a symbolic link", link, "is a symbolic link"},
		{"a dangling symbolic link", dangling, "is a symbolic link"},
		{"a named pipe", fifo, "is not a regular file"},
		{"another user's file", theirs, "belongs to uid 65534"},
	} {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			start := time.Now()
			code, stderr := logTo(tc.path)
			if code != ExitInvalid || !strings.Contains(stderr, "--log-file "+tc.path+" "+tc.want) {
				t.Errorf("exit %d, want %d and an error saying %q; stderr:\n%s", code, ExitInvalid, tc.want, stderr)
			}
			if took := time.Since(start); took > 500*time.Millisecond {
				t.Errorf("took %s", took)
			}
		})
	}
	for _, p := range []string{target, theirs} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o644 || st.Size() != int64(len("earlier\n")) {
			t.Errorf("%s was changed: mode %v, %d bytes", p, st.Mode(), st.Size())
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "created-through-link")); !os.IsNotExist(err) {
		t.Errorf("a file was created through the dangling link (%v)", err)
	}
}
