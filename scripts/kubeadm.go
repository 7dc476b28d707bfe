package scripts

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/bootctl/boot/inventory"
)

// CRISocket is the containerd CRI endpoint the kubeadm configurations name.
const CRISocket = "unix:///run/containerd/containerd.sock"

// KubeadmParams are the inputs of kubeadm init's configuration.
type KubeadmParams struct {
	// KubernetesVersion is vMAJOR.MINOR.PATCH, e.g. v1.37.2.
	KubernetesVersion string
	// ClusterName, when set, names the cluster in kubeadm's kubeconfig
	// files (kubeadm's default: kubernetes).
	ClusterName string
	// NodeName is the control plane's node name (its inventory name).
	NodeName string
	// AdvertiseAddress is the IP the API server advertises; also the
	// kubelet's node-ip.
	AdvertiseAddress string
	// BindPort is the API server's port; zero means 6443.
	BindPort int
	// ControlPlaneEndpoint is host:port of the API server for every node.
	ControlPlaneEndpoint string
	// PodSubnet and ServiceSubnet are CIDRs.
	PodSubnet     string
	ServiceSubnet string
	// ImageRepository, when set, is where kubeadm pulls its images from.
	ImageRepository string
	// CertSANs are extra IPs or DNS names in the API server's certificate
	// (the public address the operator reaches it at).
	CertSANs []string
	// CgroupV1 says the host runs cgroup v1: the kubelet is told not to
	// refuse it (failCgroupV1: false). Leave false on cgroup v2 hosts.
	CgroupV1 bool
	// ConntrackReadOnly says nf_conntrack_max is read-only on the hosts:
	// kube-proxy then leaves it alone (conntrack.maxPerCore: 0).
	ConntrackReadOnly bool
	// IgnorePreflightErrors are kubeadm preflight check names to ignore,
	// e.g. SystemVerification on cgroup v1 hosts.
	IgnorePreflightErrors []string
	// ResolvConf, when set, is the kubelet's resolv.conf on every node
	// (the file HostPrep writes from the inventory's nameservers).
	ResolvConf string
	// EvictionHard, when set, is the kubelet's evictionHard: thresholds by
	// signal (inventory.EvictionHard.Signals).
	EvictionHard map[string]string
}

// KubeadmInit renders kubeadm init's configuration: InitConfiguration,
// ClusterConfiguration (kubeadm.k8s.io/v1beta4), KubeletConfiguration
// (kubelet.config.k8s.io/v1beta1, cgroupDriver systemd) and
// KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1). The result is
// checked by decoding it strictly before it is returned. The one bootstrap
// token kubeadm init insists on making expires as it is made: workers join
// with tokens boot creates for them.
func KubeadmInit(p KubeadmParams) (_ []byte, err error) {
	defer wrapError(&err, "KubeadmInit")
	if p.BindPort == 0 {
		p.BindPort = 6443
	}
	if err := checkKubeVersion("KubernetesVersion", p.KubernetesVersion); err != nil {
		return nil, err
	}
	if p.ClusterName != "" {
		if err := checkDNSName("ClusterName", p.ClusterName); err != nil {
			return nil, err
		}
	}
	if err := checkDNSName("NodeName", p.NodeName); err != nil {
		return nil, err
	}
	if err := checkIP("AdvertiseAddress", p.AdvertiseAddress); err != nil {
		return nil, err
	}
	if p.BindPort < 1 || p.BindPort > 65535 {
		return nil, fmt.Errorf("%s is not a port number 1-65535", "BindPort")
	}
	if err := checkHostPort("ControlPlaneEndpoint", p.ControlPlaneEndpoint); err != nil {
		return nil, err
	}
	if err := checkCIDR("PodSubnet", p.PodSubnet); err != nil {
		return nil, err
	}
	if err := checkCIDR("ServiceSubnet", p.ServiceSubnet); err != nil {
		return nil, err
	}
	if netip.MustParsePrefix(p.PodSubnet).Overlaps(netip.MustParsePrefix(p.ServiceSubnet)) {
		return nil, fmt.Errorf("%s overlaps ServiceSubnet", "PodSubnet")
	}
	if p.ImageRepository != "" {
		if err := named("ImageRepository", inventory.CheckImageRepository(p.ImageRepository)); err != nil {
			return nil, err
		}
	}
	for i, san := range p.CertSANs {
		if err := checkHost(fmt.Sprintf("CertSANs[%d]", i), san); err != nil {
			return nil, err
		}
	}
	if err := checkPreflight(p.IgnorePreflightErrors); err != nil {
		return nil, err
	}
	if p.ResolvConf != "" {
		if err := checkAbsPath("ResolvConf", p.ResolvConf); err != nil {
			return nil, err
		}
	}
	for sig, v := range p.EvictionHard {
		if _, ok := inventory.KubeletEvictionDefaults[sig]; !ok {
			return nil, fmt.Errorf("EvictionHard: %q is not an eviction signal", sig)
		}
		if err := named("EvictionHard["+sig+"]", inventory.CheckEvictionThreshold(v)); err != nil {
			return nil, err
		}
	}
	b, err := render("init", struct {
		KubeadmParams
		NodeIP string
	}{p, p.AdvertiseAddress})
	if err != nil {
		return nil, err
	}
	if err := decodeStrict(b); err != nil {
		return nil, err
	}
	return b, nil
}

