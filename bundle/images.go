package bundle

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// epoch is the fixed time stamped on image layers and configs, so equal
// inputs give byte-equal archives.
var epoch = time.Unix(0, 0).UTC()

// defaultPath is the PATH of every image.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// layerFile is one entry of an image layer.
type layerFile struct {
	path string // inside the image, without a leading slash
	src  string // a file on disk (regular files)
	data []byte // the content when src is empty (regular files)
	link string // symlink target (symlinks)
	dir  bool
	mode int64 // permission bits
}

// layer is a rendered, cached, uncompressed layer tarball.
type layer struct {
	key  string
	path string
}

// imageSpec is one image the bundle provides.
type imageSpec struct {
	name       string // full reference, e.g. registry.k8s.io/pause:3.10.2
	repoTag    string // name under another repository, e.g. pause:3.10.2
	file       string // archive name under images/
	component  string
	version    string
	layers     []layer
	entrypoint []string
	cmd        []string
	user       string
	workingDir string
}

// makeLayer renders files into CACHE/layers/KEY.tar unless a layer with
// the same content is already there. The key covers every path, mode, link
// and the sha256 of every file's content.
func (b *builder) makeLayer(files []layerFile) (layer, error) {
	files = withParents(files)
	var parts []string
	for _, f := range files {
		k, err := entryKey(f)
		if err != nil {
			return layer{}, err
		}
		parts = append(parts, k)
	}
	key := keyOf(parts...)
	dir := filepath.Join(b.cache, "layers")
	dst := filepath.Join(dir, key+".tar")
	if _, err := os.Stat(dst); err == nil {
		return layer{key: key, path: dst}, nil
	}
	if err := writeLayerFile(dst, files); err != nil {
		return layer{}, err
	}
	return layer{key: key, path: dst}, nil
}

// entryKey describes a layer entry for a cache key: path, mode, kind, link
// target and the sha256 of its content.
func entryKey(f layerFile) (string, error) {
	sum := ""
	switch {
	case f.src != "":
		s, _, err := HashFile(f.src)
		if err != nil {
			return "", err
		}
		sum = s
	case !f.dir && f.link == "":
		sum = keyOf(string(f.data))
	}
	return fmt.Sprintf("%s %o %t %s %s", f.path, f.mode, f.dir, f.link, sum), nil
}

// writeLayerFile writes the layer tar of files to dst atomically.
func writeLayerFile(dst string, files []layerFile) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "tmp-*.tar")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := writeLayerTar(tmp, withParents(files)); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

