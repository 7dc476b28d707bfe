package cmd

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/bootctl/boot/addons"
	"github.com/bootctl/boot/bundle"
	"github.com/bootctl/boot/inventory"
)

func newBundleCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "bundle",
		Short: "Build or check the offline bundle (air-gapped installs)",
		Long: `A bundle is a folder with everything hosts need to become Kubernetes nodes
without internet access: kubeadm, kubelet, kubectl, containerd, runc, crictl,
the CNI plugins, helm, the control-plane, CoreDNS, pause and flannel images,
the registry's and Redis' images, boot itself as the image the registry's
prune and gc jobs run, the upstream ingress-nginx and cert-manager charts,
and systemd units, recorded with sha256 sums in manifest.json. Point an
inventory at it with packages.source: bundle.`,
		Example: "  boot bundle build --kubernetes v1.37.2 --out dist/bundle\n  boot bundle verify dist/bundle",
	}
	c.AddCommand(newBundleBuildCmd(g), newBundleVerifyCmd(g))
	return c
}

// bundleChartTimeout bounds each add-on chart's download in bundle build.
const bundleChartTimeout = 30 * time.Second

func newBundleBuildCmd(g *globals) *cobra.Command {
	o := bundle.Options{}
	addonCharts := true
	c := &cobra.Command{
		Use:   "build",
		Short: "Build the offline bundle from the Go module proxy and Debian's mirror",
		Long: `build compiles every component at pinned versions from the Go module proxy
(and takes a few Debian packages for the images that need iptables), so the
machine running it needs Go, gcc and apt. Builds are reproducible and cached
by version: a second build whose inputs did not change takes seconds. A cold
build takes about 20-30 minutes on 2 cores, most of it Kubernetes.

The add-ons' upstream charts (ingress-nginx and cert-manager) are packed as
charts/<name>-<version>.tgz: those the inventory given with -i (or
BOOT_INVENTORY) pins under
addons.ingressNginx and addons.certManager (a chart with a path is packed
from that path), or boot's defaults without -i (ingress-nginx 4.15.1 from
https://kubernetes.github.io/ingress-nginx, cert-manager v1.19.1 from
oci://quay.io/jetstack/charts/cert-manager). They are downloaded (digests
checked, kept in ~/.cache/boot/charts) before the long build starts, so
without internet access the build stops within seconds (at most 30 s per
chart), naming the chart: build with --addon-charts=false to leave them out. With packages.source:
bundle, boot addons and boot up take a chart from the bundle when it holds
that slot at the inventory's exact name and version, and download it
otherwise.

Only the charts are packed, not the images they run (ingress-nginx's
controller; cert-manager's controller, webhook, cainjector and
startupapicheck): the nodes must reach those images' registries, or the
images must be mirrored into a registry the nodes reach, such as
cluster.imageRepository, and the charts' image values point there (boot
sets none for these charts; a chart from addons.<x>.path can carry them).`,
		Example: `  boot bundle build --kubernetes v1.37.2 --out dist/bundle

  # pack the chart versions an inventory pins
  boot bundle build -i inventory.yaml --out dist/bundle

  # on a machine without internet access: no add-on charts
  boot bundle build --addon-charts=false --out dist/bundle`,
		Args: usage(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			o.Log = g.stderr
			if addonCharts {
				a, err := g.bundleAddons()
				if err != nil {
					return err
				}
				if o.Charts, err = loadAddonCharts(ctx, a, addons.ChartLoader{Timeout: bundleChartTimeout}, o.Log); err != nil {
					return err
				}
			}
			// This very boot becomes the image the registry's prune and gc
			// jobs run.
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			o.BootBinary, o.BootVersion = exe, Version()
			if err := bundle.Build(ctx, o); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "bundle ready in %s\n", o.Out)
			return nil
		},
	}
	c.Flags().StringVar(&o.KubernetesVersion, "kubernetes", "v1.37.2", "Kubernetes version to build")
	c.Flags().StringVar(&o.Out, "out", "dist/bundle", "bundle folder to write")
	c.Flags().StringVar(&o.CacheDir, "cache-dir", "", "build cache (default ~/.cache/boot/bundle)")
	c.Flags().BoolVar(&addonCharts, "addon-charts", true, "pack the ingress-nginx and cert-manager charts (-i's pins, or boot's defaults); false without internet access")
	return c
}

// bundleAddons returns the addons section whose charts bundle build packs:
// the inventory's when -i names one, otherwise the defaults.
func (g *globals) bundleAddons() (inventory.Addons, error) {
	if g.Inventory == "" {
		return inventory.DefaultAddons(), nil
	}
	inv, err := g.loadInventory()
	if err != nil {
		return inventory.Addons{}, err
	}
	return inv.Addons, nil
}

// loadAddonCharts loads the upstream charts of a with l (its cache and
// digest checks) as archives to pack, reporting each on log. The first chart
// that cannot be loaded stops it with an error naming the inventory field,
// the source and --addon-charts=false.
func loadAddonCharts(ctx context.Context, a inventory.Addons, l addons.ChartLoader, log io.Writer) ([]bundle.ChartArchive, error) {
	var charts []bundle.ChartArchive
	for _, src := range addons.UpstreamChartSources(a) {
		start := time.Now()
		data, c, err := l.Archive(ctx, src)
		if err != nil {
			return nil, fmt.Errorf("bundle: add-on chart %s (%s): %w; without internet access, build the bundle without the add-on charts: --addon-charts=false", src.Field, src, err)
		}
		charts = append(charts, bundle.ChartArchive{Slot: src.Slot(), Name: c.Metadata.Name, Version: c.Metadata.Version, Data: data})
		fmt.Fprintf(log, "bundle: chart %s: %s %s from %s (%s)\n", src.Field, c.Metadata.Name, c.Metadata.Version, src, time.Since(start).Round(time.Millisecond))
	}
	return charts, nil
}

func newBundleVerifyCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "verify DIR",
		Short:   "Check that every file of a bundle has the size and sha256 its manifest records",
		Example: "  boot bundle verify dist/bundle",
		Args:    usage(cobra.ExactArgs(1)),
		RunE: func(_ *cobra.Command, args []string) error {
			b, err := bundle.Open(args[0])
			if err != nil {
				return err
			}
			m := b.Manifest
			fmt.Fprintf(g.stdout, "%s: Kubernetes %s for %s, %d files, %d images and %d charts verified\n", b.Dir, m.KubernetesVersion, m.Arch, len(m.Files), len(m.Images), len(m.Charts))
			if len(m.Charts) > 0 {
				fmt.Fprintf(g.stdout, "charts: %s\n", m.ChartsHeld())
			}
			return nil
		},
	}
}
