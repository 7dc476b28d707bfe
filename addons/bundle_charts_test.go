package addons

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/registry"

	"github.com/bootctl/boot/bundle"
	"github.com/bootctl/boot/internal/testenv"
	"github.com/bootctl/boot/inventory"
)

// bundleChart is one chart a test bundle holds.
type bundleChart struct {
	slot, version string
	data          []byte
}

// writeBundle writes a bundle folder as boot bundle build lays it out (charts
// in slot order, as its manifest sorts them), with
// only what the add-ons read: the image entries of the registry, Redis,
// boot (the maintenance jobs and the token service), cert-manager and Traefik (their archives are placeholders: nothing here
// loads them) and the charts.
func writeBundle(t *testing.T, charts ...bundleChart) string {
	t.Helper()
	dir := t.TempDir()
	m := bundle.Manifest{KubernetesVersion: "v1.37.2", Arch: "amd64"}
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
	for _, img := range []struct{ component, name, repoTag string }{
		{"registry", "docker.io/library/registry:3.1.2", "library/registry:3.1.2"},
		{"redis", "docker.io/library/redis:7.0.15-debian", "library/redis:7.0.15-debian"},
		{"boot", "docker.io/bootctl/boot:0.0.0-test", "bootctl/boot:0.0.0-test"},
		{"cert-manager-controller", "quay.io/jetstack/cert-manager-controller:v1.21.1", "jetstack/cert-manager-controller:v1.21.1"},
		{"cert-manager-webhook", "quay.io/jetstack/cert-manager-webhook:v1.21.1", "jetstack/cert-manager-webhook:v1.21.1"},
		{"cert-manager-cainjector", "quay.io/jetstack/cert-manager-cainjector:v1.21.1", "jetstack/cert-manager-cainjector:v1.21.1"},
		{"cert-manager-acmesolver", "quay.io/jetstack/cert-manager-acmesolver:v1.21.1", "jetstack/cert-manager-acmesolver:v1.21.1"},
		{"cert-manager-startupapicheck", "quay.io/jetstack/cert-manager-startupapicheck:v1.21.1", "jetstack/cert-manager-startupapicheck:v1.21.1"},
		{"traefik", "docker.io/library/traefik:v3.7.13", "library/traefik:v3.7.13"},
	} {
		rel := "images/" + img.component + ".tar"
		add(rel, []byte("placeholder"))
		m.Images = append(m.Images, bundle.Image{Name: img.name, RepoTag: img.repoTag, Path: rel,
			Digest: "sha256:" + strings.Repeat("0", 64), Component: img.component})
	}
	for _, c := range charts {
		rel := "charts/hello-" + c.version + ".tgz"
		add(rel, c.data)
		m.Charts = append(m.Charts, bundle.Chart{Slot: c.slot, Name: "hello", Version: c.version, Path: rel})
	}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, bundle.ManifestName), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// markedChart packages the test chart at version with a description that
