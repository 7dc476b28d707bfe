package bundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/mod/semver"
)

// ManifestName is the manifest's file name inside a bundle folder.
const ManifestName = "manifest.json"

// maxManifestSize bounds the manifest file (a full bundle's is some 20 KiB).
const maxManifestSize = 16 << 20

// Manifest describes a bundle folder: what it was built from and the sha256
// of every file in it.
type Manifest struct {
	// KubernetesVersion is the newest Kubernetes version the bundle
	// carries, the one installed by default: its kubeadm, kubelet and
	// kubectl are in bin/, the systemd units and containerd's pause image
	// are its.
	KubernetesVersion string `json:"kubernetesVersion"`
	// OtherKubernetesVersions are the older versions the bundle also
	// carries (to build a cluster at one of them and upgrade it in place),
	// oldest first: the kubeadm, kubelet and kubectl of each are in
	// kubernetes/<version>/bin (KubernetesBinDir), the images its kubeadm
	// asks for among Images. Absent in a bundle of one version.
	OtherKubernetesVersions []string  `json:"otherKubernetesVersions,omitempty"`
	Arch                    string    `json:"arch"`
	BuiltWith               BuiltWith `json:"builtWith"`
	Files                   []File    `json:"files"`
	Images                  []Image   `json:"images"`
	// Charts are the add-ons' upstream Helm charts (absent in bundles built
	// without them).
	Charts []Chart `json:"charts,omitempty"`
}

// BuiltWith records the toolchain and every pinned source version.
type BuiltWith struct {
	// Go is the toolchain, e.g. "go1.26.8".
	Go string `json:"go"`
	// Modules are the Go modules built from the module proxy.
	Modules []Module `json:"modules"`
	// Debian maps each Debian package taken from the mirror (for the
	// kube-proxy, flannel and redis images, and the registry image's CA
	// certificates) to its version.
	Debian map[string]string `json:"debian,omitempty"`
	// Linked lists what was linked into a binary from this machine, e.g.
	// "runc": "libseccomp-dev 2.5.4-1+deb12u1 (static)".
	Linked map[string]string `json:"linked,omitempty"`
	// Archives are the upstream release archives the build read
	// (Options.Upstream), absent in bundles built without them.
	Archives []Archive `json:"archives,omitempty"`
}

// Archive is one upstream release archive a bundle was built from: git
// archive of Repository at Tag.
type Archive struct {
	File       string `json:"file"`
	SHA256     string `json:"sha256"`
	Repository string `json:"repository"`
	Tag        string `json:"tag"`
	Commit     string `json:"commit"`
}

// Module is one Go module (or source file of one) the bundle was built from.
type Module struct {
	Component string `json:"component"`
	Path      string `json:"path"`
	Version   string `json:"version"`
	// InRepository is the version of the modules that upstream's go.mod
	// replaces with folders of its repository (Kubernetes' staging
	// modules), which the build takes from the module proxy instead.
	InRepository string `json:"inRepository,omitempty"`
	// Pinned are dependencies built at another version than upstream
	// asks for, because the module proxy does not serve that one.
	Pinned map[string]string `json:"pinned,omitempty"`
}

// File is one file of the bundle.
type File struct {
	// Path is slash-separated and relative to the bundle folder.
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	// Component names what the file belongs to ("kubernetes", "containerd",
	// ...) and Version is that component's real version.
	Component string `json:"component"`
	Version   string `json:"version"`
}

// Image is one image archive of the bundle.
type Image struct {
	// Name is the full reference the archive is tagged with, e.g.
	// "registry.k8s.io/kube-apiserver:v1.37.2".
	Name string `json:"name"`
	// RepoTag is the image's name under any other image repository R:
	// R + "/" + RepoTag is what kubeadm asks for with imageRepository R
	// (e.g. "coredns:v1.14.6", where the default registry's name is
	// registry.k8s.io/coredns/coredns:v1.14.6).
	RepoTag string `json:"repoTag"`
	// Path is the archive, relative to the bundle folder; it is also listed
	// in Files.
	Path string `json:"path"`
	// Digest is the image manifest's digest, as a registry reports it
	// after a push.
	Digest string `json:"digest"`
	// Component and Version name what the image runs (for etcd the real
	// etcd version, which may differ from the tag kubeadm asks for).
	Component string `json:"component"`
	Version   string `json:"version"`
}

// Bundle is an opened, verified bundle folder.
type Bundle struct {
	Dir      string
	Manifest Manifest
}

