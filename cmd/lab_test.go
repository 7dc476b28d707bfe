//go:build lab

// The lab end-to-end test of the command line: `boot lab up`, then
// `boot up --dry-run` against the four real lab hosts (systemd, their own
// machine-ids and host keys, strict host-key checking), then the cluster's
// whole life (see checkCluster, which compares every dry run's plan with
// what the real run then does), a bastion end to end (checkBastion), then
// `boot lab down`. It needs root, Docker
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
)

func TestBootOnLab(t *testing.T) {
	bundleDir := labBundle(t, testenv.BundleDir(t))
	dir := labUp(t, bundleDir)
	inv := filepath.Join(dir, "inventory.yaml")
	before := snapshot(t, filepath.Join(dir, "known_hosts"))

	code, stdout, stderr := runBoot(t, "up", "-i", inv, "--cluster-only", "--dry-run", "-o", "json")
	plan := parseEvents(t, stdout)
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
	checkCluster(t, dir, bundleDir, plan)
	checkBastion(t, inv)
}

// labBundle is the bundle the lab runs on, as `make bundle` builds it: it
// must hold the add-ons' upstream charts (from the release archives) and
// cert-manager's and Traefik's images, so that `boot up` installs every
// add-on from it as an air-gapped install does.
func labBundle(t *testing.T, dir string) string {
	m, err := bundle.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, slot := range []string{"certManager", "traefik"} {
		if _, ok := m.Chart(slot); !ok {
			t.Fatalf("the bundle %s has no %s chart: build it with the release archives (make bundle)", dir, slot)
		}
	}
	return dir
}

// checkDocker checks the bundle's Docker Engine on every node of the
// running cluster: dockerd 29.8.1 answers on its socket (group docker),
// runs the bundle's registry image with --init (docker-init) on its
// default bridge, sees none of the kubelet's containers (those are in
// containerd's k8s.io namespace, Docker's in moby), and leaves the FORWARD
// policy ACCEPT; the nodes and system pods stay Ready and Running.
func checkDocker(t *testing.T, k kube, bundleDir string) {
	t.Helper()
	m, err := bundle.ReadManifest(bundleDir)
	if err != nil {
		t.Fatal(err)
	}
	var registry bundle.Image
	for _, img := range m.Images {
		if img.Component == "registry" {
			registry = img
		}
	}
	if registry.Path == "" {
		t.Fatal("the bundle has no registry image")
	}
	for _, h := range []string{"cp1", "w1", "w2", "w3"} {
		if out, ok := onHost(h, "docker info --format '{{.ServerVersion}} {{.Driver}}' && stat -c %G /run/docker.sock"); !ok || !strings.HasPrefix(out, "29.8.1 ") || !strings.HasSuffix(out, "\ndocker\n") {
			t.Errorf("%s: docker info: %q", h, out)
			continue
		}
		load := exec.Command("docker", "exec", "-i", "boot-lab-"+h, "docker", "load")
		f, err := os.Open(filepath.Join(bundleDir, registry.Path))
		if err != nil {
			t.Fatal(err)
		}
		load.Stdin = f
		out, err := load.CombinedOutput()
		f.Close()
		if err != nil {
			t.Errorf("%s: docker load %s: %v\n%s", h, registry.Path, err, out)
			continue
		}
		if out, ok := onHost(h, "docker run --rm --init "+registry.Name+" --version"); !ok || !strings.Contains(out, "registry github.com/distribution/distribution/v3 3.1.2") {
			t.Errorf("%s: docker run --rm --init %s --version: %q", h, registry.Name, out)
		}
		if out, ok := onHost(h, "docker ps -a -q | wc -l; ctr -n k8s.io containers ls -q 2>/dev/null | wc -l; iptables -S FORWARD | head -n 1"); !ok || !strings.HasPrefix(out, "0\n") || strings.HasPrefix(out, "0\n0\n") || !strings.HasSuffix(out, "-P FORWARD ACCEPT\n") {
			t.Errorf("%s: docker containers, kubelet containers, FORWARD policy: %q", h, out)
		}
	}
	eventually(t, "four Ready nodes after docker run", time.Minute, func() string { return nodesReady(k) })
	eventually(t, "every system pod Running after docker run", time.Minute, func() string { return podsRunning(k) })
}
