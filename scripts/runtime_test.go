package scripts

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/bootctl/boot/internal/testenv"
)

// TestContainerdConfigLoads hands both rendered containerd layouts to the
// bundle's containerd 2.x (`containerd config dump` loads, migrates and
// prints the effective configuration) and checks that the sandbox image,
// the runtime binary and the systemd cgroup driver land where the CRI
// plugin reads them, and the registry hosts folder too. The version 2 layout (containerd 1.x) is checked
// through containerd 2.x's own migration of it.
func TestContainerdConfigLoads(t *testing.T) {
	containerd := bundleBinary(t, "containerd")
	const hostileBinary = `/opt/run "c" \ it's`
	for _, layout := range []string{"containerd-v3", "containerd-v2"} {
		for _, binary := range []string{"", "/usr/local/bin/runc-caps", hostileBinary} {
			t.Run(layout+"/"+binary, func(t *testing.T) {
				rc, err := newRuntimeConfig("registry.lab.internal/k8s", "3.10.2", binary, 0)
				if err != nil {
					t.Fatal(err)
				}
				cfg, err := render(layout, rc)
				if err != nil {
					t.Fatal(err)
				}
				f := filepath.Join(t.TempDir(), "config.toml")
				if err := os.WriteFile(f, cfg, 0o644); err != nil {
					t.Fatal(err)
				}
				var stderr bytes.Buffer
				cmd := exec.Command(containerd, "--config", f, "config", "dump")
				cmd.Stderr = &stderr
				out, err := cmd.Output()
				if err != nil {
					t.Fatalf("containerd config dump: %v\n%s", err, stderr.Bytes())
				}
				var dump struct {
					Plugins map[string]struct {
						PinnedImages struct {
							Sandbox string `toml:"sandbox"`
						} `toml:"pinned_images"`
						Registry struct {
							ConfigPath string `toml:"config_path"`
						} `toml:"registry"`
						Containerd struct {
							DefaultRuntimeName string `toml:"default_runtime_name"`
							Runtimes           map[string]struct {
								RuntimeType string         `toml:"runtime_type"`
								Options     map[string]any `toml:"options"`
							} `toml:"runtimes"`
						} `toml:"containerd"`
					} `toml:"plugins"`
				}
				if _, err := toml.Decode(string(out), &dump); err != nil {
					t.Fatalf("decode dump: %v\n%s", err, out)
				}
				if got := dump.Plugins["io.containerd.cri.v1.images"].PinnedImages.Sandbox; got != "registry.lab.internal/k8s/pause:3.10.2" {
					t.Errorf("sandbox image = %q", got)
				}
				if got := dump.Plugins["io.containerd.cri.v1.images"].Registry.ConfigPath; got != RegistryHostsDir {
					t.Errorf("registry config_path = %q, want %q (where host prep writes the mirrors)", got, RegistryHostsDir)
				}
				rt := dump.Plugins["io.containerd.cri.v1.runtime"].Containerd
				if rt.DefaultRuntimeName != "runc" {
					t.Errorf("default runtime = %q", rt.DefaultRuntimeName)
				}
				runc := rt.Runtimes["runc"]
				if runc.RuntimeType != "io.containerd.runc.v2" {
					t.Errorf("runc runtime_type = %q", runc.RuntimeType)
				}
				if runc.Options["SystemdCgroup"] != true {
					t.Errorf("SystemdCgroup = %v", runc.Options["SystemdCgroup"])
				}
				got, _ := runc.Options["BinaryName"].(string)
				if got != binary {
					t.Errorf("BinaryName = %q, want %q", got, binary)
				}
			})
		}
	}
}

// TestWaitForCRI runs the rendered readiness wait against the bundle's
// containerd started on a private socket: with crictl on PATH and, as on
// an online host before kubeadm's cri-tools, with only ctr. With containerd
// stopped it must give up after its bound and say so.
func TestWaitForCRI(t *testing.T) {
	containerd := bundleBinary(t, "containerd")
	testenv.Root(t, "TestWaitForCRI starts containerd and")
	bin := filepath.Dir(containerd)
	script, err := RuntimeBundle(RuntimeBundleParams{StagingDir: "/unused", PauseTag: "3.10.2", ReadyTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(script, "# Wait (bounded)")
	if i < 0 {
		t.Fatal("rendered script has no readiness wait")
	}
	wait := "set -euo pipefail\nmode=apply\ndie() { printf 'error: %s\\n' \"$*\" >&2; exit 1; }\nsystemctl() { :; }\n" + script[i:]

	dir, err := os.MkdirTemp("", "boot-cri-") // short: socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "c.sock")
	cfg := "version = 3\nroot = " + tomlQuote(filepath.Join(dir, "root")) + "\nstate = " + tomlQuote(filepath.Join(dir, "state")) +
		"\n[grpc]\n  address = " + tomlQuote(sock) + "\n[ttrpc]\n  address = " + tomlQuote(sock+".ttrpc") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}

	// Tool folders: one with crictl and ctr, one with ctr only.
	withCrictl, ctrOnly := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for d, tools := range map[string][]string{withCrictl: {"crictl", "ctr"}, ctrOnly: {"ctr"}} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, tool := range tools {
			if err := os.Symlink(filepath.Join(bin, tool), filepath.Join(d, tool)); err != nil {
				t.Fatal(err)
			}
		}
	}
	runWait := func(tools string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", "-c", wait)
		cmd.Env = []string{
			"PATH=" + tools + ":/usr/bin:/bin",
			"CONTAINER_RUNTIME_ENDPOINT=unix://" + sock,
			"CONTAINERD_ADDRESS=" + sock,
			"HOME=" + dir,
		}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	// Not running: the wait ends after its bound with an error.
	start := time.Now()
	out, err := runWait(withCrictl)
	if err == nil || !strings.Contains(out, "not ready after 3s") {
		t.Fatalf("wait with containerd stopped: err %v, output:\n%s", err, out)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("bounded wait took %v", d)
	}

	var log bytes.Buffer
	cmd := exec.Command(containerd, "--config", filepath.Join(dir, "config.toml"))
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	for _, tools := range []string{withCrictl, ctrOnly} {
		// The wait's own bound is 3s; allow containerd a few tries to start.
		var out string
		var err error
		for try := 0; try < 5; try++ {
			if out, err = runWait(tools); err == nil {
				break
			}
		}
		if err != nil {
			t.Errorf("wait with %s: %v\n%s\ncontainerd log:\n%s", filepath.Base(tools), err, out, log.String())
		}
	}
}