// Open reads DIR/manifest.json and verifies that every file it lists exists
// with the recorded size and sha256. A file verified by an earlier Open on
// this machine and unchanged since (same size, inode and change time: see
// verified) is not read again.
func Open(dir string) (*Bundle, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	path := verifiedPath(dir)
	before, after := loadVerified(path), verified{Files: map[string]verifiedFile{}}
	for _, f := range m.Files {
		rec, err := before.check(dir, f)
		if err != nil {
			return nil, err
		}
		if rec.SHA256 != "" {
			after.Files[f.Path] = rec
		}
	}
	after.save(path)
	return &Bundle{Dir: dir, Manifest: *m}, nil
}

// Path returns the absolute-or-relative path (as Dir is) of a bundle file
// given its slash-separated manifest path.
func (b *Bundle) Path(rel string) string {
	return filepath.Join(b.Dir, filepath.FromSlash(rel))
}

// Image loads the image archive named name (an Image.Name of the manifest).
func (b *Bundle) Image(ref string) (v1.Image, error) {
	for _, img := range b.Manifest.Images {
		if img.Name != ref {
			continue
		}
		tag, err := name.NewTag(img.Name, name.StrictValidation)
		if err != nil {
			return nil, fmt.Errorf("bundle image %s: %w", ref, err)
		}
		i, err := tarball.ImageFromPath(b.Path(img.Path), &tag)
		if err != nil {
			return nil, fmt.Errorf("bundle image %s in %s: %w", ref, img.Path, err)
		}
		return i, nil
	}
	return nil, fmt.Errorf("bundle %s: no image %s", b.Dir, ref)
}

