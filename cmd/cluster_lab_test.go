//go:build lab

package cmd

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/bootctl/boot/inventory"
)

var labHosts = []string{"cp1", "w1", "w2", "w3"}

// event is one JSON line of boot's output.
type event struct {
	Phase, Host, Status, Message string
	Duration                     float64 `json:"duration_s"`
}

func parseEvents(t *testing.T, stdout string) []event {
	t.Helper()
	var evs []event
	sc := bufio.NewScanner(strings.NewReader(stdout))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("not a JSON event: %q", sc.Text())
		}
		evs = append(evs, e)
	}
	return evs
}

// phaseTimes prints each phase's time (its summary event) and the total.
func phaseTimes(t *testing.T, title string, evs []event) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "%s:\n", title)
	for _, e := range evs {
		if e.Host == "" && e.Phase != "up" {
			fmt.Fprintf(&b, "  %-20s %7.2fs  %s\n", e.Phase, e.Duration, e.Message)
		}
	}
	for _, e := range evs {
		if e.Phase == "up" {
			fmt.Fprintf(&b, "  %-20s %7.2fs\n", "total", e.Duration)
		}
	}
	t.Log(b.String())
}

func changedEvents(evs []event) []event {
	var out []event
	for _, e := range evs {
		if e.Status == "changed" || e.Status == "failed" {
			out = append(out, e)
		}
	}
	return out
}

// bootUp runs `boot up --cluster-only` with JSON output and fails the test
// unless it exits 0; more arguments are added to the command line.
func bootUp(t *testing.T, inv, title string, more ...string) []event {
	t.Helper()
	code, stdout, stderr := runBoot(t, append([]string{"up", "-i", inv, "-o", "json"}, more...)...)
	evs := parseEvents(t, stdout)
	if code != ExitOK {
		t.Fatalf("%s: boot up: exit %d\n%s%s", title, code, stdout, stderr)
	}
	phaseTimes(t, title, evs)
	return evs
}

