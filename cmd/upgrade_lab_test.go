//go:build lab

package cmd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bootctl/boot/bootstrap"
	"github.com/bootctl/boot/bundle"
	"github.com/bootctl/boot/inventory"
)

// upgradeWorkload is the web workload and a PodDisruptionBudget that keeps
// two of its replicas available; pollingClient, on the control plane (a
// DaemonSet's pod: drains leave it), polls the Service every 100 ms for the
// whole upgrade. (A replica evicted from a drained worker waits for it: its
// spread counts the cordoned Node.)
const upgradeWorkload = webWorkload + `---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: web
  namespace: default
spec:
  minAvailable: 2
  selector:
    matchLabels: {app: web}
`

// pollingClient is upgradeWorkload's client, applied once the web replicas
// are ready (so that every failure it counts is the upgrade's).
const pollingClient = `apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: client
  namespace: default
spec:
  selector:
    matchLabels: {app: client}
  template:
    metadata:
      labels: {app: client}
    spec:
      nodeSelector: {kubernetes.io/hostname: cp1}
      tolerations: [{operator: Exists}]
      containers:
        - name: client
          image: IMAGE
          args: ["poll", "http://web.default.svc.cluster.local/"]
`

// TestUpgradeOnLab builds the lab cluster with the add-ons at the older
// Kubernetes version of a bundle that carries two (BOOT_UPGRADE_BUNDLE_DIR,
// built by make bundle-upgrade), runs a workload with a client polling it,
// and upgrades the cluster in place to the bundle's newer version with boot
// up: SSH to a worker cut during its upgrade, then a drain a
// PodDisruptionBudget blocks (the run stops naming the pod), then a re-run
// that finishes it without repeating the control plane's upgrade or the
// drained worker's kubeadm upgrade node; every node at the new version,
// the registry verified, the client's failed requests reported, a re-run
// that changes nothing. Not part of make test (the second version costs
// the cold bundle build ~25 minutes): make lab-upgrade-test runs it.
func TestUpgradeOnLab(t *testing.T) {
	bundleDir := os.Getenv("BOOT_UPGRADE_BUNDLE_DIR")
	if bundleDir == "" {
		t.Fatal("BOOT_UPGRADE_BUNDLE_DIR is not set: make lab-upgrade-test builds a bundle with two Kubernetes versions and runs this test on it")
	}
	m, err := bundle.ReadManifest(labBundle(t, bundleDir))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.OtherKubernetesVersions) == 0 {
		t.Fatalf("the bundle %s carries only Kubernetes %s: build it with two (make bundle-upgrade)", bundleDir, m.KubernetesVersion)
	}
	from, to := m.OtherKubernetesVersions[len(m.OtherKubernetesVersions)-1], m.KubernetesVersion
	dir := labUp(t, bundleDir)
	w := loadLabWorld(t, dir)
	invPath := withKubernetesVersion(t, filepath.Join(dir, "inventory.yaml"), from)
	inv, err := inventory.Load(invPath)
	if err != nil {
		t.Fatal(err)
	}
	k := kube{t: t, bin: filepath.Join(bundleDir, "bin", "kubectl"), kubeconfig: inv.Cluster.Kubeconfig}

	// The registry's volume (registryPV) is a folder on w1.
	docker(t, "exec", "boot-lab-w1", "install", "-d", "-o", "1000", "-g", "1000", "/var/lib/boot-e2e-registry")
	start := time.Now()
	r := upApplyingPV(k, append([]string{"up", "-i", invPath, "-o", "json"}, w.flags()...)...)
	if r.code != ExitOK {
		t.Fatalf("boot up at %s with the add-ons: exit %d\n%s%s", from, r.code, r.stdout, r.stderr)
	}
	t.Logf("boot up at %s with the add-ons took %s", from, time.Since(start).Round(time.Second))
	eventually(t, "four Ready nodes", time.Minute, func() string { return nodesReady(k) })
	checkKubelets(t, k, from)
	registryCertificate(t, k, w, inv.Registry.Host, "", 3*time.Minute)
	servedCertificate(t, w, inv)
	checkBootStatus(t, invPath, w, from)

	image := pushWorkload(t, inv.Cluster.ImageRepository, filepath.Join(dir, "registry", "ca.crt"))
	k.must(strings.ReplaceAll(upgradeWorkload, "IMAGE", image), "apply", "-f", "-")
	k.must("", "rollout", "status", "deployment/web", "--timeout=180s")
	k.must(strings.ReplaceAll(pollingClient, "IMAGE", image), "apply", "-f", "-")
	k.must("", "rollout", "status", "daemonset/client", "--timeout=180s")

	// The upgrade, planned: the backup and kubeadm upgrade apply on the
	// control plane, then each worker.
	upInv := withKubernetesVersion(t, invPath, to)
	plan := dryRun(t, "boot up --dry-run after raising cluster.kubernetesVersion", append([]string{"up", "-i", upInv}, w.flags()...)...)
	for _, want := range []string{"upgrade control plane/cp1: back up", "upgrade control plane/cp1: kubeadm upgrade apply " + to,
		"upgrade control plane/cp1: drain cp1", "upgrade workers/w1: kubeadm upgrade node", "upgrade workers/w2: kubeadm upgrade node", "upgrade workers/w3: kubeadm upgrade node"} {
		if !slices.ContainsFunc(planned(plan), func(e event) bool { return strings.HasPrefix(e.Phase+"/"+e.Host+": "+e.Message, want) }) {
			t.Errorf("the upgrade's dry run does not plan %q: %+v", want, planned(plan))
		}
	}
	if slices.ContainsFunc(planned(plan), func(e event) bool { return e.Phase == "kubernetes packages" }) {
		t.Errorf("the upgrade's dry run installs packages outside the upgrade phases: %+v", planned(plan))
	}

	// The upgrade, with SSH to the first worker whose kubeadm upgrade node
	// runs cut: it fails naming that worker; the workers not started wait.
	start = time.Now()
	cut, r := cutSSHDuringUpgrade(t, upInv, w)
	phaseTimes(t, "boot up: the upgrade, cut", parseEvents(t, r.stdout))
	failed := failedEvents(parseEvents(t, r.stdout))
	if r.code == ExitOK || !strings.Contains(failed, "upgrade workers/"+cut) {
		t.Fatalf("the upgrade with SSH to %s cut: exit %d, failed events:\n%s%s", cut, r.code, failed, r.stderr)
	}
	t.Logf("the upgrade with SSH to %s cut: exit %d after %s:\n%s", cut, r.code, time.Since(start).Round(time.Second), failed)

	// A drain a PodDisruptionBudget blocks: a worker not upgraded yet runs
	// the only replica of a Deployment whose budget allows no disruption.
	// The run stops once the drain times out, naming the pod.
	blocked := behindWorker(t, k, from, cut)
	k.must(strings.NewReplacer("IMAGE", image, "NODE", blocked).Replace(blockerWorkload), "apply", "-f", "-")
	k.must("", "rollout", "status", "deployment/blocker", "--timeout=180s")
	code, stdout, stderr := runBoot(t, append([]string{"up", "-i", upInv, "-o", "json", "--drain-timeout", "20s"}, w.flags()...)...)
	failed = failedEvents(parseEvents(t, stdout))
	if code == ExitOK || !strings.Contains(failed, "upgrade workers/"+blocked+": ") || !strings.Contains(failed, "still on it: default/blocker-") {
		t.Fatalf("the upgrade with %s's drain blocked by a PDB: exit %d, failed events:\n%s%s", blocked, code, failed, stderr)
	}
	t.Logf("the upgrade with %s's drain blocked: exit %d:\n%s", blocked, code, failed)
	k.must("", "delete", "poddisruptionbudget", "blocker")

	// The re-run finishes it: the control plane is not upgraded again, nor
	// is kubeadm upgrade node run again on the worker whose drain failed.
	evs := bootUp(t, upInv, "boot up: the upgrade, finished", w.flags()...)
	t.Logf("the upgrade took %s in all", time.Since(start).Round(time.Second))
	for _, e := range changedEvents(evs) {
		if e.Phase == "upgrade control plane" && strings.Contains(e.Message, "kubeadm upgrade apply") {
			t.Errorf("the re-run upgraded the control plane again: %+v", e)
		}
		if e.Phase == "upgrade workers" {
			t.Logf("re-run: %s %s (%.0f s)", e.Host, e.Message, e.Duration)
			if e.Host == blocked && strings.Contains(e.Message, "kubeadm upgrade node") {
				t.Errorf("the re-run ran kubeadm upgrade node on %s again: %s", blocked, e.Message)
			}
		}
	}
	if !slices.ContainsFunc(evs, func(e event) bool { return e.Phase == "upgrade workers" && e.Host == blocked && e.Status == "changed" }) {
		t.Errorf("the re-run did not finish %s's upgrade", blocked)
	}
	for _, check := range []string{"push", "pull"} {
		if !slices.ContainsFunc(evs, func(e event) bool { return e.Phase == "verify" && e.Host == check && e.Status == "ok" }) {
			t.Errorf("after the upgrade, verify: no ok %s check (the registry)", check)
		}
	}
	eventually(t, "four Ready nodes", time.Minute, func() string { return nodesReady(k) })
	checkKubelets(t, k, to)
	if out := k.must("", "get", "nodes", "-o", `jsonpath={range .items[*]}{.metadata.name} unschedulable={.spec.unschedulable} {.metadata.annotations}{"\n"}{end}`); strings.Contains(out, "unschedulable=true") || strings.Contains(out, bootstrap.UpgradingAnnotation) {
		t.Errorf("after the upgrade, a node is cordoned or still marked:\n%s", out)
	}
	if backups, _ := filepath.Glob(filepath.Join(bootstrap.StateDir(inv), "backups", "*", "backup.json")); len(backups) == 0 {
		t.Errorf("no backup in %s after the upgrade", filepath.Join(bootstrap.StateDir(inv), "backups"))
	}
	total, lost := clientFailures(t, k)
	t.Logf("the client polling the workload through its Service during the upgrade: %d requests, %d failed", total, lost)

	// Converged: a re-run changes nothing; boot status at the new version.
	if ch := changedEvents(bootUp(t, upInv, "boot up after the upgrade (nothing to do)", w.flags()...)); len(ch) > 0 {
		t.Errorf("the re-run after the upgrade changed something: %+v", ch)
	}
	checkBootStatus(t, upInv, w, to)
}

