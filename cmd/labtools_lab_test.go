//go:build lab

package cmd

import (
	"os"
	"os/exec"
	"testing"

	"github.com/bootctl/boot/lab"
)

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
