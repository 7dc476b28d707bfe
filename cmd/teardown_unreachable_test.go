package cmd

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bootctl/boot/internal/sshtest"
)

// TestTeardownRefusesUnreachableControlPlane: teardown goes on without an
// unreachable worker (the lab test proves it), but not without the control
// plane: it exits 3 naming it, and nothing is changed (the kubeconfig boot
// wrote stays).
func TestTeardownRefusesUnreachableControlPlane(t *testing.T) {
	dir := t.TempDir()
	var hosts strings.Builder
	for i, h := range []struct{ name, role string }{{"cp1", "control-plane"}, {"w1", "worker"}} {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:0", i+1))
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close() // closed: connections are refused
		fmt.Fprintf(&hosts, "  - name: %s\n    address: 127.0.0.%d\n    role: %s\n    ssh: {port: %d}\n", h.name, i+1, h.role, port)
	}
	kubeconfig := filepath.Join(dir, "admin.conf")
	if err := os.WriteFile(kubeconfig, []byte("apiVersion: v1\nkind: Config\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	inv := filepath.Join(dir, "inventory.yaml")
	text := fmt.Sprintf("apiVersion: boot/v1alpha1\nkind: Cluster\nmetadata:\n  name: local\ncluster:\n  kubeconfig: %s\nssh:\n  keyPath: %s\n  knownHosts: %s\n  agent: false\nhosts:\n%sregistry:\n  host: registry.example.com\n  acmeEmail: ops@example.com\n",
		kubeconfig, sshtest.NewKey(t, "").Path, filepath.Join(dir, "known_hosts"), hosts.String())
	if err := os.WriteFile(inv, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"--dry-run"}, {"--yes"}} {
		code, stdout, stderr := runBoot(t, append([]string{"teardown", "-i", inv, "-o", "json"}, args...)...)
		if code != ExitUnreachable {
			t.Errorf("teardown %s: exit %d, want %d\n%s%s", args[0], code, ExitUnreachable, stdout, stderr)
		}
		if !strings.Contains(stderr, "the control plane cp1 is unreachable") || !strings.Contains(stderr, "nothing was changed") {
			t.Errorf("teardown %s: the error does not name the unreachable control plane:\n%s", args[0], stderr)
		}
		if strings.Contains(stdout, `"status":"changed"`) || strings.Contains(stdout, `"status":"planned"`) {
			t.Errorf("teardown %s went on without the control plane:\n%s", args[0], stdout)
		}
	}
	if _, err := os.Stat(kubeconfig); err != nil {
		t.Errorf("the kubeconfig is gone although nothing was to change: %v", err)
	}
}
