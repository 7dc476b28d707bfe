package addons

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/registry"
	"helm.sh/helm/v3/pkg/repo"
)

const testChartDir = "testdata/charts/hello"

// packageTestChart packages testdata/charts/hello at version into dir and
// returns the archive's path and bytes.
func packageTestChart(t *testing.T, dir, version string) (string, []byte) {
	t.Helper()
	c, err := loader.LoadDir(testChartDir)
	if err != nil {
		t.Fatal(err)
	}
	c.Metadata.Version = version
	p, err := chartutil.Save(c, dir)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return p, data
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// chartRepo is a local HTTP chart repository: index.yaml and archives from a
// folder, counting the requests per path.
type chartRepo struct {
	dir string
	srv *httptest.Server
	mu  sync.Mutex
	got map[string]int
}

func startChartRepo(t *testing.T) *chartRepo {
	t.Helper()
	r := &chartRepo{dir: t.TempDir(), got: map[string]int{}}
	files := http.FileServer(http.Dir(r.dir))
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.got[req.URL.Path]++
		r.mu.Unlock()
		files.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *chartRepo) requests(path string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got[path]
}

// writeIndex writes index.yaml listing each archive with the digest given
// (the archive's real digest when digests[name] is empty).
func (r *chartRepo) writeIndex(t *testing.T, archives map[string][]byte, digests map[string]string) {
	t.Helper()
	index := repo.NewIndexFile()
	for name, data := range archives {
		c, err := loader.LoadArchive(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		digest := digests[name]
		if digest == "" {
			digest = sha256Hex(data)
		}
		// A relative URL, resolved against the repository's URL.
		if err := index.MustAdd(c.Metadata, name, "", digest); err != nil {
			t.Fatal(err)
		}
	}
	if err := index.WriteFile(filepath.Join(r.dir, "index.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestChartLoaderHTTPRepository loads a chart from a local HTTP chart
// repository (plain http, so only with InsecureHTTP: without it nothing is
// requested): the pinned version and no other, refusals of unpinned
// versions, the cache (no second download; a corrupted cached archive is
// fetched again), and an archive whose digest differs from the index's.
func TestChartLoaderHTTPRepository(t *testing.T) {
	ctx := context.Background()
	r := startChartRepo(t)
	p1, a1 := packageTestChart(t, r.dir, "0.1.0")
	_, a2 := packageTestChart(t, r.dir, "0.2.0")
	r.writeIndex(t, map[string][]byte{filepath.Base(p1): a1, "hello-0.2.0.tgz": a2}, nil)

	cacheDir := t.TempDir()
	l := ChartLoader{CacheDir: cacheDir}
	src := ChartSource{Field: "addons.ingressNginx", Repository: r.srv.URL, Name: "hello", Version: "0.1.0"}

	_, err := l.Load(ctx, src)
	want := fmt.Sprintf("addons.ingressNginx.repository: %q is plain http", r.srv.URL)
	if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "insecureHTTP: true") {
		t.Fatalf("http without InsecureHTTP: got %v, want an error starting %q", err, want)
	}
	if n := r.requests("/index.yaml"); n != 0 {
		t.Fatalf("http without InsecureHTTP: the index was requested %d times", n)
	}

	src.InsecureHTTP = true
	c, err := l.Load(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if c.Metadata.Name != "hello" || c.Metadata.Version != "0.1.0" {
		t.Fatalf("loaded %s %s, want hello 0.1.0", c.Metadata.Name, c.Metadata.Version)
	}
	if n := r.requests("/hello-0.1.0.tgz"); n != 1 {
		t.Fatalf("archive downloaded %d times, want 1", n)
	}
	blob := filepath.Join(cacheDir, "sha256", sha256Hex(a1)+".tgz")
	if _, err := os.Stat(blob); err != nil {
		t.Fatalf("archive not cached by its digest: %v", err)
	}

	// A leading "v" names the same version.
	if c, err := l.Load(ctx, ChartSource{Field: "addons.ingressNginx", Repository: r.srv.URL + "/", InsecureHTTP: true, Name: "hello", Version: "v0.2.0"}); err != nil || c.Metadata.Version != "0.2.0" {
		t.Fatalf("v0.2.0: %v", err)
	}

	// Cached: the same source loads without downloading again.
	if _, err := l.Load(ctx, src); err != nil {
		t.Fatal(err)
	}
	if n := r.requests("/hello-0.1.0.tgz"); n != 1 {
		t.Fatalf("cached chart downloaded again (%d downloads)", n)
	}
	// A cached archive that no longer matches its digest is fetched again.
	if err := os.WriteFile(blob, []byte("not a chart"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := l.Load(ctx, src); err != nil || c.Metadata.Version != "0.1.0" {
		t.Fatalf("after corrupting the cache: %v", err)
	}
	if n := r.requests("/hello-0.1.0.tgz"); n != 2 {
		t.Fatalf("corrupted cache entry: %d downloads, want 2", n)
	}

	// Version pinning: a version the index lacks, and unpinned versions.
	for _, tc := range []struct{ version, want string }{
		{"0.3.0", `addons.ingressNginx.version: 0.3.0 of chart "hello" is not in repository`},
		{"", "addons.ingressNginx.version: is missing"},
		{"latest", `addons.ingressNginx.version: "latest" is not pinned`},
		{"^0.1", `addons.ingressNginx.version: "^0.1" is not pinned`},
		{">=0.1.0", `addons.ingressNginx.version: ">=0.1.0" is not pinned`},
		{"0.1", `addons.ingressNginx.version: "0.1" is not pinned`},
	} {
		s := src
		s.Version = tc.version
		_, err := l.Load(ctx, s)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("version %q: got error %v, want one containing %q", tc.version, err, tc.want)
		}
	}
	s := src
	s.Name = "goodbye"
	if _, err := l.Load(ctx, s); err == nil || !strings.Contains(err.Error(), `addons.ingressNginx.name: chart "goodbye" is not in repository`) {
		t.Errorf("unknown chart name: got %v", err)
	}

	// The index's digest does not match the archive: refused, nothing cached.
	bad := startChartRepo(t)
	p3, a3 := packageTestChart(t, bad.dir, "0.1.0")
	bad.writeIndex(t, map[string][]byte{filepath.Base(p3): a3}, map[string]string{filepath.Base(p3): sha256Hex([]byte("something else"))})
	badCache := t.TempDir()
	_, err = ChartLoader{CacheDir: badCache}.Load(ctx, ChartSource{Field: "addons.certManager", Repository: bad.srv.URL, InsecureHTTP: true, Name: "hello", Version: "0.1.0"})
	if err == nil || !strings.Contains(err.Error(), "addons.certManager.repository: chart hello 0.1.0") || !strings.Contains(err.Error(), "refusing it") {
		t.Fatalf("digest mismatch: got %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(badCache, "sha256")); len(entries) != 0 {
		t.Fatalf("a refused archive was cached: %v", entries)
	}
}

// startOCIRegistry runs the real distribution registry (in-memory storage)
// on a loopback port and returns its host:port.
func startOCIRegistry(t *testing.T) string {
	t.Helper()
	config := "version: 0.1\nstorage:\n  inmemory: {}\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
	return strings.TrimPrefix(startRegistry(t, []byte(config), nil), "http://")
}

// TestChartLoaderOCI pushes the test chart to a real distribution registry
// with Helm's registry client and loads it back by oci:// reference and tag.
func TestChartLoaderOCI(t *testing.T) {
	ctx := context.Background()
	host := startOCIRegistry(t)
	client, err := registry.NewClient(registry.ClientOptPlainHTTP())
	if err != nil {
		t.Fatal(err)
	}
	_, data := packageTestChart(t, t.TempDir(), "v1.2.3")
	if _, err := client.Push(data, host+"/charts/hello:v1.2.3"); err != nil {
		t.Fatal(err)
	}

	cacheDir := t.TempDir()
	l := ChartLoader{CacheDir: cacheDir, PlainHTTP: true}
	src := ChartSource{Field: "addons.certManager", Repository: "oci://" + host + "/charts/hello", Version: "v1.2.3"}
	c, err := l.Load(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if c.Metadata.Name != "hello" || c.Metadata.Version != "v1.2.3" {
		t.Fatalf("loaded %s %s, want hello v1.2.3", c.Metadata.Name, c.Metadata.Version)
	}
	if _, err := os.Stat(filepath.Join(cacheDir, "sha256", sha256Hex(data)+".tgz")); err != nil {
		t.Fatalf("pulled chart not cached by its digest: %v", err)
	}

	s := src
	s.Version = "v1.2.4"
	if _, err := l.Load(ctx, s); err == nil || !strings.Contains(err.Error(), "addons.certManager.version: pulling chart oci://"+host+"/charts/hello (tag v1.2.4)") {
		t.Errorf("missing tag: got %v", err)
	}
	s.Version = "latest"
	if _, err := l.Load(ctx, s); err == nil || !strings.Contains(err.Error(), `addons.certManager.version: "latest" is not pinned`) {
		t.Errorf("latest: got %v", err)
	}
	// A chart whose name is not the reference's last element is refused.
	s = src
	s.Name = "other"
	if _, err := (ChartLoader{CacheDir: t.TempDir(), PlainHTTP: true}).Load(ctx, s); err == nil || !strings.Contains(err.Error(), `is named "hello", not "other"`) {
		t.Errorf("wrong name: got %v", err)
	}
	// Without PlainHTTP the client speaks https, which this registry does not.
	if _, err := (ChartLoader{CacheDir: t.TempDir()}).Load(ctx, src); err == nil {
		t.Error("pulled over plain http without PlainHTTP")
	}
}

// TestChartLoaderLocalPath loads a chart folder and an archive; a pinned
// version or a name that differs from the chart's is refused.
func TestChartLoaderLocalPath(t *testing.T) {
	ctx := context.Background()
	archive, _ := packageTestChart(t, t.TempDir(), "0.1.0")
	l := ChartLoader{CacheDir: t.TempDir()}
	for _, p := range []string{testChartDir, archive} {
		c, err := l.Load(ctx, ChartSource{Field: "addons.ingressNginx", Path: p})
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if c.Metadata.Name != "hello" || c.Metadata.Version != "0.1.0" {
			t.Fatalf("%s: loaded %s %s", p, c.Metadata.Name, c.Metadata.Version)
		}
		if _, err := l.Load(ctx, ChartSource{Field: "addons.ingressNginx", Path: p, Version: "0.1.0", Name: "hello"}); err != nil {
			t.Fatalf("%s pinned to its own version: %v", p, err)
		}
		_, err = l.Load(ctx, ChartSource{Field: "addons.ingressNginx", Path: p, Version: "4.15.1"})
		if err == nil || !strings.Contains(err.Error(), "addons.ingressNginx.version: chart "+p+" has version 0.1.0, not the pinned 4.15.1") {
			t.Fatalf("%s with another version: got %v", p, err)
		}
		_, err = l.Load(ctx, ChartSource{Field: "addons.ingressNginx", Path: p, Version: "latest"})
		if err == nil || !strings.Contains(err.Error(), `addons.ingressNginx.version: "latest" is not pinned`) {
			t.Fatalf("%s with latest: got %v", p, err)
		}
	}
	_, err := l.Load(ctx, ChartSource{Field: "addons.ingressNginx", Path: filepath.Join(t.TempDir(), "missing")})
	if err == nil || !strings.Contains(err.Error(), "addons.ingressNginx.path: loading chart") {
		t.Fatalf("missing path: got %v", err)
	}
}
