package cmd

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bootctl/boot/inventory"
)

// An input file that is not a regular file of bounded size (the inventory,
// the pruner's rules or password file) is invalid input: exit 2 in well
// under a second, the file and its flag named; a device is not read until
// memory runs out, a named pipe not waited on.
func TestExitCodeForUnusableInputFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, inventory.MaxFileSize+1); err != nil {
		t.Fatal(err)
	}
	rules := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rules, []byte("rules:\n  - keepLatest: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	prune := []string{"prune", "--registry", "http://127.0.0.1:1"}
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"inventory is /dev/zero", []string{"validate", "-i", "/dev/zero"}, []string{"inventory /dev/zero is not a regular file"}},
		{"inventory is /dev/urandom", []string{"up", "-i", "/dev/urandom", "--dry-run"}, []string{"inventory /dev/urandom is not a regular file"}},
		{"inventory is a named pipe", []string{"validate", "-i", fifo}, []string{"inventory " + fifo + " is not a regular file (a named pipe)"}},
		{"inventory too big", []string{"validate", "-i", big}, []string{"inventory " + big, "more than the limit of 4 MiB"}},
		{"rules file is a named pipe", append(prune, "--rules", fifo), []string{"--rules: rules file " + fifo + " is not a regular file (a named pipe)"}},
		{"rules file is /dev/zero", append(prune, "--rules", "/dev/zero"), []string{"--rules: rules file /dev/zero is not a regular file"}},
		{"password file is a named pipe", append(prune, "--rules", rules, "--password-file", fifo), []string{"--password-file " + fifo + " is not a regular file (a named pipe)"}},
		{"password file is /dev/zero", append(prune, "--rules", rules, "--password-file", "/dev/zero"), []string{"--password-file /dev/zero is not a regular file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			code, _, stderr := runBoot(t, tc.args...)
			if took := time.Since(start); took > 500*time.Millisecond {
				t.Errorf("took %s", took)
			}
			if code != ExitInvalid {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, ExitInvalid, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
}
