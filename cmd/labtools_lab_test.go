//go:build lab

package cmd

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/bootctl/boot/internal/testenv"
	"github.com/bootctl/boot/lab"
)

// labUp brings a lab up (root only) in a temporary folder on bundleDir,
// with more flags of boot lab up, and takes it down when the test ends. It
// returns the lab's folder.
func labUp(t *testing.T, bundleDir string, more ...string) string {
	t.Helper()
	testenv.Root(t, "the lab")
	tools := buildLabTools(t)
	dir := filepath.Join(t.TempDir(), "lab")
	t.Cleanup(func() {
		if code, _, stderr := runBoot(t, "lab", "down", "--dir", dir); code != 0 {
			t.Errorf("boot lab down: exit %d\n%s", code, stderr)
		}
	})
	if code, out, stderr := runBoot(t, append([]string{"lab", "up", "--dir", dir, "--bundle", bundleDir, "--tools-dir", tools}, more...)...); code != 0 {
		t.Fatalf("boot lab up: exit %d\n%s\n%s", code, out, stderr)
	}
	return dir
}

// buildLabTools builds boot and the lab's helper programs (runc-capwrap,
// lab-registry, lab-mirror) and installs Pebble from the module proxy into a
// temporary folder, the lab's --tools-dir.
func buildLabTools(t *testing.T) string {
	t.Helper()
	tools := t.TempDir()
	build := exec.Command("go", "build", "-trimpath", "-o", tools+"/", "../lab/runc-capwrap", "../lab/lab-registry", "../lab/lab-mirror", "..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOPROXY=https://proxy.golang.org")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build boot and the lab's helpers: %v\n%s", err, out)
	}
	pebble := exec.Command("go", "install", lab.PebbleModule)
	pebble.Env = append(os.Environ(), "CGO_ENABLED=0", "GOBIN="+tools, "GOFLAGS=", "GOPROXY=https://proxy.golang.org")
	if out, err := pebble.CombinedOutput(); err != nil {
		t.Fatalf("install pebble: %v\n%s", err, out)
	}
	return tools
}
