package bootstrap

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/bootctl/boot/internal/sshtest"
	"github.com/bootctl/boot/inventory"
)

// sessionHost is one test host: a real sshd on this machine whose sessions
// all run the test's wrapper with session as its argument.
type sessionHost struct{ name, role, session string }

// startSessionHosts starts one sshd per host on 127.0.0.2 and up (root, one
// key, every session through wrapper), writes their host keys to
// dir/known_hosts, clears boot's environment variables, and returns the
// inventory's ssh and hosts sections for them.
func startSessionHosts(t *testing.T, dir, wrapper string, hs []sessionHost) string {
	t.Helper()
	key := sshtest.NewKey(t, "")
	var known, hosts strings.Builder
	for i, h := range hs {
		s := sshtest.Start(t, sshtest.Options{
			Address:        fmt.Sprintf("127.0.0.%d", i+2),
			AuthorizedKeys: map[string][]ssh.PublicKey{"root": {key.Public}},
			Extra:          []string{"ForceCommand " + wrapper + " " + h.session},
		})
		fmt.Fprintln(&known, s.KnownHostsLine())
		fmt.Fprintf(&hosts, "  - {name: %s, address: %s, role: %s, ssh: {port: %d}}\n", h.name, s.Address, h.role, s.Port)
	}
	knownHosts := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(knownHosts, []byte(known.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, e := range inventory.EnvVars() {
		t.Setenv(e.Name, "")
	}
	return fmt.Sprintf("ssh:\n  keyPath: %s\n  knownHosts: %s\n  agent: false\nhosts:\n%s", key.Path, knownHosts, hosts.String())
}
