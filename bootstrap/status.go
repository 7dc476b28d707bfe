package bootstrap

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/bootctl/boot/inventory"
	"github.com/bootctl/boot/nodes"
)

// HostStatus is one inventory host as `boot status` shows it. Everything
// in it was read without changing anything.
type HostStatus struct {
	Name      string `json:"name"`
	Role      string `json:"role"`
	Address   string `json:"address"`
	Reachable bool   `json:"reachable"`
	// Error says why the host was not reached, or why a probe on it failed.
	Error   string `json:"error,omitempty"`
	OS      string `json:"os,omitempty"`      // PRETTY_NAME of /etc/os-release
	Kubeadm string `json:"kubeadm,omitempty"` // `kubeadm version -o short`
	// Node is the host's Node as the API server has it (see APIStatus).
	Node *NodeStatus `json:"node,omitempty"`
}

// NodeStatus is a Node's Ready condition and its kubelet's version.
type NodeStatus struct {
	Ready   string `json:"ready"` // True, False, Unknown, or "" before the kubelet reported it
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	Kubelet string `json:"kubelet"` // status.nodeInfo.kubeletVersion
}

// CertExpiry is one certificate kubeadm manages and when it expires.
type CertExpiry struct {
	Name    string    `json:"name"`
	Expires time.Time `json:"expires"`
	// Authority: a CA, not a certificate it signed.
	Authority bool `json:"authority,omitempty"`
}

// checkExpirationCmd lists the control plane's certificates as JSON. Its
// kubeadm configuration comes on stdin: with none, kubeadm would read the
// kubeadm-config ConfigMap through the API server and, failing that, ask
// dl.k8s.io for a version.
const checkExpirationCmd = "kubeadm certs check-expiration --config /dev/stdin -o json"

// kubeadmVersionForm is what `kubeadm version -o short` prints, e.g.
// v1.37.2 (a pre-release may follow).
var kubeadmVersionForm = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.+-]+)?$`)

// CheckExpirationConfig is the kubeadm configuration `kubeadm certs
// check-expiration` reads on the control plane: a Kubernetes version (its
// own: without one kubeadm asks dl.k8s.io) and the certificates' folder
// (kubeadm's default when certDir is empty).
func CheckExpirationConfig(kubernetesVersion, certDir string) string {
	cfg := "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: " + kubernetesVersion + "\n"
	if certDir != "" {
		cfg += "certificatesDir: " + certDir + "\n"
	}
	return cfg
}