// ParseManifest decodes and validates a manifest. Errors name the field.
func ParseManifest(data []byte) (*Manifest, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line := 1 + bytes.Count(data[:se.Offset], []byte("\n"))
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		return nil, err
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// kubernetesBins are the Kubernetes programs a bundle carries as files, for
// each of its versions.
var kubernetesBins = []string{"kubeadm", "kubelet", "kubectl"}

// KubernetesBinDir returns the bundle folder (slash-separated, relative to
// the bundle) holding kubeadm, kubelet and kubectl of Kubernetes version:
// "bin" for KubernetesVersion, "kubernetes/<version>/bin" for one of
// OtherKubernetesVersions. Another version is an error naming those the
// bundle carries.
func (m *Manifest) KubernetesBinDir(version string) (string, error) {
	switch {
	case version == m.KubernetesVersion:
		return "bin", nil
	case slices.Contains(m.OtherKubernetesVersions, version):
		return "kubernetes/" + version + "/bin", nil
	}
	carried := append([]string{m.KubernetesVersion}, m.OtherKubernetesVersions...)
	slices.SortFunc(carried, func(a, b string) int { return semver.Compare(b, a) })
	list := carried[0]
	if n := len(carried); n > 1 {
		list = strings.Join(carried[:n-1], ", ") + " and " + carried[n-1]
	}
	return "", fmt.Errorf("bundle carries Kubernetes %s, not %s", list, version)
}

// CarriesKubernetes reports whether the bundle carries Kubernetes version:
// it is KubernetesVersion or one of OtherKubernetesVersions.
func (m *Manifest) CarriesKubernetes(version string) bool {
	_, err := m.KubernetesBinDir(version)
	return err == nil
}

// isKubernetesVersion reports whether v is a release version
// vMAJOR.MINOR.PATCH (no leading zeros, no pre-release or build suffix).
func isKubernetesVersion(v string) bool {
	return semver.IsValid(v) && semver.Canonical(v) == v && semver.Prerelease(v) == ""
}

func (m *Manifest) validate() error {
	if m.KubernetesVersion == "" {
		return errors.New("kubernetesVersion: missing")
	}
	if !isKubernetesVersion(m.KubernetesVersion) {
		return fmt.Errorf("kubernetesVersion: %q is not a version vMAJOR.MINOR.PATCH", m.KubernetesVersion)
	}
	if m.Arch == "" {
		return errors.New("arch: missing")
	}
	files := make(map[string]bool, len(m.Files))
	for i, f := range m.Files {
		if err := checkRelPath(f.Path); err != nil {
			return fmt.Errorf("files[%d].path: %w", i, err)
		}
		if files[f.Path] {
			return fmt.Errorf("files[%d].path: %q listed twice", i, f.Path)
		}
		files[f.Path] = true
		if b, err := hex.DecodeString(f.SHA256); err != nil || len(b) != sha256.Size {
			return fmt.Errorf("files[%d].sha256 (%s): not a hex sha256", i, f.Path)
		}
		if f.Size < 0 {
			return fmt.Errorf("files[%d].size (%s): negative", i, f.Path)
		}
	}
	if err := m.validateOtherKubernetes(); err != nil {
		return err
	}
	for i, img := range m.Images {
		if _, err := name.NewTag(img.Name, name.StrictValidation); err != nil {
			return fmt.Errorf("images[%d].name: %w", i, err)
		}
		if _, err := name.NewTag("registry.invalid/"+img.RepoTag, name.StrictValidation); err != nil || img.RepoTag == "" {
			return fmt.Errorf("images[%d].repoTag (%s): %q is not repository:tag", i, img.Name, img.RepoTag)
		}
		if !files[img.Path] {
			return fmt.Errorf("images[%d].path (%s): not listed in files", i, img.Path)
		}
		if _, err := v1.NewHash(img.Digest); err != nil {
			return fmt.Errorf("images[%d].digest (%s): %w", i, img.Name, err)
		}
	}
	for i, a := range m.BuiltWith.Archives {
		if a.File == "" || path.Base(a.File) != a.File {
			return fmt.Errorf("builtWith.archives[%d].file: %q is not a file name", i, a.File)
		}
		if b, err := hex.DecodeString(a.SHA256); err != nil || len(b) != sha256.Size {
			return fmt.Errorf("builtWith.archives[%d].sha256 (%s): not a hex sha256", i, a.File)
		}
	}
	slots := map[string]bool{}
	for i, c := range m.Charts {
		switch {
		case !chartSlotRe.MatchString(c.Slot):
			return fmt.Errorf("charts[%d].slot: %q is not an inventory field name under addons", i, c.Slot)
		case slots[c.Slot]:
			return fmt.Errorf("charts[%d].slot: %q listed twice", i, c.Slot)
		case !chartNameRe.MatchString(c.Name):
			return fmt.Errorf("charts[%d].name (%s): %q is not a chart name", i, c.Slot, c.Name)
		case !chartVersionRe.MatchString(c.Version):
			return fmt.Errorf("charts[%d].version (%s): %q is not an exact chart version", i, c.Slot, c.Version)
		case c.Path != chartPath(c.Name, c.Version):
			return fmt.Errorf("charts[%d].path (%s): %q, want %s", i, c.Slot, c.Path, chartPath(c.Name, c.Version))
		case !files[c.Path]:
			return fmt.Errorf("charts[%d].path (%s): not listed in files", i, c.Path)
		}
		slots[c.Slot] = true
	}
	return nil
}

// validateOtherKubernetes checks OtherKubernetesVersions: versions older
// than KubernetesVersion, oldest first, each once, with its kubeadm,
// kubelet and kubectl among the files.
func (m *Manifest) validateOtherKubernetes() error {
	files := make(map[string]File, len(m.Files))
	for _, f := range m.Files {
		files[f.Path] = f
	}
	for i, v := range m.OtherKubernetesVersions {
		switch {
		case !isKubernetesVersion(v):
			return fmt.Errorf("otherKubernetesVersions[%d]: %q is not a version vMAJOR.MINOR.PATCH", i, v)
		case semver.Compare(v, m.KubernetesVersion) >= 0:
			return fmt.Errorf("otherKubernetesVersions[%d]: %s is not older than kubernetesVersion %s", i, v, m.KubernetesVersion)
		case i > 0 && semver.Compare(m.OtherKubernetesVersions[i-1], v) >= 0:
			return fmt.Errorf("otherKubernetesVersions[%d]: %s after %s: want each version once, oldest first", i, v, m.OtherKubernetesVersions[i-1])
		}
		dir, _ := m.KubernetesBinDir(v)
		for _, bin := range kubernetesBins {
			p := dir + "/" + bin
			f, ok := files[p]
			switch {
			case !ok:
				return fmt.Errorf("otherKubernetesVersions[%d] (%s): %s not listed in files", i, v, p)
			case f.Component != "kubernetes" || f.Version != v:
				return fmt.Errorf("otherKubernetesVersions[%d] (%s): files lists %s as %s %s, want kubernetes %s", i, v, p, f.Component, f.Version, v)
			}
		}
	}
	return nil
}

func checkRelPath(p string) error {
	switch {
	case p == "":
		return errors.New("empty")
	case path.IsAbs(p) || strings.Contains(p, `\`):
		return fmt.Errorf("%q is not a relative slash path", p)
	case path.Clean(p) != p || p == ".." || strings.HasPrefix(p, "../"):
		return fmt.Errorf("%q is not a clean path inside the bundle", p)
	case p == ManifestName:
		return fmt.Errorf("%q is the manifest itself", p)
	}
	return nil
}

// encode renders the manifest with files and images sorted, so equal
// bundles have byte-equal manifests.
func (m *Manifest) encode() ([]byte, error) {
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
	sort.Slice(m.Images, func(i, j int) bool { return m.Images[i].Name < m.Images[j].Name })
	sort.Slice(m.Charts, func(i, j int) bool { return m.Charts[i].Slot < m.Charts[j].Slot })
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("bundle manifest: %w", err)
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// HashFile returns the hex sha256 and size of a regular file.
func HashFile(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", 0, err
	}
	if !st.Mode().IsRegular() {
		return "", 0, fmt.Errorf("%s: not a regular file", p)
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
