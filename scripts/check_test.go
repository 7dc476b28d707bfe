package scripts

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// snapshot fingerprints the files and folders the bundle and host scripts
// write, so a test can tell that a check run changed nothing.
func snapshot(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, root := range []string{
		"/etc/hosts", "/etc/hostname", "/etc/fstab", "/etc/sysctl.d", "/etc/modules-load.d",
		"/etc/containerd", "/etc/crictl.yaml", "/etc/systemd/system", "/usr/local/bin", "/opt/cni/bin",
		"/proc/sys/net/ipv4/ip_forward", "/proc/sys/kernel/hostname",
	} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				fmt.Fprintf(&b, "%s: %v\n", path, err)
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return nil
			}
			fmt.Fprintf(&b, "%s %v %d", path, info.Mode(), info.Size())
			if info.Mode().IsRegular() && info.Size() < 1<<20 {
				data, err := os.ReadFile(path)
				if err == nil {
					fmt.Fprintf(&b, " %x", sha256.Sum256(data))
				}
			}
			b.WriteString("\n")
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

// TestCheckModeChangesNothing runs the host preparation and both bundle
// scripts in check mode on this machine (the bundle scripts with the built
// bundle as their staging folder): they must succeed, print only "would:"
// lines, and leave every path they manage as it was.
func TestCheckModeChangesNothing(t *testing.T) {
	kubeadm := bundleBinary(t, "kubeadm")
	bundleDir := filepath.Dir(filepath.Dir(kubeadm))
	before := snapshot(t)
	host, err := HostPrep(HostPrepParams{Hostname: "boot-check-test", Address: "192.0.2.10", Packages: []string{"no-such-package-boot"}})
	if err != nil {
		t.Fatal(err)
	}
	runtime, err := RuntimeBundle(RuntimeBundleParams{StagingDir: bundleDir, PauseTag: "3.10.2"})
	if err != nil {
		t.Fatal(err)
	}
	kube, err := KubeBundle(KubeBundleParams{StagingDir: bundleDir})
	if err != nil {
		t.Fatal(err)
	}
	installed := filepath.Join(t.TempDir(), "installed-by-boot")
	if err := os.WriteFile(installed, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	teardown, err := Teardown(TeardownParams{Source: "bundle", Installed: []string{installed}})
	if err != nil {
		t.Fatal(err)
	}
	plans := map[string][]string{
		"teardown":       {"would: remove " + installed},
		"host-prep":      {"would: set hostname to boot-check-test", "would: install no-such-package-boot"},
		"runtime-bundle": {"would: install /etc/containerd/config.toml"},
		"kube-bundle":    {"would: install /etc/systemd/system/kubelet.service.d/10-kubeadm.conf"},
	}
	for name, script := range map[string]string{"host-prep": host, "runtime-bundle": runtime, "kube-bundle": kube, "teardown": teardown} {
		cmd := exec.Command("bash", "-s", "check")
		cmd.Stdin = strings.NewReader(script)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s check: %v\n%s%s", name, err, out, stderr.String())
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		for _, l := range lines {
			if !strings.HasPrefix(l, "would: ") {
				t.Errorf("%s check printed %q, want only would: lines", name, l)
			}
		}
		// Changes this machine cannot already have must be planned.
		for _, want := range plans[name] {
			if !strings.Contains(string(out), want+"\n") {
				t.Errorf("%s check did not plan %q:\n%s", name, want, out)
			}
		}
		t.Logf("%s check:\n%s", name, out)
	}
	if _, err := os.Stat(installed); err != nil {
		t.Errorf("teardown's check mode removed a file: %v", err)
	}
	if after := snapshot(t); after != before {
		t.Errorf("check mode changed the machine:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}
