package bundle

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// smallBundle writes a bundle folder with two files and one real image
// archive, the way Build does, and returns it.
func smallBundle(t *testing.T) string {
	t.Helper()
	b := &builder{cache: t.TempDir(), log: os.Stderr}
	dir := t.TempDir()
	m := Manifest{KubernetesVersion: "v1.37.2", Arch: "amd64", BuiltWith: BuiltWith{Go: "go1.26.8", Modules: []Module{{Component: "m", Path: "example.com/m", Version: "v1.0.0"}}}}
	add := func(rel string, data []byte) {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		sum, size, err := HashFile(p)
		if err != nil {
			t.Fatal(err)
		}
		m.Files = append(m.Files, File{Path: rel, SHA256: sum, Size: size, Component: "test", Version: "v1"})
	}
	add("bin/tool", []byte("#!/bin/sh\necho tool\n"))
	add("config/crictl.yaml", []byte("timeout: 10\n"))

	l, err := b.makeLayer([]layerFile{{path: "pause", data: []byte("not really pause"), mode: 0o755}})
	if err != nil {
		t.Fatal(err)
	}
	archive, digest, err := b.buildImage(imageSpec{name: "registry.k8s.io/pause:3.10.2", repoTag: "pause:3.10.2", layers: []layer{l}, entrypoint: []string{"/pause"}})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	add("images/pause.tar", data)
	m.Images = append(m.Images, Image{Name: "registry.k8s.io/pause:3.10.2", RepoTag: "pause:3.10.2", Path: "images/pause.tar", Digest: digest, Component: "pause", Version: "3.10.2"})
	enc, err := m.encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ManifestName), enc, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestOpenVerifiesFiles(t *testing.T) {
	dir := smallBundle(t)
	b, err := Open(dir)
	if err != nil {
		t.Fatalf("Open of an intact bundle: %v", err)
	}
	if len(b.Manifest.Files) != 3 || len(b.Manifest.Images) != 1 {
		t.Fatalf("manifest has %d files and %d images, want 3 and 1", len(b.Manifest.Files), len(b.Manifest.Images))
	}
	img, err := b.Image("registry.k8s.io/pause:3.10.2")
	if err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if d.String() != b.Manifest.Images[0].Digest {
		t.Errorf("loaded image digest %s, manifest says %s", d, b.Manifest.Images[0].Digest)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cf.Config.Entrypoint, " ") != "/pause" || cf.Architecture != "amd64" || cf.OS != "linux" {
		t.Errorf("image config %+v: want entrypoint /pause on linux/amd64", cf.Config)
	}
	if _, err := b.Image("registry.k8s.io/nope:1"); err == nil {
		t.Error("Image of an unknown name succeeded")
	}

	tamper := []struct {
		name, file string
		change     func(p string) error
		want       string
	}{
		{"changed byte", "bin/tool", func(p string) error { return os.WriteFile(p, []byte("#!/bin/sh\necho TOOL\n"), 0o644) }, "bin/tool: sha256"},
		{"grown", "config/crictl.yaml", func(p string) error { return os.WriteFile(p, []byte("timeout: 100\n"), 0o644) }, "config/crictl.yaml: size"},
		{"missing", "images/pause.tar", os.Remove, "images/pause.tar"},
	}
	for _, tc := range tamper {
		t.Run(tc.name, func(t *testing.T) {
			dir := smallBundle(t)
			if err := tc.change(filepath.Join(dir, filepath.FromSlash(tc.file))); err != nil {
				t.Fatal(err)
			}
			_, err := Open(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open of a tampered bundle: got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestParseManifestErrors(t *testing.T) {
	good := Manifest{KubernetesVersion: "v1.37.2", Arch: "amd64",
		Files:  []File{{Path: "images/a.tar", SHA256: strings.Repeat("ab", 32), Size: 1}},
		Images: []Image{{Name: "registry.k8s.io/a:v1", RepoTag: "a:v1", Path: "images/a.tar", Digest: "sha256:" + strings.Repeat("cd", 32)}},
	}
	cases := []struct {
		name string
		edit func(m *Manifest)
		raw  string
		want string
	}{
		{name: "valid", edit: func(*Manifest) {}},
		{name: "no version", edit: func(m *Manifest) { m.KubernetesVersion = "" }, want: "kubernetesVersion"},
		{name: "escaping path", edit: func(m *Manifest) { m.Files[0].Path = "../etc/passwd" }, want: "files[0].path"},
		{name: "absolute path", edit: func(m *Manifest) { m.Files[0].Path = "/etc/passwd" }, want: "files[0].path"},
		{name: "bad sha", edit: func(m *Manifest) { m.Files[0].SHA256 = "xyz" }, want: "files[0].sha256"},
		{name: "image not a file", edit: func(m *Manifest) { m.Images[0].Path = "images/b.tar" }, want: "images[0].path"},
		{name: "bad image name", edit: func(m *Manifest) { m.Images[0].Name = "Not A Name" }, want: "images[0].name"},
		{name: "bad repoTag", edit: func(m *Manifest) { m.Images[0].RepoTag = "" }, want: "images[0].repoTag"},
		{name: "bad digest", edit: func(m *Manifest) { m.Images[0].Digest = "md5:00" }, want: "images[0].digest"},
		{name: "unknown field", raw: `{"kubernetesVersion":"v1","arch":"amd64","extra":1}`, want: `unknown field "extra"`},
		{name: "syntax", raw: "{\n\"arch\": \"amd64\",\n}", want: "line 3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := []byte(tc.raw)
			if tc.raw == "" {
				m := good
				m.Files = append([]File{}, good.Files...)
				m.Images = append([]Image{}, good.Images...)
				tc.edit(&m)
				var err error
				if data, err = json.Marshal(m); err != nil {
					t.Fatal(err)
				}
			}
			_, err := ParseManifest(data)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("valid manifest: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestLayersAndImagesAreReproducible(t *testing.T) {
	src := filepath.Join(t.TempDir(), "bin")
	if err := os.WriteFile(src, []byte("binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	build := func() (string, string) {
		b := &builder{cache: t.TempDir()}
		l, err := b.makeLayer([]layerFile{{path: "usr/local/bin/tool", src: src, mode: 0o755}})
		if err != nil {
			t.Fatal(err)
		}
		archive, digest, err := b.buildImage(imageSpec{name: "example.com/tool:v1", repoTag: "tool:v1", layers: []layer{l}, cmd: []string{"/usr/local/bin/tool"}})
		if err != nil {
			t.Fatal(err)
		}
		sum, _, err := HashFile(archive)
		if err != nil {
			t.Fatal(err)
		}
		return sum, digest
	}
	sum1, d1 := build()
	sum2, d2 := build()
	if sum1 != sum2 || d1 != d2 {
		t.Fatalf("two builds of the same image differ: archives %s / %s, digests %s / %s", sum1, sum2, d1, d2)
	}
	// The layer holds the parent folders and the file with fixed metadata.
	b := &builder{cache: t.TempDir()}
	l, err := b.makeLayer([]layerFile{{path: "usr/local/bin/tool", src: src, mode: 0o755}})
	if err != nil {
		t.Fatal(err)
	}
	tl, err := tarball.LayerFromFile(l.path)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := tl.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	names := tarNames(t, rc)
	if got := strings.Join(names, " "); got != "usr/ usr/local/ usr/local/bin/ usr/local/bin/tool" {
		t.Errorf("layer entries %q", got)
	}
}

func TestCheckOut(t *testing.T) {
	if err := checkOut(filepath.Join(t.TempDir(), "new")); err != nil {
		t.Errorf("missing folder: %v", err)
	}
	if err := checkOut(t.TempDir()); err != nil {
		t.Errorf("empty folder: %v", err)
	}
	busy := t.TempDir()
	if err := os.WriteFile(filepath.Join(busy, "thesis.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := checkOut(busy); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("folder with other files: got %v, want a refusal", err)
	}
	if err := checkOut(smallBundle(t)); err != nil {
		t.Errorf("earlier bundle: %v", err)
	}
}

// TestReplaceWithStaged swaps a filled folder in for an earlier one, and
// leaves the earlier one and no staged folder behind when filling fails.
func TestReplaceWithStaged(t *testing.T) {
	parent := t.TempDir()
	out := filepath.Join(parent, "bundle")
	write := func(dir, name string) error { return os.WriteFile(filepath.Join(dir, name), []byte(name), 0o644) }
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := write(out, "old"); err != nil {
		t.Fatal(err)
	}
	failed := fmt.Errorf("fill failed")
	if err := replaceWithStaged(out, func(dir string) error {
		if err := write(dir, "half"); err != nil {
			return err
		}
		return failed
	}); err != failed {
		t.Fatalf("failed fill: got %v, want %v", err, failed)
	}
	entries := func(dir string) []string {
		t.Helper()
		es, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range es {
			names = append(names, e.Name())
		}
		return names
	}
	if got := strings.Join(entries(parent), ","); got != "bundle" {
		t.Errorf("after a failed fill the parent holds %s, want only bundle", got)
	}
	if got := strings.Join(entries(out), ","); got != "old" {
		t.Errorf("after a failed fill out holds %s, want old", got)
	}
	if err := replaceWithStaged(out, func(dir string) error { return write(dir, "new") }); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(entries(parent), ","); got != "bundle" {
		t.Errorf("after a fill the parent holds %s, want only bundle", got)
	}
	if got := strings.Join(entries(out), ","); got != "new" {
		t.Errorf("after a fill out holds %s, want new", got)
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o755 {
		t.Errorf("out has mode %v, want 0755", fi.Mode().Perm())
	}
}

func TestKubernetesComponent(t *testing.T) {
	c, err := kubernetesComponent("v1.37.2")
	if err != nil {
		t.Fatal(err)
	}
	if c.local != "v0.37.2" || c.module != "k8s.io/kubernetes" || len(c.bins) != 7 {
		t.Errorf("got %+v", c)
	}
	if !strings.Contains(strings.Join(c.ldflags, " "), "k8s.io/component-base/version.gitVersion=v1.37.2") {
		t.Errorf("ldflags %q lack the version stamp", c.ldflags)
	}
	for _, bad := range []string{"1.37.2", "v1.37", "v1.x.2", ""} {
		if _, err := kubernetesComponent(bad); err == nil {
			t.Errorf("version %q accepted", bad)
		}
	}
}

func TestDefaultBinName(t *testing.T) {
	for pkg, want := range map[string]string{
		"go.etcd.io/etcd/server/v3":     "server",
		"k8s.io/kubernetes/cmd/kubeadm": "kubeadm",
		"github.com/flannel-io/flannel": "flannel",
		"helm.sh/helm/v3/cmd/helm":      "helm",
	} {
		if got := defaultBinName(pkg); got != want {
			t.Errorf("defaultBinName(%s) = %s, want %s", pkg, got, want)
		}
	}
}

// tarNames lists the entry names of a tar stream.
func tarNames(t *testing.T, r io.Reader) []string {
	t.Helper()
	var names []string
	for _, h := range tarHeaders(t, r) {
		names = append(names, h.Name)
	}
	return names
}

// tarHeaders returns the headers of the tar stream r in order; an entry
// owned by other than 0:0 or dated other than epoch fails the test.
func tarHeaders(t *testing.T, r io.Reader) []*tar.Header {
	t.Helper()
	var headers []*tar.Header
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return headers
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 || !h.ModTime.Equal(epoch) {
			t.Errorf("entry %s: owner %d:%d, time %s; want 0:0 at %s", h.Name, h.Uid, h.Gid, h.ModTime, epoch)
		}
		headers = append(headers, h)
	}
}

// archiveImage opens the image ref in the image archive file archive.
func archiveImage(t *testing.T, archive, ref string) v1.Image {
	t.Helper()
	tag, err := name.NewTag(ref, name.StrictValidation)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(archive, &tag)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// imageContents returns img's config file and the mode of each entry of
// its layers by path (a later layer's entry replacing an earlier one's);
// every layer is read by tarHeaders, so an entry owned by other than 0:0
// or dated other than epoch fails the test.
func imageContents(t *testing.T, img v1.Image) (*v1.ConfigFile, map[string]int64) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	modes := map[string]int64{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range tarHeaders(t, rc) {
			modes[h.Name] = h.Mode
		}
		rc.Close()
	}
	return cf, modes
}

// A manifest that is not a regular file of bounded size is refused at once,
// naming it, by ReadManifest and Open alike: a named pipe is not waited on,
// a huge file not read.
func TestReadManifestRefusesUnusableFiles(t *testing.T) {
	fifoDir, bigDir, dirDir := t.TempDir(), t.TempDir(), t.TempDir()
	fifo := filepath.Join(fifoDir, ManifestName)
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(bigDir, ManifestName)
	if err := os.WriteFile(big, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, maxManifestSize+1); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dirDir, ManifestName), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ dir, want string }{
		{fifoDir, "bundle manifest " + fifo + " is not a regular file (a named pipe)"},
		{bigDir, fmt.Sprintf("bundle manifest %s is %d bytes, more than the limit of 16 MiB", big, maxManifestSize+1)},
		{dirDir, "bundle manifest " + filepath.Join(dirDir, ManifestName) + " is not a regular file (a directory)"},
	} {
		for name, read := range map[string]func(string) error{
			"ReadManifest": func(dir string) error { _, err := ReadManifest(dir); return err },
			"Open":         func(dir string) error { _, err := Open(dir); return err },
		} {
			start := time.Now()
			err := read(tc.dir)
			if took := time.Since(start); took > 500*time.Millisecond {
				t.Errorf("%s %s: took %s", name, tc.dir, took)
			}
			if err == nil || err.Error() != tc.want {
				t.Errorf("%s: got %v, want %s", name, err, tc.want)
			}
		}
	}
}

// twoVersions is a valid manifest carrying Kubernetes v1.37.2 and, listed
// with its three programs, each of others.
func twoVersions(others ...string) Manifest {
	m := Manifest{KubernetesVersion: "v1.37.2", Arch: "amd64", OtherKubernetesVersions: others}
	for _, v := range others {
		for _, bin := range kubernetesBins {
			m.Files = append(m.Files, File{Path: "kubernetes/" + v + "/bin/" + bin, SHA256: strings.Repeat("ab", 32), Size: 1, Component: "kubernetes", Version: v})
		}
	}
	return m
}

func TestKubernetesBinDir(t *testing.T) {
	m := twoVersions("v1.35.4", "v1.36.3")
	for v, want := range map[string]string{"v1.37.2": "bin", "v1.36.3": "kubernetes/v1.36.3/bin", "v1.35.4": "kubernetes/v1.35.4/bin"} {
		got, err := m.KubernetesBinDir(v)
		if err != nil || got != want {
			t.Errorf("KubernetesBinDir(%s) = %q, %v, want %q", v, got, err, want)
		}
		if !m.CarriesKubernetes(v) {
			t.Errorf("CarriesKubernetes(%s) = false", v)
		}
	}
	for m, want := range map[*Manifest]string{
		&m:                          "bundle carries Kubernetes v1.37.2, v1.36.3 and v1.35.4, not v1.34.0",
		ptr(twoVersions("v1.36.3")): "bundle carries Kubernetes v1.37.2 and v1.36.3, not v1.34.0",
		ptr(twoVersions()):          "bundle carries Kubernetes v1.37.2, not v1.34.0",
	} {
		dir, err := m.KubernetesBinDir("v1.34.0")
		if err == nil || err.Error() != want {
			t.Errorf("KubernetesBinDir of a version not carried: %q, %v, want the error %q", dir, err, want)
		}
		if m.CarriesKubernetes("v1.34.0") || m.CarriesKubernetes("") {
			t.Errorf("%v carries v1.34.0 or the empty version", append([]string{m.KubernetesVersion}, m.OtherKubernetesVersions...))
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestParseManifestOtherKubernetesVersions(t *testing.T) {
	cases := []struct {
		name string
		edit func(m *Manifest)
		want string
	}{
		{name: "valid", edit: func(*Manifest) {}},
		{name: "primary not a version", edit: func(m *Manifest) { m.KubernetesVersion = "1.37.2" }, want: `kubernetesVersion: "1.37.2" is not a version`},
		{name: "primary with a suffix", edit: func(m *Manifest) { m.KubernetesVersion = "v1.37.2-rc.0" }, want: "kubernetesVersion:"},
		{name: "not a version", edit: func(m *Manifest) { m.OtherKubernetesVersions[1] = "v1.36" }, want: `otherKubernetesVersions[1]: "v1.36" is not a version`},
		{name: "leading zero", edit: func(m *Manifest) { m.OtherKubernetesVersions[0] = "v1.035.4" }, want: "otherKubernetesVersions[0]:"},
		{name: "the primary", edit: func(m *Manifest) { m.OtherKubernetesVersions[1] = "v1.37.2" }, want: "otherKubernetesVersions[1]: v1.37.2 is not older than kubernetesVersion v1.37.2"},
		{name: "newer than the primary", edit: func(m *Manifest) { m.OtherKubernetesVersions[1] = "v1.38.0" }, want: "otherKubernetesVersions[1]: v1.38.0 is not older than kubernetesVersion v1.37.2"},
		{name: "twice", edit: func(m *Manifest) { m.OtherKubernetesVersions[1] = "v1.35.4" }, want: "otherKubernetesVersions[1]: v1.35.4 after v1.35.4: want each version once, oldest first"},
		{name: "newest first", edit: func(m *Manifest) {
			m.OtherKubernetesVersions = []string{"v1.36.3", "v1.35.4"}
		}, want: "otherKubernetesVersions[1]: v1.35.4 after v1.36.3"},
		{name: "program missing", edit: func(m *Manifest) {
			m.Files = slices.DeleteFunc(m.Files, func(f File) bool { return f.Path == "kubernetes/v1.36.3/bin/kubelet" })
		}, want: "otherKubernetesVersions[1] (v1.36.3): kubernetes/v1.36.3/bin/kubelet not listed in files"},
		{name: "program of another version", edit: func(m *Manifest) { m.Files[0].Version = "v1.36.3" },
			want: "otherKubernetesVersions[0] (v1.35.4): files lists kubernetes/v1.35.4/bin/kubeadm as kubernetes v1.36.3, want kubernetes v1.35.4"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := twoVersions("v1.35.4", "v1.36.3")
			tc.edit(&m)
			data, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseManifest(data)
			if tc.want == "" {
				if err != nil || !slices.Equal(got.OtherKubernetesVersions, []string{"v1.35.4", "v1.36.3"}) {
					t.Fatalf("valid manifest: %+v, %v", got, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}

	// A bundle of one version has no otherKubernetesVersions in its
	// manifest, which stays as before the field existed.
	m := twoVersions()
	data, err := m.encode()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "otherKubernetesVersions") {
		t.Errorf("a one-version manifest names otherKubernetesVersions:\n%s", data)
	}
}
