package cmd

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/bootctl/boot/bundle"
)

func newBundleCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "bundle",
		Short: "Build or check the offline bundle (air-gapped installs)",
		Long: `A bundle is a folder with everything hosts need to become Kubernetes nodes
without internet access: kubeadm, kubelet, kubectl, containerd, runc, crictl,
the CNI plugins, helm, the control-plane, CoreDNS, pause and flannel images,
the registry's and Redis' images, boot itself as the image the registry's
prune and gc jobs run, and systemd units, recorded with sha256 sums in
manifest.json. Point an inventory at it with packages.source: bundle.`,
		Example: "  boot bundle build --kubernetes v1.37.2 --out dist/bundle\n  boot bundle verify dist/bundle",
	}
	c.AddCommand(newBundleBuildCmd(g), newBundleVerifyCmd(g))
	return c
}

func newBundleBuildCmd(g *globals) *cobra.Command {
	o := bundle.Options{}
	c := &cobra.Command{
		Use:   "build",
		Short: "Build the offline bundle from the Go module proxy and Debian's mirror",
		Long: `build compiles every component at pinned versions from the Go module proxy
(and takes a few Debian packages for the images that need iptables), so the
machine running it needs Go, gcc and apt. Builds are reproducible and cached
by version: a second build whose inputs did not change takes seconds. A cold
build takes about 20-30 minutes on 2 cores, most of it Kubernetes.`,
		Example: "  boot bundle build --kubernetes v1.37.2 --out dist/bundle",
		Args:    usage(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			o.Log = g.stderr
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
	return c
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
			fmt.Fprintf(g.stdout, "%s: Kubernetes %s for %s, %d files and %d images verified\n", b.Dir, m.KubernetesVersion, m.Arch, len(m.Files), len(m.Images))
			return nil
		},
	}
}
