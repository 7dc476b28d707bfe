package bootstrap

import (
	"context"
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"

	"github.com/bootctl/boot/nodes"
	"github.com/bootctl/boot/scripts"
)

// Paths kubeadm and boot keep on the hosts.
const (
	adminConf   = "/etc/kubernetes/admin.conf"
	kubeletConf = "/etc/kubernetes/kubelet.conf"
	caCert      = "/etc/kubernetes/pki/ca.crt"
	initConfig  = "/var/lib/boot/kubeadm-init.yaml"
)

// exists reports whether path exists on the host.
func exists(ctx context.Context, h *Host, path string) (bool, error) {
	return h.Conn.Exists(ctx, path)
}

// endpoint is host:port where nodes reach the API server.
func (c *Cluster) endpoint() string {
	cl := c.Inventory.Cluster
	if e := cl.ControlPlaneEndpoint; e != "" {
		if _, _, err := net.SplitHostPort(e); err == nil {
			return e
		}
		return net.JoinHostPort(e, strconv.Itoa(cl.APIServerPort))
	}
	return net.JoinHostPort(c.Inventory.ControlPlane().PrivateAddress, strconv.Itoa(cl.APIServerPort))
}

// ignoredPreflight lists kubeadm preflight checks boot knows to fail
// harmlessly on the host: SystemVerification refuses cgroup v1, which the
// kubelet accepts with failCgroupV1: false.
func ignoredPreflight(h *Host) []string {
	if h.Facts.CgroupVersion == 1 {
		return []string{"SystemVerification"}
	}
	return nil
}

// ControlPlane runs kubeadm init on the control plane, once: a host that
// already has /etc/kubernetes/admin.conf is left as it is.
type ControlPlane struct{}

// Name implements Phase.
func (ControlPlane) Name() string { return "control plane" }

// Plan implements Phase.
func (ControlPlane) Plan(ctx context.Context, c *Cluster) ([]Change, error) {
	cp := c.controlPlane()
	done, err := exists(ctx, cp, adminConf)
	if err != nil || done {
		return nil, err
	}
	// kube-proxy leaves nf_conntrack_max alone where it cannot write it (a
	// container sharing the host kernel's settings). A probe: not streamed.
	out, err := cp.Conn.Sudo(ctx, "if [ -w /proc/sys/net/netfilter/nf_conntrack_max ]; then echo writable; fi", nodes.Stream(nil))
	if err != nil {
		return nil, err
	}
	inv := c.Inventory
	p := c.kubeadmInitParams(cp)
	p.ConntrackReadOnly = strings.TrimSpace(out.Stdout) != "writable"
	cfg, err := scripts.KubeadmInit(p)
	if err != nil {
		return nil, err
	}
	return []Change{{
		Host:        cp.Spec.Name,
		Description: fmt.Sprintf("kubeadm init: Kubernetes %s, API server at %s", inv.Cluster.KubernetesVersion, c.endpoint()),
		Apply:       func(ctx context.Context) error { return kubeadmInit(ctx, cp, cfg) },
	}}, nil
}

// kubeadmInitParams are kubeadm init's parameters for the control plane cp
// (ConntrackReadOnly, which depends on the host, left false).
func (c *Cluster) kubeadmInitParams(cp *Host) scripts.KubeadmParams {
	inv := c.Inventory
	var sans []string
	if a := cp.Spec.Address; a != cp.Spec.PrivateAddress {
		sans = append(sans, a)
	}
	if h, _, err := net.SplitHostPort(c.endpoint()); err == nil && h != cp.Spec.PrivateAddress && h != cp.Spec.Address {
		sans = append(sans, h)
	}
	resolv := ""
	if len(inv.Cluster.Nameservers) > 0 {
		resolv = scripts.ResolvConf
	}
	return scripts.KubeadmParams{
		KubernetesVersion:     inv.Cluster.KubernetesVersion,
		ClusterName:           inv.Metadata.Name,
		NodeName:              cp.Spec.Name,
		AdvertiseAddress:      cp.Spec.PrivateAddress,
		BindPort:              inv.Cluster.APIServerPort,
		ControlPlaneEndpoint:  c.endpoint(),
		PodSubnet:             inv.Cluster.PodCIDR,
		ServiceSubnet:         inv.Cluster.ServiceCIDR,
		ImageRepository:       inv.Cluster.ImageRepository,
		CertSANs:              sans,
		CgroupV1:              cp.Facts.CgroupVersion == 1,
		IgnorePreflightErrors: ignoredPreflight(cp),
		ResolvConf:            resolv,
		EvictionHard:          inv.Cluster.Kubelet.EvictionHard.Signals(),
	}
}

// kubeadmInit writes the configuration and runs kubeadm init. A failed init
// is reset so that the next run starts from a clean host.
func kubeadmInit(ctx context.Context, cp *Host, cfg []byte) error {
	if err := cp.Conn.MkdirAll(ctx, 0o700, path.Dir(initConfig)); err != nil {
		return err
	}
	if _, err := cp.Conn.Upload(ctx, cfg, initConfig, 0o600, nodes.AsRoot()); err != nil {
		return err
	}
	// Streamed: --skip-token-print keeps the token out of kubeadm's output
	// (its "Using token" line and the join command it prints), and without
	// --upload-certs it prints no certificate key.
	_, err := cp.Conn.Sudo(ctx, "kubeadm init --config "+initConfig+" --skip-token-print")
	if err == nil {
		return nil
	}
	if _, rerr := cp.Conn.Sudo(ctx, "kubeadm reset -f"); rerr != nil {
		return fmt.Errorf("kubeadm init: %w (and kubeadm reset after it failed: %v)", err, rerr)
	}
	return fmt.Errorf("kubeadm init: %w (the host was reset: the next run starts again)", err)
}
