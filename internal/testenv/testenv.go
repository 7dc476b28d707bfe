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
	"path/filepath"
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