func docker(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

type kube struct {
	t          *testing.T
	bin        string
	kubeconfig string
}

func (k kube) run(stdin string, args ...string) (string, error) {
	cmd := exec.Command(k.bin, append([]string{"--kubeconfig", k.kubeconfig, "--request-timeout", "30s"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (k kube) must(stdin string, args ...string) string {
	k.t.Helper()
	out, err := k.run(stdin, args...)
	if err != nil {
		k.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// eventually polls check every 2 s until it returns "" or the time is up.
func eventually(t *testing.T, what string, within time.Duration, check func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		problem := check()
		if problem == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s: %s", what, within, problem)
		}
		time.Sleep(2 * time.Second)
	}
}

// nodesReady checks that the four lab hosts are Ready nodes.
func nodesReady(k kube) string {
	out, err := k.run("", "get", "nodes", "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
	if err != nil {
		return out
	}
	for _, h := range labHosts {
		if !strings.Contains(out, h+"=True\n") {
			return "nodes: " + strings.ReplaceAll(out, "\n", " ")
		}
	}
	return ""
}

// podsRunning checks that every kube-system and kube-flannel pod is Running
// and ready.
func podsRunning(k kube) string {
	out, err := k.run("", "get", "pods", "-A", "-o", `jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name} {.status.phase} {.status.containerStatuses[*].ready}{"\n"}{end}`)
	if err != nil {
		return out
	}
	var bad []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.Contains(l, " Running ") || strings.Contains(l, "false") {
			bad = append(bad, l)
		}
	}
	return strings.Join(bad, "; ")
}

// pushWorkload builds cmd/testdata/e2eweb into a one-layer image and pushes
// it to the lab registry.
func pushWorkload(t *testing.T, registry, caFile string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "e2eweb")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, "./testdata/e2eweb")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build e2eweb: %v\n%s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var layerTar bytes.Buffer
	tw := tar.NewWriter(&layerTar)
	if err := tw.WriteHeader(&tar.Header{Name: "e2eweb", Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write(data)
	tw.Close()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerTar.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.Config(img, v1.Config{Entrypoint: []string{"/e2eweb"}})
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	ref, err := name.NewTag(registry + "/boot-e2e/web:v1")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := remote.Write(ref, img, remote.WithTransport(tr), remote.WithContext(ctx)); err != nil {
		t.Fatalf("push the workload image: %v", err)
	}
	return ref.String()
}

// webWorkload is three web replicas, one per worker, behind a Service.
const webWorkload = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: DoNotSchedule
          labelSelector:
            matchLabels: {app: web}
      containers:
        - name: web
          image: IMAGE
          args: ["serve", ":8080"]
          ports: [{containerPort: 8080}]
          readinessProbe:
            httpGet: {path: /, port: 8080}
            periodSeconds: 2
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
`

const workload = webWorkload + `---
apiVersion: v1
kind: Pod
metadata:
  name: client
  namespace: default
spec:
  restartPolicy: Never
  nodeName: w1
  containers:
    - name: client
      image: IMAGE
      args: ["get", "http://web.default.svc.cluster.local/", "3"]
`

// checkWorkload runs three web replicas, one per worker, behind a Service,
// and a client pod on w1 that must be answered by all three through the
// Service's DNS name: CoreDNS, kube-proxy and flannel across nodes.
func checkWorkload(t *testing.T, k kube, image string) {
	start := time.Now()
	k.must(strings.ReplaceAll(workload, "IMAGE", image), "apply", "-f", "-")
	k.must("", "rollout", "status", "deployment/web", "--timeout=180s")
	nodesOut := k.must("", "get", "pods", "-l", "app=web", "-o", `jsonpath={range .items[*]}{.spec.nodeName}{"\n"}{end}`)
	nodes := strings.Fields(nodesOut)
	slices.Sort(nodes)
	if !slices.Equal(nodes, []string{"w1", "w2", "w3"}) {
		t.Errorf("web replicas run on %v, want one on each worker", nodes)
	}
	eventually(t, "client pod finished", 3*time.Minute, func() string {
		phase := k.must("", "get", "pod", "client", "-o", "jsonpath={.status.phase}")
		if phase == "Succeeded" || phase == "Failed" {
			return ""
		}
		return "phase " + phase
	})
	logs := k.must("", "logs", "client")
	if phase := k.must("", "get", "pod", "client", "-o", "jsonpath={.status.phase}"); phase != "Succeeded" {
		t.Fatalf("the client pod did not reach every replica through the Service (%s):\n%s", phase, logs)
	}
	t.Logf("workload checked in %s; client pod:\n%s", time.Since(start).Round(time.Second), logs)
	k.must(strings.ReplaceAll(workload, "IMAGE", image), "delete", "-f", "-", "--wait=true")
}

// bootResult is how a boot command run by startBoot ended.
type bootResult struct {
	code           int
	stdout, stderr string
}

// startBoot runs boot with args in the background; its result arrives on
// the channel when it ends.
func startBoot(args ...string) <-chan bootResult {
	done := make(chan bootResult, 1)
	go func() {
		var stdout, stderr bytes.Buffer
		code := Execute(args, &stdout, &stderr)
		done <- bootResult{code, stdout.String(), stderr.String()}
	}()
	return done
}

// sessionPids lists, from ps -eo pid=,args= output, the pids of the SSH
// sessions (not sshd's listener) and of the processes whose command line
// holds command.
func sessionPids(ps, command string) []string {
	var pids []string
	for _, l := range strings.Split(ps, "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && (strings.HasPrefix(f[1], "sshd:") && !strings.Contains(l, "listener") || strings.Contains(l, command)) {
			pids = append(pids, f[0])
		}
	}
	return pids
}

// cutSSHDuringJoin runs `boot up` while w3 has to join again and, as soon
// as kubeadm join runs there, stops w3's sshd and kills its SSH sessions.
// The run must fail naming w3.
func cutSSHDuringJoin(t *testing.T, inv string) {
	done := startBoot("up", "-i", inv, "--cluster-only", "-o", "json")
	cut := false
	deadline := time.Now().Add(5 * time.Minute)
	for !cut && time.Now().Before(deadline) {
		select {
		case r := <-done:
			t.Fatalf("boot up ended (exit %d) before kubeadm join ran on w3:\n%s%s", r.code, r.stdout, r.stderr)
		case <-time.After(100 * time.Millisecond):
		}
		ps := docker(t, "exec", "boot-lab-w3", "ps", "-eo", "pid=,args=")
		if !strings.Contains(ps, "kubeadm join") {
			continue
		}
		docker(t, "exec", "boot-lab-w3", "systemctl", "stop", "ssh")
		// The SSH sessions die, and kubeadm join with them (as a command
		// does when its session's hangup reaches it), leaving w3 half-joined.
		pids := sessionPids(ps, "kubeadm join")
		docker(t, append([]string{"exec", "boot-lab-w3", "kill", "-9"}, pids...)...)
		t.Logf("cut SSH to w3 during kubeadm join (sshd stopped; sessions and kubeadm join %v killed)", pids)
		cut = true
	}
	if !cut {
		t.Fatal("kubeadm join never ran on w3")
	}
	r := <-done
	docker(t, "exec", "boot-lab-w3", "systemctl", "start", "ssh")
	if r.code == ExitOK {
		t.Fatalf("boot up succeeded although SSH to w3 was cut during its join:\n%s", r.stdout)
	}
	failedOn := ""
	for _, e := range parseEvents(t, r.stdout) {
		if e.Status == "failed" {
			failedOn += e.Phase + "/" + e.Host + " "
		}
	}
	if !strings.Contains(failedOn, "join workers/w3") || !strings.Contains(r.stderr, "w3") {
		t.Fatalf("the failure does not name w3's join: failed events %q\n%s", failedOn, r.stderr)
	}
	t.Logf("boot up with SSH to w3 cut: exit %d, %s", r.code, strings.TrimSpace(r.stderr))
}

// upWithAddons runs the whole of `boot up` on torn-down hosts: the cluster,
// the add-ons with their charts and images from the bundle, the DNS record
// and the closing verify, in one run. The registry's volume is what an
// administrator provides (the lab has no storage provisioner): it is applied
// as soon as the API server answers, while boot up goes on.
func upWithAddons(t *testing.T, k kube, inv string, w labWorld) {
	plan := dryRun(t, "boot up --dry-run with the add-ons on torn-down hosts", append([]string{"up", "-i", inv}, w.flags()...)...)
	start := time.Now()
	r := upApplyingPV(k, append([]string{"up", "-i", inv, "-o", "json"}, w.flags()...)...)
	evs := parseEvents(t, r.stdout)
	if r.code != ExitOK {
		t.Fatalf("boot up with the add-ons on torn-down hosts: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	phaseTimes(t, "boot up with the add-ons (after teardown)", evs)
	checkPlan(t, "boot up with the add-ons on torn-down hosts", plan, evs)
	t.Logf("boot up with the add-ons on torn-down hosts took %s", time.Since(start).Round(time.Second))
	chartsFromBundle(t, "boot up", r.stdout)
	for _, release := range []string{"cert-manager/cert-manager", "cert-manager/cluster-issuer", "traefik/traefik", "docker-registry/registry"} {
		if !slices.ContainsFunc(evs, func(e event) bool { return e.Phase == "addons" && e.Host == release && e.Status == "changed" }) {
			t.Errorf("boot up did not install the release %s", release)
		}
	}
	for _, check := range []string{"push", "pull", "dns"} {
		if !slices.ContainsFunc(evs, func(e event) bool { return e.Phase == "verify" && e.Host == check && e.Status == "ok" }) {
			t.Errorf("boot up's verify: no ok %s check", check)
		}
	}
}

// upApplyingPV runs boot with args (a boot up with the add-ons on hosts
// without a cluster) and, as soon as the cluster's API server answers,
// applies the registry's PersistentVolume (the lab has no storage class).
func upApplyingPV(k kube, args ...string) bootResult {
	done := startBoot(args...)
	pv := false
	for {
		select {
		case r := <-done:
			return r
		case <-time.After(2 * time.Second):
			if !pv {
				_, err := k.run(registryPV, "apply", "-f", "-")
				pv = err == nil
			}
		}
	}
}

// checkCluster runs the whole life of a cluster on the lab: up (its changes
// those of freshPlan, the dry run on the fresh hosts), a workload, a no-op
// re-run (whose dry run plans nothing), boot status (healthy), the
// certificates renewed, a cut SSH
// connection during a join and the re-run that recovers, a half-joined
// worker, a worker pruned after it left the inventory and joined again,
// teardown --verify (its dry run listing the
// DNS record and every release), a kubeadm init that fails on the torn-down
// hosts and the reset after it, up again from the torn-down hosts, a
// worker's reboot, and a teardown with a worker unreachable and the re-run
// that finishes it.
func checkCluster(t *testing.T, dir, bundleDir string, freshPlan []event) {
	invPath := filepath.Join(dir, "inventory.yaml")
	inv, err := inventory.Load(invPath)
	if err != nil {
		t.Fatal(err)
	}
	k := kube{t: t, bin: filepath.Join(bundleDir, "bin", "kubectl"), kubeconfig: inv.Cluster.Kubeconfig}

	checkPlan(t, "boot up --cluster-only on fresh hosts", freshPlan, bootUp(t, invPath, "boot up (fresh hosts)", "--cluster-only"))
	eventually(t, "four Ready nodes", time.Minute, func() string { return nodesReady(k) })
	eventually(t, "every system pod Running", 3*time.Minute, func() string { return podsRunning(k) })
	checkDocker(t, k, bundleDir)
	checkKubeletConfig(t, k, invPath)
	if st, err := os.Stat(inv.Cluster.Kubeconfig); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig %s: %v, want mode 0600", inv.Cluster.Kubeconfig, err)
	}
	if out := docker(t, "exec", "boot-lab-cp1", "helm", "version", "--short"); !strings.HasPrefix(out, "v3.") {
		t.Errorf("helm on the control plane: %q", out)
	}

	checkWorkload(t, k, pushWorkload(t, inv.Cluster.ImageRepository, filepath.Join(dir, "registry", "ca.crt")))
	w := loadLabWorld(t, dir)
	addonsInv := checkRegistry(t, k, dir, w)
	addonsInv = switchToDNS01(t, k, addonsInv, w, inv.Registry.Host, registryCertificate(t, k, w, inv.Registry.Host, "", time.Minute))

	// The whole of boot up (cluster and add-ons) again: nothing to do, no
	// new Helm revision, and the registry verified at the end.
	revisions := helmRevisions(k)
	plan := dryRun(t, "boot up --dry-run on the converged cluster", append([]string{"up", "-i", addonsInv}, w.flags()...)...)
	if p := planned(plan); len(p) > 0 {
		t.Errorf("boot up --dry-run on the converged cluster plans changes: %+v", p)
	}
	start := time.Now()
	evs := bootUp(t, addonsInv, "boot up again, with the add-ons (nothing to do)", w.flags()...)
	t.Logf("the no-op re-run of boot up with the add-ons took %s", time.Since(start).Round(time.Millisecond))
	if ch := changedEvents(evs); len(ch) > 0 {
		t.Errorf("the re-run changed something: %+v", ch)
	}
	if !slices.ContainsFunc(evs, func(e event) bool { return e.Phase == "verify" && e.Host == "pull" && e.Status == "ok" }) {
		t.Errorf("boot up did not verify the registry at its end")
	}
	if after := helmRevisions(k); after != revisions {
		t.Errorf("the re-run made new Helm revisions:\nbefore %s\nafter  %s", revisions, after)
	}
	checkBootStatus(t, addonsInv, w, "v1.37.2")
	checkVersionRules(t, invPath)
	checkCertsRenew(t, k, invPath)
	checkBackupRestore(t, k, invPath)

	// w3 leaves the cluster, so that boot up joins it again. Its traffic to
	// the API server is dropped meanwhile, so that kubeadm join waits in
	// discovery: the cut then surely falls during the join.
	caBefore := docker(t, "exec", "boot-lab-cp1", "sha256sum", "/etc/kubernetes/pki/ca.crt")
	k.must("", "drain", "w3", "--ignore-daemonsets", "--delete-emptydir-data", "--force", "--timeout=120s")
	k.must("", "delete", "node", "w3")
	docker(t, "exec", "boot-lab-w3", "kubeadm", "reset", "-f")
	block := []string{"OUTPUT", "-d", strings.Split(inv.Hosts[0].Address, ":")[0], "-p", "tcp", "--dport", "6443", "-j", "DROP"}
	docker(t, append([]string{"exec", "boot-lab-w3", "iptables", "-I"}, block...)...)
	cutSSHDuringJoin(t, invPath)
	docker(t, append([]string{"exec", "boot-lab-w3", "iptables", "-D"}, block...)...)
	evs = bootUp(t, invPath, "boot up after the cut join", "--cluster-only")
	joined := false
	for _, e := range evs {
		if e.Phase == "control plane" && e.Status == "changed" {
			t.Errorf("the re-run initialised the control plane again: %+v", e)
		}
		if e.Phase == "join workers" && e.Status == "changed" {
			if e.Host != "w3" {
				t.Errorf("the re-run joined %s, which had joined before", e.Host)
			}
			joined = true
			t.Logf("the re-run on w3: %s", e.Message)
		}
	}
	if !joined {
		t.Errorf("the re-run did not join w3 again")
	}
	if caAfter := docker(t, "exec", "boot-lab-cp1", "sha256sum", "/etc/kubernetes/pki/ca.crt"); caAfter != caBefore {
		t.Errorf("the cluster CA changed: the control plane was initialised again")
	}
	eventually(t, "four Ready nodes after the recovered join", 2*time.Minute, func() string { return nodesReady(k) })

	// A half-joined w3, as a join interrupted after it wrote the cluster CA
	// leaves it (kubelet.conf missing), while its Node object still says
	// Ready: boot resets it, deletes the stale Node and joins it again.
	docker(t, "exec", "boot-lab-w3", "kubeadm", "reset", "-f")
	halfJoin := exec.Command("docker", "exec", "-i", "boot-lab-w3", "sh", "-c", "mkdir -p /etc/kubernetes/pki && cat > /etc/kubernetes/pki/ca.crt")
	halfJoin.Stdin = strings.NewReader(docker(t, "exec", "boot-lab-cp1", "cat", "/etc/kubernetes/pki/ca.crt"))
	if out, err := halfJoin.CombinedOutput(); err != nil {
		t.Fatalf("half-join w3: %v\n%s", err, out)
	}
	evs = bootUp(t, invPath, "boot up on a half-joined worker", "--cluster-only")
	rejoined := false
	for _, e := range evs {
		if e.Phase == "join workers" && e.Status == "changed" && e.Host == "w3" && strings.HasPrefix(e.Message, "reset a half-joined node") {
			rejoined = true
		}
	}
	if !rejoined {
		t.Errorf("boot up did not reset and rejoin the half-joined w3")
	}
	eventually(t, "four Ready nodes after the half-joined worker", 2*time.Minute, func() string { return nodesReady(k) })
	checkPrune(t, k, invPath)

	// kube-proxy's pod on w2 left frozen (a DaemonSet's pod, so that the
	// drain leaves it to the reset). runc thaws a container's own cgroup to
	// kill it, but not its pod's: frozen so, its processes cannot be killed,
	// as those of a runc init frozen by a runc killed half-way cannot
	// (seen on the lab). Teardown thaws it to remove it.
	frozen := docker(t, "exec", "boot-lab-w2", "sh", "-c",
		`id=$(crictl ps -q --name kube-proxy) && f=$(find /sys/fs/cgroup/freezer/kubepods.slice -name "cri-containerd-$id.scope") && [ -n "$f" ] && echo FROZEN >"${f%/*}/freezer.state" && echo "${f%/*}"`)
	t.Logf("froze %s on w2", strings.TrimSpace(frozen))

	plan = dryRun(t, "boot teardown --dry-run", "teardown", "-i", addonsInv, "--verify", "--route53-endpoint", w.Route53Endpoint)
	wantPlanned := []string{"dns " + inv.Registry.Host}
	for _, release := range []string{"docker-registry/registry", "traefik/traefik", "cert-manager/cluster-issuer", "cert-manager/cert-manager"} {
		wantPlanned = append(wantPlanned, "addons remove "+release)
	}
	for _, want := range wantPlanned {
		if !slices.ContainsFunc(planned(plan), func(e event) bool { return e.Phase+" "+e.Host == want }) {
			t.Errorf("boot teardown --dry-run does not plan %q", want)
		}
	}
	code, stdout, stderr := runBoot(t, "teardown", "-i", addonsInv, "--yes", "--verify", "-o", "json", "--route53-endpoint", w.Route53Endpoint)
	if code != ExitOK {
		t.Fatalf("boot teardown --yes --verify: exit %d\n%s%s", code, stdout, stderr)
	}
	evs = parseEvents(t, stdout)
	phaseTimes(t, "boot teardown --verify", evs)
	checkPlan(t, "boot teardown --verify", plan, evs)
	if !slices.ContainsFunc(evs, func(e event) bool {
		return e.Phase == "reset" && e.Host == "w2" && strings.Contains(e.Message, "thaw frozen pod cgroups")
	}) {
		t.Errorf("teardown did not thaw the frozen pod cgroup on w2")
	}
	for _, release := range []string{"docker-registry/registry", "traefik/traefik", "cert-manager/cluster-issuer", "cert-manager/cert-manager"} {
		if !slices.ContainsFunc(evs, func(e event) bool {
			return e.Phase == "addons" && e.Host == "remove "+release && e.Status == "changed"
		}) {
			t.Errorf("teardown did not say it removed the release %s", release)
		}
	}
	if _, err := os.Stat(inv.Cluster.Kubeconfig); !os.IsNotExist(err) {
		t.Errorf("teardown left the kubeconfig: %v", err)
	}
	w.checkRecord(t, inv, false)
	if recs := challengeRecords(w.recordSets(t)); len(recs) > 0 {
		t.Errorf("teardown left challenge records in the zone: %s", strings.Join(recs, "; "))
	}

	failKubeadmInit(t, invPath)
	upWithAddons(t, k, addonsInv, w)
	eventually(t, "four Ready nodes after teardown and up", 2*time.Minute, func() string { return nodesReady(k) })

	// A reboot of w2 (its container restarted: systemd boots again, /run
	// is empty; Docker rewrites its DNS rules, so this comes after the
	// teardown's comparison): containerd and the kubelet come back on their
	// own and the node's pods run again.
	eventually(t, "every system pod Running before the reboot", 3*time.Minute, func() string { return podsRunning(k) })
	docker(t, "restart", "boot-lab-w2")
	eventually(t, "w2's pods running again after its reboot", 3*time.Minute, func() string {
		out := k.must("", "get", "pods", "-A", "--field-selector", "spec.nodeName=w2", "-o",
			`jsonpath={range .items[*]}{.metadata.name} {.status.containerStatuses[*].restartCount} {.status.containerStatuses[*].ready}{"\n"}{end}`)
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if f := strings.Fields(l); len(f) != 3 || f[1] == "0" || f[2] != "true" {
				return "w2 pods: " + strings.ReplaceAll(out, "\n", "; ")
			}
		}
		return nodesReady(k)
	})

	checkRegistryToken(t, k, checkRegistryS3(t, k, addonsInv, w), w)
	teardownUnreachableWorker(t, addonsInv, "--route53-endpoint", w.Route53Endpoint)
}
