package cmd

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bootctl/boot/internal/sshtest"
)

// closedHosts listens on 127.0.0.1 and 127.0.0.2 and writes an inventory
// whose two hosts are those listeners, with the given ssh key and
// known_hosts files. contacted reports whether anything connected to them.
func closedHosts(t *testing.T, keyPath, knownHosts string) (inventory string, contacted func() bool) {
	t.Helper()
	var listeners []net.Listener
	var hosts strings.Builder
	for i, h := range []struct{ name, role string }{{"cp1", "control-plane"}, {"w1", "worker"}} {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:0", i+1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		listeners = append(listeners, ln)
		fmt.Fprintf(&hosts, "  - name: %s\n    address: 127.0.0.%d\n    role: %s\n    ssh: {port: %d}\n", h.name, i+1, h.role, ln.Addr().(*net.TCPAddr).Port)
	}
	inventory = filepath.Join(t.TempDir(), "inventory.yaml")
	inv := fmt.Sprintf("apiVersion: boot/v1alpha1\nkind: Cluster\nmetadata:\n  name: local\nssh:\n  keyPath: %s\n  knownHosts: %s\n  agent: false\nhosts:\n%sregistry:\n  host: registry.example.com\n  acmeEmail: ops@example.com\n",
		keyPath, knownHosts, hosts.String())
	if err := os.WriteFile(inventory, []byte(inv), 0o600); err != nil {
		t.Fatal(err)
	}
	// A connection made is in the listen queue by the time the dial returns.
	return inventory, func() bool {
		for _, ln := range listeners {
			_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(50 * time.Millisecond))
			c, err := ln.Accept()
			if err == nil {
				c.Close()
				return true
			}
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal(err)
			}
		}
		return false
	}
}

// A local key or known_hosts file that cannot be used is invalid input:
// exit 2, named in the error, found fast and before any host is contacted.
func TestExitCodeForUnusableLocalFiles(t *testing.T) {
	key := sshtest.NewKey(t, "")
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	knownHosts := filepath.Join(dir, "known_hosts")
	for _, tc := range []struct{ name, key, knownHosts, named string }{
		{"key missing", filepath.Join(dir, "id_none"), knownHosts, filepath.Join(dir, "id_none")},
		{"key is /dev/zero", "/dev/zero", knownHosts, "/dev/zero"},
		{"key is a named pipe", fifo, knownHosts, fifo},
		{"known_hosts is a directory", key.Path, dir, dir},
		{"known_hosts is a named pipe", key.Path, fifo, fifo},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv, contacted := closedHosts(t, tc.key, tc.knownHosts)
			start := time.Now()
			code, _, stderr := runBoot(t, "up", "-i", inv, "--dry-run")
			took := time.Since(start)
			if code != ExitInvalid {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, ExitInvalid, stderr)
			}
			if !strings.Contains(stderr, "Error: ") || !strings.Contains(stderr, tc.named) {
				t.Errorf("error does not name %s:\n%s", tc.named, stderr)
			}
			if took > 500*time.Millisecond {
				t.Errorf("took %s", took)
			}
			if contacted() {
				t.Error("a host was contacted")
			}
		})
	}
}
