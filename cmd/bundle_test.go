package cmd

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"

	"github.com/bootctl/boot/addons"
	"github.com/bootctl/boot/bundle"
	"github.com/bootctl/boot/internal/testenv"
	"github.com/bootctl/boot/inventory"
)

// helloPath is the test chart's folder, absolute (an inventory's relative
// paths are relative to its own folder).
func helloPath(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs("../addons/testdata/charts/hello")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// bundleInventory writes an inventory whose addons section is addonsYAML and
// returns its path.
func bundleInventory(t *testing.T, addonsYAML string) string {
	t.Helper()
	return testenv.InventoryFile(t, bundleInventoryText+addonsYAML)
}

// bundleInventoryText is the inventory of bundleInventory without an addons
// section.
const bundleInventoryText = `apiVersion: boot/v1alpha1
kind: Cluster
metadata:
  name: lab
hosts:
  - {name: cp1, address: 192.0.2.10, role: control-plane}
  - {name: w1, address: 192.0.2.11, role: worker}
registry:
  host: registry.example.com
  issuer: selfsigned
`

// chartSlots describes each chart as "slot name version".
func chartSlots(charts []bundle.ChartArchive) []string {
	var out []string
	for _, c := range charts {
		out = append(out, c.Slot+" "+c.Name+" "+c.Version)
	}
	return out
}

// helloArchive packages the test chart at version and returns its path.
func helloArchive(t *testing.T, version string) string {
	t.Helper()
	c, err := loader.LoadDir(helloPath(t))
	if err != nil {
		t.Fatal(err)
	}
	c.Metadata.Version = version
	p, err := chartutil.Save(c, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// nonEmptyDir is an --out that Build refuses at once (not empty, no
// manifest), so a command line test sees whether Build was reached without
// building anything.
func nonEmptyDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "keep"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

const refused = "is not empty and holds no manifest.json: refusing to replace it"

func TestBundleBuildHelp(t *testing.T) {
	code, stdout, _ := runBoot(t, "bundle", "build", "--help")
	if code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{
		"--addon-charts", "--addon-charts=false", "-i inventory.yaml", "addons.certManager, addons.ingressNginx and\naddons.traefik",
		"a chart with a path is packed", "ingress-nginx 4.15.1", "cert-manager v1.21.1", "traefik 41.3.0",
		"cluster.imageRepository", "before the long build starts",
		"--upstream", "../shared/upstream", "http(s) base URL", "mirror", "sha256", "GitHub's own tag tarballs are other files",
		"quay.io/jetstack/cert-manager-*:v1.21.1", "naming the\nfile and the sha256 expected",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("bundle build --help does not say %q:\n%s", want, stdout)
		}
	}
}

// TestBundleBuildKubernetesFlag: --kubernetes takes a comma-separated
// list; a bad one is a command-line error naming the flag, before anything
// is loaded or built; a good one, in any order, reaches the build.
func TestBundleBuildKubernetesFlag(t *testing.T) {
	code, stdout, _ := runBoot(t, "bundle", "build", "--help")
	for _, want := range []string{"comma-separated", "v1.36.3,v1.37.2", "the newest is installed by default", "upgrading it in place", "kubernetes/<version>/bin", "--out dist/bundle-upgrade"} {
		if code != ExitOK || !strings.Contains(stdout, want) {
			t.Errorf("bundle build --help: exit %d, does not say %q", code, want)
		}
	}
	for flag, want := range map[string]string{
		"v1.37":                   `--kubernetes v1.37: "v1.37" is not a Kubernetes version vMAJOR.MINOR.PATCH, e.g. v1.37.2`,
		"":                        `--kubernetes : "" is not a Kubernetes version`,
		"v1.36.3,,v1.37.2":        `--kubernetes v1.36.3,,v1.37.2: "" is not a Kubernetes version`,
		"v1.36.3, v1.37.2":        `" v1.37.2" is not a Kubernetes version`,
		"v1.37.2,v1.36.3,v1.37.2": "--kubernetes v1.37.2,v1.36.3,v1.37.2: v1.37.2 given twice",
		"1.37.2":                  `"1.37.2" is not a Kubernetes version`,
	} {
		code, stdout, stderr := runBoot(t, "bundle", "build", "--kubernetes", flag, "--upstream", testenv.ClosedAddr(t), "--out", nonEmptyDir(t))
		if code != ExitInvalid || !strings.Contains(stderr, want) || strings.Contains(stderr, "upstream") || strings.Contains(stdout, "bundle ready") {
			t.Errorf("--kubernetes %q: exit %d, want %d and %q before anything else:\n%s%s", flag, code, ExitInvalid, want, stdout, stderr)
		}
	}
	code, _, stderr := runBoot(t, "bundle", "build", "--kubernetes", "v1.37.2,v1.35.4,v1.36.3", "--addon-charts=false", "--out", nonEmptyDir(t))
	if code != ExitFailure || !strings.Contains(stderr, refused) {
		t.Errorf("three versions: exit %d, want the build reached (and the output folder refused):\n%s", code, stderr)
	}
}

// TestBundleAddonsPins: without -i bundle build packs exactly what an
// inventory without an addons section pins; with -i, that inventory's pins.
func TestBundleAddonsPins(t *testing.T) {
	inv := testenv.Inventory(t, bundleInventoryText)
	a, err := (&globals{}).bundleAddons()
	if err != nil || a != inv.Addons {
		t.Errorf("without -i: %+v %v, an inventory without addons pins %+v", a, err, inv.Addons)
	}
	if a.IngressNginx.Version != "4.15.1" || a.CertManager.Version != "v1.21.1" || a.Traefik.Version != "41.3.0" {
		t.Errorf("without -i: %+v, want ingress-nginx 4.15.1, cert-manager v1.21.1 and traefik 41.3.0", a)
	}
	p := bundleInventory(t, "addons:\n  ingressNginx: {repository: https://charts.example.com, name: ingress-nginx, version: 4.14.0}\n")
	a, err = (&globals{Inventory: p}).bundleAddons()
	if err != nil || a.IngressNginx.Version != "4.14.0" || a.CertManager != inv.Addons.CertManager {
		t.Errorf("with -i: %+v %v", a, err)
	}
}

// TestLoadAddonCharts gathers the charts through addons.ChartLoader: path
// charts (a folder, packaged, and a .tgz as it is), and errors that name the
// inventory field, the source and --addon-charts=false.
func TestLoadAddonCharts(t *testing.T) {
	ctx := context.Background()
	helloChart := helloPath(t)
	tgz := helloArchive(t, "0.2.0")
	inv := testenv.Inventory(t, bundleInventoryText+fmt.Sprintf("addons:\n  ingressNginx: {path: %s}\n  certManager: {path: %s, version: 0.2.0}\n  traefik: {path: %s}\n", helloChart, tgz, tgz))
	var log bytes.Buffer
	charts, err := loadAddonCharts(ctx, inv.Addons, addons.ChartLoader{CacheDir: t.TempDir()}, nil, &log)
	if err != nil {
		t.Fatal(err)
	}
	got := chartSlots(charts)
	if want := []string{"certManager hello 0.2.0", "ingressNginx hello 0.1.0", "traefik hello 0.2.0"}; !slices.Equal(got, want) {
		t.Fatalf("charts %q, want %q", got, want)
	}
	raw, err := os.ReadFile(tgz)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(charts[0].Data, raw) {
		t.Error("the .tgz chart was not packed as it is")
	}
	c, err := loader.LoadArchive(bytes.NewReader(charts[1].Data))
	if err != nil || c.Metadata.Name != "hello" || c.Metadata.Version != "0.1.0" {
		t.Errorf("the folder chart's archive: %v", err)
	}
	for _, want := range []string{"bundle: chart addons.certManager: hello 0.2.0 from " + tgz, "bundle: chart addons.ingressNginx: hello 0.1.0 from " + helloChart} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log does not say %q:\n%s", want, log.String())
		}
	}

	closed := testenv.ClosedAddr(t)
	for _, tc := range []struct {
		name, addons string
		want         []string
	}{
		{"unreachable repository", "addons:\n  ingressNginx: {repository: http://" + closed + "/charts, insecureHTTP: true, name: ingress-nginx, version: 4.15.1}\n  certManager: {path: " + helloChart + "}\n",
			[]string{"bundle: add-on chart addons.ingressNginx (http://" + closed + "/charts ingress-nginx 4.15.1): addons.ingressNginx.repository: chart repository index", "connection refused"}},
		{"unreachable registry", "addons:\n  ingressNginx: {path: " + helloChart + "}\n  certManager: {repository: oci://" + closed + "/charts/cert-manager, version: v1.19.1}\n",
			[]string{"bundle: add-on chart addons.certManager (oci://" + closed + "/charts/cert-manager:v1.19.1): addons.certManager.version: pulling chart"}},
		{"path at another version", "addons:\n  ingressNginx: {path: " + helloChart + ", version: 0.3.0}\n  certManager: {path: " + helloChart + "}\n",
			[]string{"addons.ingressNginx.version: chart", "has version 0.1.0, not the pinned 0.3.0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv := testenv.Inventory(t, bundleInventoryText+tc.addons)
			_, err = loadAddonCharts(ctx, inv.Addons, addons.ChartLoader{CacheDir: t.TempDir()}, nil, &bytes.Buffer{})
			if err == nil {
				t.Fatal("no error")
			}
			for _, want := range append(tc.want, "--addon-charts=false") {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}

// TestBundleBuildAddonCharts runs boot bundle build up to the point where
// Build refuses its --out folder (which it checks before building
// anything): the charts are loaded before that, an unreachable one stops
// the command naming the field and the hint, and --addon-charts=false skips
// them.
func TestBundleBuildAddonCharts(t *testing.T) {
	helloChart := helloPath(t)
	closed := testenv.ClosedAddr(t)
	unreachable := bundleInventory(t, "addons:\n  ingressNginx: {repository: http://"+closed+"/charts, insecureHTTP: true, name: ingress-nginx, version: 4.15.1}\n  certManager: {path: "+helloChart+"}\n")

	code, stdout, stderr := runBoot(t, "bundle", "build", "-i", unreachable, "--out", nonEmptyDir(t))
	if code != ExitFailure {
		t.Errorf("unreachable chart: exit %d, want %d", code, ExitFailure)
	}
	for _, want := range []string{"addons.ingressNginx", "http://" + closed + "/charts ingress-nginx 4.15.1", "--addon-charts=false"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("unreachable chart: stderr does not say %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, refused) || strings.Contains(stdout, "bundle ready") {
		t.Errorf("the build was reached before the charts were loaded:\n%s%s", stdout, stderr)
	}

	code, _, stderr = runBoot(t, "bundle", "build", "-i", unreachable, "--addon-charts=false", "--out", nonEmptyDir(t))
	if code != ExitFailure || !strings.Contains(stderr, refused) || strings.Contains(stderr, "chart") {
		t.Errorf("--addon-charts=false: exit %d, want the build reached without charts:\n%s", code, stderr)
	}

	paths := bundleInventory(t, fmt.Sprintf("addons:\n  ingressNginx: {path: %s}\n  certManager: {path: %s}\n  traefik: {path: %s}\n", helloChart, helloArchive(t, "0.2.0"), helloChart))
	code, _, stderr = runBoot(t, "bundle", "build", "-i", paths, "--out", nonEmptyDir(t))
	if code != ExitFailure || !strings.Contains(stderr, "bundle: chart addons.certManager: hello 0.2.0 from") ||
		!strings.Contains(stderr, "bundle: chart addons.ingressNginx: hello 0.1.0 from") || !strings.Contains(stderr, refused) {
		t.Errorf("path charts: exit %d, want both charts loaded, then the build reached:\n%s", code, stderr)
	}

	bad := bundleInventory(t, "addons:\n  ingressNginx: {repository: http://"+closed+"/charts, insecureHTTP: true, name: ingress-nginx, version: latest}\n  certManager: {path: "+helloChart+"}\n")
	if code, _, stderr := runBoot(t, "bundle", "build", "-i", bad, "--out", nonEmptyDir(t)); code != ExitInvalid || !strings.Contains(stderr, "addons.ingressNginx.version") {
		t.Errorf("invalid inventory: exit %d\n%s", code, stderr)
	}
}

// upstreamDir is the folder of release archives beside the project
// (../shared/upstream from its root), as make bundle passes it.
func upstreamDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "shared", "upstream"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "cert-manager-v1.21.1.tar.gz")); err != nil {
		testenv.Need(t, "the upstream release archives are not beside the project (%v)", err)
	}
	return dir
}

// TestLoadAddonChartsFromUpstream: with the release archives, a pin of
// exactly a chart they hold is packed from them (boot's defaults: all
// three, without any download); another version goes to the loader, a
// path stays a path.
func TestLoadAddonChartsFromUpstream(t *testing.T) {
	ctx := context.Background()
	dir := upstreamDir(t)
	u, err := bundle.LoadUpstream(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	// boot's default pins, their repositories a closed port: nothing may
	// be downloaded.
	closed := testenv.ClosedAddr(t)
	a := inventory.DefaultAddons()
	a.CertManager.Repository = "oci://" + closed + "/charts/cert-manager"
	a.IngressNginx.Repository, a.IngressNginx.InsecureHTTP = "http://"+closed+"/ingress-nginx", true
	a.Traefik.Repository, a.Traefik.InsecureHTTP = "http://"+closed+"/traefik", true
	offline := addons.ChartLoader{CacheDir: t.TempDir(), Timeout: time.Second}
	charts, err := loadAddonCharts(ctx, a, offline, u, &log)
	if err != nil {
		t.Fatal(err)
	}
	got := chartSlots(charts)
	if want := []string{"certManager cert-manager v1.21.1", "ingressNginx ingress-nginx 4.15.1", "traefik traefik 41.3.0"}; !slices.Equal(got, want) {
		t.Errorf("charts %q, want %q", got, want)
	}
	for _, want := range []string{"addons.certManager: cert-manager v1.21.1 from the release archives in " + dir, "addons.traefik: traefik 41.3.0 from the release archives"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log does not say %q:\n%s", want, log.String())
		}
	}

	inv := testenv.Inventory(t, bundleInventoryText+"addons:\n  certManager: {path: "+helloPath(t)+"}\n  ingressNginx: {repository: http://"+closed+"/charts, insecureHTTP: true, name: ingress-nginx, version: 4.14.0}\n")
	log.Reset()
	_, err = loadAddonCharts(ctx, inv.Addons, offline, u, &log)
	if err == nil || !strings.Contains(err.Error(), "addons.ingressNginx (http://"+closed+"/charts ingress-nginx 4.14.0)") {
		t.Errorf("ingress-nginx 4.14.0, which no archive holds: %v, want a download that fails", err)
	}
	if !strings.Contains(log.String(), "addons.certManager: hello 0.1.0 from "+helloPath(t)) {
		t.Errorf("the path chart was not packed from its path:\n%s", log.String())
	}
}

// TestBundleBuildUpstream: --upstream's archives are checked before Build
// is reached; a missing or tampered one stops the command naming the file
// and the sha256 expected.
func TestBundleBuildUpstream(t *testing.T) {
	dir := upstreamDir(t)
	const cm, cmSum = "cert-manager-v1.21.1.tar.gz", "20097cab8adb755fef80a9f618544213851133b65977917b390721a0c97e9f90"
	copies := func() string {
		dst := t.TempDir()
		for _, f := range []string{cm, "ingress-nginx-chart-4.15.1.tar.gz", "traefik-helm-chart-v41.3.0.tar.gz"} {
			data, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dst, f), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dst
	}
	// boot's default pins, their repositories a closed port: nothing is
	// downloaded, all three charts come from the archives.
	closed := testenv.ClosedAddr(t)
	pins := bundleInventory(t, "addons:\n  certManager: {repository: oci://"+closed+"/charts/cert-manager, version: v1.21.1}\n"+
		"  ingressNginx: {repository: http://"+closed+"/charts, insecureHTTP: true, name: ingress-nginx, version: 4.15.1}\n"+
		"  traefik: {repository: http://"+closed+"/charts, insecureHTTP: true, name: traefik, version: 41.3.0}\n")
	missing := copies()
	if err := os.Remove(filepath.Join(missing, cm)); err != nil {
		t.Fatal(err)
	}
	tampered := copies()
	tamper(t, filepath.Join(tampered, cm))
	for name, src := range map[string]string{"missing": missing, "tampered": tampered} {
		code, stdout, stderr := runBoot(t, "bundle", "build", "-i", pins, "--upstream", src, "--out", nonEmptyDir(t))
		if code != ExitFailure || !strings.Contains(stderr, cm) || !strings.Contains(stderr, cmSum) || strings.Contains(stderr, refused) || strings.Contains(stdout, "bundle ready") {
			t.Errorf("%s archive: exit %d, want the archive and its sha256 named before the build:\n%s%s", name, code, stdout, stderr)
		}
	}

	code, _, stderr := runBoot(t, "bundle", "build", "-i", pins, "--upstream", dir, "--out", nonEmptyDir(t))
	for _, want := range []string{"bundle: upstream release archives from " + dir + " checked", "addons.certManager: cert-manager v1.21.1 from the release archives",
		"addons.ingressNginx: ingress-nginx 4.15.1 from the release archives", "addons.traefik: traefik 41.3.0 from the release archives", refused} {
		if code != ExitFailure || !strings.Contains(stderr, want) {
			t.Errorf("good archives: exit %d, stderr does not say %q:\n%s", code, want, stderr)
		}
	}
}

// chartBundleDir writes a bundle folder holding the registry's and Redis'
// image entries (placeholder archives: nothing here loads them) and the
// test chart at 0.2.0 for slot ingressNginx, and returns it with the
// chart's file.
func chartBundleDir(t *testing.T) (dir, chartFile string) {
	t.Helper()
	dir = t.TempDir()
	data, err := os.ReadFile(helloArchive(t, "0.2.0"))
	if err != nil {
		t.Fatal(err)
	}
	m := bundle.Manifest{KubernetesVersion: "v1.37.2", Arch: "amd64",
		Charts: []bundle.Chart{{Slot: "ingressNginx", Name: "hello", Version: "0.2.0", Path: "charts/hello-0.2.0.tgz"}}}
	add := func(rel string, data []byte) {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		m.Files = append(m.Files, bundle.File{Path: rel, SHA256: sha256Hex(data), Size: int64(len(data))})
	}
	add("charts/hello-0.2.0.tgz", data)
	// The images every bundle-mode plan runs: the registry's (with boot's,
	// which its token service runs) and cert-manager's (placeholders: a plan
	// only names them).
	for _, c := range []struct{ component, repoTag string }{
		{"redis", "library/redis:1.0.0"}, {"registry", "library/registry:1.0.0"}, {"boot", "bootctl/boot:0.0.0-test"},
		{"cert-manager-controller", "jetstack/cert-manager-controller:v1.21.1"},
		{"cert-manager-webhook", "jetstack/cert-manager-webhook:v1.21.1"},
		{"cert-manager-cainjector", "jetstack/cert-manager-cainjector:v1.21.1"},
		{"cert-manager-acmesolver", "jetstack/cert-manager-acmesolver:v1.21.1"},
		{"cert-manager-startupapicheck", "jetstack/cert-manager-startupapicheck:v1.21.1"},
	} {
		add("images/"+c.component+".tar", []byte("placeholder"))
		m.Images = append(m.Images, bundle.Image{Name: "example.test/" + c.repoTag, RepoTag: c.repoTag,
			Path: "images/" + c.component + ".tar", Digest: "sha256:" + strings.Repeat("0", 64), Component: c.component})
	}
	text, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, bundle.ManifestName), text, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, filepath.Join(dir, "charts", "hello-0.2.0.tgz")
}

// tamper flips one byte in the middle of file p.
func tamper(t *testing.T, p string) {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBundleVerifyCharts: bundle verify counts and names the charts, and
// fails naming a tampered chart.
func TestBundleVerifyCharts(t *testing.T) {
	dir, chart := chartBundleDir(t)
	code, stdout, stderr := runBoot(t, "bundle", "verify", dir)
	if code != ExitOK || !strings.Contains(stdout, "9 files, 8 images and 1 charts verified") || !strings.Contains(stdout, "charts: ingressNginx: hello 0.2.0") {
		t.Fatalf("verify: exit %d\n%s%s", code, stdout, stderr)
	}
	tamper(t, chart)
	code, _, stderr = runBoot(t, "bundle", "verify", dir)
	if code == ExitOK || !strings.Contains(stderr, "file charts/hello-0.2.0.tgz: sha256") {
		t.Fatalf("verify of a tampered chart: exit %d\n%s", code, stderr)
	}
}

// TestAddonsPlanChartFromBundle: boot addons --dry-run with packages from a
// bundle says the chart the bundle holds comes from the bundle (its
// repository is unreachable), and one it does not hold from its repository.
// That repository is plain http: refused at its line (exit 2, nothing
// planned) without insecureHTTP, warned about once with it.
func TestAddonsPlanChartFromBundle(t *testing.T) {
	dir, chart := chartBundleDir(t)
	closed := testenv.ClosedAddr(t)
	invText := func(ingressVersion string) string {
		return fmt.Sprintf(`apiVersion: boot/v1alpha1
kind: Cluster
metadata:
  name: lab
cluster:
  imageRepository: 172.29.40.2:5000
packages:
  source: bundle
  bundle: %s
hosts:
  - {name: cp1, address: 192.0.2.10, role: control-plane}
  - {name: w1, address: 192.0.2.11, role: worker}
registry:
  host: registry.example.com
  issuer: selfsigned
addons:
  ingressNginx: {repository: http://%s/charts, insecureHTTP: true, name: hello, version: %s}
  certManager: {path: %s}
`, dir, closed, ingressVersion, helloPath(t))
	}
	inv := func(ingressVersion string) string { return testenv.InventoryFile(t, invText(ingressVersion)) }

	plain := testenv.InventoryFile(t, strings.Replace(invText("0.2.0"), "insecureHTTP: true, ", "", 1))
	code, stdout, stderr := runBoot(t, "addons", "-i", plain, "--dry-run")
	if want := plain + ":17: addons.ingressNginx.repository: \"http://" + closed + "/charts\" is plain http"; code != ExitInvalid || !strings.Contains(stderr, want) || strings.Contains(stdout, "[chart") {
		t.Fatalf("http repository without insecureHTTP: exit %d, want %d and %q\n%s%s", code, ExitInvalid, want, stdout, stderr)
	}

	code, stdout, stderr = runBoot(t, "addons", "-i", inv("0.2.0"), "--dry-run")
	if code != ExitOK || !strings.Contains(stdout, "[chart addons.ingressNginx: hello 0.2.0 from bundle]") ||
		!strings.Contains(stdout, "[ingress-nginx/ingress-nginx] after boot up: install or upgrade hello 0.2.0") {
		t.Fatalf("plan with the chart in the bundle: exit %d\n%s%s", code, stdout, stderr)
	}
	if warning := "chart hello 0.2.0 comes over plain http from http://" + closed + "/charts (insecureHTTP: true): its index and archive can be tampered with in transit"; strings.Count(stdout+stderr, warning) != 1 {
		t.Errorf("plan with insecureHTTP: want the warning %q once\n%s%s", warning, stdout, stderr)
	}
	code, stdout, stderr = runBoot(t, "addons", "-i", inv("0.3.0"), "--dry-run")
	if code == ExitOK || !strings.Contains(stdout+stderr, "[chart addons.ingressNginx: hello 0.3.0 from http://"+closed+"/charts (not in the bundle)]") ||
		!strings.Contains(stderr, "the bundle "+dir+" holds no chart hello 0.3.0 for addons.ingressNginx (it holds ingressNginx: hello 0.2.0)") {
		t.Fatalf("plan with another version: exit %d\n%s%s", code, stdout, stderr)
	}
	tamper(t, chart)
	code, _, stderr = runBoot(t, "addons", "-i", inv("0.2.0"), "--dry-run")
	if code == ExitOK || !strings.Contains(stderr, "packages.bundle: bundle "+dir+": file charts/hello-0.2.0.tgz: sha256") {
		t.Fatalf("plan with a tampered chart: exit %d\n%s", code, stderr)
	}
}
