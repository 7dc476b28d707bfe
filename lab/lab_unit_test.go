package lab

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/bootctl/boot/bundle"
	"github.com/bootctl/boot/internal/testenv"
	"github.com/bootctl/boot/inventory"
)

func TestRoutedPrefixesAndSubnetChoice(t *testing.T) {
	// /proc/net/route with a default route, eth0 192.0.2.0/24, and a bridge on 172.29.40.0/24.
	route := "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
		"eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n" +
		"eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n" +
		"br0\t00281DAC\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n" +
		"br1\t0000A0AC\t00000000\t0001\t0\t0\t0\t0000F0FF\t0\t0\t0\n"
	path := filepath.Join(t.TempDir(), "route")
	if err := os.WriteFile(path, []byte(route), 0o644); err != nil {
		t.Fatal(err)
	}
	routes, err := routedPrefixes(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"192.0.2.0/24", "172.29.40.0/24", "172.160.0.0/12"}
	if len(routes) != len(want) {
		t.Fatalf("routes = %v, want %v", routes, want)
	}
	for i, r := range routes {
		if r.String() != want[i] {
			t.Errorf("route %d = %s, want %s", i, r, want[i])
		}
	}
	got, err := chooseSubnet(subnetCandidates(), routes)
	if err != nil || got.String() != "172.29.41.0/24" {
		t.Errorf("chooseSubnet = %v, %v; want 172.29.41.0/24 (40 is taken)", got, err)
	}
	for _, c := range subnetCandidates() {
		if !netip.MustParsePrefix("172.16.0.0/12").Contains(c.Addr()) {
			t.Errorf("candidate %s is outside 172.16.0.0/12", c)
		}
	}
	if _, err := chooseSubnet(subnetCandidates(), []netip.Prefix{netip.MustParsePrefix("172.29.0.0/16")}); err == nil {
		t.Error("no error when every candidate is routed")
	}
	if _, err := routedPrefixes(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("no error for a missing route file")
	}
}

func TestAptMirrorParsing(t *testing.T) {
	dir := t.TempDir()
	deb822 := filepath.Join(dir, "debian.sources")
	os.WriteFile(deb822, []byte("Types: deb-src\nURIs: http://src.invalid/debian\nSuites: bookworm\n\n"+
		"Types: deb\n# a comment: here\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\nComponents: main\n"), 0o644)
	if got := mirrorFromDeb822(deb822, "bookworm"); got != "http://mirror.invalid/debian" {
		t.Errorf("deb822 mirror = %q", got)
	}
	list := filepath.Join(dir, "sources.list")
	os.WriteFile(list, []byte("# deb http://old.invalid/debian bookworm main\n"+
		"deb http://sec.invalid/debian-security bookworm-security main\n"+
		"deb [arch=amd64 signed-by=/k.gpg] http://list.invalid/debian bookworm main\n"), 0o644)
	if got := mirrorFromList(list, "bookworm"); got != "http://list.invalid/debian" {
		t.Errorf("sources.list mirror = %q", got)
	}
	if got := mirrorFromDeb822(deb822, "trixie") + mirrorFromList(list, "trixie"); got != "" {
		t.Errorf("trixie's mirror = %q from files naming bookworm only", got)
	}
}

