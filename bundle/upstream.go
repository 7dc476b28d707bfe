package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
)

// upstreamArchive is a release archive the bundle build consumes: `git
// archive` of an upstream release tag, gzipped with -n, so the same tag
// always gives the same bytes, pinned here by their sha256. GitHub's own
// tag tarballs are made differently (other top folder, other compression)
// and do not match.
type upstreamArchive struct {
	file       string // file name, e.g. cert-manager-v1.21.1.tar.gz
	sha256     string // hex
	repository string // the upstream repository, e.g. github.com/cert-manager/cert-manager
	tag        string // the release tag archived, e.g. v1.21.1
	commit     string // the tag's commit
	top        string // the one top folder inside, e.g. cert-manager-v1.21.1
}

// The release archives' file names.
const (
	certManagerArchive  = "cert-manager-v1.21.1.tar.gz"
	ingressNginxArchive = "ingress-nginx-chart-4.15.1.tar.gz"
	traefikChartArchive = "traefik-helm-chart-v41.3.0.tar.gz"
)

// upstreamArchives are the release archives Options.Upstream provides.
var upstreamArchives = []upstreamArchive{
	{
		file:       certManagerArchive,
		sha256:     "20097cab8adb755fef80a9f618544213851133b65977917b390721a0c97e9f90",
		repository: "github.com/cert-manager/cert-manager", tag: "v1.21.1",
		commit: "24e33194fb39488eff2bbf10c6dc640f407cad44",
		top:    "cert-manager-v1.21.1",
	},
	{
		file:       ingressNginxArchive,
		sha256:     "7dc4ea3df6dc86f549f72fabba0a00de83d39b9f98aaa849031c148a8ac2ce43",
		repository: "github.com/kubernetes/ingress-nginx", tag: "helm-chart-4.15.1",
		commit: "0a5901f3c64f11e92e487799b8da3f00cca37515",
		top:    "ingress-nginx-4.15.1",
	},
	{
		file:       traefikChartArchive,
		sha256:     "883e888d0637c15e233cfc727b2758fb0c5f25d4202435b6be0b92b1b7b1762e",
		repository: "github.com/traefik/traefik-helm-chart", tag: "v41.3.0",
		commit: "a8a66d0098703627b2cf352c66b1725c196a734a",
		top:    "traefik-helm-chart-v41.3.0",
	},
}

// Limits on fetching an archive from a mirror.
const (
	maxUpstreamBytes = 64 << 20
	upstreamTimeout  = 2 * time.Minute
)

// Upstream holds every release archive the bundle build consumes, each
// read from a local folder or a mirror's base URL and checked against the
// sha256 pinned in boot. LoadUpstream makes one.
type Upstream struct {
	// Source is the folder or base URL the archives were read from.
	Source string
	data   map[string][]byte // file name -> checked content
}

// LoadUpstream reads every release archive from source, a local folder
// holding them (such as ../shared/upstream) or an http(s) base URL serving
// files of the same names (a mirror), and checks each against its pinned
// sha256. A missing, unreadable or different archive is an error naming
// the file and the sha256 expected.
func LoadUpstream(ctx context.Context, source string) (*Upstream, error) {
	if source == "" {
		return nil, errors.New("bundle: upstream archives: no folder or URL given")
	}
	read := func(a upstreamArchive) ([]byte, error) {
		return os.ReadFile(filepath.Join(source, a.file))
	}
	if u, err := url.Parse(source); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		read = func(a upstreamArchive) ([]byte, error) {
			return fetchArchive(ctx, strings.TrimSuffix(source, "/")+"/"+a.file)
		}
	}
	u := &Upstream{Source: source, data: map[string][]byte{}}
	for _, a := range upstreamArchives {
		data, err := read(a)
		if err != nil {
			return nil, fmt.Errorf("bundle: upstream archive %s (%s %s, sha256 %s) from %s: %w", a.file, a.repository, a.tag, a.sha256, source, err)
		}
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); got != a.sha256 {
			return nil, fmt.Errorf("bundle: upstream archive %s from %s: sha256 %s, want %s (git archive of %s %s; a tarball GitHub makes of the tag is another file)",
				a.file, source, got, a.sha256, a.repository, a.tag)
		}
		u.data[a.file] = data
	}
	return u, nil
}

// fetchArchive downloads one archive from a mirror.
func fetchArchive(ctx context.Context, u string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, upstreamTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxUpstreamBytes+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if len(data) > maxUpstreamBytes {
		return nil, fmt.Errorf("GET %s: larger than %d MiB", u, maxUpstreamBytes>>20)
	}
	return data, nil
}

// archives lists the archives for the manifest.
func (u *Upstream) archives() []Archive {
	var out []Archive
	for _, a := range upstreamArchives {
		out = append(out, Archive{File: a.file, SHA256: a.sha256, Repository: a.repository, Tag: a.tag, Commit: a.commit})
	}
	return out
}

// archive returns the pinned archive named file.
func (u *Upstream) archive(file string) (upstreamArchive, []byte, error) {
	for _, a := range upstreamArchives {
		if a.file == file {
			if data, ok := u.data[file]; ok {
				return a, data, nil
			}
		}
	}
	return upstreamArchive{}, nil, fmt.Errorf("bundle: upstream archive %s was not loaded from %s", file, u.Source)
}

