// Package testenv holds the project's one rule for tests whose prerequisites
// (root, an installed program, a built bundle) may be missing: when the
// environment variable CI is set, a missing prerequisite fails the test, so
// CI can never pass by skipping; elsewhere the test is skipped with the
// reason.
package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bootctl/boot/inventory"
)

// Need fails the test under CI and skips it elsewhere, with the message.
func Need(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatalf("prerequisite missing (CI is set): %s", msg)
	}
	t.Skipf("prerequisite missing: %s", msg)
}

// Root needs the test to run as root; why says what for.
func Root(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Need(t, "%s needs root", why)
	}
}

// File needs the file at path, which the Debian package pkg installs.
func File(t testing.TB, path, pkg string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		Need(t, "%s is not installed (apt-get install %s): %v", path, pkg, err)
	}
}

// BundleDir returns $BOOT_BUNDLE_DIR, the offline bundle the tests use
// (`make bundle` builds it; `make unit` sets the variable).
func BundleDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("BOOT_BUNDLE_DIR")
	if dir == "" {
		Need(t, "BOOT_BUNDLE_DIR is not set: build the bundle (make bundle) and point BOOT_BUNDLE_DIR at it")
	}
	return dir
}

// ClosedAddr returns a loopback address (host:port) where nothing listens:
// a server that cannot be reached, as on a machine without internet, whose
// refusal comes at once and never leaves this machine.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// InventoryFile writes text to inventory.yaml in a new temporary folder and
// returns the file's path.
func InventoryFile(t testing.TB, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "inventory.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Inventory loads text as an inventory file (written by InventoryFile).
func Inventory(t testing.TB, text string) *inventory.Inventory {
	t.Helper()
	inv, err := inventory.Load(InventoryFile(t, text))
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

// KubeadmPKI makes a control plane's certificates and kubeconfig files
// offline with the bundle's kubeadm, in dir/pki and dir, from the kubeadm
// configuration config returns for the bundle's kubeadm version (it must
// name dir/pki as the certificates' folder), and returns the kubeadm
// executable and that version.
func KubeadmPKI(t testing.TB, dir string, config func(version string) string) (kubeadm, version string) {
	t.Helper()
	kubeadm = filepath.Join(BundleDir(t), "bin", "kubeadm")
	out, err := exec.Command(kubeadm, "version", "-o", "short").Output()
	if err != nil {
		t.Fatalf("kubeadm version: %v", err)
	}
	version = strings.TrimSpace(string(out))
	cfg := filepath.Join(t.TempDir(), "kubeadm.yaml")
	if err := os.WriteFile(cfg, []byte(config(version)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"init", "phase", "certs", "all", "--config", cfg},
		{"init", "phase", "kubeconfig", "all", "--config", cfg, "--kubeconfig-dir", dir},
	} {
		if out, err := exec.Command(kubeadm, args...).CombinedOutput(); err != nil {
			t.Fatalf("kubeadm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return kubeadm, version
}
