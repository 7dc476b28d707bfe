package bootstrap

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"

	"github.com/bootctl/boot/bundle"
	"github.com/bootctl/boot/inventory"
	"github.com/bootctl/boot/nodes"
)

// StagingDir is where, in bundle mode, the bundle's files are uploaded on
// every host before the scripts install them. Kept so that a re-run
// uploads nothing; teardown removes it.
const StagingDir = "/var/lib/boot/bundle"

// bundleOnce opens (and verifies) the inventory's bundle once per run.
type bundleOnce struct {
	once sync.Once
	b    *bundle.Bundle
	err  error
}

func (c *Cluster) bundle() (*bundle.Bundle, error) {
	c.bundleOnce.once.Do(func() {
		c.bundleOnce.b, c.bundleOnce.err = bundle.Open(c.Inventory.Packages.Bundle)
	})
	return c.bundleOnce.b, c.bundleOnce.err
}

// stagedHosts remembers, for one run, the hosts whose staging folder was
// found or made complete, so later phases need not hash it again.
type stagedHosts struct {
	mu   sync.Mutex
	done map[*Host]bool
}

func (s *stagedHosts) mark(h *Host) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done == nil {
		s.done = map[*Host]bool{}
	}
	s.done[h] = true
}

func (s *stagedHosts) has(h *Host) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done[h]
}

func (c *Cluster) bundleMode() bool {
	return c.Inventory.Packages.Source == inventory.SourceBundle
}

// stagedFiles lists the bundle files a host of the role needs staged: the
// runtime's and Kubernetes' binaries, the CNI plugins and the systemd units;
// kubectl on control planes only (boot runs it there alone). kubeadm,
// kubelet and kubectl come from kubeBin, the bundle folder of the cluster's
// Kubernetes version (bundle.Manifest.KubernetesBinDir). helm is not
// staged: it goes to the control plane only, straight to its place.
func stagedFiles(b *bundle.Bundle, role, kubeBin string) []bundle.File {
	kube := map[string]bool{"kubeadm": true, "kubelet": true, "kubectl": role == inventory.RoleControlPlane}
	var out []bundle.File
	for _, f := range b.Manifest.Files {
		dir, name := path.Split(f.Path)
		_, isKube := kube[name]
		switch {
		case f.Path == "bin/helm":
		case isKube && (dir == "bin/" || strings.HasPrefix(dir, "kubernetes/")):
			if dir == kubeBin+"/" && kube[name] {
				out = append(out, f)
			}
		case strings.HasPrefix(f.Path, "bin/"), strings.HasPrefix(f.Path, "cni/bin/"), strings.HasPrefix(f.Path, "systemd/"):
			out = append(out, f)
		}
	}
	return out
}

// kubeBinDir is the bundle folder with kubeadm, kubelet and kubectl of the
// cluster's Kubernetes version.
func (c *Cluster) kubeBinDir() (string, error) {
	b, err := c.bundle()
	if err != nil {
		return "", err
	}
	return b.Manifest.KubernetesBinDir(c.Inventory.Cluster.KubernetesVersion)
}

// hostStagedFiles is stagedFiles for the host, at the cluster's version.
func (c *Cluster) hostStagedFiles(h *Host) ([]bundle.File, error) {
	b, err := c.bundle()
	if err != nil {
		return nil, err
	}
	dir, err := c.kubeBinDir()
	if err != nil {
		return nil, err
	}
	return stagedFiles(b, h.Spec.Role, dir), nil
}

// stagedStamp is the file, in the staging folder, where boot records the
// sha256 of each staged file with its Stat (nodes.FileSum): a file whose
// Stat is unchanged since is not hashed again. Writing a file, replacing it
// or changing its mode changes its Stat, so a file changed by hand is
// hashed, and found different, again.
const stagedStamp = ".boot-staged.json"

// differing returns those of files whose copy at dir/<path> on the host is
// missing or has another sha256 than the bundle's. With a stamp (a file's
// path, "" for none), files whose Stat matches it are taken at its word;
// the others are hashed, and with record the stamp is written again with
// what was found (a dry run records nothing).
func differing(ctx context.Context, h *Host, dir string, files []bundle.File, stamp string, record bool) ([]bundle.File, error) {
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = path.Join(dir, f.Path)
	}
	known := readStamp(ctx, h, stamp)
	stats, err := h.Conn.Stats(ctx, paths...)
	if err != nil {
		return nil, err
	}
	have := map[string]nodes.FileSum{}
	var unsure []string
	for _, p := range paths {
		st, ok := stats[p]
		switch {
		case !ok: // missing
		case known[p].Stat == st:
			have[p] = known[p]
		default:
			unsure = append(unsure, p)
		}
	}
	sums, err := h.Conn.Sha256(ctx, unsure...)
	if err != nil {
		return nil, err
	}
	maps.Copy(have, sums)
	var diff []bundle.File
	for i, f := range files {
		if have[paths[i]].SHA256 != f.SHA256 {
			diff = append(diff, f)
		}
	}
	if stamp != "" && record && len(unsure) > 0 {
		if err := writeStamp(ctx, h, stamp, have); err != nil {
			return nil, err
		}
	}
	return diff, nil
}