// blockerWorkload is one replica on NODE that its PodDisruptionBudget
// keeps from being evicted.
const blockerWorkload = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: blocker
  namespace: default
spec:
  replicas: 1
  selector:
    matchLabels: {app: blocker}
  template:
    metadata:
      labels: {app: blocker}
    spec:
      nodeSelector: {kubernetes.io/hostname: NODE}
      containers:
        - name: web
          image: IMAGE
          args: ["serve", ":8080"]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: blocker
  namespace: default
spec:
  maxUnavailable: 0
  selector:
    matchLabels: {app: blocker}
`

// behindWorker returns a worker whose kubelet still runs version, other
// than not when there is one.
func behindWorker(t *testing.T, k kube, version, not string) string {
	t.Helper()
	out := k.must("", "get", "nodes", "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.nodeInfo.kubeletVersion}{"\n"}{end}`)
	pick := ""
	for _, l := range strings.Fields(out) {
		name, v, _ := strings.Cut(l, "=")
		if v == version && name != "cp1" && (pick == "" || pick == not) {
			pick = name
		}
	}
	if pick == "" {
		t.Fatalf("no worker runs %s any more:\n%s", version, out)
	}
	return pick
}

// servedCertificate waits until the ingress on the first worker serves the
// registry's certificate, issued by the lab's ACME CA (Traefik picks a new
// certificate Secret up a few seconds after it is Ready).
func servedCertificate(t *testing.T, w labWorld, inv *inventory.Inventory) {
	t.Helper()
	root, err := os.ReadFile(w.ACMERoot)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(root)
	addr := net.JoinHostPort(inv.Hosts[1].Address, "443")
	eventually(t, "the ingress serving the registry's certificate", time.Minute, func() string {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{ServerName: inv.Registry.Host, RootCAs: pool, MinVersion: tls.VersionTLS12})
		if err != nil {
			return err.Error()
		}
		c.Close()
		return ""
	})
}

