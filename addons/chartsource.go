package addons

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/registry"
	"helm.sh/helm/v3/pkg/repo"
	"sigs.k8s.io/yaml"

	"github.com/bootctl/boot/bundle"
	"github.com/bootctl/boot/inventory"
)

// ChartSource says where one chart comes from, as the inventory's
// addons.<chart> section does: an https chart repository (its index.yaml
// lists Name; http only with InsecureHTTP), an oci:// chart reference (the
// tag is Version), or a local chart folder or .tgz (Path, which wins over
// Repository).
type ChartSource struct {
	// Field is the inventory field the source comes from, e.g.
	// "addons.ingressNginx"; errors name Field.version, Field.name, ...
	Field      string
	Repository string
	// InsecureHTTP accepts an http:// Repository, refused otherwise (the
	// inventory's insecureHTTP).
	InsecureHTTP bool
	Name         string
	// Version is an exact version (1.2.3 or v1.2.3, optionally -pre/+build).
	// Required except with Path, where it is checked against the chart when set.
	Version string
	Path    string
	// Bundle, when set, is the bundle folder (packages.bundle) whose chart
	// archive Path is; errors about the archive name packages.bundle.
	Bundle string
	// NotInBundle, when set, says why a bundle in use does not provide this
	// chart (what it holds instead); a failed download's error ends with it.
	NotInBundle string
}

// Slots of the upstream charts: their fields under addons in the inventory,
// which is also how a bundle's manifest names them.
const (
	SlotIngressNginx = "ingressNginx"
	SlotTraefik      = "traefik"
	SlotCertManager  = "certManager"
)

// ChartSourceOf returns the source the inventory's chart c describes; field
// names it in errors.
func ChartSourceOf(field string, c inventory.Chart) ChartSource {
	return ChartSource{Field: field, Repository: c.Repository, InsecureHTTP: c.InsecureHTTP, Name: c.Name, Version: c.Version, Path: c.Path}
}

// UpstreamChartSources returns the sources of the upstream charts boot
// installs, in install order: addons.certManager, then both ingress
// controllers' (addons.ingressNginx, addons.traefik), so that a bundle
// holds either choice of addons.ingress.controller.
func UpstreamChartSources(a inventory.Addons) []ChartSource {
	return []ChartSource{
		ChartSourceOf("addons."+SlotCertManager, a.CertManager),
		ChartSourceOf("addons."+SlotIngressNginx, a.IngressNginx),
		ChartSourceOf("addons."+SlotTraefik, a.Traefik),
	}
}

// Slot is the source's field under addons, e.g. "ingressNginx".
func (s ChartSource) Slot() string { return strings.TrimPrefix(s.Field, "addons.") }

// FromBundle returns where s, an upstream chart of an inventory whose
// packages come from the bundle folder dir (packages.bundle), is loaded
// from. Without a Path, when the bundle's manifest holds s's slot at s's
// exact name and version, that is the bundle's archive, after checking only
// that file's size and sha256 against the manifest; otherwise it is s
// itself, noting what the bundle holds so a failed download says so. A chart
// with a Path stays as it is.
func (s ChartSource) FromBundle(dir string) (ChartSource, error) {
	if s.Path != "" {
		return s, nil
	}
	m, err := bundle.ReadManifest(dir)
	if err != nil {
		return s, fmt.Errorf("packages.bundle: %w", err)
	}
	name := s.Name
	if name == "" && strings.HasPrefix(s.Repository, "oci://") {
		name = s.Repository[strings.LastIndex(s.Repository, "/")+1:]
	}
	c, ok := m.Chart(s.Slot())
	if !ok || c.Name != name || !sameVersion(c.Version, s.Version) {
		s.NotInBundle = fmt.Sprintf("the bundle %s holds no chart %s %s for %s (it holds %s)", dir, name, s.Version, s.Field, m.ChartsHeld())
		return s, nil
	}
	p, err := m.VerifiedFile(dir, c.Path)
	if err != nil {
		return s, fmt.Errorf("packages.bundle: %w", err)
	}
	return ChartSource{Field: s.Field, Name: c.Name, Version: s.Version, Path: p, Bundle: dir}, nil
}

func (s ChartSource) String() string {
	switch {
	case s.Path != "":
		return s.Path
	case strings.HasPrefix(s.Repository, "oci://"):
		return s.Repository + ":" + s.Version
	default:
		return s.Repository + " " + s.Name + " " + s.Version
	}
}

// field names a sub-field of the source's inventory field.
func (s ChartSource) field(name string) string {
	if s.Field == "" {
		return name
	}
	return s.Field + "." + name
}

// Limits on what a chart download may read.
const (
	maxIndexBytes   = 64 << 20
	maxArchiveBytes = 32 << 20
	// DefaultChartTimeout bounds one download when ChartLoader.Timeout is zero.
	DefaultChartTimeout = 2 * time.Minute
)