// readStamp reads a stamp; none, a missing or an unreadable one is empty
// (every file is hashed).
func readStamp(ctx context.Context, h *Host, stamp string) map[string]nodes.FileSum {
	known := map[string]nodes.FileSum{}
	if stamp == "" {
		return known
	}
	raw, err := h.Conn.ReadFile(ctx, stamp)
	if err != nil || json.Unmarshal(raw, &known) != nil {
		return map[string]nodes.FileSum{}
	}
	return known
}

// writeStamp records sums (by path) in the stamp.
func writeStamp(ctx context.Context, h *Host, stamp string, sums map[string]nodes.FileSum) error {
	raw, err := json.Marshal(sums)
	if err != nil {
		return err
	}
	_, err = h.Conn.Upload(ctx, raw, stamp, 0o644, nodes.AsRoot())
	return err
}

// recordStaged writes the stamp after files were uploaded to dir: every
// one of them now holds the bundle's content, as upload and differing
// checked.
func recordStaged(ctx context.Context, h *Host, dir string, files []bundle.File) error {
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = path.Join(dir, f.Path)
	}
	stats, err := h.Conn.Stats(ctx, paths...)
	if err != nil {
		return err
	}
	sums := map[string]nodes.FileSum{}
	for i, f := range files {
		if st, ok := stats[paths[i]]; ok {
			sums[paths[i]] = nodes.FileSum{SHA256: f.SHA256, Stat: st}
		}
	}
	return writeStamp(ctx, h, path.Join(dir, stagedStamp), sums)
}

// upload copies bundle files to dir/<path> on the host (as root, atomic,
// checked), creating the folders.
func upload(ctx context.Context, h *Host, b *bundle.Bundle, dir string, files []bundle.File) error {
	var dirs []string
	for _, f := range files {
		if d := path.Dir(path.Join(dir, f.Path)); !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	if err := h.Conn.MkdirAll(ctx, 0o755, dirs...); err != nil {
		return err
	}
	for _, f := range files {
		mode := fs.FileMode(0o644)
		if !strings.HasPrefix(f.Path, "systemd/") {
			mode = 0o755
		}
		// Streamed from disk and checked against the manifest's sha256.
		local := nodes.LocalFile{Path: b.Path(f.Path), SHA256: f.SHA256}
		if _, err := h.Conn.UploadFile(ctx, local, path.Join(dir, f.Path), mode, nodes.AsRoot()); err != nil {
			return fmt.Errorf("upload %s: %w", f.Path, err)
		}
	}
	return nil
}

func totalSize(files []bundle.File) int64 {
	var s int64
	for _, f := range files {
		s += f.Size
	}
	return s
}

// Stage uploads, in bundle mode, the bundle files every host needs to
// StagingDir: only the files whose sha256 differs.
type Stage struct{}

// Name implements Phase.
func (Stage) Name() string { return "stage bundle" }

// Plan implements Phase.
func (Stage) Plan(ctx context.Context, c *Cluster) ([]Change, error) {
	if !c.bundleMode() {
		return nil, nil
	}
	b, err := c.bundle()
	if err != nil {
		return nil, err
	}
	changes := make([]*Change, len(c.Hosts))
	err = forHosts(ctx, c, c.Hosts, func(ctx context.Context, h *Host) error {
		files, err := c.hostStagedFiles(h)
		if err != nil {
			return err
		}
		diff, err := differing(ctx, h, StagingDir, files, path.Join(StagingDir, stagedStamp), !c.run.DryRun())
		if err != nil {
			return err
		}
		if len(diff) == 0 {
			c.staged.mark(h)
			return nil
		}
		i := indexOf(c.Hosts, h)
		changes[i] = &Change{
			Host:        h.Spec.Name,
			Description: fmt.Sprintf("upload %d bundle file(s), %.1f MB, to %s", len(diff), float64(totalSize(diff))/1e6, StagingDir),
			Apply: func(ctx context.Context) error {
				if err := upload(ctx, h, b, StagingDir, diff); err != nil {
					return err
				}
				if err := recordStaged(ctx, h, StagingDir, files); err != nil {
					return err
				}
				c.staged.mark(h)
				return nil
			},
		}
		return nil
	})
	return compact(changes), err
}

// staged reports whether the host's staging folder holds the whole bundle
// (the install scripts need it even to plan).
func staged(ctx context.Context, c *Cluster, h *Host) (bool, error) {
	if c.staged.has(h) {
		return true, nil
	}
	files, err := c.hostStagedFiles(h)
	if err != nil {
		return false, err
	}
	diff, err := differing(ctx, h, StagingDir, files, path.Join(StagingDir, stagedStamp), !c.run.DryRun())
	if err == nil && len(diff) == 0 {
		c.staged.mark(h)
	}
	return len(diff) == 0, err
}

func indexOf(hs []*Host, h *Host) int {
	for i, m := range hs {
		if m == h {
			return i
		}
	}
	return -1
}

// compact drops the nil entries of a per-host change list.
func compact(changes []*Change) []Change {
	var out []Change
	for _, ch := range changes {
		if ch != nil {
			out = append(out, *ch)
		}
	}
	return out
}
