package cmd

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/bootctl/boot/inventory"
)

func newValidateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "validate",
		Short: "Check the inventory file without contacting any host",
		Long: `validate loads the inventory (with BOOT_* environment overrides and
defaults applied) and reports every problem at once, each as
file:line: field: what is wrong (what is expected). It contacts no host.
What is valid but needs attention (ingress-nginx, retired upstream) is
printed as a warning, on stderr (in JSON: "warnings").`,
		Example: `  boot validate -i inventory.yaml
  BOOT_REGISTRY_HOST=registry.example.org boot validate -i inventory.yaml -o json`,
		Args: usage(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			inv, err := g.loadInventory()
			if g.Output == "json" {
				return printValidation(g, inv, err)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "%s: valid\n%s", inv.Path, describe(inv))
			for _, w := range inv.Warnings() {
				fmt.Fprintf(g.stderr, "Warning: %s\n", w)
			}
			return nil
		},
	}
}

// describe summarises a valid inventory for a person.
func describe(inv *inventory.Inventory) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  cluster %s, Kubernetes %s, packages from %s\n", inv.Metadata.Name, inv.Cluster.KubernetesVersion, inv.Packages.Source)
	for _, h := range inv.Hosts {
		r := inv.SSHFor(h)
		fmt.Fprintf(&b, "  %-14s %-13s %s@%s\n", h.Name, h.Role, r.User, r.Addr())
	}
	fmt.Fprintf(&b, "  registry https://%s (auth %s, admin %s, cache %s)\n", inv.Registry.Host, inv.Registry.Auth.Mode, inv.Registry.Auth.User, inv.Registry.Cache())
	if inv.DNS.Provider != "none" {
		fmt.Fprintf(&b, "  dns %s zone %s\n", inv.DNS.Provider, inv.DNS.Zone)
	}
	return b.String()
}

// validation is validate's JSON answer.
type validation struct {
	File     string    `json:"file"`
	Valid    bool      `json:"valid"`
	Problems []problem `json:"problems,omitempty"`
	Warnings []problem `json:"warnings,omitempty"`
	Cluster  string    `json:"cluster,omitempty"`
	Hosts    []host    `json:"hosts,omitempty"`
}

type problem struct {
	Line     int    `json:"line,omitempty"`
	Env      string `json:"env,omitempty"`
	Field    string `json:"field,omitempty"`
	Message  string `json:"message"`
	Expected string `json:"expected,omitempty"`
}

type host struct {
	Name    string `json:"name"`
	Role    string `json:"role"`
	Address string `json:"address"`
}

func printValidation(g *globals, inv *inventory.Inventory, err error) error {
	v := validation{File: g.Inventory, Valid: err == nil}
	var ie *inventory.Error
	switch {
	case errors.As(err, &ie):
		for _, p := range ie.Problems {
			v.Problems = append(v.Problems, problem{p.Line, p.Env, p.Field, p.Message, p.Expected})
		}
	case err != nil:
		v.Problems = []problem{{Message: err.Error()}}
	default:
		v.Cluster = inv.Metadata.Name
		for _, h := range inv.Hosts {
			v.Hosts = append(v.Hosts, host{h.Name, h.Role, h.Address})
		}
		for _, w := range inv.Warnings() {
			v.Warnings = append(v.Warnings, problem{w.Line, w.Env, w.Field, w.Message, w.Expected})
		}
	}
	b, merr := json.Marshal(v)
	if merr != nil {
		return merr
	}
	fmt.Fprintf(g.stdout, "%s\n", b)
	return err
}