// ChartLoader loads charts from their sources. Downloads are checked (the
// archive's SHA-256 against the repository index's digest, or against the
// OCI layer's digest) and kept in CacheDir by digest, so a later run loads the
// same pinned chart without the network; a cached archive is checked against
// its recorded digest on every load and downloaded again when it does not
// match.
type ChartLoader struct {
	// CacheDir holds downloaded archives; empty means DefaultChartCacheDir().
	CacheDir string
	// PlainHTTP reaches oci:// registries over http instead of https (only for
	// registries on a trusted network, or tests).
	PlainHTTP bool
	// Timeout bounds each download (DefaultChartTimeout when zero).
	Timeout time.Duration
}

// DefaultChartCacheDir is the user's cache folder + boot/charts.
func DefaultChartCacheDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("chart cache: %w", err)
	}
	return filepath.Join(dir, "boot", "charts"), nil
}

// CheckVersion refuses what is not one exact version: an empty version,
// "latest", ranges and constraints. field names the version in the error.
func CheckVersion(field, version string) error {
	const want = "an exact chart version such as 1.2.3 or v1.2.3"
	if version == "" {
		return fmt.Errorf("%s: is missing (%s; boot never installs the latest chart)", field, want)
	}
	if _, err := semver.StrictNewVersion(strings.TrimPrefix(version, "v")); err != nil {
		return fmt.Errorf("%s: %q is not pinned (%s)", field, version, want)
	}
	return nil
}

// sameVersion compares two versions, ignoring a leading "v" on either.
func sameVersion(a, b string) bool {
	return strings.TrimPrefix(a, "v") == strings.TrimPrefix(b, "v")
}

// Load returns the chart src names, checked to be that chart at that version.
func (l ChartLoader) Load(ctx context.Context, src ChartSource) (*chart.Chart, error) {
	if src.Path != "" {
		c, _, err := src.loadPath(false)
		return c, err
	}
	c, _, err := l.download(ctx, src)
	return c, err
}

// Archive is Load that also returns the chart as a .tgz archive: a
// repository's archive as it was served (digest-checked), a local .tgz as it
// is, a local chart folder packaged with Helm's chartutil.Save.
func (l ChartLoader) Archive(ctx context.Context, src ChartSource) ([]byte, *chart.Chart, error) {
	if src.Path != "" {
		c, data, err := src.loadPath(true)
		return data, c, err
	}
	c, data, err := l.download(ctx, src)
	return data, c, err
}

// loadPath loads a local chart folder or archive (Path) and checks it; with
// archive it also returns the chart as a .tgz.
func (s ChartSource) loadPath(archive bool) (*chart.Chart, []byte, error) {
	field := s.field("path")
	if s.Bundle != "" {
		field = "packages.bundle"
	}
	if s.Version != "" {
		if err := CheckVersion(s.field("version"), s.Version); err != nil {
			return nil, nil, err
		}
	}
	st, err := os.Stat(s.Path)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: loading chart %s: %w", field, s, err)
	}
	if !st.IsDir() {
		data, err := os.ReadFile(s.Path)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: loading chart %s: %w", field, s, err)
		}
		c, err := loader.LoadArchive(bytes.NewReader(data))
		if err != nil {
			return nil, nil, fmt.Errorf("%s: loading chart %s: %w", field, s, err)
		}
		return c, data, s.check(c)
	}
	c, err := loader.LoadDir(s.Path)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: loading chart %s: %w", field, s, err)
	}
	if err := s.check(c); err != nil || !archive {
		return c, nil, err
	}
	tmp, err := os.MkdirTemp("", "boot-chart-")
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	p, err := chartutil.Save(c, tmp)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: packaging chart %s: %w", field, s, err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, nil, err
	}
	return c, data, nil
}

// download loads a repository chart (from the cache when it holds it) and
// returns it with its archive. A failure ends with src.NotInBundle.
func (l ChartLoader) download(ctx context.Context, src ChartSource) (*chart.Chart, []byte, error) {
	c, data, err := l.fetch(ctx, src)
	if err != nil && src.NotInBundle != "" {
		err = fmt.Errorf("%w; %s", err, src.NotInBundle)
	}
	return c, data, err
}

