package cmd

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
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
prune and gc jobs run, cert-manager's images (built from its release
archive), the upstream cert-manager, ingress-nginx and Traefik charts, and
systemd units, recorded with sha256 sums in manifest.json. Point an
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
	upstream, kubernetes := "", ""
	c := &cobra.Command{
		Use:   "build",
		Short: "Build the offline bundle from the Go module proxy and Debian's mirror",
		Long: `build compiles every component at pinned versions from the Go module proxy
(and takes a few Debian packages for the images that need iptables), so the
machine running it needs Go, gcc and apt. Builds are reproducible and cached
by version: a second build whose inputs did not change takes seconds. A cold
build takes about 45 minutes on 2 cores: about 25 for Kubernetes and the
rest, 5 for cert-manager, 8-15 for Traefik (the ingress-nginx successor,
built from the module proxy whatever --upstream says).

--kubernetes takes one version or several, comma-separated (e.g.
v1.36.3,v1.37.2): one bundle then carries them all, what they share
(containerd, the CNI plugins, the add-ons, an image two versions ask for)
stored once. The newest is the one installed by default (its kubeadm,
kubelet and kubectl in bin/); the others (kubernetes/<version>/bin and
the images their kubeadm asks for) are for boot up building a cluster at
an older version and upgrading it in place, offline. Each version is
compiled in its own module and cached by version: adding one to a bundle
costs its own build (about 25 minutes cold), not a rebuild of the rest.

--upstream names where the upstream release archives are: a local folder
holding them (e.g. ../shared/upstream) or an http(s) base URL serving files
of the same names (a mirror). They are cert-manager-v1.21.1.tar.gz (its
five commands, which the module proxy does not serve, and its chart),
ingress-nginx-chart-4.15.1.tar.gz and traefik-helm-chart-v41.3.0.tar.gz
(charts), each a git archive of the upstream release tag (gzip -n). Every
archive is checked against the sha256 boot pins, before the long build
starts: a missing, unreadable or different one stops the build, naming the
file and the sha256 expected. GitHub's own tag tarballs are other files
(another top folder, another compression) and are refused. With --upstream
the bundle holds cert-manager's images (controller, webhook, cainjector,
acmesolver, startupapicheck) under the names its chart asks for
(quay.io/jetstack/cert-manager-*:v1.21.1), to be served from
cluster.imageRepository like every bundle image.

The add-ons' upstream charts (cert-manager, ingress-nginx and Traefik) are
packed as charts/<name>-<version>.tgz: those the inventory given with -i
(or BOOT_INVENTORY) pins under addons.certManager, addons.ingressNginx and
addons.traefik (a chart with a path is packed from that path), or boot's
defaults without -i (cert-manager v1.21.1 from
oci://quay.io/jetstack/charts/cert-manager, ingress-nginx 4.15.1 from
https://kubernetes.github.io/ingress-nginx, traefik 41.3.0 from
https://traefik.github.io/charts). With --upstream, a pin of exactly the
chart and version a release archive holds is packed from that archive
(byte-reproducibly; cert-manager's chart stamped with its version); the
others are downloaded (digests checked, kept in ~/.cache/boot/charts)
before the long build starts, so without internet access the build stops
within seconds (at most 30 s per chart), naming the chart: build with
--addon-charts=false to leave them out. With packages.source: bundle, boot
addons and boot up take a chart from the bundle when it holds that slot at
the inventory's exact name and version, and download it otherwise.

The ingress-nginx controller's image is not in the bundle (it cannot be
built here): with ingress-nginx, the nodes must reach its registry, or the
image must be mirrored into a registry they reach, such as
cluster.imageRepository.`,
		Example: `  boot bundle build --kubernetes v1.37.2 --upstream ../shared/upstream --out dist/bundle

  # a bundle to build a cluster at v1.36.3 and upgrade it to v1.37.2
  boot bundle build --kubernetes v1.36.3,v1.37.2 --upstream ../shared/upstream --out dist/bundle-upgrade

  # the release archives from a mirror
  boot bundle build --upstream https://mirror.example.com/upstream --out dist/bundle

  # pack the chart versions an inventory pins
  boot bundle build -i inventory.yaml --upstream ../shared/upstream --out dist/bundle

  # on a machine without internet access nor the archives: no add-on charts
  boot bundle build --addon-charts=false --out dist/bundle`,
		Args: usage(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			ctx := c.Context()
			o.Log = g.stderr
			o.KubernetesVersions = strings.Split(kubernetes, ",")
			if _, _, err := bundle.SplitKubernetesVersions(o.KubernetesVersions); err != nil {
				return withExit(ExitInvalid, fmt.Errorf("--kubernetes %s: %w", kubernetes, err))
			}
			if upstream != "" {
				start := time.Now()
				u, err := bundle.LoadUpstream(ctx, upstream)
				if err != nil {
					return err
				}
				o.Upstream = u
				fmt.Fprintf(o.Log, "bundle: upstream release archives from %s checked (%s)\n", upstream, time.Since(start).Round(time.Millisecond))
			}
			if addonCharts {
				a, err := g.bundleAddons()
				if err != nil {
					return err
				}
				if o.Charts, err = loadAddonCharts(ctx, a, addons.ChartLoader{Timeout: bundleChartTimeout}, o.Upstream, o.Log); err != nil {
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
	c.Flags().StringVar(&kubernetes, "kubernetes", "v1.37.2", "Kubernetes versions to build, comma-separated (e.g. v1.36.3,v1.37.2): the newest is installed by default, the others are for boot up building a cluster at an older version and upgrading it in place")
	c.Flags().StringVar(&o.Out, "out", "dist/bundle", "bundle folder to write")
	c.Flags().StringVar(&o.CacheDir, "cache-dir", "", "build cache (default ~/.cache/boot/bundle)")
	c.Flags().BoolVar(&addonCharts, "addon-charts", true, "pack the cert-manager, ingress-nginx and Traefik charts (-i's pins, or boot's defaults); false without internet access nor --upstream")
	c.Flags().StringVar(&upstream, "upstream", "", "the upstream release archives (cert-manager's sources, the add-on charts): a local folder holding them, e.g. ../shared/upstream, or an http(s) base URL serving files of those names (a mirror); each checked against the sha256 boot pins (GitHub's tag tarballs are other files)")
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

// loadAddonCharts loads the upstream charts of a as archives to pack,
// reporting each on log: from u's release archives (when u is set) a chart
// without a path whose pin is exactly one they hold, the others with l (its
// cache and digest checks). The first chart that cannot be loaded stops it
// with an error naming the inventory field, the source and
// --addon-charts=false.
func loadAddonCharts(ctx context.Context, a inventory.Addons, l addons.ChartLoader, u *bundle.Upstream, log io.Writer) ([]bundle.ChartArchive, error) {
	var charts []bundle.ChartArchive
	for _, src := range addons.UpstreamChartSources(a) {
		start := time.Now()
		if u != nil && src.Path == "" {
			c, ok, err := u.Chart(chartName(src), src.Version)
			if err != nil {
				return nil, fmt.Errorf("%w (for %s)", err, src.Field)
			}
			if ok {
				c.Slot = src.Slot()
				charts = append(charts, c)
				fmt.Fprintf(log, "bundle: chart %s: %s %s from the release archives in %s (%s)\n", src.Field, c.Name, c.Version, u.Source, time.Since(start).Round(time.Millisecond))
				continue
			}
		}
		data, c, err := l.Archive(ctx, src)
		if err != nil {
			return nil, fmt.Errorf("bundle: add-on chart %s (%s): %w; without internet access, pin a chart the release archives of --upstream hold, or build the bundle without the add-on charts: --addon-charts=false", src.Field, src, err)
		}
		charts = append(charts, bundle.ChartArchive{Slot: src.Slot(), Name: c.Metadata.Name, Version: c.Metadata.Version, Data: data})
		fmt.Fprintf(log, "bundle: chart %s: %s %s from %s (%s)\n", src.Field, c.Metadata.Name, c.Metadata.Version, src, time.Since(start).Round(time.Millisecond))
	}
	return charts, nil
}

// chartName is the name of the chart src pins: its name, or an OCI
// reference's last element.
func chartName(src addons.ChartSource) string {
	if src.Name == "" && strings.HasPrefix(src.Repository, "oci://") {
		return src.Repository[strings.LastIndex(src.Repository, "/")+1:]
	}
	return src.Name
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
			others := ""
			if len(m.OtherKubernetesVersions) > 0 {
				others = " (and " + strings.Join(m.OtherKubernetesVersions, ", ") + ")"
			}
			fmt.Fprintf(g.stdout, "%s: Kubernetes %s%s for %s, %d files, %d images and %d charts verified\n", b.Dir, m.KubernetesVersion, others, m.Arch, len(m.Files), len(m.Images), len(m.Charts))
			if len(m.Charts) > 0 {
				fmt.Fprintf(g.stdout, "charts: %s\n", m.ChartsHeld())
			}
			return nil
		},
	}
}
