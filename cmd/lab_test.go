//go:build lab

// The lab end-to-end test of the command line: `boot lab up`, then
// `boot up --dry-run` against the four real lab hosts (systemd, their own
// machine-ids and host keys, strict host-key checking), then the cluster's
// whole life (see checkCluster), then `boot lab down`. It needs root, Docker
// and debootstrap, and a bundle:
//
//	BOOT_BUNDLE_DIR=$PWD/dist/bundle go test -tags lab -run TestBootOnLab -v ./cmd/
package cmd

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bootctl/boot/bundle"
	"github.com/bootctl/boot/internal/testenv"
	"github.com/bootctl/boot/lab"
)

func TestBootOnLab(t *testing.T) {
	testenv.Root(t, "the lab")
	tools := t.TempDir()
	build := exec.Command("go", "build", "-trimpath", "-o", tools+"/", "../lab/runc-capwrap", "../lab/lab-registry", "..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build boot and the lab's helpers: %v\n%s", err, out)
	}
	pebble := exec.Command("go", "install", lab.PebbleModule)
	pebble.Env = append(os.Environ(), "CGO_ENABLED=0", "GOBIN="+tools, "GOFLAGS=")
	if out, err := pebble.CombinedOutput(); err != nil {
		t.Fatalf("install pebble: %v\n%s", err, out)
	}
	bundleDir := labBundle(t, testenv.BundleDir(t), filepath.Join(tools, "boot"))
	dir := filepath.Join(t.TempDir(), "lab")
	t.Cleanup(func() {
		if code, _, stderr := run(t, "lab", "down", "--dir", dir); code != 0 {
			t.Errorf("boot lab down: exit %d\n%s", code, stderr)
		}
	})
	if code, out, stderr := run(t, "lab", "up", "--dir", dir, "--bundle", bundleDir, "--tools-dir", tools); code != 0 {
		t.Fatalf("boot lab up: exit %d\n%s\n%s", code, out, stderr)
	}
	inv := filepath.Join(dir, "inventory.yaml")
	before := snapshot(t, filepath.Join(dir, "known_hosts"))

	code, stdout, stderr := run(t, "up", "-i", inv, "--cluster-only", "--dry-run", "-o", "json")
	t.Logf("boot up --dry-run:\n%s%s", stdout, stderr)
	if code != ExitOK {
		t.Fatalf("boot up --dry-run on the lab: exit %d", code)
	}
	ok := map[string]map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(stdout))
	for sc.Scan() {
		var e struct{ Phase, Host, Status, Message string }
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("not a JSON event: %q", sc.Text())
		}
		switch e.Status {
		case "failed", "changed":
			t.Errorf("unexpected event %+v", e)
		case "ok":
			if ok[e.Phase] == nil {
				ok[e.Phase] = map[string]bool{}
			}
			ok[e.Phase][e.Host] = true
		}
	}
	for _, phase := range []string{"connect", "facts", "preflight"} {
		for _, h := range []string{"cp1", "w1", "w2", "w3"} {
			if !ok[phase][h] {
				t.Errorf("%s: no ok event for %s", phase, h)
			}
		}
	}
	if !ok["up"][""] {
		t.Errorf("no final 'nothing was changed' event")
	}
	after := snapshot(t, filepath.Join(dir, "known_hosts"))
	for p, v := range before {
		if after[p] != v {
			t.Errorf("the dry run changed %s", p)
		}
	}
	// The hosts are still untouched: no Kubernetes state anywhere.
	for _, h := range []string{"cp1", "w1", "w2", "w3"} {
		out, err := exec.Command("docker", "exec", "boot-lab-"+h, "sh", "-c", "ls /etc/kubernetes /var/lib/kubelet 2>&1 || true").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "No such file") || strings.Contains(string(out), ".conf") {
			t.Errorf("%s: after a dry run: %s %v", h, out, err)
		}
	}
	if t.Failed() {
		return
	}
	checkCluster(t, dir, bundleDir)
}

// labChartsInventory names the add-on charts a lab bundle carries, test
// charts in the upstream slots (the upstream charts cannot be downloaded
// here): a one-ConfigMap chart for ingress-nginx, and for cert-manager a
// chart that installs stand-ins for its CRDs.
const labChartsInventory = `apiVersion: boot/v1alpha1
kind: Cluster
metadata: {name: charts}
ssh: {user: root}
hosts:
  - {name: cp1, address: 127.0.0.1, role: control-plane}
  - {name: w1, address: 127.0.0.2, role: worker}
registry: {host: registry.example.test, issuer: selfsigned}
addons:
  ingressNginx: {path: CHARTS/hello}
  certManager: {path: CHARTS/cert-manager-standin}
`

// labBundle builds, with the boot just built from this tree, the bundle the
// lab runs on: built's bundle (the cache `make bundle` filled makes it take
// seconds) plus the add-on charts of labChartsInventory, so that `boot up`
// takes its add-on charts from the bundle as an air-gapped install does.
func labBundle(t *testing.T, built, boot string) string {
	m, err := bundle.ReadManifest(built)
	if err != nil {
		t.Fatal(err)
	}
	charts, err := filepath.Abs("../addons/testdata/charts")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	inv := filepath.Join(dir, "charts.yaml")
	if err := os.WriteFile(inv, []byte(strings.ReplaceAll(labChartsInventory, "CHARTS", charts)), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "bundle")
	start := time.Now()
	cmd := exec.Command(boot, "bundle", "build", "-i", inv, "--kubernetes", m.KubernetesVersion, "--out", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("boot bundle build with the add-on charts: %v\n%s", err, b)
	}
	t.Logf("built the lab's bundle (with the add-on charts) in %s", time.Since(start).Round(time.Second))
	return out
}