// fetch loads a chart from an https (or, with InsecureHTTP, http) repository
// or an oci:// reference, through the cache.
func (l ChartLoader) fetch(ctx context.Context, src ChartSource) (*chart.Chart, []byte, error) {
	if err := CheckVersion(src.field("version"), src.Version); err != nil {
		return nil, nil, err
	}
	u, err := url.Parse(src.Repository)
	if err != nil || u.Host == "" {
		return nil, nil, fmt.Errorf("%s: %q is not a chart repository (an https:// repository or an oci:// chart reference)", src.field("repository"), src.Repository)
	}
	switch u.Scheme {
	case "oci":
		if src.Name == "" {
			src.Name = u.Path[strings.LastIndex(u.Path, "/")+1:]
		}
	case "http", "https":
		if u.Scheme == "http" && !src.InsecureHTTP {
			return nil, nil, fmt.Errorf("%s: %q is plain http: the chart's index and archive could be tampered with in transit (an https:// repository, or insecureHTTP: true to accept that)", src.field("repository"), src.Repository)
		}
		if src.Name == "" {
			return nil, nil, fmt.Errorf("%s: is missing (the chart's name in repository %s)", src.field("name"), src.Repository)
		}
	default:
		return nil, nil, fmt.Errorf("%s: %q is not a chart repository (an https:// repository or an oci:// chart reference)", src.field("repository"), src.Repository)
	}

	cache, err := l.cache()
	if err != nil {
		return nil, nil, err
	}
	key := cacheKey(src)
	if data, ok := cache.lookup(key); ok {
		if c, err := src.loadArchive(data); err == nil {
			return c, data, nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, l.timeout())
	defer cancel()
	var data []byte
	var digest string
	if u.Scheme == "oci" {
		data, digest, err = l.pullOCI(ctx, src)
	} else {
		data, digest, err = l.fetchHTTP(ctx, src)
	}
	if err != nil {
		return nil, nil, err
	}
	c, err := src.loadArchive(data)
	if err != nil {
		return nil, nil, err
	}
	if err := cache.store(key, digest, data); err != nil {
		return nil, nil, err
	}
	return c, data, nil
}

func (l ChartLoader) timeout() time.Duration {
	if l.Timeout > 0 {
		return l.Timeout
	}
	return DefaultChartTimeout
}

// loadArchive loads a downloaded .tgz and checks it is the chart asked for.
func (s ChartSource) loadArchive(data []byte) (*chart.Chart, error) {
	c, err := loader.LoadArchive(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: chart %s: %w", s.Field, s, err)
	}
	return c, s.check(c)
}

// check verifies the loaded chart's name and version against the source.
func (s ChartSource) check(c *chart.Chart) error {
	if c.Metadata == nil {
		return fmt.Errorf("%s: chart %s has no Chart.yaml", s.Field, s)
	}
	if s.Name != "" && c.Metadata.Name != s.Name {
		return fmt.Errorf("%s: chart %s is named %q, not %q", s.field("name"), s, c.Metadata.Name, s.Name)
	}
	if s.Version != "" && !sameVersion(c.Metadata.Version, s.Version) {
		return fmt.Errorf("%s: chart %s has version %s, not the pinned %s", s.field("version"), s, c.Metadata.Version, s.Version)
	}
	return nil
}

// fetchHTTP reads the repository's index, finds exactly src.Version of
// src.Name, downloads its archive and checks it against the index's digest
// when the index has one. It returns the archive and its sha256 digest.
func (l ChartLoader) fetchHTTP(ctx context.Context, src ChartSource) ([]byte, string, error) {
	base := strings.TrimSuffix(src.Repository, "/")
	indexURL := base + "/index.yaml"
	raw, err := httpGet(ctx, indexURL, maxIndexBytes)
	if err != nil {
		return nil, "", fmt.Errorf("%s: chart repository index: %w", src.field("repository"), err)
	}
	var index repo.IndexFile
	if err := yaml.Unmarshal(raw, &index); err != nil {
		return nil, "", fmt.Errorf("%s: chart repository index %s: %w", src.field("repository"), indexURL, err)
	}
	versions, ok := index.Entries[src.Name]
	if !ok || len(versions) == 0 {
		return nil, "", fmt.Errorf("%s: chart %q is not in repository %s", src.field("name"), src.Name, src.Repository)
	}
	var found *repo.ChartVersion
	var have []string
	for _, v := range versions {
		if v == nil || v.Metadata == nil {
			continue
		}
		have = append(have, v.Version)
		if found == nil && sameVersion(v.Version, src.Version) {
			found = v
		}
	}
	if found == nil {
		return nil, "", fmt.Errorf("%s: %s of chart %q is not in repository %s (it has %s)",
			src.field("version"), src.Version, src.Name, src.Repository, someVersions(have))
	}
	if len(found.URLs) == 0 {
		return nil, "", fmt.Errorf("%s: repository %s lists no download URL for %s %s", src.field("repository"), src.Repository, src.Name, found.Version)
	}
	archiveURL, err := repo.ResolveReferenceURL(base+"/", found.URLs[0])
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", src.field("repository"), err)
	}
	data, err := httpGet(ctx, archiveURL, maxArchiveBytes)
	if err != nil {
		return nil, "", fmt.Errorf("%s: chart %s %s: %w", src.field("repository"), src.Name, found.Version, err)
	}
	sum := sha256.Sum256(data)
	got := hex.EncodeToString(sum[:])
	if want := strings.TrimPrefix(strings.ToLower(found.Digest), "sha256:"); want != "" && want != got {
		return nil, "", fmt.Errorf("%s: chart %s %s from %s has digest sha256:%s, but the repository index says sha256:%s; refusing it",
			src.field("repository"), src.Name, found.Version, archiveURL, got, want)
	}
	return data, "sha256:" + got, nil
}