func TestKnownHostsLines(t *testing.T) {
	dir := t.TempDir()
	var pubs []string
	for i := 0; i < 2; i++ {
		line, err := ensureKey(filepath.Join(dir, "key"+string(rune('a'+i))))
		if err != nil {
			t.Fatal(err)
		}
		pubs = append(pubs, string(line))
	}
	info, err := os.Stat(filepath.Join(dir, "keya"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode %v, %v", info.Mode(), err)
	}
	// A second call keeps the key.
	again, err := ensureKey(filepath.Join(dir, "keya"))
	if err != nil || string(again) != pubs[0] {
		t.Fatalf("ensureKey made a new key: %v", err)
	}
	lines, err := knownHostsLines("172.29.40.10", strings.Join(pubs, ""))
	if err != nil || len(lines) != 2 {
		t.Fatalf("lines = %v, %v", lines, err)
	}
	khFile := filepath.Join(dir, "known_hosts")
	os.WriteFile(khFile, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	cb, err := knownhosts.New(khFile)
	if err != nil {
		t.Fatal(err)
	}
	key, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(pubs[1]))
	addr := &fakeAddr{"172.29.40.10:22"}
	if err := cb("172.29.40.10:22", addr, key); err != nil {
		t.Errorf("recorded key refused: %v", err)
	}
	if err := cb("172.29.40.11:22", &fakeAddr{"172.29.40.11:22"}, key); err == nil {
		t.Error("key accepted for another address")
	}
	if _, err := knownHostsLines("h", "garbage"); err == nil {
		t.Error("no error for garbage host keys")
	}
	if _, err := knownHostsLines("h", ""); err == nil {
		t.Error("no error for no host keys")
	}
}

type fakeAddr struct{ s string }

func (a *fakeAddr) Network() string { return "tcp" }
func (a *fakeAddr) String() string  { return a.s }

func testLabValue(dir string) *Lab {
	l := &Lab{
		Dir: dir, Subnet: "172.29.40.0/24", Registry: "172.29.40.2:5000", Gateway: "172.29.40.1",
		KnownHosts: filepath.Join(dir, "known_hosts"), KeyPath: filepath.Join(dir, "id_ed25519"),
		Inventory: filepath.Join(dir, "inventory.yaml"), RegistryCA: filepath.Join(dir, "registry", "ca.crt"),
		ACMEDirectory: "https://172.29.40.1:14000/dir", ACMERoot: filepath.Join(dir, acmeRootFile),
		Route53Endpoint: "http://172.29.40.1:5005", Route53ZoneID: "Z0LAB", DNSServer: "172.29.40.1:53",
	}
	l.ACMECA = l.RegistryCA
	for _, h := range hostLayout {
		l.Hosts = append(l.Hosts, Host{Name: h.name, Role: h.role, Address: l.addr(h.octet), Container: containerName(h.name)})
	}
	return l
}

func TestInventoryLoads(t *testing.T) {
	for _, capWrap := range []bool{false, true} {
		dir := t.TempDir()
		bundleDir := filepath.Join(dir, "my bundle: \"quoted\"")
		l := testLabValue(dir)
		l.CapWrap = capWrap
		for _, f := range []string{l.KnownHosts, l.KeyPath} {
			os.WriteFile(f, nil, 0o600)
		}
		if err := l.writeCerts(); err != nil {
			t.Fatal(err)
		}
		os.Mkdir(bundleDir, 0o755)
		text, err := l.renderInventory(bundleDir, "v1.37.2", nil, time.Unix(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(l.Inventory, text, 0o644); err != nil {
			t.Fatal(err)
		}
		inv, err := inventory.Load(l.Inventory)
		if err != nil {
			t.Fatalf("inventory does not load: %v\n%s", err, text)
		}
		if inv.Packages.Source != inventory.SourceBundle || inv.Packages.Bundle != bundleDir {
			t.Errorf("packages = %+v", inv.Packages)
		}
		want := ""
		if capWrap {
			want = HostWrapperPath
		}
		if inv.Packages.RuntimeBinary != want {
			t.Errorf("capWrap %v: runtimeBinary = %q, want %q", capWrap, inv.Packages.RuntimeBinary, want)
		}
		if inv.Cluster.ImageRepository != "172.29.40.2:5000" || inv.SSH.HostKeyPolicy != inventory.HostKeyStrict ||
			inv.SSH.KnownHosts != l.KnownHosts || len(inv.Hosts) != 4 || inv.Hosts[3].Address != "172.29.40.13" {
			t.Errorf("inventory = %+v", inv)
		}
		r := inv.Registry
		if r.Host != LabRegistryHost || r.Issuer != inventory.IssuerACME || r.ACMEEmail != "admin@lab.test" ||
			r.ACME.Server != l.ACMEDirectory || r.ACME.CAFile != l.ACMECA || r.ACME.Solver != inventory.SolverHTTP01 {
			t.Errorf("registry = %+v", r)
		}
		if inv.DNS.Provider != inventory.DNSRoute53 || inv.DNS.Zone != LabZone {
			t.Errorf("dns = %+v", inv.DNS)
		}
		for _, want := range []string{"--route53-endpoint http://172.29.40.1:5005", "zone lab.test = Z0LAB", "--dns-server 172.29.40.1:53",
			l.ACMERoot, filepath.Join(dir, route53EnvFile)} {
			if !strings.Contains(string(text), want) {
				t.Errorf("the inventory's comments do not say %q:\n%s", want, text)
			}
		}
	}
}

func TestSetRuntimeConfig(t *testing.T) {
	out, err := setRuntimeConfig([]byte(`{"log-level":"warn","runtimes":{"other":{"path":"/x"}}}`), "r", "/w")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		LogLevel string                       `json:"log-level"`
		Runtimes map[string]map[string]string `json:"runtimes"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.LogLevel != "warn" || cfg.Runtimes["other"]["path"] != "/x" || cfg.Runtimes["r"]["path"] != "/w" {
		t.Errorf("config = %s", out)
	}
	if out, err := setRuntimeConfig(nil, "r", "/w"); err != nil || !strings.Contains(string(out), `"/w"`) {
		t.Errorf("empty config: %s %v", out, err)
	}
	// Removing keeps the others and spells out "runtimes", even when empty.
	out, err = setRuntimeConfig([]byte(`{"runtimes":{"r":{"path":"/w"}}}`), "r", "")
	if err != nil || strings.TrimSpace(string(out)) != "{\n  \"runtimes\": {}\n}" {
		t.Errorf("removed: %s %v", out, err)
	}
	if _, err := setRuntimeConfig([]byte(`{`), "r", "/w"); err == nil || !strings.Contains(err.Error(), daemonJSONPath) {
		t.Errorf("broken config: %v", err)
	}
}

func TestDaemonFlagsKeepGlobalSettings(t *testing.T) {
	flags := strings.Join(daemonFlags("/lab", ""), " ")
	for _, f := range []string{"--iptables=false", "--ip-forward=false", "--ip-masq=false", "--bridge=none", "--data-root /lab/docker"} {
		if !strings.Contains(flags, f) {
			t.Errorf("dockerd flags %q lack %s", flags, f)
		}
	}
	if strings.Contains(flags, "--add-runtime") {
		t.Error("runtime added without a wrapper")
	}
	if !strings.Contains(strings.Join(daemonFlags("/lab", "/lab/bin/w"), " "), "--add-runtime "+capWrapRuntime+"=/lab/bin/w") {
		t.Error("wrapper runtime missing")
	}
}

func TestEnsureCommands(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "present"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	if err := ensureCommands(context.Background(), map[string]string{"present": "pkg-present"}, logger(nil)); err != nil {
		t.Errorf("present command: %v", err)
	}
	// No apt-get on this PATH: the error names the missing packages.
	err := ensureCommands(context.Background(), map[string]string{"present": "pkg-present", "absent-tool": "pkg-absent"}, logger(nil))
	if err == nil || !strings.Contains(err.Error(), "pkg-absent") || strings.Contains(err.Error(), "pkg-present") {
		t.Errorf("err = %v; want it to name pkg-absent only", err)
	}
}

// TestUnmountUnder: mounts left below a folder (as a stopped dockerd leaves
// its network namespaces) are unmounted, deepest first, so the folder can
// be removed; mounts elsewhere are left alone.
func TestUnmountUnder(t *testing.T) {
	testenv.Root(t, "mounting")
	dir := t.TempDir()
	outer, inner := filepath.Join(dir, "a"), filepath.Join(dir, "a", "b")
	if err := os.MkdirAll(outer, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", outer, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(inner, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", inner, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	if err := unmountUnder(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatalf("still busy after unmountUnder: %v", err)
	}
}

// TestOnlineInventoryLoads: the online inventory names the lab's package
// mirrors (CA and key), the lab registry as every upstream registry's
// mirror, boot's image by digest and the bundle's charts, and loads.
func TestOnlineInventoryLoads(t *testing.T) {
	dir := t.TempDir()
	l := testLabValue(dir)
	for _, f := range []string{l.KnownHosts, l.KeyPath} {
		os.WriteFile(f, nil, 0o600)
	}
	if err := l.writeCerts(); err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile("../inventory/testdata/mirror-key.asc")
	if err != nil {
		t.Fatal(err)
	}
	l.MirrorKey = filepath.Join(dir, "mirror.asc")
	os.WriteFile(l.MirrorKey, key, 0o644)
	base := "https://172.29.40.1:8443"
	l.DockerMirror, l.KubernetesMirror, l.HelmMirror = base+"/docker", base+"/kubernetes", base+"/helm"
	bundleDir := filepath.Join(dir, "bundle")
	os.MkdirAll(filepath.Join(bundleDir, "charts"), 0o755)
	chart := filepath.Join(bundleDir, "charts", "traefik-41.3.0.tgz")
	os.WriteFile(chart, []byte("chart"), 0o644)
	digest := "sha256:" + strings.Repeat("ab", 32)
	online := &onlineLab{Registries: l.mirrored(),
		MaintenanceImage: l.Registry + "/bootctl/boot@" + digest,
		Charts:           []bundle.Chart{{Slot: "traefik", Name: "traefik", Version: "41.3.0", Path: chart}}}
	text, err := l.renderInventory(bundleDir, "v1.37.2", online, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, onlineInventoryFile)
	os.WriteFile(path, text, 0o644)
	inv, err := inventory.Load(path)
	if err != nil {
		t.Fatalf("the online inventory does not load: %v\n%s", err, text)
	}
	p := inv.Packages
	if p.Source != inventory.SourceOnline || p.Mirrors.Docker.URL != l.DockerMirror || p.Mirrors.Kubernetes.KeyFile != l.MirrorKey ||
		p.Mirrors.Helm.CAFile != l.RegistryCA || p.Mirrors.Helm.KeyFile != "" {
		t.Errorf("packages = %+v", p)
	}
	if inv.Cluster.ImageRepository != "" || len(inv.Cluster.RegistryMirrors) != 4 {
		t.Errorf("cluster = %+v", inv.Cluster)
	}
	for i, rm := range inv.Cluster.RegistryMirrors {
		want := "https://172.29.40.2:5000/v2"
		if rm.Registry == "docker.io" {
			want = "https://172.29.40.2:5000" // Docker's daemon takes it too
		}
		if rm.Registry != inventory.OnlineRegistries[i] || len(rm.Endpoints) != 1 || rm.Endpoints[0] != want || rm.CAFile != l.RegistryCA {
			t.Errorf("registryMirrors[%d] = %+v", i, rm)
		}
	}
	if inv.Registry.Maintenance.Image != "172.29.40.2:5000/bootctl/boot@"+digest || inv.Addons.Traefik.Path != chart {
		t.Errorf("maintenance image %q, traefik chart %q", inv.Registry.Maintenance.Image, inv.Addons.Traefik.Path)
	}
	if w := inv.Warnings(); len(w) != 0 {
		t.Errorf("warnings: %v", w)
	}
}
