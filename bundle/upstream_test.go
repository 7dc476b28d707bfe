package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"

	"github.com/bootctl/boot/internal/testenv"
)

// upstreamDir is the folder of release archives beside the project
// (../shared/upstream from its root), as `make bundle` reads it.
func upstreamDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "shared", "upstream"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, certManagerArchive)); err != nil {
		testenv.Need(t, "the upstream release archives are not beside the project (%v)", err)
	}
	return dir
}

// loadTestUpstream loads the archives beside the project.
func loadTestUpstream(t *testing.T) *Upstream {
	t.Helper()
	u, err := LoadUpstream(context.Background(), upstreamDir(t))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// loadUpstreamChart loads the chart name at version as u packs it from its
// archive.
func loadUpstreamChart(t *testing.T, u *Upstream, name, version string) *chart.Chart {
	t.Helper()
	ca, ok, err := u.Chart(name, version)
	if err != nil || !ok {
		t.Fatalf("chart %s %s: %v %v", name, version, ok, err)
	}
	ch, err := loader.LoadArchive(bytes.NewReader(ca.Data))
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// copyArchives copies the archives into a new folder and returns it.
func copyArchives(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	for _, a := range upstreamArchives {
		if err := copyFile(filepath.Join(dst, a.file), filepath.Join(src, a.file), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// flipByte changes one byte in the middle of the file p.
func flipByte(t *testing.T, p string) {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x01
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// wantError fails unless err says every one of want.
func wantError(t *testing.T, what string, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error", what)
		return
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: error %q does not say %q", what, err, w)
		}
	}
}

func TestLoadUpstreamFolder(t *testing.T) {
	ctx := context.Background()
	dir := upstreamDir(t)
	u, err := LoadUpstream(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(u.data) != len(upstreamArchives) || u.Source != dir {
		t.Errorf("loaded %d archives from %s, want %d from %s", len(u.data), u.Source, len(upstreamArchives), dir)
	}

	cm := upstreamArchives[0]
	missing := copyArchives(t, dir)
	if err := os.Remove(filepath.Join(missing, cm.file)); err != nil {
		t.Fatal(err)
	}
	_, err = LoadUpstream(ctx, missing)
	wantError(t, "a missing archive", err, cm.file, cm.sha256, "no such file")

	unreadable := copyArchives(t, dir)
	p := filepath.Join(unreadable, cm.file)
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(p, 0o755); err != nil {
		t.Fatal(err)
	}
	_, err = LoadUpstream(ctx, unreadable)
	wantError(t, "an archive that is a folder", err, cm.file, cm.sha256)

	tampered := copyArchives(t, dir)
	last := upstreamArchives[len(upstreamArchives)-1]
	flipByte(t, filepath.Join(tampered, last.file))
	_, err = LoadUpstream(ctx, tampered)
	wantError(t, "a tampered archive", err, last.file, "want "+last.sha256, tampered)

	_, err = LoadUpstream(ctx, "")
	wantError(t, "no source", err, "no folder or URL")
}

func TestLoadUpstreamURL(t *testing.T) {
	ctx := context.Background()
	dir := upstreamDir(t)
	tampered := copyArchives(t, dir)
	cm := upstreamArchives[0]
	flipByte(t, filepath.Join(tampered, cm.file))
	good := httptest.NewServer(http.StripPrefix("/mirror/", http.FileServer(http.Dir(dir))))
	defer good.Close()
	bad := httptest.NewServer(http.FileServer(http.Dir(tampered)))
	defer bad.Close()
	empty := httptest.NewServer(http.NotFoundHandler())
	defer empty.Close()

	for _, base := range []string{good.URL + "/mirror", good.URL + "/mirror/"} {
		u, err := LoadUpstream(ctx, base)
		if err != nil {
			t.Fatalf("%s: %v", base, err)
		}
		if len(u.data) != len(upstreamArchives) {
			t.Errorf("%s: %d archives", base, len(u.data))
		}
	}
	_, err := LoadUpstream(ctx, bad.URL)
	wantError(t, "a tampered body", err, cm.file, "want "+cm.sha256)
	_, err = LoadUpstream(ctx, empty.URL)
	wantError(t, "a mirror without the archives", err, cm.file, cm.sha256, "404 Not Found")
	_, err = LoadUpstream(ctx, "http://"+testenv.ClosedAddr(t))
	wantError(t, "an unreachable mirror", err, cm.file, cm.sha256, "connection refused")
}

func TestUpstreamExtract(t *testing.T) {
	u := loadTestUpstream(t)
	dst := t.TempDir()
	if err := u.extract(certManagerArchive, "cmd/acmesolver", dst); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"main.go", "go.mod", "go.sum", "app/app.go", "LICENSE"} {
		if _, err := os.Stat(filepath.Join(dst, f)); err != nil {
			t.Errorf("cmd/acmesolver/%s not extracted: %v", f, err)
		}
	}
	err := u.extract(certManagerArchive, "cmd/nothing", t.TempDir())
	wantError(t, "an empty folder", err, certManagerArchive, "nothing under cert-manager-v1.21.1/cmd/nothing/")
	if data, err := u.readFile(certManagerArchive, "LICENSE"); err != nil || !bytes.Contains(data, []byte("Apache License")) {
		t.Errorf("LICENSE: %v", err)
	}
	_, err = u.readFile(certManagerArchive, "NOPE")
	wantError(t, "a missing file", err, "no file cert-manager-v1.21.1/NOPE")
}

// tgzEntries lists a .tgz's entry names and fails on an entry not dated
// epoch or with an owner.
func tgzEntries(t *testing.T, data []byte) []string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if !zr.ModTime.IsZero() {
		t.Errorf("gzip header time %s", zr.ModTime)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		if !h.ModTime.Equal(time.Unix(0, 0)) || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("entry %s: time %s owner %d:%d %q:%q", h.Name, h.ModTime, h.Uid, h.Gid, h.Uname, h.Gname)
		}
		names = append(names, h.Name)
	}
}

func TestUpstreamCharts(t *testing.T) {
	u := loadTestUpstream(t)
	for _, c := range []struct{ name, version, ask, appVersion, file, ignored string }{
		{"cert-manager", "v1.21.1", "v1.21.1", "v1.21.1", "cert-manager/templates/crd-cert-manager.io_certificates.yaml", "cert-manager/tests/"},
		{"ingress-nginx", "4.15.1", "4.15.1", "1.15.1", "ingress-nginx/templates/controller-deployment.yaml", "__snapshot__"},
		{"traefik", "41.3.0", "v41.3.0", "v3.7.11", "traefik/crds/traefik.io_ingressroutes.yaml", "traefik/tests/"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ca, ok, err := u.Chart(c.name, c.ask)
			if err != nil || !ok {
				t.Fatalf("Chart(%s, %s): %v %v", c.name, c.ask, ok, err)
			}
			if ca.Name != c.name || ca.Version != c.version || ca.Slot != "" {
				t.Errorf("chart %+v", ca)
			}
			ch, err := loader.LoadArchive(bytes.NewReader(ca.Data))
			if err != nil {
				t.Fatal(err)
			}
			if ch.Metadata.Name != c.name || ch.Metadata.Version != c.version || ch.Metadata.AppVersion != c.appVersion {
				t.Errorf("Chart.yaml: %s %s appVersion %s, want %s %s %s", ch.Metadata.Name, ch.Metadata.Version, ch.Metadata.AppVersion, c.name, c.version, c.appVersion)
			}
			names := tgzEntries(t, ca.Data)
			found := false
			for _, n := range names {
				found = found || n == c.file
				if strings.Contains(n, c.ignored) {
					t.Errorf("packed %s, which the chart's .helmignore leaves out (%s)", n, c.ignored)
				}
			}
			if !found {
				t.Errorf("the archive lacks %s: %q", c.file, names)
			}
			again, _, err := u.Chart(c.name, c.version)
			if err != nil || !bytes.Equal(again.Data, ca.Data) {
				t.Errorf("a second packing differs (%v)", err)
			}
			ca.Slot = "slot"
			if err := checkCharts([]ChartArchive{ca}); err != nil {
				t.Error(err)
			}
		})
	}
	if _, ok, err := u.Chart("cert-manager", "v1.19.1"); ok || err != nil {
		t.Errorf("cert-manager v1.19.1: %v %v, want no such chart", ok, err)
	}
	if _, ok, err := u.Chart("hello", "41.3.0"); ok || err != nil {
		t.Errorf("hello 41.3.0: %v %v, want no such chart", ok, err)
	}
}
