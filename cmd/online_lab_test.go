//go:build lab

package cmd

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bootctl/boot/internal/testenv"
	"github.com/bootctl/boot/inventory"
	"github.com/bootctl/boot/lab"
)

// onlineVersions are the versions the online test pins (the lab's mirror
// serves the bundle's: Docker 29.8.1, containerd 2.4.2, Helm v3.22.0).
const (
	onlineDocker     = "29.8.1"
	onlineContainerd = "2.4.2"
	onlineHelm       = "3.22.0"
)

// TestBootOnlineOnLab runs boot's online path for real, on a lab whose w3
// runs Debian 13 (trixie) beside three bookworm hosts: packages.source
// online with the lab's mirrors of Docker's and Kubernetes' apt
// repositories and get.helm.sh (HTTPS by the lab CA, signed by the lab's
// key, versions pinned), every image under its upstream name through
// cluster.registryMirrors (the lab registry), and w3 reaching the mirrors
// only through the lab's forward proxy (its direct routes to them
// rejected; hosts[].proxy). Then: the dry run's plan is what the real run
// does, nodes Ready, the add-ons and the closing verify, the packages
// installed at their pinned versions and held, containerd's CRI on beside a
// working Docker, the proxy's log showing w3 (and only w3), a re-run that
// changes nothing, and teardown --verify --purge leaving every host as it
// was, the packages and repositories gone.
func TestBootOnlineOnLab(t *testing.T) {
	bundleDir := labBundle(t, testenv.BundleDir(t))
	start := time.Now()
	dir := labUp(t, bundleDir, "--debian", "w3=trixie")
	t.Logf("lab up (w3 trixie) in %s", time.Since(start).Round(time.Second))
	w := loadLabWorld(t, dir)
	if w.OnlineInventory == "" || w.Proxy == "" {
		t.Fatalf("the lab wrote no online inventory (%q) or has no proxy (%q)", w.OnlineInventory, w.Proxy)
	}
	i := slices.IndexFunc(w.Hosts, func(h lab.Host) bool { return h.Name == "w3" })
	if i < 0 {
		t.Fatalf("the lab has no w3: %+v", w.Hosts)
	}
	invPath := onlineInventory(t, w.OnlineInventory, w.Proxy, w.Hosts[i].Address)
	inv, err := inventory.Load(invPath)
	if err != nil {
		t.Fatal(err)
	}
	if ws := inv.Warnings(); len(ws) != 0 {
		t.Errorf("the online inventory draws warnings: %v", ws)
	}
	k := kube{t: t, bin: filepath.Join(bundleDir, "bin", "kubectl"), kubeconfig: inv.Cluster.Kubeconfig}

	// w3 reaches neither the mirror nor the registry but through the proxy
	// (kept until the end: the hosts' snapshots hold these rules).
	mirror, err := url.Parse(w.KubernetesMirror)
	if err != nil {
		t.Fatal(err)
	}
	registryHost, registryPort, _ := strings.Cut(w.Registry, ":")
	blocks := [][]string{
		{"OUTPUT", "-d", mirror.Hostname(), "-p", "tcp", "--dport", mirror.Port(), "-j", "REJECT"},
		{"OUTPUT", "-d", registryHost, "-p", "tcp", "--dport", registryPort, "-j", "REJECT"},
	}
	for _, b := range blocks {
		docker(t, append([]string{"exec", "boot-lab-w3", "iptables", "-I"}, b...)...)
	}
	if out, ok := onHost("w3", "curl -sS --max-time 5 -o /dev/null "+w.KubernetesMirror+"/ 2>&1"); ok {
		t.Fatalf("w3 reaches the mirror directly: %s", out)
	}
	docker(t, "exec", "boot-lab-w1", "install", "-d", "-o", "1000", "-g", "1000", "/var/lib/boot-e2e-registry")

	plan := dryRun(t, "boot up --dry-run online on fresh hosts", append([]string{"up", "-i", invPath}, w.flags()...)...)
	start = time.Now()
	r := upApplyingPV(k, append([]string{"up", "-i", invPath, "-o", "json"}, w.flags()...)...)
	evs := parseEvents(t, r.stdout)
	if r.code != ExitOK {
		t.Fatalf("boot up online: exit %d\n%s%s\n%s", r.code, r.stdout, r.stderr, proxyLog(w.Dir))
	}
	phaseTimes(t, "boot up online (fresh hosts, with the add-ons)", evs)
	t.Logf("boot up online with the add-ons took %s", time.Since(start).Round(time.Second))
	checkPlan(t, "boot up online", plan, evs)
	for _, check := range []string{"push", "pull", "dns"} {
		if !slices.ContainsFunc(evs, func(e event) bool { return e.Phase == "verify" && e.Host == check && e.Status == "ok" }) {
			t.Errorf("boot up's verify: no ok %s check", check)
		}
	}
	eventually(t, "four Ready nodes", time.Minute, func() string { return nodesReady(k) })
	eventually(t, "every system pod Running", 3*time.Minute, func() string { return podsRunning(k) })
	checkOnlineHosts(t)
	checkDocker(t, k, bundleDir)
	checkDockerMirror(t, w.Registry)
	checkProxied(t, w.Dir, w.Hosts)

	// A re-run: nothing planned, nothing changed.
	if p := planned(dryRun(t, "boot up --dry-run online, converged", append([]string{"up", "-i", invPath}, w.flags()...)...)); len(p) > 0 {
		t.Errorf("the dry run on the converged online cluster plans changes: %+v", p)
	}
	start = time.Now()
	if ch := changedEvents(bootUp(t, invPath, "boot up online again (nothing to do)", w.flags()...)); len(ch) > 0 {
		t.Errorf("the online re-run changed something: %+v", ch)
	}
	t.Logf("the online no-op re-run with the add-ons took %s", time.Since(start).Round(time.Millisecond))

	// Teardown with --purge: every host as before boot up, the packages and
	// their repositories gone.
	code, stdout, stderr := runBoot(t, "teardown", "-i", invPath, "--yes", "--verify", "--purge", "-o", "json", "--route53-endpoint", w.Route53Endpoint)
	evs = parseEvents(t, stdout)
	phaseTimes(t, "boot teardown --verify --purge (online)", evs)
	if code != ExitOK {
		t.Fatalf("boot teardown --verify --purge: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, h := range []string{"cp1", "w1", "w2", "w3"} {
		out, _ := onHost(h, "dpkg-query -W -f '${Package} ${Status}\\n' docker-ce docker-ce-cli containerd.io kubeadm kubelet kubectl cri-tools kubernetes-cni 2>/dev/null | grep -w installed; "+
			"for f in /etc/apt/sources.list.d/docker.list /etc/apt/sources.list.d/kubernetes.list /etc/apt/keyrings/docker.asc /etc/apt/keyrings/kubernetes-apt-keyring.asc /etc/boot /etc/apt/apt.conf.d/90boot-proxy /etc/containerd /var/lib/docker; do [ -e $f ] && echo $f; done; true")
		if strings.TrimSpace(out) != "" {
			t.Errorf("%s after teardown --purge still has:\n%s", h, out)
		}
	}
	for _, b := range blocks {
		docker(t, append([]string{"exec", "boot-lab-w3", "iptables", "-D"}, b...)...)
	}
}

// onlineInventory writes, beside the lab's online inventory, one that also
// pins the packages' versions and sends w3 (at address w3) through the
// proxy.
func onlineInventory(t *testing.T, path, proxy, w3 string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for _, e := range [][2]string{
		{"  source: online\n", fmt.Sprintf("  source: online\n  versions: {docker: %q, containerd: %q, helm: %q}\n", onlineDocker, onlineContainerd, onlineHelm)},
		{fmt.Sprintf("    address: %q\n", w3), fmt.Sprintf("    address: %q\n    proxy: {httpProxy: %q, httpsProxy: %q}\n", w3, proxy, proxy)},
	} {
		if strings.Count(text, e[0]) != 1 {
			t.Fatalf("the lab's online inventory %s has not exactly one %q", path, e[0])
		}
		text = strings.Replace(text, e[0], e[1], 1)
	}
	out := filepath.Join(filepath.Dir(path), "inventory-online-proxy.yaml")
	if err := os.WriteFile(out, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkOnlineHosts checks every host's packages: Docker's and
// Kubernetes' from the mirror at the pinned versions of its Debian
// release, Kubernetes' held, containerd's CRI plugin serving the kubelet.
func checkOnlineHosts(t *testing.T) {
	t.Helper()
	for _, h := range []string{"cp1", "w1", "w2", "w3"} {
		release := map[bool]string{true: "13~trixie", false: "12~bookworm"}[h == "w3"]
		out, ok := onHost(h, "dpkg-query -W -f '${Package} ${Version}\\n' docker-ce docker-ce-cli containerd.io kubeadm kubelet kubectl cri-tools; apt-mark showhold; crictl info -o go-template --template '{{range .status.conditions}}{{.type}}={{.status}} {{end}}'; echo; if [ -x /usr/local/bin/helm ]; then helm version --short; fi")
		want := []string{
			"docker-ce 5:" + onlineDocker + "-1~debian." + release, "docker-ce-cli 5:" + onlineDocker + "-1~debian." + release,
			"containerd.io " + onlineContainerd + "-1~debian." + release,
			"kubeadm 1.37.2-1.1", "kubelet 1.37.2-1.1", "kubectl 1.37.2-1.1", "cri-tools 1.37.0",
			"\nkubeadm\nkubectl\nkubelet\n", "RuntimeReady=true NetworkReady=true", "v" + onlineHelm,
		}
		if h != "cp1" {
			want = want[:len(want)-1] // helm is on the control plane only
		}
		for _, w := range want {
			if !ok || !strings.Contains(out, w) {
				t.Errorf("%s: want %q in:\n%s", h, w, out)
			}
		}
	}
}

// checkDockerMirror checks Docker's daemon on every host: the lab registry
// is its docker.io mirror (host prep's daemon.json), and it pulls Redis by
// its Docker Hub name through it (w3 through the proxy).
func checkDockerMirror(t *testing.T, registry string) {
	t.Helper()
	for _, h := range []string{"cp1", "w1", "w2", "w3"} {
		out, ok := onHost(h, "docker info --format '{{json .RegistryConfig.Mirrors}}' && docker pull -q redis:7.4.2-alpine && docker image rm -f redis:7.4.2-alpine >/dev/null")
		if !ok || !strings.Contains(out, "https://"+registry+"/") || !strings.Contains(out, "docker.io/library/redis:7.4.2-alpine") {
			t.Errorf("%s: Docker's docker.io mirror: %s", h, out)
		}
	}
}

// checkProxied checks the proxy's log: w3 opened tunnels through it to the
// mirror and the registry, no other host did.
func checkProxied(t *testing.T, dir string, hosts []lab.Host) {
	t.Helper()
	log := proxyLog(dir)
	connects := regexp.MustCompile(`Connect \(file descriptor \d+\): (\S+)`).FindAllStringSubmatch(log, -1)
	seen := map[string]int{}
	for _, c := range connects {
		seen[c[1]]++
	}
	for _, h := range hosts {
		switch n := seen[h.Address]; {
		case h.Name == "w3" && n == 0:
			t.Errorf("w3 (%s) never went through the proxy:\n%s", h.Address, log)
		case h.Name != "w3" && n > 0:
			t.Errorf("%s (%s) went through the proxy %d times: only w3 has one", h.Name, h.Address, n)
		}
	}
	for _, port := range []string{":8443", ":5000"} {
		if !strings.Contains(log, "CONNECT ") || !strings.Contains(log, port) {
			t.Errorf("the proxy tunnelled nothing to port %s:\n%s", port, log)
		}
	}
	t.Logf("the proxy saw %d connections: %v", len(connects), seen)
}

// proxyLog is the lab proxy's log.
func proxyLog(dir string) string {
	data, err := os.ReadFile(filepath.Join(dir, "proxy", "tinyproxy.log"))
	if err != nil {
		return err.Error()
	}
	return string(data)
}
