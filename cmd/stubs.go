package cmd

import (
	"errors"

	"github.com/spf13/cobra"
)

// errNotImplemented is what commands whose work has not landed yet return.
var errNotImplemented = errors.New("not implemented yet")

func newAddonsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "addons",
		Short: "Install or upgrade only the add-ons (ingress, cert-manager, registry, pruner) and DNS",
		Long: `addons installs or upgrades, on an existing cluster, the Helm releases boot
manages: ingress-nginx, cert-manager with its issuer, the registry with Redis
and the pruner, then sets the registry's DNS record.

Not implemented yet: it exits with code 1 and changes nothing.`,
		Example: "  boot addons -i inventory.yaml",
		Args:    usage(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			if _, err := g.requireInventory(); err != nil {
				return err
			}
			return errNotImplemented
		},
	}
}