// tells where it was loaded from.
func markedChart(t *testing.T, version, mark string) []byte {
	t.Helper()
	c, err := loader.LoadDir(testChartDir)
	if err != nil {
		t.Fatal(err)
	}
	c.Metadata.Version = version
	c.Metadata.Description = mark
	p, err := chartutil.Save(c, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// bundleInventory loads an inventory with packages from the bundle folder
// dir and the two upstream charts' sections as given.
func bundleInventory(t *testing.T, dir, ingress, certManager string) *inventory.Inventory {
	t.Helper()
	text := fmt.Sprintf(`apiVersion: boot/v1alpha1
kind: Cluster
metadata:
  name: lab
cluster:
  imageRepository: 172.29.40.2:5000
packages:
  source: bundle
  bundle: %s
hosts:
  - name: cp1
    address: 192.0.2.10
    role: control-plane
  - name: w1
    address: 192.0.2.11
    role: worker
registry:
  host: registry.example.com
  issuer: selfsigned
addons:
  ingressNginx:
%s
  certManager:
%s
`, dir, ingress, certManager)
	return testenv.Inventory(t, text)
}

// planCharts runs the Installer's Plan (the code path of boot addons, which
// needs no cluster) and returns the descriptions of the cert-manager and
// ingress-nginx releases' charts ("version mark") and the chart steps.
func planCharts(t *testing.T, inv *inventory.Inventory, l ChartLoader) (certManager, ingress string, steps []string, err error) {
	t.Helper()
	ev := &events{}
	releases, err := (&Installer{Charts: l, Inventory: inv, Report: ev.add}).Plan(context.Background())
	for _, s := range ev.ended() {
		if strings.HasPrefix(s, "chart ") {
			steps = append(steps, s)
		}
	}
	if err != nil {
		return "", "", steps, err
	}
	desc := func(name string) string {
		for _, r := range releases {
			if r.Name == name {
				return r.Chart.Metadata.Version + " " + r.Chart.Metadata.Description
			}
		}
		t.Fatalf("no release %s in the plan", name)
		return ""
	}
	return desc(CertManagerRelease), desc(IngressNginxRelease), steps, nil
}

// TestUpstreamChartsFromBundle: with packages from a bundle, boot addons
// takes each upstream chart from the bundle when it holds that slot at the
// inventory's exact name and version (no repository is contacted, and a
// step says "from bundle"); otherwise it downloads the chart from a local
// HTTP chart repository or a real OCI registry as without a bundle, and when
// that fails, the error says what the bundle holds. A tampered chart in the
// bundle is refused, naming the file.
func TestUpstreamChartsFromBundle(t *testing.T) {
	hello, err := loader.LoadDir(testChartDir)
	if err != nil {
		t.Fatal(err)
	}
	repo := startChartRepo(t)
	_, served := packageTestChart(t, t.TempDir(), "0.2.0")
	if err := os.WriteFile(filepath.Join(repo.dir, "hello-0.2.0.tgz"), served, 0o644); err != nil {
		t.Fatal(err)
	}
	repo.writeIndex(t, map[string][]byte{"hello-0.2.0.tgz": served}, nil)
	host := startOCIRegistry(t)
	client, err := registry.NewClient(registry.ClientOptPlainHTTP())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Push(markedChart(t, "v1.2.4", "from the registry"), host+"/charts/hello:v1.2.4"); err != nil {
		t.Fatal(err)
	}

	dir := writeBundle(t,
		bundleChart{SlotCertManager, "v1.2.3", markedChart(t, "v1.2.3", "from the bundle")},
		bundleChart{SlotIngressNginx, "0.1.0", markedChart(t, "0.1.0", "from the bundle")},
	)
	closed := testenv.ClosedAddr(t)
	// The http:// repositories here are loopback test servers (or closed
	// ports): each says insecureHTTP, as an inventory must.
	chart := func(repository, name, version string) string {
		s := "    repository: " + repository + "\n    version: " + version
		if strings.HasPrefix(repository, "http://") {
			s += "\n    insecureHTTP: true"
		}
		if name != "" {
			s += "\n    name: " + name
		}
		return s
	}
	loader := func() ChartLoader { return ChartLoader{CacheDir: t.TempDir(), PlainHTTP: true} }

	// Both pinned at what the bundle holds, their repositories unreachable.
	inv := bundleInventory(t, dir, chart("http://"+closed+"/charts", "hello", "0.1.0"), chart("oci://"+closed+"/charts/hello", "", "v1.2.3"))
	cm, in, steps, err := planCharts(t, inv, loader())
	if err != nil {
		t.Fatalf("plan with both charts in the bundle: %v", err)
	}
	if cm != "v1.2.3 from the bundle" || in != "0.1.0 from the bundle" {
		t.Errorf("cert-manager chart %q, ingress-nginx chart %q: want both from the bundle", cm, in)
	}
	want := []string{"chart addons.certManager: hello v1.2.3 from bundle", "chart addons.ingressNginx: hello 0.1.0 from bundle"}
	if strings.Join(steps, "\n") != strings.Join(want, "\n") {
		t.Errorf("steps %q, want %q", steps, want)
	}
	// "v" or not, the same version is the bundle's.
	inv = bundleInventory(t, dir, chart("http://"+closed+"/charts", "hello", "v0.1.0"), chart("oci://"+closed+"/charts/hello", "", "1.2.3"))
	if cm, in, _, err := planCharts(t, inv, loader()); err != nil || cm != "v1.2.3 from the bundle" || in != "0.1.0 from the bundle" {
		t.Errorf("versions with and without v: %q %q %v", cm, in, err)
	}

	// Other versions: downloaded from the HTTP repository and the OCI
	// registry, as without a bundle.
	inv = bundleInventory(t, dir, chart(repo.srv.URL, "hello", "0.2.0"), chart("oci://"+host+"/charts/hello", "", "v1.2.4"))
	cm, in, steps, err = planCharts(t, inv, loader())
	if err != nil {
		t.Fatalf("plan with versions the bundle does not hold: %v", err)
	}
	if cm != "v1.2.4 from the registry" || in != "0.2.0 "+hello.Metadata.Description {
		t.Errorf("cert-manager chart %q, ingress-nginx chart %q: want both downloaded", cm, in)
	}
	if repo.requests("/hello-0.2.0.tgz") != 1 {
		t.Errorf("the repository's archive was fetched %d times, want once", repo.requests("/hello-0.2.0.tgz"))
	}
	want = []string{
		"chart addons.certManager: hello v1.2.4 from oci://" + host + "/charts/hello (not in the bundle)",
		"chart addons.ingressNginx: hello 0.2.0 from " + repo.srv.URL + " (not in the bundle)",
	}
	if strings.Join(steps, "\n") != strings.Join(want, "\n") {
		t.Errorf("steps %q, want %q", steps, want)
	}
	// Another chart name at the bundle's version is not the bundle's.
	inv = bundleInventory(t, dir, chart("http://"+closed+"/charts", "world", "0.1.0"), chart("oci://"+closed+"/charts/hello", "", "v1.2.3"))
	_, _, _, err = planCharts(t, inv, loader())
	wantErr := "the bundle " + dir + " holds no chart world 0.1.0 for addons.ingressNginx (it holds certManager: hello v1.2.3, ingressNginx: hello 0.1.0)"
	if err == nil || !strings.Contains(err.Error(), "addons.ingressNginx.repository: chart repository index") || !strings.Contains(err.Error(), wantErr) {
		t.Errorf("another name, repository unreachable: got %v, want the download error and %q", err, wantErr)
	}

	// Another version, repository unreachable: the error says both.
	inv = bundleInventory(t, dir, chart("http://"+closed+"/charts", "hello", "0.1.0"), chart("oci://"+closed+"/charts/hello", "", "v1.2.5"))
	_, _, steps, err = planCharts(t, inv, loader())
	wantErr = "the bundle " + dir + " holds no chart hello v1.2.5 for addons.certManager (it holds certManager: hello v1.2.3, ingressNginx: hello 0.1.0)"
	if err == nil || !strings.Contains(err.Error(), "addons.certManager.version: pulling chart oci://"+closed+"/charts/hello (tag v1.2.5)") || !strings.Contains(err.Error(), wantErr) {
		t.Errorf("another version, registry unreachable: got %v, want the pull error and %q", err, wantErr)
	}
	if len(steps) != 1 || !strings.HasSuffix(steps[0], "(not in the bundle) error") {
		t.Errorf("steps %q, want the failed chart step", steps)
	}

	// A bundle without charts says so.
	bare := writeBundle(t)
	inv = bundleInventory(t, bare, chart("http://"+closed+"/charts", "hello", "0.1.0"), chart("oci://"+closed+"/charts/hello", "", "v1.2.3"))
	if _, _, _, err = planCharts(t, inv, loader()); err == nil || !strings.Contains(err.Error(), "the bundle "+bare+" holds no chart hello v1.2.3 for addons.certManager (it holds no charts)") {
		t.Errorf("bundle without charts: %v", err)
	}

	// addons.<slot>.path wins over the bundle, with no step.
	abs, err := filepath.Abs(testChartDir)
	if err != nil {
		t.Fatal(err)
	}
	inv = bundleInventory(t, dir, "    path: "+abs, chart("oci://"+closed+"/charts/hello", "", "v1.2.3"))
	cm, in, steps, err = planCharts(t, inv, loader())
	if err != nil || cm != "v1.2.3 from the bundle" || in != "0.1.0 "+hello.Metadata.Description {
		t.Errorf("path chart: %q %q %v", cm, in, err)
	}
	if len(steps) != 1 || !strings.HasPrefix(steps[0], "chart addons.certManager:") {
		t.Errorf("steps %q, want only cert-manager's", steps)
	}

	// A tampered chart in the bundle is refused, naming the file.
	p := filepath.Join(dir, "charts", "hello-0.1.0.tgz")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	inv = bundleInventory(t, dir, chart("http://"+closed+"/charts", "hello", "0.1.0"), chart("oci://"+closed+"/charts/hello", "", "v1.2.3"))
	_, _, _, err = planCharts(t, inv, loader())
	if err == nil || !strings.Contains(err.Error(), "packages.bundle: bundle "+dir+": file charts/hello-0.1.0.tgz: sha256") {
		t.Errorf("tampered chart: %v", err)
	}
}

// TestChartLoaderArchive returns the archive boot bundle build packs: the
// repository's archive byte for byte (digest-checked, then from the cache),
// a local .tgz as it is, a chart folder packaged.
func TestChartLoaderArchive(t *testing.T) {
	ctx := context.Background()
	repo := startChartRepo(t)
	_, served := packageTestChart(t, repo.dir, "0.2.0")
	repo.writeIndex(t, map[string][]byte{"hello-0.2.0.tgz": served}, nil)
	l := ChartLoader{CacheDir: t.TempDir()}
	src := ChartSource{Field: "addons.ingressNginx", Repository: repo.srv.URL, InsecureHTTP: true, Name: "hello", Version: "0.2.0"}
	for i := range 2 {
		data, c, err := l.Archive(ctx, src)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, served) || c.Metadata.Version != "0.2.0" {
			t.Fatalf("load %d: got %d bytes of %s %s, want the served archive", i, len(data), c.Metadata.Name, c.Metadata.Version)
		}
	}
	if n := repo.requests("/hello-0.2.0.tgz"); n != 1 {
		t.Errorf("archive fetched %d times, want once (then from the cache)", n)
	}
	repo.writeIndex(t, map[string][]byte{"hello-0.2.0.tgz": served}, map[string]string{"hello-0.2.0.tgz": strings.Repeat("0", 64)})
	if _, _, err := (ChartLoader{CacheDir: t.TempDir()}).Archive(ctx, src); err == nil || !strings.Contains(err.Error(), "refusing it") {
		t.Errorf("archive whose digest differs from the index's: %v", err)
	}

	archive, tgz := packageTestChart(t, t.TempDir(), "0.3.0")
	data, _, err := l.Archive(ctx, ChartSource{Field: "addons.ingressNginx", Path: archive, Version: "0.3.0"})
	if err != nil || !bytes.Equal(data, tgz) {
		t.Errorf("local .tgz: %d bytes, %v; want the file as it is", len(data), err)
	}
	data, _, err = l.Archive(ctx, ChartSource{Field: "addons.ingressNginx", Path: testChartDir})
	if err != nil {
		t.Fatal(err)
	}
	c, err := loader.LoadArchive(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("packaged folder is no chart archive: %v", err)
	}
	if c.Metadata.Name != "hello" || c.Metadata.Version != "0.1.0" || len(c.Templates) == 0 {
		t.Errorf("packaged folder holds %s %s with %d templates", c.Metadata.Name, c.Metadata.Version, len(c.Templates))
	}
	if _, _, err := l.Archive(ctx, ChartSource{Field: "addons.ingressNginx", Path: testChartDir, Version: "0.2.0"}); err == nil ||
		!strings.Contains(err.Error(), "addons.ingressNginx.version: chart "+testChartDir+" has version 0.1.0, not the pinned 0.2.0") {
		t.Errorf("folder at another version: %v", err)
	}
}

// A chart whose kubeVersion constraint cluster.kubernetesVersion does not
// meet (an upgrade past what the chart supports) is refused while planning,
// before any change, naming the release, the chart and both versions.
func TestPlanRefusesChartsForAnotherKubernetes(t *testing.T) {
	dir := writeBundle(t,
		bundleChart{SlotCertManager, "v1.2.3", markedChart(t, "v1.2.3", "from the bundle")},
		bundleChart{SlotIngressNginx, "0.1.0", markedChart(t, "0.1.0", "from the bundle")},
	)
	closed := testenv.ClosedAddr(t)
	inv := bundleInventory(t, dir, "    repository: http://"+closed+"/charts\n    name: hello\n    version: 0.1.0\n    insecureHTTP: true",
		"    repository: oci://"+closed+"/charts/hello\n    version: v1.2.3")
	loader := ChartLoader{CacheDir: t.TempDir(), PlainHTTP: true}
	if _, _, _, err := planCharts(t, inv, loader); err != nil {
		t.Fatalf("at %s: %v", inv.Cluster.KubernetesVersion, err)
	}
	inv.Cluster.KubernetesVersion = "v1.29.9"
	_, _, _, err := planCharts(t, inv, loader)
	want := "release cert-manager/cluster-issuer: chart cluster-issuer 0.2.0 needs Kubernetes >=1.30.0-0, and cluster.kubernetesVersion is v1.29.9"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("at v1.29.9: %v, want %q", err, want)
	}
}