// withParents sorts files by path and adds the folders they live in.
func withParents(files []layerFile) []layerFile {
	seen := map[string]bool{}
	for _, f := range files {
		seen[f.path] = true
	}
	out := append([]layerFile{}, files...)
	for _, f := range files {
		for d := path.Dir(f.path); d != "." && d != "/" && !seen[d]; d = path.Dir(d) {
			seen[d] = true
			out = append(out, layerFile{path: d, dir: true, mode: 0o755})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}

// writeLayerTar writes files as a tar with fixed owners and times.
func writeLayerTar(w io.Writer, files []layerFile) error {
	tw := tar.NewWriter(w)
	for _, f := range files {
		h := &tar.Header{Name: f.path, Mode: f.mode, ModTime: epoch, Format: tar.FormatPAX}
		switch {
		case f.dir:
			h.Typeflag, h.Name = tar.TypeDir, f.path+"/"
		case f.link != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, f.link
		default:
			h.Typeflag = tar.TypeReg
		}
		var src *os.File
		if h.Typeflag == tar.TypeReg {
			if f.src != "" {
				var err error
				if src, err = os.Open(f.src); err != nil {
					return err
				}
				st, err := src.Stat()
				if err != nil {
					src.Close()
					return err
				}
				h.Size = st.Size()
			} else {
				h.Size = int64(len(f.data))
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			if src != nil {
				src.Close()
			}
			return fmt.Errorf("layer entry %s: %w", f.path, err)
		}
		if h.Typeflag == tar.TypeReg {
			var err error
			if src != nil {
				_, err = io.Copy(tw, src)
				src.Close()
			} else {
				_, err = tw.Write(f.data)
			}
			if err != nil {
				return fmt.Errorf("layer entry %s: %w", f.path, err)
			}
		}
	}
	return tw.Close()
}

// treeFiles lists a folder (an unpacked Debian root) as layer entries.
func treeFiles(root string) ([]layerFile, error) {
	var files []layerFile
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		f := layerFile{path: filepath.ToSlash(rel), mode: int64(info.Mode().Perm())}
		if info.Mode()&fs.ModeSetuid != 0 {
			f.mode |= 0o4000
		}
		switch {
		case d.IsDir():
			f.dir = true
		case info.Mode()&fs.ModeSymlink != 0:
			if f.link, err = os.Readlink(p); err != nil {
				return err
			}
		case info.Mode().IsRegular():
			f.src = p
		default:
			return nil // devices, fifos: none in these packages
		}
		files = append(files, f)
		return nil
	})
	return files, err
}

// imageRecord is what the cache keeps beside an image archive.
type imageRecord struct {
	Digest string `json:"digest"`
}

// buildImage writes spec's archive to CACHE/images/KEY.tar (unless there)
// and returns the archive's path and the image digest.
func (b *builder) buildImage(spec imageSpec) (string, string, error) {
	tag, err := name.NewTag(spec.name, name.StrictValidation)
	if err != nil {
		return "", "", fmt.Errorf("image %s: %w", spec.name, err)
	}
	cfg := v1.Config{Env: []string{defaultPath}, Entrypoint: spec.entrypoint, Cmd: spec.cmd, User: spec.user, WorkingDir: spec.workingDir}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return "", "", err
	}
	parts := []string{spec.name, string(cfgJSON)}
	for _, l := range spec.layers {
		parts = append(parts, l.key)
	}
	key := keyOf(parts...)
	dir := filepath.Join(b.cache, "images")
	archive := filepath.Join(dir, key+".tar")
	recPath := filepath.Join(dir, key+".json")
	if data, err := os.ReadFile(recPath); err == nil {
		var rec imageRecord
		if json.Unmarshal(data, &rec) == nil && rec.Digest != "" {
			if _, err := os.Stat(archive); err == nil {
				return archive, rec.Digest, nil
			}
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}

	img := empty.Image
	for _, l := range spec.layers {
		tl, err := tarball.LayerFromFile(l.path, tarball.WithCompressionLevel(gzip.BestSpeed))
		if err != nil {
			return "", "", fmt.Errorf("image %s: layer %s: %w", spec.name, l.path, err)
		}
		img, err = mutate.Append(img, mutate.Addendum{
			Layer:   tl,
			History: v1.History{Created: v1.Time{Time: epoch}, CreatedBy: "boot bundle build", Comment: spec.component + " " + spec.version},
		})
		if err != nil {
			return "", "", err
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return "", "", err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = "amd64", "linux"
	cf.Created = v1.Time{Time: epoch}
	cf.Config = cfg
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return "", "", err
	}
	digest, err := img.Digest()
	if err != nil {
		return "", "", fmt.Errorf("image %s: %w", spec.name, err)
	}
	tmp := archive + ".tmp"
	if err := tarball.WriteToFile(tmp, tag, img); err != nil {
		os.Remove(tmp)
		return "", "", fmt.Errorf("image %s: %w", spec.name, err)
	}
	if err := os.Rename(tmp, archive); err != nil {
		return "", "", err
	}
	rec, err := json.Marshal(imageRecord{Digest: digest.String()})
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(recPath, rec, 0o644); err != nil {
		return "", "", err
	}
	return archive, digest.String(), nil
}
