package cmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bootctl/boot/internal/sshtest"
	"github.com/bootctl/boot/internal/testenv"
)

// boot restore refuses, exit 2 and before any host is contacted, a missing
// --from, a folder that is no finished backup, and a backup.json that does
// not parse, each named.
func TestRestoreRefusesWhatIsNoBackup(t *testing.T) {
	key := sshtest.NewKey(t, "")
	inv := testenv.InventoryFile(t, `apiVersion: boot/v1alpha1
kind: Cluster
metadata:
  name: lab
ssh:
  keyPath: `+key.Path+`
hosts:
  - {name: cp1, address: 127.0.0.1, role: control-plane}
  - {name: w1, address: 127.0.0.2, role: worker}
registry:
  host: registry.example.com
  issuer: selfsigned
`)
	unfinished := t.TempDir()
	if err := os.WriteFile(filepath.Join(unfinished, "etcd-snapshot.db"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	garbled := t.TempDir()
	if err := os.WriteFile(filepath.Join(garbled, "backup.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "--from is required"},
		{[]string{"--from", unfinished}, unfinished + " is not a boot backup"},
		{[]string{"--from", garbled}, filepath.Join(garbled, "backup.json")},
	} {
		code, stdout, stderr := runBoot(t, append([]string{"restore", "-i", inv, "--yes"}, c.args...)...)
		if code != ExitInvalid || !strings.Contains(stderr, c.want) {
			t.Errorf("boot restore %v: exit %d, want %d with %q\n%s%s", c.args, code, ExitInvalid, c.want, stdout, stderr)
		}
	}
}
