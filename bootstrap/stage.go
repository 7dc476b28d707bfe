package bootstrap

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
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

// stagedNodes remembers, for one run, the hosts whose staging folder was
// found or made complete, so later phases need not hash it again.
type stagedNodes struct {
	mu   sync.Mutex
	done map[*Node]bool
}

func (s *stagedNodes) mark(n *Node) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done == nil {
		s.done = map[*Node]bool{}
	}
	s.done[n] = true
}

func (s *stagedNodes) has(n *Node) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done[n]
}

func (c *Cluster) bundleMode() bool {
	return c.Inventory.Packages.Source == inventory.SourceBundle
}

// stagedFiles lists the bundle files every host needs staged: the runtime's
// and Kubernetes' binaries, the CNI plugins and the systemd units. (helm
// goes to the control plane only, straight to its place.)
func stagedFiles(b *bundle.Bundle) []bundle.File {
	var out []bundle.File
	for _, f := range b.Manifest.Files {
		switch {
		case f.Path == "bin/helm":
		case strings.HasPrefix(f.Path, "bin/"), strings.HasPrefix(f.Path, "cni/bin/"), strings.HasPrefix(f.Path, "systemd/"):
			out = append(out, f)
		}
	}
	return out
}

// differing returns those of files whose copy at dir/<path> on the host is
// missing or has another sha256 than the bundle's.
func differing(ctx context.Context, n *Node, dir string, files []bundle.File) ([]bundle.File, error) {
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = path.Join(dir, f.Path)
	}
	have, err := n.Conn.Sha256(ctx, paths...)
	if err != nil {
		return nil, err
	}
	var diff []bundle.File
	for _, f := range files {
		if have[path.Join(dir, f.Path)] != f.SHA256 {
			diff = append(diff, f)
		}
	}
	return diff, nil
}

// upload copies bundle files to dir/<path> on the host (as root, atomic,
// checked), creating the folders.
func upload(ctx context.Context, n *Node, b *bundle.Bundle, dir string, files []bundle.File) error {
	made := map[string]bool{}
	for _, f := range files {
		d := path.Dir(path.Join(dir, f.Path))
		if made[d] {
			continue
		}
		if err := n.Conn.MkdirAll(ctx, d, 0o755); err != nil {
			return err
		}
		made[d] = true
	}
	for _, f := range files {
		content, err := os.ReadFile(b.Path(f.Path))
		if err != nil {
			return err
		}
		mode := fs.FileMode(0o644)
		if !strings.HasPrefix(f.Path, "systemd/") {
			mode = 0o755
		}
		if _, err := n.Conn.Upload(ctx, content, path.Join(dir, f.Path), mode, nodes.AsRoot()); err != nil {
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
	files := stagedFiles(b)
	changes := make([]*Change, len(c.Nodes))
	err = forNodes(ctx, c, c.Nodes, func(ctx context.Context, n *Node) error {
		diff, err := differing(ctx, n, StagingDir, files)
		if err != nil {
			return err
		}
		if len(diff) == 0 {
			c.staged.mark(n)
			return nil
		}
		i := indexOf(c.Nodes, n)
		changes[i] = &Change{
			Host:        n.Spec.Name,
			Description: fmt.Sprintf("upload %d bundle file(s), %.1f MB, to %s", len(diff), float64(totalSize(diff))/1e6, StagingDir),
			Apply: func(ctx context.Context) error {
				if err := upload(ctx, n, b, StagingDir, diff); err != nil {
					return err
				}
				c.staged.mark(n)
				return nil
			},
		}
		return nil
	})
	return compact(changes), err
}

// staged reports whether the host's staging folder holds the whole bundle
// (the install scripts need it even to plan).
func staged(ctx context.Context, c *Cluster, n *Node) (bool, error) {
	if c.staged.has(n) {
		return true, nil
	}
	b, err := c.bundle()
	if err != nil {
		return false, err
	}
	diff, err := differing(ctx, n, StagingDir, stagedFiles(b))
	if err == nil && len(diff) == 0 {
		c.staged.mark(n)
	}
	return len(diff) == 0, err
}

func indexOf(ns []*Node, n *Node) int {
	for i, m := range ns {
		if m == n {
			return i
		}
	}
	return -1
}

// compact drops the nil entries of a per-node change list.
func compact(changes []*Change) []Change {
	var out []Change
	for _, ch := range changes {
		if ch != nil {
			out = append(out, *ch)
		}
	}
	return out
}
