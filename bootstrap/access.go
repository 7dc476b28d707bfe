package bootstrap

import (
	"fmt"
	"net"
	"slices"

	"github.com/bootctl/boot/internal/boundedfile"
	"github.com/bootctl/boot/inventory"
	"github.com/bootctl/boot/scripts"
)

// maxAccessFile bounds a CA bundle or key file the inventory names (the
// inventory checked them at load; they are read again where used).
const maxAccessFile = 4 << 20

// clusterDomainSuffixes are the cluster's service names, never proxied.
var clusterDomainSuffixes = []string{".svc", ".cluster.local"}

// proxyFor is host h's proxy (its own, else the inventory's), with what
// must never go through it added to NoProxy: localhost, the pod and service
// CIDRs, every host's addresses, the API endpoint's host and the cluster's
// service domain. nil without a proxy.
func (c *Cluster) proxyFor(h *Host) *scripts.Proxy {
	p := h.Spec.Proxy
	if p == nil {
		p = c.Inventory.Proxy
	}
	if p == nil {
		return nil
	}
	cl := c.Inventory.Cluster
	var no []string
	add := func(s string) {
		if s != "" && !slices.Contains(no, s) {
			no = append(no, s)
		}
	}
	for _, s := range p.NoProxy {
		add(s)
	}
	for _, s := range []string{"localhost", "127.0.0.1", "::1", cl.PodCIDR, cl.ServiceCIDR} {
		add(s)
	}
	for _, o := range c.Inventory.Hosts {
		add(o.Address)
		add(o.PrivateAddress)
	}
	if host, _, err := net.SplitHostPort(c.endpoint()); err == nil {
		add(host)
	}
	for _, s := range clusterDomainSuffixes {
		add(s)
	}
	return &scripts.Proxy{HTTP: p.HTTPProxy, HTTPS: p.HTTPSProxy, NoProxy: no}
}

// registryMirrors are the inventory's registry mirrors with their CA files
// read.
func (c *Cluster) registryMirrors() ([]scripts.RegistryMirror, error) {
	var out []scripts.RegistryMirror
	for i, m := range c.Inventory.Cluster.RegistryMirrors {
		ca, err := readAccessFile(fmt.Sprintf("cluster.registryMirrors[%d].caFile", i), m.CAFile, "CA bundle")
		if err != nil {
			return nil, err
		}
		out = append(out, scripts.RegistryMirror{Registry: m.Registry, Endpoints: m.Endpoints, CA: ca})
	}
	return out, nil
}

// packageMirror is the inventory's mirror of one download site (name is
// docker, kubernetes or helm) with its files read; the zero Mirror
// (upstream's site) when there is none.
func packageMirror(name string, m *inventory.PackageMirror) (scripts.Mirror, error) {
	if m == nil {
		return scripts.Mirror{}, nil
	}
	field := "packages.mirrors." + name
	ca, err := readAccessFile(field+".caFile", m.CAFile, "CA bundle")
	if err != nil {
		return scripts.Mirror{}, err
	}
	key, err := readAccessFile(field+".keyFile", m.KeyFile, "OpenPGP key")
	if err != nil {
		return scripts.Mirror{}, err
	}
	return scripts.Mirror{URL: m.URL, CA: ca, Key: key}, nil
}

// readAccessFile reads the file of an inventory field, "" for none.
func readAccessFile(field, path, what string) (string, error) {
	if path == "" {
		return "", nil
	}
	data, err := boundedfile.Read(path, what, maxAccessFile)
	if err != nil {
		return "", fmt.Errorf("%s: %w", field, err)
	}
	return string(data), nil
}
