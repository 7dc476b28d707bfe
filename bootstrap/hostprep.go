package bootstrap

import (
	"context"

	"github.com/bootctl/boot/scripts"
)

// nodePackages are the Debian packages a node needs besides the runtime and
// Kubernetes: kubelet and kube-proxy use conntrack, iptables, ebtables,
// socat (port-forward) and ethtool; apt needs ca-certificates, curl and gpg
// to add the online repositories.
var nodePackages = map[string][]string{
	"bundle": {"conntrack", "iptables", "ebtables", "socat", "ethtool"},
	"online": {"conntrack", "iptables", "ebtables", "socat", "ethtool", "ca-certificates", "curl", "gpg"},
}

// HostPrep prepares every host in parallel: kernel modules and sysctls,
// swap off, the packages a node needs, the hostname, the proxy and the
// registry mirrors (see scripts.HostPrep).
type HostPrep struct{}

// Name implements Phase.
func (HostPrep) Name() string { return "host prep" }

// Plan implements Phase.
func (HostPrep) Plan(ctx context.Context, c *Cluster) ([]Change, error) {
	mirrors, err := c.registryMirrors()
	if err != nil {
		return nil, err
	}
	return scriptChanges(ctx, c, c.Hosts, func(h *Host) (script, error) {
		text, err := scripts.HostPrep(scripts.HostPrepParams{
			Hostname:        h.Spec.Name,
			Address:         h.Spec.PrivateAddress,
			Packages:        nodePackages[c.Inventory.Packages.Source],
			Nameservers:     c.Inventory.Cluster.Nameservers,
			Proxy:           c.proxyFor(h),
			RegistryMirrors: mirrors,
		})
		return script{"host-prep.sh", text}, err
	})
}