// Token is a kubeadm bootstrap token (abcdef.0123456789abcdef). It is a
// secret: printing it with fmt or marshalling it shows "[redacted]".
type Token string

var tokenRe = regexp.MustCompile(`^[a-z0-9]{6}\.[a-z0-9]{16}$`)

const redacted = "[redacted]"

// String hides the token.
func (Token) String() string { return redacted }

// GoString hides the token from %#v.
func (Token) GoString() string { return redacted }

// MarshalText hides the token from encoders (JSON, YAML, slog).
func (Token) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// JoinParams are the inputs of kubeadm join's configuration for a worker.
type JoinParams struct {
	// NodeName is the worker's node name (its inventory name).
	NodeName string
	// NodeIP, when set, is the kubelet's node-ip (the worker's private IP).
	NodeIP string
	// APIServerEndpoint is host:port of the API server.
	APIServerEndpoint string
	// Token is the bootstrap token the worker authenticates with.
	Token Token
	// CACertHashes pin the cluster CA: sha256:<64 hex digits> each, at
	// least one.
	CACertHashes []string
	// IgnorePreflightErrors are kubeadm preflight check names to ignore.
	IgnorePreflightErrors []string
}

var caHashRe = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// KubeadmJoin renders kubeadm join's configuration (JoinConfiguration,
// kubeadm.k8s.io/v1beta4, discovery by bootstrap token pinned to the CA
// hashes). The result holds the token: send it to the host on stdin or as
// an uploaded 0600 file, never on a command line, in a log or an error.
// Errors never hold the token.
func KubeadmJoin(p JoinParams) (_ []byte, err error) {
	defer wrapError(&err, "KubeadmJoin")
	if err := checkDNSName("NodeName", p.NodeName); err != nil {
		return nil, err
	}
	if p.NodeIP != "" {
		if err := checkIP("NodeIP", p.NodeIP); err != nil {
			return nil, err
		}
	}
	if err := checkHostPort("APIServerEndpoint", p.APIServerEndpoint); err != nil {
		return nil, err
	}
	if !tokenRe.MatchString(string(p.Token)) {
		return nil, fmt.Errorf("%s is not a bootstrap token of the form [a-z0-9]{6}.[a-z0-9]{16}", "Token")
	}
	if len(p.CACertHashes) == 0 {
		return nil, fmt.Errorf("%s is empty", "CACertHashes")
	}
	for i, h := range p.CACertHashes {
		if !caHashRe.MatchString(h) {
			return nil, fmt.Errorf("%s[%d] is not sha256:<64 hex digits>", "CACertHashes", i)
		}
	}
	if err := checkPreflight(p.IgnorePreflightErrors); err != nil {
		return nil, err
	}
	b, err := render("join", struct {
		JoinParams
		Token string // the template needs the value itself
	}{p, string(p.Token)})
	if err != nil {
		return nil, err
	}
	if err := decodeStrict(b); err != nil {
		return nil, err
	}
	return b, nil
}

var preflightRe = regexp.MustCompile(`^[A-Za-z0-9-]+$`)

func checkPreflight(names []string) error {
	for i, n := range names {
		if !preflightRe.MatchString(n) {
			return fmt.Errorf("%s[%d] is not a preflight check name like SystemVerification", "IgnorePreflightErrors", i)
		}
	}
	return nil
}

