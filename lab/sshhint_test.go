package lab

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestSSHHintPastesSafely pastes the ssh line Up prints into a real POSIX
// shell, with ssh a function that prints its arguments: lab paths with
// spaces, quotes and a command substitution arrive as one argument each and
// nothing runs.
func TestSSHHintPastesSafely(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "it's a $(>pwned) lab")
	key, known := filepath.Join(dir, "id_ed25519"), filepath.Join(dir, "known_hosts")
	line := sshHint("10.23.0.11", key, known)
	c := exec.Command("sh", "-c", `ssh() { printf '%s\n' "$@"; }; eval "$LINE"`)
	c.Dir = t.TempDir()
	c.Env = append(os.Environ(), "LINE="+line)
	out, err := c.Output()
	if err != nil {
		t.Fatalf("sh on %q: %v", line, err)
	}
	if _, err := os.Stat(filepath.Join(c.Dir, "pwned")); err == nil {
		t.Fatalf("pasting %q ran a command substitution", line)
	}
	want := []string{"root@10.23.0.11", "-i", key, "-o", "UserKnownHostsFile=" + known}
	if got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n"); !slices.Equal(got, want) {
		t.Errorf("pasting %q: ssh got %q, want %q", line, got, want)
	}
}