// someVersions lists up to ten versions for an error message.
func someVersions(vs []string) string {
	if len(vs) == 0 {
		return "no versions"
	}
	if len(vs) > 10 {
		return strings.Join(vs[:10], ", ") + fmt.Sprintf(" and %d more", len(vs)-10)
	}
	return strings.Join(vs, ", ")
}

// httpGet reads url's body, at most limit bytes.
func httpGet(ctx context.Context, url string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("GET %s: larger than %d bytes", url, limit)
	}
	return data, nil
}

// pullOCI pulls the chart layer of src.Repository:src.Version with Helm's
// registry client (which checks every blob against its descriptor) and
// checks the layer's digest once more. It returns the archive and its digest.
func (l ChartLoader) pullOCI(ctx context.Context, src ChartSource) ([]byte, string, error) {
	deadline, _ := ctx.Deadline()
	opts := []registry.ClientOption{
		registry.ClientOptWriter(io.Discard),
		registry.ClientOptHTTPClient(&http.Client{Timeout: time.Until(deadline)}),
	}
	if l.PlainHTTP {
		opts = append(opts, registry.ClientOptPlainHTTP())
	}
	client, err := registry.NewClient(opts...)
	if err != nil {
		return nil, "", fmt.Errorf("%s: registry client: %w", src.field("repository"), err)
	}
	ref := strings.TrimPrefix(src.Repository, "oci://") + ":" + src.Version
	res, err := client.Pull(ref, registry.PullOptWithChart(true))
	if err != nil {
		return nil, "", fmt.Errorf("%s: pulling chart %s (tag %s): %w", src.field("version"), src.Repository, src.Version, err)
	}
	sum := sha256.Sum256(res.Chart.Data)
	got := "sha256:" + hex.EncodeToString(sum[:])
	if got != res.Chart.Digest {
		return nil, "", fmt.Errorf("%s: chart %s: layer digest %s, content %s; refusing it", src.field("repository"), ref, res.Chart.Digest, got)
	}
	return res.Chart.Data, got, nil
}

// chartCache keeps archives by digest (<dir>/sha256/<hex>.tgz) and, per
// source, the digest it resolved to (<dir>/refs/<key>).
type chartCache struct{ dir string }

func (l ChartLoader) cache() (chartCache, error) {
	dir := l.CacheDir
	if dir == "" {
		var err error
		if dir, err = DefaultChartCacheDir(); err != nil {
			return chartCache{}, err
		}
	}
	for _, sub := range []string{"sha256", "refs"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return chartCache{}, fmt.Errorf("chart cache: %w", err)
		}
	}
	return chartCache{dir: dir}, nil
}

// cacheKey identifies a source: the same repository, name and version.
func cacheKey(s ChartSource) string {
	sum := sha256.Sum256([]byte(s.Repository + "\x00" + s.Name + "\x00" + s.Version))
	return hex.EncodeToString(sum[:])
}

func (c chartCache) blobPath(digest string) (string, bool) {
	hexDigest, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || len(hexDigest) != sha256.Size*2 || strings.Trim(hexDigest, "0123456789abcdef") != "" {
		return "", false
	}
	return filepath.Join(c.dir, "sha256", hexDigest+".tgz"), true
}

// lookup returns the cached archive for key if it is there and still has the
// digest recorded for it.
func (c chartCache) lookup(key string) ([]byte, bool) {
	ref, err := os.ReadFile(filepath.Join(c.dir, "refs", key))
	if err != nil {
		return nil, false
	}
	digest := strings.TrimSpace(string(ref))
	p, ok := c.blobPath(digest)
	if !ok {
		return nil, false
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, false
	}
	sum := sha256.Sum256(data)
	if "sha256:"+hex.EncodeToString(sum[:]) != digest {
		return nil, false
	}
	return data, true
}

// store writes the archive, then the source's reference to it, each through
// a temporary file renamed into place.
func (c chartCache) store(key, digest string, data []byte) error {
	p, ok := c.blobPath(digest)
	if !ok {
		return fmt.Errorf("chart cache: bad digest %q", digest)
	}
	if err := writeFileAtomic(p, data); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(c.dir, "refs", key), []byte(digest+"\n"))
}

func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("chart cache: %w", err)
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("chart cache: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("chart cache: %w", err)
	}
	return nil
}