// The mirror types below hold exactly the fields boot writes, spelled as
// kubeadm v1beta4, kubelet v1beta1 and kube-proxy v1alpha1 document them.
// decodeStrict refuses any other field, so a misspelt key in a template
// fails every render (and the tests) instead of being ignored by kubeadm.
type (
	typeMeta struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
	}
	kubeletArg struct {
		Name  string `yaml:"name"`
		Value string `yaml:"value"`
	}
	nodeRegistration struct {
		Name                  string       `yaml:"name"`
		CRISocket             string       `yaml:"criSocket"`
		KubeletExtraArgs      []kubeletArg `yaml:"kubeletExtraArgs"`
		IgnorePreflightErrors []string     `yaml:"ignorePreflightErrors"`
	}
	bootstrapToken struct {
		Description string `yaml:"description"`
		TTL         string `yaml:"ttl"`
	}
	initConfiguration struct {
		typeMeta         `yaml:",inline"`
		BootstrapTokens  []bootstrapToken `yaml:"bootstrapTokens"`
		LocalAPIEndpoint struct {
			AdvertiseAddress string `yaml:"advertiseAddress"`
			BindPort         int32  `yaml:"bindPort"`
		} `yaml:"localAPIEndpoint"`
		NodeRegistration nodeRegistration `yaml:"nodeRegistration"`
	}
	clusterConfiguration struct {
		typeMeta             `yaml:",inline"`
		KubernetesVersion    string `yaml:"kubernetesVersion"`
		ClusterName          string `yaml:"clusterName"`
		ControlPlaneEndpoint string `yaml:"controlPlaneEndpoint"`
		ImageRepository      string `yaml:"imageRepository"`
		Networking           struct {
			PodSubnet     string `yaml:"podSubnet"`
			ServiceSubnet string `yaml:"serviceSubnet"`
		} `yaml:"networking"`
		APIServer struct {
			CertSANs []string `yaml:"certSANs"`
		} `yaml:"apiServer"`
	}
	kubeletConfiguration struct {
		typeMeta     `yaml:",inline"`
		CgroupDriver string            `yaml:"cgroupDriver"`
		FailCgroupV1 *bool             `yaml:"failCgroupV1"`
		ResolvConf   string            `yaml:"resolvConf"`
		EvictionHard map[string]string `yaml:"evictionHard"`
	}
	kubeProxyConfiguration struct {
		typeMeta  `yaml:",inline"`
		Conntrack struct {
			MaxPerCore *int32 `yaml:"maxPerCore"`
		} `yaml:"conntrack"`
	}
	joinConfiguration struct {
		typeMeta         `yaml:",inline"`
		NodeRegistration nodeRegistration `yaml:"nodeRegistration"`
		Discovery        struct {
			BootstrapToken struct {
				APIServerEndpoint string   `yaml:"apiServerEndpoint"`
				Token             string   `yaml:"token"`
				CACertHashes      []string `yaml:"caCertHashes"`
			} `yaml:"bootstrapToken"`
		} `yaml:"discovery"`
	}
)

// kinds maps apiVersion/kind to a new mirror value.
var kinds = map[typeMeta]func() any{
	{"kubeadm.k8s.io/v1beta4", "InitConfiguration"}:                func() any { return new(initConfiguration) },
	{"kubeadm.k8s.io/v1beta4", "ClusterConfiguration"}:             func() any { return new(clusterConfiguration) },
	{"kubeadm.k8s.io/v1beta4", "JoinConfiguration"}:                func() any { return new(joinConfiguration) },
	{"kubelet.config.k8s.io/v1beta1", "KubeletConfiguration"}:      func() any { return new(kubeletConfiguration) },
	{"kubeproxy.config.k8s.io/v1alpha1", "KubeProxyConfiguration"}: func() any { return new(kubeProxyConfiguration) },
}

// decodeStrict decodes every YAML document of b into the mirror type of its
// apiVersion and kind, refusing unknown fields and kinds. Its errors name
// the document and the YAML line, never a value (a join configuration holds
// a token): yaml.v3's type errors quote values, so they are not wrapped.
func decodeStrict(b []byte) error {
	// Two decoders walk the documents in step: one reads apiVersion and
	// kind, the strict one decodes into the mirror type they name.
	kindDec := yaml.NewDecoder(bytes.NewReader(b))
	strictDec := yaml.NewDecoder(bytes.NewReader(b))
	strictDec.KnownFields(true)
	for doc := 1; ; doc++ {
		var tm typeMeta
		err := kindDec.Decode(&tm)
		if errors.Is(err, io.EOF) {
			if doc == 1 {
				return errors.New("kubeadm configuration is empty")
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("kubeadm configuration document %d is not YAML with apiVersion and kind", doc)
		}
		newValue, ok := kinds[tm]
		if !ok {
			return fmt.Errorf("kubeadm configuration document %d: unknown kind %q %q", doc, tm.APIVersion, tm.Kind)
		}
		if err := strictDec.Decode(newValue()); err != nil {
			var te *yaml.TypeError
			if errors.As(err, &te) {
				for _, e := range te.Errors {
					// "line N: field F not found in type T" names a key,
					// not a value: safe to show.
					if strings.Contains(e, " not found in type ") {
						return fmt.Errorf("kubeadm configuration document %d (%s): %s", doc, tm.Kind, e)
					}
				}
			}
			return fmt.Errorf("kubeadm configuration document %d (%s) has a value of the wrong type", doc, tm.Kind)
		}
	}
}