// ParseCertExpiration reads the output of `kubeadm certs check-expiration
// -o json` (output.kubeadm.k8s.io/v1alpha3 CertificateExpirationInfo): the
// certificates and certificate authorities present, in its order; missing
// ones (a kubeconfig file kubeadm did not write) are left out.
func ParseCertExpiration(out []byte) ([]CertExpiry, error) {
	type entry struct {
		Name           string     `json:"name"`
		ExpirationDate *time.Time `json:"expirationDate"`
		Missing        bool       `json:"missing"`
	}
	var info struct {
		Kind                   string  `json:"kind"`
		Certificates           []entry `json:"certificates"`
		CertificateAuthorities []entry `json:"certificateAuthorities"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		return nil, fmt.Errorf("kubeadm certs check-expiration: %w", err)
	}
	if info.Kind != "CertificateExpirationInfo" {
		return nil, fmt.Errorf("kubeadm certs check-expiration: kind %q, want CertificateExpirationInfo", info.Kind)
	}
	var certs []CertExpiry
	for i, list := range [][]entry{info.Certificates, info.CertificateAuthorities} {
		for _, e := range list {
			if e.Missing || e.ExpirationDate == nil {
				continue
			}
			certs = append(certs, CertExpiry{Name: e.Name, Expires: e.ExpirationDate.UTC(), Authority: i == 1})
		}
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("kubeadm certs check-expiration: no certificate found")
	}
	return certs, nil
}

// FirstToExpire returns the certificate that expires first.
func FirstToExpire(certs []CertExpiry) CertExpiry {
	first := certs[0]
	for _, c := range certs[1:] {
		if c.Expires.Before(first.Expires) {
			first = c
		}
	}
	return first
}

// HostsStatus connects to every inventory host (ConnectReachable: a host
// the network does not reach is a HostStatus with Reachable false, not a
// failure) and reads each one's OS and kubeadm version, and on the control
// plane the certificates kubeadm manages (certs, or certErr). It changes
// nothing. Its error is one ConnectReachable does not skip: a host key or
// login refused, bad settings, facts that cannot be read.
func HostsStatus(ctx context.Context, inv *inventory.Inventory, o ConnectOptions) (hosts []HostStatus, certs []CertExpiry, certErr error, err error) {
	c, unreachable, err := ConnectReachable(ctx, inv, o)
	if err != nil {
		return nil, nil, nil, err
	}
	defer c.Close()
	down := map[string]error{}
	for _, u := range unreachable {
		down[u.Name] = u.Err
	}
	conns := map[string]*Host{}
	for _, h := range c.Hosts {
		conns[h.Spec.Name] = h
	}
	hosts = make([]HostStatus, len(inv.Hosts))
	var live []*nodes.Host
	index := map[*nodes.Host]int{}
	for i, spec := range inv.Hosts {
		hosts[i] = HostStatus{Name: spec.Name, Role: spec.Role, Address: spec.Address}
		if err := down[spec.Name]; err != nil {
			hosts[i].Error = err.Error()
			continue
		}
		h := conns[spec.Name]
		hosts[i].Reachable = true
		hosts[i].OS = h.Facts.OSPrettyName // escaped by Facts
		live = append(live, h.Conn)
		index[h.Conn] = i
	}
	cp := inv.ControlPlane().Name
	certErr = fmt.Errorf("control plane %s not reached", cp)
	results := nodes.ForEach(ctx, live, o.Parallel, func(ctx context.Context, h *nodes.Host) error {
		hs := &hosts[index[h]]
		// As root, as boot runs kubeadm: the same kubeadm, found on root's PATH.
		out, err := h.Sudo(ctx, "kubeadm version -o short", nodes.Stream(nil))
		if err != nil {
			err = fmt.Errorf("kubeadm version: %w", err)
			if hs.Name == cp {
				certErr = err
			}
			return err
		}
		hs.Kubeadm = nodes.EscapeHostText(strings.TrimSpace(out.Stdout))
		if hs.Name == cp {
			certs, certErr = controlPlaneCerts(ctx, h, hs.Kubeadm)
		}
		return nil
	})
	for i, r := range results {
		if r.Err != nil {
			hosts[index[live[i]]].Error = r.Err.Error()
		}
	}
	return hosts, certs, certErr, nil
}

// controlPlaneCerts runs `kubeadm certs check-expiration` on the control
// plane, as root (the keys are root's), configured with the version of
// that kubeadm (which it always accepts) and kubeadm's certificates folder.
func controlPlaneCerts(ctx context.Context, cp *nodes.Host, kubeadmVersion string) ([]CertExpiry, error) {
	if !kubeadmVersionForm.MatchString(kubeadmVersion) {
		return nil, fmt.Errorf("kubeadm version %q is not vMAJOR.MINOR.PATCH", kubeadmVersion)
	}
	out, err := cp.Sudo(ctx, checkExpirationCmd, nodes.Stream(nil),
		nodes.Stdin(strings.NewReader(CheckExpirationConfig(kubeadmVersion, ""))))
	if err != nil {
		return nil, err
	}
	return ParseCertExpiration([]byte(out.Stdout))
}

// APIStatus is the API server's health and its Nodes, read through the
// cluster's kubeconfig.
type APIStatus struct {
	Ready string `json:"ready"` // "ok", or why /readyz did not say so
	Etcd  string `json:"etcd"`  // "ok", or why /readyz/etcd did not say so
	// Nodes are the Nodes by name; nil when they could not be listed
	// (NodesErr says why).
	Nodes    map[string]NodeStatus `json:"-"`
	NodesErr error                 `json:"-"`
}

// ReadAPIStatus asks the API server of kubeconfig for /readyz and
// /readyz/etcd and lists its Nodes, each call bounded by 15 seconds.
func ReadAPIStatus(ctx context.Context, kubeconfig string) (APIStatus, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return APIStatus{}, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	cfg.Timeout = 15 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return APIStatus{}, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	health := func(path string) string {
		body, err := cs.Discovery().RESTClient().Get().AbsPath(path).DoRaw(ctx)
		if err != nil {
			return fmt.Sprintf("%s: %v", path, err)
		}
		if s := strings.TrimSpace(string(body)); s != "ok" {
			return fmt.Sprintf("%s: %s", path, nodes.EscapeHostText(s))
		}
		return "ok"
	}
	s := APIStatus{Ready: health("/readyz"), Etcd: health("/readyz/etcd")}
	list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		s.NodesErr = fmt.Errorf("listing the Nodes: %w", err)
		return s, nil
	}
	s.Nodes = map[string]NodeStatus{}
	for _, n := range list.Items {
		ns := NodeStatus{Kubelet: n.Status.NodeInfo.KubeletVersion}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				ns.Ready, ns.Reason, ns.Message = string(c.Status), c.Reason, nodes.EscapeHostText(c.Message)
			}
		}
		s.Nodes[n.Name] = ns
	}
	return s, nil
}
