package bootstrap

import (
	"strings"
	"testing"

	"github.com/bootctl/boot/inventory"
)

// TestProxyFor: a host's own proxy replaces the inventory's, and what must
// never go through a proxy is added once to what the inventory lists.
func TestProxyFor(t *testing.T) {
	inv := &inventory.Inventory{
		Cluster: inventory.Cluster{PodCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/12", APIServerPort: 6443,
			ControlPlaneEndpoint: "api.example.com:6443"},
		Proxy: &inventory.Proxy{HTTPProxy: "http://proxy:3128", NoProxy: []string{".corp.example.com", "10.0.0.11"}},
		Hosts: []inventory.Host{
			{Name: "cp1", Address: "192.0.2.10", PrivateAddress: "10.0.0.10", Role: inventory.RoleControlPlane},
			{Name: "w1", Address: "10.0.0.11", PrivateAddress: "10.0.0.11", Role: inventory.RoleWorker},
			{Name: "w2", Address: "10.0.0.12", PrivateAddress: "10.0.0.12", Role: inventory.RoleWorker,
				Proxy: &inventory.Proxy{HTTPSProxy: "http://other:8080"}},
		},
	}
	c := &Cluster{Inventory: inv}
	for i := range inv.Hosts {
		c.Hosts = append(c.Hosts, &Host{Spec: inv.Hosts[i]})
	}
	p := c.proxyFor(c.Hosts[1])
	if p.HTTP != "http://proxy:3128" || p.HTTPS != "" {
		t.Errorf("w1's proxy = %+v, want the inventory's", p)
	}
	want := ".corp.example.com,10.0.0.11,localhost,127.0.0.1,::1,10.244.0.0/16,10.96.0.0/12,192.0.2.10,10.0.0.10,10.0.0.12,api.example.com,.svc,.cluster.local"
	if got := p.NoProxyList(); got != want {
		t.Errorf("no proxy = %s\nwant       %s", got, want)
	}
	p = c.proxyFor(c.Hosts[2])
	if p.HTTP != "" || p.HTTPS != "http://other:8080" || strings.Contains(p.NoProxyList(), "corp") {
		t.Errorf("w2's proxy = %+v, want its own", p)
	}
	inv.Proxy = nil
	if p := c.proxyFor(c.Hosts[1]); p != nil {
		t.Errorf("without a proxy: %+v", p)
	}
}
