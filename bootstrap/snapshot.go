package bootstrap

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/bootctl/boot/inventory"
	"github.com/bootctl/boot/nodes"
	"github.com/bootctl/boot/scripts"
)

// StateDir is where boot keeps, on the operator's machine, what it must
// remember about a cluster between runs (the hosts' snapshots):
// .boot/<metadata.name> beside the inventory file.
func StateDir(inv *inventory.Inventory) string {
	return filepath.Join(filepath.Dir(inv.Path), ".boot", inv.Metadata.Name)
}

func snapshotPath(inv *inventory.Inventory, host string) string {
	return filepath.Join(StateDir(inv), "snapshot-"+host+".txt")
}

// takeSnapshot runs scripts.Snapshot on the host and returns its output,
// which goes to the snapshot file, not to the streamed output.
func takeSnapshot(ctx context.Context, h *Host) (string, error) {
	out, err := h.Conn.Sudo(ctx, "bash -s", nodes.Stdin(strings.NewReader(scripts.Snapshot())), nodes.Stream(nil), nodes.Label("snapshot.sh"))
	return out.Stdout, err
}

// Snapshot records, before boot changes anything on a host, the state of
// what boot touches there (see scripts.Snapshot), for `boot teardown
// --verify`. A host that has one already keeps it: it shows the host as it
// was before the first run.
type Snapshot struct{}

// Name implements Phase.
func (Snapshot) Name() string { return "snapshot" }

// Plan implements Phase.
func (Snapshot) Plan(_ context.Context, c *Cluster) ([]Change, error) {
	var changes []Change
	for _, h := range c.Hosts {
		path := snapshotPath(c.Inventory, h.Spec.Name)
		if _, err := os.Stat(path); err == nil {
			continue
		}
		changes = append(changes, Change{
			Host:        h.Spec.Name,
			Description: "record the host's state before boot changes it, in " + path,
			Apply: func(ctx context.Context) error {
				snap, err := takeSnapshot(ctx, h)
				if err != nil {
					return err
				}
				if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
					return err
				}
				return os.WriteFile(path, []byte(snap), 0o600)
			},
		})
	}
	return changes, nil
}

// snapshotDiff compares two snapshots line by line, section by section, and
// returns the lines only before has ("-") and only after has ("+").
func snapshotDiff(before, after string) []string {
	sections := func(s string) map[string][]string {
		m := map[string][]string{}
		cur := ""
		for _, l := range strings.Split(s, "\n") {
			if name, ok := strings.CutPrefix(l, "## "); ok {
				cur = name
				continue
			}
			if l != "" {
				m[cur] = append(m[cur], l)
			}
		}
		return m
	}
	b, a := sections(before), sections(after)
	var names []string
	for k := range b {
		names = append(names, k)
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	set := func(lines []string) map[string]bool {
		m := make(map[string]bool, len(lines))
		for _, l := range lines {
			m[l] = true
		}
		return m
	}
	var diff []string
	for _, name := range names {
		bs, as := b[name], a[name]
		inB, inA := set(bs), set(as)
		for _, l := range bs {
			if !inA[l] {
				diff = append(diff, fmt.Sprintf("%s: - %s", name, l))
			}
		}
		for _, l := range as {
			if !inB[l] {
				diff = append(diff, fmt.Sprintf("%s: + %s", name, l))
			}
		}
	}
	return diff
}
