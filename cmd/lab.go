package cmd

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/bootctl/boot/lab"
)

func newLabCmd(g *globals) *cobra.Command {
	o := lab.Options{}
	c := &cobra.Command{
		Use:   "lab",
		Short: "Four throwaway Linux hosts on this machine, to try boot on",
		Long: `lab runs four Debian hosts (cp1, w1, w2, w3) as privileged systemd
containers on a bridge network it creates, with an image registry on that
network serving an offline bundle's images, and writes a ready inventory for
them (strict host-key checking against the lab's own known_hosts). It needs
root and Docker (installed and started when missing) and debootstrap.

On this machine, at the bridge's gateway address, it also runs the lab's
outside world, real implementations only: moto_server (the Route53 API,
port 5005, zone lab.test), CoreDNS from the bundle (port 53: lab.test from
moto, every other name refused, nothing forwarded) and Pebble (ACME, port
14000, management 15000; it resolves names through that CoreDNS only). The
inventory issues the registry's certificate from that Pebble and writes its
DNS record to that zone; .lab/route53.env holds the AWS variables for it.
With a bundle it also serves a package mirror built from the bundle (port
8443: Docker's apt repository for bookworm and trixie, pkgs.k8s.io's and
get.helm.sh's layout, signed by a key made at every start) and a forward
proxy to it and the registry (tinyproxy, port 3128), and writes
.lab/inventory-online.yaml: the online path through those mirrors, images
under their upstream names through the lab registry.

"lab down" removes everything the lab made and restores what it changed.`,
		Example: `  boot lab up --bundle dist/bundle
  boot up -i .lab/inventory.yaml --dry-run
  boot up -i .lab/inventory-online.yaml --cluster-only   # the online path
  boot lab status
  boot lab down`,
	}
	c.PersistentFlags().StringVar(&o.Dir, "dir", ".lab", "lab folder: state, SSH key, known_hosts, inventory")
	var debian string
	up := &cobra.Command{
		Use:   "up",
		Short: "Create the lab hosts, registry and outside world (Route53, DNS, ACME) and write the inventory",
		Example: `  boot lab up --bundle dist/bundle
  boot lab up --bundle dist/bundle --debian w2=trixie,w3=trixie`,
		Args: usage(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			ctx := c.Context()
			var err error
			if o.Debian, err = lab.ParseDebian(debian); err != nil {
				return withExit(ExitInvalid, fmt.Errorf("--debian %q: %w", debian, err))
			}
			o.Log = g.stderr
			l, err := lab.Up(ctx, o)
			if err != nil {
				return err
			}
			if g.Output == "json" {
				return json.NewEncoder(g.stdout).Encode(l)
			}
			for _, t := range l.Timings {
				fmt.Fprintf(g.stdout, "  %-10s %s\n", t.Stage, t.Duration.Round(time.Second))
			}
			fmt.Fprintf(g.stdout, "lab up: %d hosts, registry %s\n", len(l.Hosts), l.Registry)
			fmt.Fprintf(g.stdout, "acme: %s (TLS CA %s), issuing root %s\n", l.ACMEDirectory, l.ACMECA, l.ACMERoot)
			fmt.Fprintf(g.stdout, "route53: %s, zone %s = %s\n", l.Route53Endpoint, lab.LabZone, l.Route53ZoneID)
			if l.DNSServer != "" {
				fmt.Fprintf(g.stdout, "dns: %s (%s only)\n", l.DNSServer, lab.LabZone)
			}
			if l.KubernetesMirror != "" {
				fmt.Fprintf(g.stdout, "mirror: %s, %s, %s (apt key %s)\n", l.DockerMirror, l.KubernetesMirror, l.HelmMirror, l.MirrorKey)
			}
			if l.Proxy != "" {
				fmt.Fprintf(g.stdout, "proxy: %s\n", l.Proxy)
			}
			fmt.Fprintf(g.stdout, "inventory: %s\n", l.Inventory)
			if l.OnlineInventory != "" {
				fmt.Fprintf(g.stdout, "online inventory: %s\n", l.OnlineInventory)
			}
			return nil
		},
	}
	up.Flags().StringVar(&o.Bundle, "bundle", "", "offline bundle whose images the lab registry serves")
	up.Flags().StringVar(&debian, "debian", "", fmt.Sprintf(
		"Debian release of hosts: host=codename,... (w3=trixie) or one codename for all; %s, default %s",
		strings.Join(lab.DebianReleases, " or "), lab.DefaultDebian))
	up.Flags().StringVar(&o.ToolsDir, "tools-dir", "", "folder with runc-capwrap, lab-registry, lab-mirror and pebble (default: beside boot)")
	down := &cobra.Command{
		Use:     "down",
		Short:   "Remove the lab: containers, network, volumes, registry, and what it changed",
		Example: "  boot lab down",
		Args:    usage(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			o.Log = g.stderr
			return lab.Down(c.Context(), o)
		},
	}
	status := &cobra.Command{
		Use:     "status",
		Short:   "Show the lab's hosts, addresses and registry",
		Example: "  boot lab status -o json",
		Args:    usage(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			r, err := lab.Status(c.Context(), o)
			if err != nil {
				return err
			}
			if g.Output == "json" {
				return json.NewEncoder(g.stdout).Encode(r)
			}
			r.Print(g.stdout)
			return nil
		},
	}
	c.AddCommand(up, down, status)
	return c
}