// withKubernetesVersion writes a copy of the inventory at path with
// cluster.kubernetesVersion set to version and returns the copy's path.
func withKubernetesVersion(t *testing.T, path, version string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^(\s*kubernetesVersion:\s*).*$`)
	if !re.Match(data) {
		t.Fatalf("%s has no kubernetesVersion line", path)
	}
	out := filepath.Join(filepath.Dir(path), "inventory-"+version+".yaml")
	if err := os.WriteFile(out, re.ReplaceAll(data, []byte("${1}"+version)), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkKubelets checks that every node's kubelet reports version.
func checkKubelets(t *testing.T, k kube, version string) {
	t.Helper()
	out := k.must("", "get", "nodes", "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.nodeInfo.kubeletVersion}{"\n"}{end}`)
	for _, l := range strings.Fields(out) {
		if !strings.HasSuffix(l, "="+version) {
			t.Errorf("node %s, want kubelet %s", l, version)
		}
	}
	t.Logf("kubelets: %s", strings.Join(strings.Fields(out), " "))
}

// cutSSHDuringUpgrade runs the upgrade and, as soon as kubeadm upgrade
// node runs on a worker (a watcher on each worker polls every 50 ms), stops
// that worker's sshd and kills its SSH sessions and kubeadm. It returns
// the worker and the run's result, sshd started again.
func cutSSHDuringUpgrade(t *testing.T, inv string, w labWorld) (string, bootResult) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	done := startBoot(append([]string{"up", "-i", inv, "-o", "json"}, w.flags()...)...)
	found := make(chan string, 3)
	for _, h := range []string{"w1", "w2", "w3"} {
		go func() {
			// [n]ode: the watcher's own command line does not match.
			watch := exec.CommandContext(ctx, "docker", "exec", "boot-lab-"+h, "sh", "-c", `until pgrep -f "kubeadm upgrade [n]ode" >/dev/null; do sleep 0.05; done`)
			if watch.Run() == nil {
				found <- h
			}
		}()
	}
	var h string
	select {
	case r := <-done:
		t.Fatalf("boot up ended (exit %d) before kubeadm upgrade node ran on a worker:\n%s%s", r.code, r.stdout, r.stderr)
	case h = <-found:
	case <-ctx.Done():
		t.Fatal("kubeadm upgrade node never ran on a worker")
	}
	ps := docker(t, "exec", "boot-lab-"+h, "ps", "-eo", "pid=,args=")
	docker(t, "exec", "boot-lab-"+h, "systemctl", "stop", "ssh")
	pids := sessionPids(ps, "kubeadm upgrade node")
	// Some may have ended already (kubeadm upgrade node takes a second).
	docker(t, "exec", "boot-lab-"+h, "sh", "-c", "kill -9 "+strings.Join(pids, " ")+" 2>/dev/null; true")
	t.Logf("cut SSH to %s during kubeadm upgrade node (sshd stopped; sessions and kubeadm %v killed)", h, pids)
	r := <-done
	docker(t, "exec", "boot-lab-"+h, "systemctl", "start", "ssh")
	return h, r
}

// clientFailures reads the polling client's last "total N failed M" line
// and prints the failures it logged.
func clientFailures(t *testing.T, k kube) (total, failed int) {
	t.Helper()
	logs := k.must("", "logs", "daemonset/client")
	for _, l := range strings.Split(logs, "\n") {
		f := strings.Fields(l)
		if len(f) == 4 && f[0] == "total" && f[2] == "failed" {
			total, _ = strconv.Atoi(f[1])
			failed, _ = strconv.Atoi(f[3])
		} else if strings.Contains(l, "failed:") {
			t.Logf("client: %s", l)
		}
	}
	if total == 0 {
		t.Errorf("the client logged no totals:\n%s", logs)
	}
	return total, failed
}