// extract writes the entries below the folder sub of archive file's top
// folder into dst, keeping their permission bits. It fails on anything but
// files and folders, and when sub holds nothing.
func (u *Upstream) extract(file, sub, dst string) error {
	a, data, err := u.archive(file)
	if err != nil {
		return err
	}
	fail := func(err error) error { return fmt.Errorf("upstream archive %s: %w", file, err) }
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return fail(err)
	}
	prefix := a.top + "/" + sub + "/"
	tr := tar.NewReader(zr)
	n := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail(err)
		}
		if h.Typeflag == tar.TypeXGlobalHeader { // git archive's commit id
			continue
		}
		rel, ok := strings.CutPrefix(strings.TrimSuffix(h.Name, "/"), prefix)
		if !ok {
			continue
		}
		if path.Clean(rel) != rel || rel == ".." || strings.HasPrefix(rel, "../") {
			return fail(fmt.Errorf("entry %s: not a clean path", h.Name))
		}
		p := filepath.Join(dst, filepath.FromSlash(rel))
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
		case tar.TypeReg:
			if err = os.MkdirAll(filepath.Dir(p), 0o755); err == nil {
				err = writeEntry(p, tr, os.FileMode(h.Mode)&0o755|0o644)
			}
		default:
			err = fmt.Errorf("entry %s: type %q is neither a file nor a folder", h.Name, h.Typeflag)
		}
		if err != nil {
			return fail(err)
		}
		n++
	}
	if n == 0 {
		return fail(fmt.Errorf("nothing under %s", prefix))
	}
	return nil
}

// writeEntry writes a file's content from r.
func writeEntry(p string, r io.Reader, mode os.FileMode) error {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// readFile returns one file of archive file, at rel below its top folder.
func (u *Upstream) readFile(file, rel string) ([]byte, error) {
	a, data, err := u.archive(file)
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("upstream archive %s: %w", file, err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, fmt.Errorf("upstream archive %s: no file %s/%s", file, a.top, rel)
		}
		if err != nil {
			return nil, fmt.Errorf("upstream archive %s: %w", file, err)
		}
		if h.Name == a.top+"/"+rel && h.Typeflag == tar.TypeReg {
			return io.ReadAll(tr)
		}
	}
}

// upstreamChart is a Helm chart in a release archive.
type upstreamChart struct {
	archive string // file name
	dir     string // the chart's folder below the archive's top folder
	name    string
	version string
	// stamp: the chart's Chart.yaml carries placeholders that upstream's
	// release sets (version and appVersion v0.0.0); packing sets both to
	// version.
	stamp bool
}

// upstreamCharts are the charts the release archives hold.
var upstreamCharts = []upstreamChart{
	{archive: certManagerArchive, dir: "deploy/charts/cert-manager", name: "cert-manager", version: certManagerVersion, stamp: true},
	{archive: ingressNginxArchive, dir: "charts/ingress-nginx", name: "ingress-nginx", version: "4.15.1"},
	{archive: traefikChartArchive, dir: "traefik", name: "traefik", version: "41.3.0"},
}

// Chart packs the chart name at version (a leading "v" on either side
// ignored) from its release archive, as a chart archive for Options.Charts
// (Slot left empty). ok is false when no archive holds that chart at that
// version. The archive is reproducible: the same chart gives the same bytes.
func (u *Upstream) Chart(name, version string) (c ChartArchive, ok bool, err error) {
	for _, uc := range upstreamCharts {
		if uc.name != name || strings.TrimPrefix(uc.version, "v") != strings.TrimPrefix(version, "v") {
			continue
		}
		data, err := u.packChart(uc)
		if err != nil {
			return ChartArchive{}, true, fmt.Errorf("bundle: chart %s %s from upstream archive %s: %w", uc.name, uc.version, uc.archive, err)
		}
		return ChartArchive{Name: uc.name, Version: uc.version, Data: data}, true, nil
	}
	return ChartArchive{}, false, nil
}

// packChart packs uc as Helm does (helm package: its .helmignore applied,
// Chart.yaml rewritten from the parsed metadata), with fixed times.
func (u *Upstream) packChart(uc upstreamChart) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "boot-upstream-chart-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	src := filepath.Join(tmp, uc.name)
	if err := u.extract(uc.archive, uc.dir, src); err != nil {
		return nil, err
	}
	c, err := loader.LoadDir(src)
	if err != nil {
		return nil, err
	}
	if uc.stamp {
		c.Metadata.Version, c.Metadata.AppVersion = uc.version, uc.version
	}
	if c.Metadata.Name != uc.name || c.Metadata.Version != uc.version {
		return nil, fmt.Errorf("%s/Chart.yaml: chart %s %s, want %s %s", uc.dir, c.Metadata.Name, c.Metadata.Version, uc.name, uc.version)
	}
	out := filepath.Join(tmp, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		return nil, err
	}
	p, err := chartutil.Save(c, out)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	return fixedTimes(data)
}

// fixedTimes rewrites a .tgz with every entry's time set to epoch, no owner
// names, and no time in the gzip header: Helm stamps the packaging time.
func fixedTimes(tgz []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	tr, tw := tar.NewReader(zr), tar.NewWriter(zw)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag != tar.TypeReg {
			return nil, fmt.Errorf("chart archive entry %s: not a file", h.Name)
		}
		nh := &tar.Header{Typeflag: tar.TypeReg, Name: h.Name, Mode: h.Mode, Size: h.Size, ModTime: epoch, Format: tar.FormatPAX}
		if err := tw.WriteHeader(nh); err != nil {
			return nil, err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
