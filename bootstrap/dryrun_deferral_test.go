package bootstrap

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bootctl/boot/bundle"
	"github.com/bootctl/boot/internal/run"
	"github.com/bootctl/boot/internal/sshtest"
	"github.com/bootctl/boot/internal/testenv"
)

// dryRunSession is the ForceCommand of the deferral tests' sshd: each
// session runs its command in a mount namespace of its own where /etc has
// an empty kubernetes folder (an overlay on this machine's /etc, which
// stays as it is), so that the teardown script has something to remove.
// With the argument "staged", /var/lib/boot/bundle is the bundle folder
// given (read-only, on an overlay of /var/lib), as after the bundle's
// upload.
const dryRunSession = `#!/bin/sh
exec unshare --mount --propagation private sh -e -c '
d=$(mktemp -d "$1/session.XXXXXX")
mkdir -p "$d/etc/kubernetes" "$d/etc-work"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$d/etc,workdir=$d/etc-work" /etc
if [ "$3" = staged ]; then
  mkdir -p "$d/var-lib/boot/bundle" "$d/var-lib-work"
  mount -t overlay overlay -o "lowerdir=/var/lib,upperdir=$d/var-lib,workdir=$d/var-lib-work" /var/lib
  mount --bind -o ro "$2" /var/lib/boot/bundle
fi
exec sh -c "$SSH_ORIGINAL_COMMAND"' dry-run-session %s %s "$1"
`

// deferralCluster connects, in bundle mode with the bundle of
// BOOT_BUNDLE_DIR, to cp1 (the control plane), w1 and w2, each a real sshd
// on this machine running dryRunSession; only w1's bundle is staged.
func deferralCluster(t *testing.T) *Cluster {
	testenv.File(t, "/usr/bin/unshare", "util-linux")
	sshtest.Require(t)
	bundleDir := testenv.BundleDir(t)
	if _, err := os.Stat(StagingDir); err == nil {
		t.Skipf("this machine has %s: the hosts would find their bundle staged", StagingDir)
	}
	dir := t.TempDir()
	wrapper := filepath.Join(dir, "dry-run-session")
	if err := os.WriteFile(wrapper, fmt.Appendf(nil, dryRunSession, dir, bundleDir), 0o755); err != nil {
		t.Fatal(err)
	}
	sshAndHosts := startSessionHosts(t, dir, wrapper, []sessionHost{
		{"cp1", "control-plane", "unstaged"},
		{"w1", "worker", "staged"},
		{"w2", "worker", "unstaged"},
	})
	inv := testenv.Inventory(t, fmt.Sprintf("apiVersion: boot/v1alpha1\nkind: Cluster\nmetadata:\n  name: deferral\ncluster:\n  imageRepository: 127.0.0.1:5000/k8s\npackages:\n  source: bundle\n  bundle: %s\n%sregistry:\n  host: registry.example.com\n  acmeEmail: ops@example.com\n",
		bundleDir, sshAndHosts))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := Connect(ctx, inv, ConnectOptions{Parallel: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// The phases plan from the manifest; the files stay unverified (as in
	// FuzzValidatedInventoryRenders): hashing the whole bundle proves nothing
	// here.
	m, err := bundle.ReadManifest(bundleDir)
	if err != nil {
		t.Fatal(err)
	}
	c.bundleOnce.once.Do(func() { c.bundleOnce.b = &bundle.Bundle{Dir: bundleDir, Manifest: *m} })
	return c
}

// drainPlanned is a drain phase (named as Drain) that plans, without
// looking, to drain a node from the host given.
type drainPlanned struct{ host string }

func (drainPlanned) Name() string { return Drain{}.Name() }

func (d drainPlanned) Plan(context.Context, *Cluster) ([]Change, error) {
	if d.host == "" {
		return nil, nil
	}
	return []Change{{Host: d.host, Description: "drain and delete node w1", Apply: func(context.Context) error {
		return fmt.Errorf("a dry run applied the drain")
	}}}, nil
}

// dryRun runs the phases on c as a dry run and returns the descriptions of
// the changes planned by the phase named, by host.
func dryRun(t *testing.T, c *Cluster, phase string, phases ...Phase) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var r recorder
	if err := run.Do(ctx, Steps(c, phases), run.Options{DryRun: true, Report: r.report}); err != nil {
		t.Fatal(err)
	}
	planned := map[string]string{}
	for _, e := range r.events {
		if e.Phase == phase && e.Status == run.Planned {
			if _, dup := planned[e.Host]; dup {
				t.Errorf("%s planned two changes of %s", phase, e.Host)
			}
			planned[e.Host] = e.Message
		}
	}
	return planned
}

// The dry run's deferrals, against real hosts: (a) once the drain (from the
// control plane) is planned, the workers' resets are planned after it and
// the control plane's is not; with no drain planned, none is deferred.
// (b) the container runtime of a host whose bundle is not staged is planned
// whole, after the staging; a host with its bundle staged gets its script's
// own plan.
func TestDryRunDefersAfterPendingPhases(t *testing.T) {
	c := deferralCluster(t)

	t.Run("reset after drain", func(t *testing.T) {
		for _, drainFrom := range []string{"cp1", ""} {
			planned := dryRun(t, c, Reset{}.Name(), drainPlanned{host: drainFrom}, Reset{})
			t.Logf("drain planned from %q: reset plans %q", drainFrom, planned)
			for _, host := range []string{"cp1", "w1", "w2"} {
				desc, ok := planned[host]
				if !ok {
					t.Errorf("drain from %q: reset plans no change of %s", drainFrom, host)
					continue
				}
				what, deferred := run.Deferred(desc)
				if want := drainFrom != ""; deferred != want || want && !strings.HasPrefix(desc, "after drain: ") {
					t.Errorf("drain from %q: %s's reset is %q; want deferred after drain: %v", drainFrom, host, desc, want)
				}
				if !strings.Contains(what, "remove /etc/kubernetes") {
					t.Errorf("drain from %q: %s's reset %q does not remove /etc/kubernetes", drainFrom, host, desc)
				}
			}
		}
	})

	t.Run("runtime after staging", func(t *testing.T) {
		planned := dryRun(t, c, Runtime{}.Name(), Runtime{})
		t.Logf("container runtime plans %q", planned)
		const whole = "after stage bundle: install containerd, runc, crictl and the CNI plugins from the bundle"
		for _, host := range []string{"cp1", "w2"} {
			if planned[host] != whole {
				t.Errorf("%s (bundle not staged): planned %q; want %q", host, planned[host], whole)
			}
		}
		if desc, ok := planned["w1"]; !ok {
			t.Error("w1 (bundle staged): no change planned")
		} else if _, deferred := run.Deferred(desc); deferred {
			t.Errorf("w1 (bundle staged): planned %q, deferred", desc)
		}
	})
}
