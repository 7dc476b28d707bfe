package inventory

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func TestBaseIsValid(t *testing.T) {
	isolate(t)
	if got := problems(t, base); got != nil {
		t.Fatalf("base inventory has problems:\n%s", strings.Join(got, "\n"))
	}
}

// TestValidationRules checks each rule with an edit of the base inventory
// and the exact report it must produce.
func TestValidationRules(t *testing.T) {
	isolate(t)
	const (
		w1       = "  - name: w1\n    address: 192.0.2.11\n    role: worker\n"
		registry = "registry:\n"
		email    = "  acmeEmail: ops@example.org\n"
	)
	hex64 := strings.Repeat("0123456789abcdef", 4)
	cases := []struct {
		name  string
		edits []string // old, new, ...
		add   string   // appended after line 21
		want  []string
	}{
		// header
		{name: "apiVersion", edits: []string{"boot/v1alpha1", "boot/v1"},
			want: []string{`inv.yaml:1: apiVersion: is "boot/v1" (boot/v1alpha1)`}},
		{name: "kind", edits: []string{"kind: Cluster", "kind: cluster"},
			want: []string{`inv.yaml:2: kind: is "cluster" (Cluster)`}},
		{name: "name not a DNS label", edits: []string{"name: lab", "name: Lab_1"},
			want: []string{`inv.yaml:4: metadata.name: "Lab_1" is not a DNS label (a DNS label: lower-case letters, digits and -, at most 63)`}},
		{name: "name missing", edits: []string{"metadata:\n  name: lab", "metadata: {}"},
			want: []string{`inv.yaml:3: metadata.name: is missing (a DNS label: lower-case letters, digits and -, at most 63)`}},

		// cluster
		{name: "kubernetes version without v", edits: []string{"v1.37.2", "1.37.2"},
			want: []string{`inv.yaml:6: cluster.kubernetesVersion: "1.37.2" is not a version (vMAJOR.MINOR.PATCH from v1.30.0 to v1.37.x, e.g. v1.37.2)`}},
		{name: "kubernetes version too old", edits: []string{"v1.37.2", "v1.29.9"},
			want: []string{`inv.yaml:6: cluster.kubernetesVersion: "v1.29.9" is not supported (vMAJOR.MINOR.PATCH from v1.30.0 to v1.37.x, e.g. v1.37.2)`}},
		{name: "kubernetes version too new", edits: []string{"v1.37.2", "v1.38.0"},
			want: []string{`inv.yaml:6: cluster.kubernetesVersion: "v1.38.0" is not supported (vMAJOR.MINOR.PATCH from v1.30.0 to v1.37.x, e.g. v1.37.2)`}},
		{name: "kubernetes version 2.x", edits: []string{"v1.37.2", "v2.37.2"},
			want: []string{`inv.yaml:6: cluster.kubernetesVersion: "v2.37.2" is not supported (vMAJOR.MINOR.PATCH from v1.30.0 to v1.37.x, e.g. v1.37.2)`}},
		{name: "pod CIDR not a CIDR", edits: []string{"10.244.0.0/16", "10.244.0.0/33"},
			want: []string{`inv.yaml:7: cluster.podCIDR: "10.244.0.0/33" is not a CIDR (a network such as 10.244.0.0/16)`}},
		{name: "pod CIDR host bits", edits: []string{"10.244.0.0/16", "10.244.1.0/16"},
			want: []string{`inv.yaml:7: cluster.podCIDR: "10.244.1.0/16" has host bits set (the network address, 10.244.0.0/16)`}},
		{name: "pod CIDR too small for one node", edits: []string{"10.244.0.0/16", "10.244.0.0/25"},
			want: []string{`inv.yaml:7: cluster.podCIDR: /25 is smaller than one node's /24 (a prefix of /24 or shorter)`}},
		{name: "pod CIDR too small for the hosts", edits: []string{"10.244.0.0/16", "10.244.0.0/24"},
			want: []string{`inv.yaml:7: cluster.podCIDR: /24 has room for 1 nodes (one /24 each), the inventory has 2 hosts (a larger range)`}},
		{name: "service CIDR overlaps pod CIDR", edits: []string{"10.96.0.0/12", "10.244.128.0/20"},
			want: []string{`inv.yaml:8: cluster.serviceCIDR: 10.244.128.0/20 overlaps cluster.podCIDR 10.244.0.0/16 (separate ranges)`}},
		{name: "service CIDR too large", edits: []string{"10.96.0.0/12", "172.0.0.0/8"},
			want: []string{`inv.yaml:8: cluster.serviceCIDR: /8 is too large (a prefix of /12 or longer)`}},
		{name: "IP families differ", edits: []string{"10.96.0.0/12", "fd00:10:96::/112"},
			want: []string{`inv.yaml:8: cluster.serviceCIDR: is not of the same IP family as cluster.podCIDR (both IPv4 or both IPv6)`}},
		{name: "host inside pod CIDR", edits: []string{"    address: 192.0.2.11\n", "    address: 192.0.2.11\n    privateAddress: 10.244.3.7\n"},
			want: []string{`inv.yaml:18: hosts[1].privateAddress: 10.244.3.7 is inside cluster.podCIDR 10.244.0.0/16 (host addresses outside the pod and service ranges)`}},
		{name: "host inside service CIDR", edits: []string{"address: 192.0.2.10", "address: 10.100.0.1"},
			want: []string{`inv.yaml:14: hosts[0].privateAddress: 10.100.0.1 is inside cluster.serviceCIDR 10.96.0.0/12 (host addresses outside the pod and service ranges)`}},
		{name: "cni", edits: []string{"  serviceCIDR: 10.96.0.0/12\n", "  serviceCIDR: 10.96.0.0/12\n  cni: calico\n"},
			want: []string{`inv.yaml:9: cluster.cni: unknown CNI "calico" (flannel)`}},
		{name: "api server port", edits: []string{"  serviceCIDR: 10.96.0.0/12\n", "  serviceCIDR: 10.96.0.0/12\n  apiServerPort: 70000\n"},
			want: []string{`inv.yaml:9: cluster.apiServerPort: is 70000 (a port, 1-65535)`}},
		{name: "control plane endpoint", edits: []string{"  serviceCIDR: 10.96.0.0/12\n", "  serviceCIDR: 10.96.0.0/12\n  controlPlaneEndpoint: api.example.com:http\n"},
			want: []string{`inv.yaml:9: cluster.controlPlaneEndpoint: "api.example.com:http" port is not a port number 1-65535 (an IP address or a lower-case DNS name, optionally with :port)`}},
		{name: "image repository with scheme", edits: []string{"  serviceCIDR: 10.96.0.0/12\n", "  serviceCIDR: 10.96.0.0/12\n  imageRepository: https://registry.k8s.io\n"},
			want: []string{`inv.yaml:9: cluster.imageRepository: "https://registry.k8s.io" is not an image repository like registry.example.com/k8s (lower-case host[:port]/path without a scheme, tag or digest, e.g. registry.k8s.io)`}},
		{name: "loopback nameserver", edits: []string{"  serviceCIDR: 10.96.0.0/12\n", "  serviceCIDR: 10.96.0.0/12\n  nameservers: [10.0.0.2, 127.0.0.11, dns]\n"},
			want: []string{
				`inv.yaml:9: cluster.nameservers[1]: "127.0.0.11" is not a DNS server pods can reach (IP addresses, not loopback ones)`,
				`inv.yaml:9: cluster.nameservers[2]: "dns" is not a DNS server pods can reach (IP addresses, not loopback ones)`,
			}},
		{name: "eviction thresholds", edits: []string{"  serviceCIDR: 10.96.0.0/12\n", "  serviceCIDR: 10.96.0.0/12\n  kubelet:\n    evictionHard:\n      memoryAvailable: 200Mi\n      nodefsAvailable: 100%\n      nodefsInodesFree: NaN%\n      imagefsAvailable: -2Gi\n      imagefsInodesFree: lots\n"},
			want: []string{
				`inv.yaml:12: cluster.kubelet.evictionHard.nodefsAvailable: "100%" is not a percentage above 0% and below 100% (a percentage of the resource ("10%") or an amount ("2Gi"; for inodes a count, "100k"))`,
				`inv.yaml:13: cluster.kubelet.evictionHard.nodefsInodesFree: "NaN%" is not a percentage above 0% and below 100% (a percentage of the resource ("10%") or an amount ("2Gi"; for inodes a count, "100k"))`,
				`inv.yaml:14: cluster.kubelet.evictionHard.imagefsAvailable: "-2Gi" is negative (a percentage of the resource ("10%") or an amount ("2Gi"; for inodes a count, "100k"))`,
				`inv.yaml:15: cluster.kubelet.evictionHard.imagefsInodesFree: "lots" is neither a percentage nor an amount (a percentage of the resource ("10%") or an amount ("2Gi"; for inodes a count, "100k"))`,
			}},
		{name: "eviction threshold key", edits: []string{"  serviceCIDR: 10.96.0.0/12\n", "  serviceCIDR: 10.96.0.0/12\n  kubelet:\n    evictionHard:\n      imagefs.available: 2Gi\n"},
			want: []string{`inv.yaml:11: cluster.kubelet.evictionHard.imagefs.available: unknown field (did you mean imagefsAvailable?)`}},

		// ssh
		{name: "ssh user", edits: []string{"user: root", "user: bad user"},
			want: []string{`inv.yaml:10: ssh.user: "bad user" is not a user name (a login name: letters, digits, _ . -)`}},
		{name: "ssh port", edits: []string{"port: 22", "port: 65536"},
			want: []string{`inv.yaml:11: ssh.port: is 65536 (a port, 1-65535)`}},
		{name: "negative ssh port", edits: []string{"port: 22", "port: -1"},
			want: []string{`inv.yaml:11: ssh.port: is -1 (a port, 1-65535)`}},
		{name: "host key policy", edits: []string{"port: 22", "port: 22\n  hostKeyPolicy: insecure"},
			want: []string{`inv.yaml:12: ssh.hostKeyPolicy: unknown policy "insecure" (strict or accept-new)`}},
		{name: "connect timeout", edits: []string{"port: 22", "port: 22\n  connectTimeout: -5s"},
			want: []string{`inv.yaml:12: ssh.connectTimeout: is -5s (a positive duration such as 10s)`}},
		{name: "env var name", edits: []string{"port: 22", "port: 22\n  passwordEnv: 1PASSWORD"},
			want: []string{`inv.yaml:12: ssh.passwordEnv: is not a valid environment variable name (the NAME of an environment variable: letters, digits and _, not starting with a digit)`}},
		{name: "sudo env var name", edits: []string{"port: 22", "port: 22\n  sudo:\n    passwordEnv: SUDO-PW"},
			want: []string{`inv.yaml:13: ssh.sudo.passwordEnv: is not a valid environment variable name (the NAME of an environment variable: letters, digits and _, not starting with a digit)`}},
		{name: "bastion without address", edits: []string{"port: 22", "port: 22\n  bastion:\n    user: jump"},
			want: []string{`inv.yaml:12: ssh.bastion.address: is missing (an IP address or a DNS name)`}},
		{name: "bastion address and port", edits: []string{"port: 22", "port: 22\n  bastion:\n    address: jump_host\n    port: 99999"},
			want: []string{
				`inv.yaml:13: ssh.bastion.address: "jump_host" is not an IP address or DNS name (an IP address or a DNS name)`,
				`inv.yaml:14: ssh.bastion.port: is 99999 (a port, 1-65535)`}},
		{name: "bastion host key", edits: []string{"port: 22", "port: 22\n  bastion:\n    address: jump.example.com\n    hostKey: ssh-ed25519 AAAA"},
			want: []string{`inv.yaml:14: ssh.bastion.hostKey: is not one SSH public key (one key in authorized_keys format, e.g. "ssh-ed25519 AAAA...")`}},

		// hosts
		{name: "no hosts", edits: []string{"hosts:\n" + "  - name: cp1\n    address: 192.0.2.10\n    role: control-plane\n" + w1, "hosts: []\n"},
			want: []string{`inv.yaml:12: hosts: no hosts (one control-plane host and at least one worker)`}},
		{name: "two control planes", edits: []string{registry, "  - name: cp2\n    address: 192.0.2.12\n    role: control-plane\n" + registry},
			want: []string{`inv.yaml:12: hosts: has 2 control-plane hosts (exactly one host with role: control-plane)`}},
		{name: "no control plane", edits: []string{"role: control-plane", "role: worker"},
			want: []string{`inv.yaml:12: hosts: has 0 control-plane hosts (exactly one host with role: control-plane)`}},
		{name: "no worker", edits: []string{w1, ""},
			want: []string{
				`inv.yaml:12: hosts: has no worker (at least one host with role: worker)`,
				`inv.yaml:12: hosts: no host runs the ingress controller (at least one host with ingress: true (workers by default))`}},
		{name: "no ingress host", edits: []string{"    role: worker\n", "    role: worker\n    ingress: false\n"},
			want: []string{`inv.yaml:12: hosts: no host runs the ingress controller (at least one host with ingress: true (workers by default))`}},
		{name: "unknown role", edits: []string{"role: worker", "role: master"},
			want: []string{
				`inv.yaml:12: hosts: has no worker (at least one host with role: worker)`,
				`inv.yaml:12: hosts: no host runs the ingress controller (at least one host with ingress: true (workers by default))`,
				`inv.yaml:18: hosts[1].role: unknown role "master" (control-plane or worker)`}},
		{name: "host name", edits: []string{"name: w1", "name: W_1"},
			want: []string{`inv.yaml:16: hosts[1].name: "W_1" is not a DNS label (a DNS label: lower-case letters, digits and -, at most 63)`}},
		{name: "host name missing", edits: []string{"  - name: w1\n", "  - ingress: true\n"},
			want: []string{`inv.yaml:16: hosts[1].name: is missing (a DNS label: lower-case letters, digits and -, at most 63)`}},
		{name: "duplicate names", edits: []string{"name: w1", "name: cp1"},
			want: []string{`inv.yaml:16: hosts[1].name: "cp1" is also the name of hosts[0] (unique host names)`}},
		{name: "duplicate addresses", edits: []string{"192.0.2.11", "192.0.2.10"},
			want: []string{`inv.yaml:17: hosts[1].address: "192.0.2.10" is also the address of hosts[0] (unique addresses)`}},
		{name: "duplicate private addresses", edits: []string{"    address: 192.0.2.11\n", "    address: 192.0.2.11\n    privateAddress: 192.0.2.10\n"},
			want: []string{`inv.yaml:18: hosts[1].privateAddress: "192.0.2.10" is also the private address of hosts[0] (unique addresses)`}},
		{name: "address neither IP nor name", edits: []string{"192.0.2.11", "192.0.2.300"},
			want: []string{`inv.yaml:17: hosts[1].address: "192.0.2.300" is not an IP address or DNS name (an IP address or a DNS name)`}},
		{name: "address missing", edits: []string{"    address: 192.0.2.11\n", ""},
			want: []string{`inv.yaml:16: hosts[1].address: is missing (an IP address or a DNS name)`}},
		{name: "DNS address needs a private IP", edits: []string{"192.0.2.11", "w1.example.com"},
			want: []string{`inv.yaml:17: hosts[1].privateAddress: "w1.example.com" is not an IP address (the host's cluster-internal IP; set privateAddress when address is a DNS name)`}},
		{name: "DNS address with private IP", edits: []string{"    address: 192.0.2.11\n", "    address: w1.example.com\n    privateAddress: 192.0.2.11\n"}},
		{name: "host ssh overrides", edits: []string{"    role: worker\n", "    role: worker\n    ssh:\n      user: \"x y\"\n      port: 70000\n      sudoPasswordEnv: \"a b\"\n"},
			want: []string{
				`inv.yaml:20: hosts[1].ssh.user: "x y" is not a user name (a login name: letters, digits, _ . -)`,
				`inv.yaml:21: hosts[1].ssh.port: is 70000 (a port, 1-65535)`,
				`inv.yaml:22: hosts[1].ssh.sudoPasswordEnv: is not a valid environment variable name (the NAME of an environment variable: letters, digits and _, not starting with a digit)`}},
		{name: "host key not a key", edits: []string{"    role: worker\n", "    role: worker\n    hostKey: not-a-key\n"},
			want: []string{`inv.yaml:19: hosts[1].hostKey: is not one SSH public key (one key in authorized_keys format, e.g. "ssh-ed25519 AAAA...")`}},
		{name: "host key with options", edits: []string{"    role: worker\n", "    role: worker\n    hostKey: 'from=\"x\" " + testHostKey(t) + "'\n"},
			want: []string{`inv.yaml:19: hosts[1].hostKey: is not one SSH public key (one key in authorized_keys format, e.g. "ssh-ed25519 AAAA...")`}},
		{name: "host key good", edits: []string{"    role: worker\n", "    role: worker\n    hostKey: " + testHostKey(t) + "\n"}},

		// packages
		{name: "package source", add: "packages:\n  source: ftp\n",
			want: []string{`inv.yaml:23: packages.source: unknown source "ftp" (online or bundle)`}},
		{name: "bundle without folder", add: "packages:\n  source: bundle\n",
			want: []string{`inv.yaml:5: cluster.imageRepository: is missing (the registry that serves the bundle's images to the add-ons, required when packages.source is bundle)`,
				`inv.yaml:22: packages.bundle: is missing (the bundle folder, required when source is bundle)`}},
		{name: "runtime binary relative", add: "packages:\n  runtimeBinary: bin/runc\n",
			want: []string{`inv.yaml:23: packages.runtimeBinary: "bin/runc" is not a clean absolute path (an absolute path on the hosts)`}},
		{name: "package version latest", add: "packages:\n  versions:\n    helm: latest\n",
			want: []string{`inv.yaml:24: packages.versions.helm: "latest" is not a Helm release MAJOR.MINOR.PATCH (an exact release such as 3.22.0 or v3.22.0, or empty for boot's pinned one)`}},

		// registry
		{name: "helm version without v", add: "packages:\n  versions:\n    helm: 3.22.0\n"},
		{name: "helm version with v", add: "packages:\n  versions:\n    helm: v3.22.0\n"},
		{name: "helm version with substitution", add: "packages:\n  versions:\n    helm: \"3.22.0$(id)\"\n",
			want: []string{`inv.yaml:24: packages.versions.helm: "3.22.0$(id)" is not a Helm release MAJOR.MINOR.PATCH (an exact release such as 3.22.0 or v3.22.0, or empty for boot's pinned one)`}},
		{name: "docker version with quote", add: "packages:\n  versions:\n    docker: \"28.1.1'\"\n",
			want: []string{`inv.yaml:24: packages.versions.docker: "28.1.1'" is not a package version (an exact version such as 28.1.1 or an apt version such as 5:28.1.1-1~debian.12~bookworm: a digit first, then letters, digits and . + ~ : -; or empty)`}},
		{name: "containerd apt version", add: "packages:\n  versions:\n    containerd: 1.7.27-1\n    docker: 5:28.1.1-1~debian.12~bookworm\n"},
		{name: "cniPlugins is retired", add: "packages:\n  versions:\n    cniPlugins: 1.8.0\n",
			want: []string{`inv.yaml:24: packages.versions.cniPlugins: is no longer read by boot (remove it: the CNI plugins come from the bundle at the version it pins, or online with the kubernetes-cni package the kubelet's package depends on)`}},
		{name: "runtime binary with carriage return", add: "packages:\n  runtimeBinary: \"/usr/bin/runc\\r\"\n",
			want: []string{`inv.yaml:23: packages.runtimeBinary: "/usr/bin/runc\r" holds a control character (newline, tab, ...) (an absolute path on the hosts)`}},
		{name: "runtime binary not clean", add: "packages:\n  runtimeBinary: /usr/bin/../runc\n",
			want: []string{`inv.yaml:23: packages.runtimeBinary: "/usr/bin/../runc" is not a clean absolute path (an absolute path on the hosts)`}},
		{name: "image repository with substitution", edits: []string{"  serviceCIDR: 10.96.0.0/12\n", "  serviceCIDR: 10.96.0.0/12\n  imageRepository: \"r.example.com/$(id)\"\n"},
			want: []string{`inv.yaml:9: cluster.imageRepository: "r.example.com/$(id)" is not an image repository like registry.example.com/k8s (lower-case host[:port]/path without a scheme, tag or digest, e.g. registry.k8s.io)`}},
		{name: "image repository with port and path", edits: []string{"  serviceCIDR: 10.96.0.0/12\n", "  serviceCIDR: 10.96.0.0/12\n  imageRepository: 172.29.40.2:5000/k8s_images/a-b\n"}},
		{name: "control plane address in capitals", edits: []string{"cp1\n    address: 192.0.2.10", "cp1\n    address: CP1.example.com\n    privateAddress: 192.0.2.10"},
			want: []string{`inv.yaml:14: hosts[0].address: "CP1.example.com" is not a DNS name of lower-case letters, digits, '-' and '.': the control plane's address is in the API server's certificate (an IP address or a lower-case DNS name without a final dot)`}},
		{name: "worker address in capitals", edits: []string{"w1\n    address: 192.0.2.11", "w1\n    address: W1.example.com\n    privateAddress: 192.0.2.11"}},
		{name: "auth user with carriage return", edits: []string{email, email + "  auth:\n    user: \"admin\\r\"\n"},
			want: []string{`inv.yaml:23: registry.auth.user: "admin\r" is not a user name (at most 64 bytes of UTF-8, no ':', white space or control characters)`}},
		{name: "auth user too long", edits: []string{email, email + "  auth:\n    user: " + strings.Repeat("a", 65) + "\n"},
			want: []string{`inv.yaml:23: registry.auth.user: is 65 bytes long (at most 64 bytes of UTF-8, no ':', white space or control characters)`}},
		{name: "registry host in capitals", edits: []string{"registry.example.com", "Registry.example.com"},
			want: []string{`inv.yaml:20: registry.host: "Registry.example.com" is not a lower-case DNS name without a final dot (e.g. registry.example.com)`}},
		{name: "registry host missing", edits: []string{"  host: registry.example.com\n", ""},
			want: []string{`inv.yaml:19: registry.host: is missing (the registry's DNS name, e.g. registry.example.com)`}},
		{name: "registry host single label", edits: []string{"registry.example.com", "registry"},
			want: []string{`inv.yaml:20: registry.host: "registry" is not a DNS name (a fully qualified DNS name, e.g. registry.example.com)`}},
		{name: "registry host an IP", edits: []string{"registry.example.com", "192.0.2.20"},
			want: []string{`inv.yaml:20: registry.host: "192.0.2.20" is not a DNS name (a fully qualified DNS name, e.g. registry.example.com)`}},
		{name: "acme email missing", edits: []string{email, ""},
			want: []string{`inv.yaml:19: registry.acmeEmail: is missing (an e-mail address for the Let's Encrypt account, required with issuer letsencrypt)`}},
		{name: "acme email not needed when self-signed", edits: []string{email, "  issuer: selfsigned\n"}},
		{name: "acme email invalid", edits: []string{"ops@example.org", "Ops <ops@example.org>"},
			want: []string{`inv.yaml:21: registry.acmeEmail: "Ops <ops@example.org>" is not an e-mail address (name@domain.tld)`}},
		{name: "acme email without domain dot", edits: []string{"ops@example.org", "ops@localhost"},
			want: []string{`inv.yaml:21: registry.acmeEmail: "ops@localhost" is not an e-mail address (name@domain.tld)`}},
		{name: "issuer", edits: []string{email, email + "  issuer: vault\n"},
			want: []string{`inv.yaml:22: registry.issuer: unknown issuer "vault" (letsencrypt, letsencrypt-staging, selfsigned or acme)`}},
		{name: "acme issuer needs a server", edits: []string{email, email + "  issuer: acme\n"},
			want: []string{`inv.yaml:19: registry.acme.server: is missing (the ACME directory's https:// URL, required with issuer acme)`}},
		{name: "acme issuer good without e-mail", edits: []string{email, "  issuer: acme\n  acme:\n    server: https://acme.example.internal/directory\n"}},
		{name: "acme server over http", edits: []string{email, "  issuer: acme\n  acme:\n    server: http://acme.example.internal/directory\n"},
			want: []string{`inv.yaml:23: registry.acme.server: "http://acme.example.internal/directory" is not an https:// URL (the ACME directory's https:// URL, e.g. https://acme.example.com/directory)`}},
		{name: "acme server not a URL", edits: []string{email, "  issuer: acme\n  acme:\n    server: acme.example.internal\n"},
			want: []string{`inv.yaml:23: registry.acme.server: "acme.example.internal" is not an https:// URL (the ACME directory's https:// URL, e.g. https://acme.example.com/directory)`}},
		{name: "acme server with a non-acme issuer", edits: []string{email, email + "  acme:\n    server: https://acme.example.internal/directory\n"},
			want: []string{`inv.yaml:23: registry.acme.server: is set but registry.issuer is letsencrypt (issuer: acme to use another ACME directory, or no server)`}},
		{name: "acme CA file with a non-acme issuer", edits: []string{email, email + "  acme:\n    caFile: /etc/ssl/ca.pem\n"},
			want: []string{`inv.yaml:23: registry.acme.caFile: is set but registry.issuer is letsencrypt (only with issuer: acme)`}},
		{name: "acme CA file unreadable", edits: []string{email, "  issuer: acme\n  acme:\n    server: https://acme.example.internal/directory\n    caFile: /nonexistent/acme-ca.pem\n"},
			want: []string{`inv.yaml:24: registry.acme.caFile: cannot be read: CA bundle: open /nonexistent/acme-ca.pem: no such file or directory (a PEM file of CA certificates)`}},
		{name: "unknown solver", edits: []string{email, email + "  acme:\n    solver: tlsalpn01\n"},
			want: []string{`inv.yaml:23: registry.acme.solver: unknown solver "tlsalpn01" (http01 or dns01)`}},
		{name: "dns01 without a Route53 zone", edits: []string{email, email + "  acme:\n    solver: dns01\n"},
			want: []string{`inv.yaml:23: registry.acme.solver: dns01 needs a Route53 zone but dns.provider is none (dns.provider: route53 with dns.zone, the zone the challenges' TXT records go in)`}},
		{name: "dns01 with a self-signed issuer", edits: []string{email, "  issuer: selfsigned\n  acme:\n    solver: dns01\n"},
			add:  "dns:\n  provider: route53\n  zone: example.com\n",
			want: []string{`inv.yaml:23: registry.acme.solver: is dns01 but registry.issuer is selfsigned, which solves no challenges (an ACME issuer, or no solver)`}},
		{name: "dns01 good", edits: []string{email, email + "  acme:\n    solver: dns01\n    recursiveNameservers: [\"10.0.0.2:53\", \"[2001:db8::53]:53\", \"ns.example.com:5353\"]\n"},
			add: "dns:\n  provider: route53\n  zone: example.com\n"},
		{name: "recursive nameservers not host:port", edits: []string{email, email + "  acme:\n    solver: dns01\n    recursiveNameservers:\n      - 10.0.0.2\n      - 10.0.0.3:53\n      - \"bad host:53\"\n      - 10.0.0.4:0\n"},
			add: "dns:\n  provider: route53\n  zone: example.com\n",
			want: []string{
				`inv.yaml:25: registry.acme.recursiveNameservers[0]: "10.0.0.2" is not host:port (a DNS server as host:port, e.g. 10.0.0.2:53)`,
				`inv.yaml:27: registry.acme.recursiveNameservers[2]: "bad host:53" is not host:port (a DNS server as host:port, e.g. 10.0.0.2:53)`,
				`inv.yaml:28: registry.acme.recursiveNameservers[3]: "10.0.0.4:0" is not host:port (a DNS server as host:port, e.g. 10.0.0.2:53)`}},
		{name: "recursive nameservers with http01", edits: []string{email, email + "  acme:\n    recursiveNameservers: [\"10.0.0.2:53\"]\n"},
			want: []string{`inv.yaml:23: registry.acme.recursiveNameservers: is set but registry.acme.solver is http01 (only with solver: dns01)`}},
		{name: "namespace", edits: []string{email, email + "  namespace: Docker.Registry\n"},
			want: []string{`inv.yaml:22: registry.namespace: "Docker.Registry" is not a DNS label (a DNS label: lower-case letters, digits and -, at most 63)`}},
		{name: "storage type", edits: []string{email, email + "  storage:\n    type: nfs\n"},
			want: []string{`inv.yaml:23: registry.storage.type: unknown storage type "nfs" (pvc or s3)`}},
		{name: "storage size", edits: []string{email, email + "  storage:\n    size: 20GB\n"},
			want: []string{`inv.yaml:23: registry.storage.size: "20GB" is not a size (a positive Kubernetes quantity such as 20Gi)`}},
		{name: "storage size zero", edits: []string{email, email + "  storage:\n    size: 0Gi\n"},
			want: []string{`inv.yaml:23: registry.storage.size: "0Gi" is not a size (a positive Kubernetes quantity such as 20Gi)`}},
		{name: "storage class", edits: []string{email, email + "  storage:\n    storageClass: Fast_SSD\n"},
			want: []string{`inv.yaml:23: registry.storage.storageClass: "Fast_SSD" is not a storage class name (a lower-case DNS name)`}},
		{name: "replicas on a volume", edits: []string{email, email + "  replicas: 2\n"},
			want: []string{`inv.yaml:22: registry.replicas: is 2 with storage type pvc: the registry's ReadWriteOnce volume attaches to one node (1, or storage.type s3 for several replicas)`}},
		{name: "replicas negative", edits: []string{email, email + "  replicas: -1\n"},
			want: []string{`inv.yaml:22: registry.replicas: is -1 (1 to 20)`}},
		{name: "replicas with s3", edits: []string{email, email + "  replicas: 3\n  storage:\n    type: s3\n    s3:\n      bucket: images\n      region: eu-west-1\n"}},
		{name: "replicas without redis", edits: []string{email, email + "  replicas: 2\n  redis:\n    enabled: false\n  storage:\n    type: s3\n    s3:\n      bucket: images\n      region: eu-west-1\n"},
			want: []string{`inv.yaml:24: registry.redis.enabled: is false with 2 replicas: each would keep its own cache and miss the blobs the others delete (true (the default with storage type s3), or replicas: 1)`}},
		{name: "replicas too many", edits: []string{email, email + "  replicas: 21\n  storage:\n    type: s3\n    s3:\n      bucket: images\n      region: eu-west-1\n"},
			want: []string{`inv.yaml:22: registry.replicas: is 21 (1 to 20)`}},
		{name: "s3 without section", edits: []string{email, email + "  storage:\n    type: s3\n"},
			want: []string{`inv.yaml:22: registry.storage.s3: is missing (bucket and region, required when storage.type is s3)`}},
		{name: "s3 without bucket and region", edits: []string{email, email + "  storage:\n    type: s3\n    s3:\n      endpoint: minio:9000\n"},
			want: []string{
				`inv.yaml:24: registry.storage.s3.bucket: "" is not a bucket name (3-63 lower-case letters, digits, '.' and '-')`,
				`inv.yaml:24: registry.storage.s3.region: "" is not a region (a region such as eu-west-1)`,
				`inv.yaml:25: registry.storage.s3.endpoint: "minio:9000" is not a URL (http(s)://host[:port] of an S3-compatible service)`}},
		{name: "s3 with one credential", edits: []string{email, email + "  storage:\n    type: s3\n    s3:\n      bucket: images\n      region: eu-west-1\n      accessKeyEnv: AWS_ACCESS_KEY_ID\n"},
			want: []string{`inv.yaml:24: registry.storage.s3: names only one of accessKeyEnv and secretKeyEnv (both (static credentials) or neither (the nodes' AWS identity))`}},
		{name: "s3 credential env names", edits: []string{email, email + "  storage:\n    type: s3\n    s3:\n      bucket: images\n      region: eu-west-1\n      accessKeyEnv: AKIA/EXAMPLE\n      secretKeyEnv: AWS_SECRET_ACCESS_KEY\n"},
			want: []string{`inv.yaml:27: registry.storage.s3.accessKeyEnv: is not a valid environment variable name (the NAME of an environment variable: letters, digits and _, not starting with a digit)`}},
		{name: "s3 good", edits: []string{email, email + "  storage:\n    type: s3\n    s3:\n      bucket: images\n      region: eu-west-1\n      endpoint: https://s3.example.com\n      accessKeyEnv: AWS_ACCESS_KEY_ID\n      secretKeyEnv: AWS_SECRET_ACCESS_KEY\n"}},
		{name: "s3 section with pvc", edits: []string{email, email + "  storage:\n    s3:\n      bucket: images\n"},
			want: []string{`inv.yaml:23: registry.storage.s3: is set but storage.type is pvc (type: s3 to use S3, or no s3 section)`}},
		{name: "auth user", edits: []string{email, email + "  auth:\n    user: \"ad:min\"\n"},
			want: []string{`inv.yaml:23: registry.auth.user: "ad:min" is not a user name (at most 64 bytes of UTF-8, no ':', white space or control characters)`}},
		{name: "auth mode unknown", edits: []string{email, email + "  auth:\n    mode: ldap\n"},
			want: []string{`inv.yaml:23: registry.auth.mode: unknown mode "ldap" (token or htpasswd)`}},
		{name: "auth token online without maintenance image", edits: []string{email, email + "  auth:\n    mode: token\n"},
			want: []string{`inv.yaml:23: registry.auth.mode: is token but registry.maintenance.image is not set: the token service runs boot's image (registry.maintenance.image (boot's image pinned by digest), or mode htpasswd)`}},
		{name: "auth users good", edits: []string{email, email + "  auth:\n    mode: token\n    users:\n      - name: ci\n        role: push\n      - name: nodes\n        role: pull\n        passwordEnv: NODES_PW\n" +
			"  maintenance:\n    image: mirror.example.com/bootctl/boot@sha256:" + hex64 + "\n"}},
		{name: "auth users with htpasswd", edits: []string{email, email + "  auth:\n    mode: htpasswd\n    users:\n      - name: ci\n        role: push\n"},
			want: []string{`inv.yaml:24: registry.auth.users: is set but registry.auth.mode is htpasswd, which has one user and no roles (mode token for users with roles, or no users)`}},
		{name: "auth users bad", edits: []string{email, email + "  auth:\n    mode: token\n    users:\n      - name: admin\n        role: push\n      - name: boot-pruner\n        role: pull\n      - name: \"c i\"\n        role: pull\n      - name: Ops_1\n        role: pull\n      - name: ops\n        role: delete\n      - name: ops2\n        passwordEnv: 1X\n" +
			"  maintenance:\n    image: mirror.example.com/bootctl/boot@sha256:" + hex64 + "\n"},
			want: []string{
				`inv.yaml:25: registry.auth.users[0].name: "admin" is taken by registry.auth.user (a name of its own)`,
				`inv.yaml:27: registry.auth.users[1].name: "boot-pruner" is taken by the pruner's own user (a name of its own)`,
				`inv.yaml:29: registry.auth.users[2].name: "c i" is not a user name (at most 64 bytes of UTF-8, no ':', white space or control characters)`,
				`inv.yaml:31: registry.auth.users[3].name: "Ops_1" is not a lower-case name (at most 49 lower-case letters, digits, '-' and '.' (it names Secret registry-user-<name>))`,
				`inv.yaml:34: registry.auth.users[4].role: unknown role "delete" (admin (pull, push, delete), push (pull, push) or pull (pull))`,
				`inv.yaml:35: registry.auth.users[5].role: is missing (admin, push or pull)`,
				`inv.yaml:36: registry.auth.users[5].passwordEnv: is not a valid environment variable name (the NAME of an environment variable: letters, digits and _, not starting with a digit)`}},
		{name: "redis max memory", edits: []string{email, email + "  redis:\n    maxMemory: lots\n"},
			want: []string{`inv.yaml:23: registry.redis.maxMemory: "lots" is not a memory size (a positive Redis size such as 256mb)`}},
		{name: "gc schedule fields", edits: []string{email, email + "  gc:\n    schedule: \"0 */12 * *\"\n"},
			want: []string{`inv.yaml:23: registry.gc.schedule: "0 */12 * *" has 4 fields (5 cron fields: minute hour day-of-month month day-of-week, e.g. "0 */12 * * *")`}},
		{name: "pruner schedule range", edits: []string{email, email + "  pruner:\n    schedule: \"61 * * * *\"\n"},
			want: []string{`inv.yaml:23: registry.pruner.schedule: the minute field "61" is not valid (*, numbers 0-59, ranges a-b, lists a,b and steps /n)`}},
		{name: "cron names and steps", edits: []string{email, email + "  pruner:\n    schedule: \"*/15 1-5,22 * jan-jun mon-FRI\"\n"}},
		{name: "cron bad step", edits: []string{email, email + "  gc:\n    schedule: \"0 */0 * * *\"\n"},
			want: []string{`inv.yaml:23: registry.gc.schedule: the hour field "*/0" is not valid (*, numbers 0-23, ranges a-b, lists a,b and steps /n)`}},
		{name: "maintenance image pinned", edits: []string{email, email + "  maintenance:\n    image: mirror.example.com:5000/bootctl/boot:v0.1.0@sha256:" + hex64 + "\n"}},
		{name: "maintenance image from docker.io", edits: []string{email, email + "  maintenance:\n    image: bootctl/boot@sha256:" + hex64 + "\n"}},
		{name: "maintenance image tag only", edits: []string{email, email + "  maintenance:\n    image: mirror.example.com/bootctl/boot:0.1.0\n"},
			want: []string{`inv.yaml:23: registry.maintenance.image: "mirror.example.com/bootctl/boot:0.1.0" is not pinned by a digest (a tag can be moved to another image) (` + expectMaintenanceImage + `)`}},
		{name: "maintenance image short digest", edits: []string{email, email + "  maintenance:\n    image: mirror.example.com/bootctl/boot@sha256:0123abcd\n"},
			want: []string{`inv.yaml:23: registry.maintenance.image: ` + quote("mirror.example.com/bootctl/boot@sha256:0123abcd") + ` has a digest that is not sha256: and 64 lower-case hex digits (` + expectMaintenanceImage + `)`}},
		{name: "maintenance image other algorithm", edits: []string{email, email + "  maintenance:\n    image: mirror.example.com/bootctl/boot@sha512:" + hex64 + hex64 + "\n"},
			want: []string{`inv.yaml:23: registry.maintenance.image: ` + quote("mirror.example.com/bootctl/boot@sha512:"+hex64+hex64) + ` has a digest that is not sha256: and 64 lower-case hex digits (` + expectMaintenanceImage + `)`}},
		{name: "maintenance image upper-case repository", edits: []string{email, email + "  maintenance:\n    image: Mirror.example.com/boot@sha256:" + hex64 + "\n"},
			want: []string{`inv.yaml:23: registry.maintenance.image: ` + quote("Mirror.example.com/boot@sha256:"+hex64) + ` is not an image repository like registry.example.com/k8s (` + expectMaintenanceImage + `)`}},
		{name: "maintenance image bad tag", edits: []string{email, email + "  maintenance:\n    image: mirror.example.com/boot:-x@sha256:" + hex64 + "\n"},
			want: []string{`inv.yaml:23: registry.maintenance.image: ` + quote("mirror.example.com/boot:-x@sha256:"+hex64) + ` has a tag that is not letters, digits, '_', '.' and '-' (at most 128) (` + expectMaintenanceImage + `)`}},
		{name: "maintenance image in the registry it maintains", edits: []string{email, email + "  maintenance:\n    image: registry.example.com:443/boot/boot@sha256:" + hex64 + "\n"},
			want: []string{`inv.yaml:23: registry.maintenance.image: ` + quote("registry.example.com:443/boot/boot@sha256:"+hex64) + ` is in the registry the maintenance jobs maintain (registry.host): they would run an image from the registry they change (` + expectMaintenanceImage + `)`}},
		{name: "max deletions", edits: []string{email, email + "  pruner:\n    maxDeletions: -1\n"},
			want: []string{`inv.yaml:23: registry.pruner.maxDeletions: is -1 (0 or more (0 = 500))`}},
		{name: "prune rule keeps nothing", edits: []string{email, email + "  pruner:\n    rules:\n      - match: [\"^PR-\"]\n"},
			want: []string{`inv.yaml:24: registry.pruner.rules[0]: keeps nothing (at least one of keepLatest, keepSemver, keepDays)`}},
		{name: "prune rule regex and glob", edits: []string{email, email + "  pruner:\n    rules:\n      - repositories: [\"rel[\"]\n        match: [\"(PR\"]\n        ignore: [\"*x\"]\n        keepLatest: 3\n"},
			want: []string{
				`inv.yaml:24: registry.pruner.rules[0].repositories[0]: "rel[" is not a glob (a repository pattern such as releases/*)`,
				`inv.yaml:25: registry.pruner.rules[0].match[0]: "(PR" is not a regular expression: missing closing ): ` + "`(PR`" + ` (Go RE2 syntax, e.g. ^PR-)`,
				`inv.yaml:26: registry.pruner.rules[0].ignore[0]: "*x" is not a regular expression: missing argument to repetition operator: ` + "`*`" + ` (Go RE2 syntax, e.g. ^PR-)`}},
		{name: "prune rule negative counts", edits: []string{email, email + "  pruner:\n    rules:\n      - keepLatest: -1\n        keepDays: -2\n        keepSemver: {highest: -3}\n"},
			want: []string{
				`inv.yaml:24: registry.pruner.rules[0].keepLatest: is -1 (0 or more)`,
				`inv.yaml:25: registry.pruner.rules[0].keepDays: is -2 (0 or more)`,
				`inv.yaml:26: registry.pruner.rules[0].keepSemver.highest: is -3 (0 or more (0 = every valid version))`}},

		// dns
		{name: "dns provider", add: "dns:\n  provider: cloudflare\n",
			want: []string{`inv.yaml:23: dns.provider: unknown provider "cloudflare" (route53 or none)`}},
		{name: "route53 record address IPv6", add: "dns:\n  provider: route53\n  zone: example.com\n  addresses: [192.0.2.30, \"2001:db8::1\"]\n",
			want: []string{`inv.yaml:25: dns.addresses[1]: "2001:db8::1" is not an IPv4 address: the registry's record in route53 is an A record (IPv4 addresses)`}},
		{name: "route53 ingress host IPv6", edits: []string{"address: 192.0.2.11", "address: \"2001:db8::11\""}, add: "dns:\n  provider: route53\n  zone: example.com\n",
			want: []string{`inv.yaml:17: hosts[1].address: "2001:db8::11" is not an IPv4 address, and with dns.addresses empty the registry's A record points at the ingress hosts (IPv4 addresses for the ingress hosts, or dns.addresses)`}},
		{name: "route53 ingress host IPv6 with record addresses", edits: []string{"address: 192.0.2.11", "address: \"2001:db8::11\""},
			add: "dns:\n  provider: route53\n  zone: example.com\n  addresses: [192.0.2.30]\n"},
		{name: "route53 needs a zone", add: "dns:\n  provider: route53\n",
			want: []string{`inv.yaml:22: dns.zone: is missing (the hosted zone's name, required with provider route53)`}},
		{name: "registry host outside the zone", add: "dns:\n  provider: route53\n  zone: example.org\n",
			want: []string{`inv.yaml:20: registry.host: "registry.example.com" is not inside dns.zone "example.org" (a name in the zone, e.g. registry.example.org)`}},
		{name: "zone suffix is not enough", edits: []string{"registry.example.com", "registry.badexample.com"}, add: "dns:\n  provider: route53\n  zone: example.com.\n",
			want: []string{`inv.yaml:20: registry.host: "registry.badexample.com" is not inside dns.zone "example.com." (a name in the zone, e.g. registry.example.com)`}},
		{name: "route53 good", add: "dns:\n  provider: route53\n  zone: Example.COM.\n  ttl: 60\n  addresses: [192.0.2.11, \"::ffff:192.0.2.12\"]\n"},
		{name: "dns ttl and addresses", add: "dns:\n  ttl: 90000\n  addresses: [192.0.2.11, w1.example.com]\n",
			want: []string{
				`inv.yaml:23: dns.ttl: is 90000 (seconds, 1-86400)`,
				`inv.yaml:24: dns.addresses[1]: "w1.example.com" is not an IP address (IPv4 or IPv6 addresses)`}},
		{name: "route53 record from a DNS-named ingress host", edits: []string{"    address: 192.0.2.11\n", "    address: w1.example.com\n    privateAddress: 192.0.2.11\n"},
			add:  "dns:\n  provider: route53\n  zone: example.com\n",
			want: []string{`inv.yaml:23: dns.addresses: is empty and ingress host w1 has the DNS name "w1.example.com" (the IP addresses the registry's record points at)`}},

		// addons
		{name: "chart version latest", add: "addons:\n  ingressNginx:\n    version: latest\n",
			want: []string{`inv.yaml:24: addons.ingressNginx.version: "latest" is not pinned (an exact version such as 1.2.3 or v1.2.3)`}},
		{name: "chart version range", add: "addons:\n  certManager:\n    version: \"^1.19\"\n",
			want: []string{`inv.yaml:24: addons.certManager.version: "^1.19" is not pinned (an exact version such as 1.2.3 or v1.2.3)`}},
		{name: "chart repository", add: "addons:\n  certManager:\n    repository: ftp://charts.example.com\n",
			want: []string{`inv.yaml:24: addons.certManager.repository: "ftp://charts.example.com" is not a chart repository (an https:// repository or an oci:// chart reference)`}},
		{name: "chart name for https repository", add: "addons:\n  certManager:\n    repository: https://charts.jetstack.io\n",
			want: []string{`inv.yaml:23: addons.certManager.name: is missing (the chart's name in the repository)`}},
		{name: "local chart needs no version", add: "addons:\n  certManager:\n    path: charts/cert-manager\n"},
		{name: "chart repository over http", add: "addons:\n  traefik:\n    repository: http://127.0.0.1:9/charts\n    name: traefik\n",
			want: []string{`inv.yaml:24: addons.traefik.repository: "http://127.0.0.1:9/charts" is plain http: the chart's index and archive could be tampered with in transit (an https:// repository or an oci:// chart reference; or, to accept that, insecureHTTP: true beside it)`}},
		{name: "chart repository over HTTP in capitals", add: "addons:\n  traefik:\n    repository: HTTP://127.0.0.1:9/charts\n    name: traefik\n",
			want: []string{`inv.yaml:24: addons.traefik.repository: "HTTP://127.0.0.1:9/charts" is plain http: the chart's index and archive could be tampered with in transit (an https:// repository or an oci:// chart reference; or, to accept that, insecureHTTP: true beside it)`}},
		{name: "chart repository over http accepted", add: "addons:\n  traefik:\n    repository: http://127.0.0.1:9/charts\n    insecureHTTP: true\n    name: traefik\n"},
		{name: "insecureHTTP with the default https repository", add: "addons:\n  traefik:\n    insecureHTTP: true\n",
			want: []string{`inv.yaml:24: addons.traefik.insecureHTTP: is set but the repository is https:// (insecureHTTP only with an http:// repository)`}},
		{name: "insecureHTTP with an oci reference", add: "addons:\n  certManager:\n    insecureHTTP: true\n",
			want: []string{`inv.yaml:24: addons.certManager.insecureHTTP: is set but the repository is oci:// (insecureHTTP only with an http:// repository)`}},
		{name: "insecureHTTP with a local chart", add: "addons:\n  certManager:\n    path: charts/cert-manager\n    insecureHTTP: true\n",
			want: []string{`inv.yaml:25: addons.certManager.insecureHTTP: is set but the chart comes from path (insecureHTTP only with an http:// repository)`}},
		{name: "insecureHTTP false changes nothing", add: "addons:\n  traefik:\n    repository: http://127.0.0.1:9/charts\n    insecureHTTP: false\n    name: traefik\n",
			want: []string{`inv.yaml:24: addons.traefik.repository: "http://127.0.0.1:9/charts" is plain http: the chart's index and archive could be tampered with in transit (an https:// repository or an oci:// chart reference; or, to accept that, insecureHTTP: true beside it)`}},
		{name: "ingress controller", add: "addons:\n  ingress:\n    controller: haproxy\n",
			want: []string{`inv.yaml:24: addons.ingress.controller: unknown controller "haproxy" (ingress-nginx or traefik)`}},
		{name: "traefik chart version latest", add: "addons:\n  ingress:\n    controller: traefik\n  traefik:\n    version: latest\n",
			want: []string{`inv.yaml:26: addons.traefik.version: "latest" is not pinned (an exact version such as 1.2.3 or v1.2.3)`}},
		{name: "ingress mode", add: "addons:\n  ingressMode: loadBalancer\n",
			want: []string{`inv.yaml:23: addons.ingressMode: unknown mode "loadBalancer" (hostNetwork or nodePort)`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			text := edit(t, base, tc.edits...) + tc.add
			got := problems(t, text)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestMaintenanceImageWarning: online without registry.maintenance.image
// one warning at the registry section's line names the field, the jobs
// that are not installed and why; with the image, or with packages from a
// bundle (whose boot image the jobs run), none.
func TestMaintenanceImageWarning(t *testing.T) {
	isolate(t)
	const traefik = "addons:\n  ingress:\n    controller: traefik\n"
	const why = "not installed, so no blob is ever freed. boot runs them only from its image pinned by digest from a source it controls, never by a tag from the registry they maintain, where whoever can push could replace the image and run code with the jobs' rights (boot's image (images/boot.tar of `boot bundle build`, its digest in the bundle's manifest.json) pushed to a registry you control and given as repository@sha256:<digest>; or run `boot registry gc --kubeconfig ...` yourself)"
	want := "inv.yaml:19: registry.maintenance.image: is not set: the registry's gc CronJob is " + why
	if got := mustLoad(t, base+traefik).Warnings(); len(got) != 1 || got[0].String() != want {
		t.Errorf("warnings = %v, want exactly\n%s", got, want)
	}
	rules := edit(t, base, "  acmeEmail: ops@example.org\n", "  acmeEmail: ops@example.org\n  pruner:\n    rules:\n      - keepLatest: 3\n")
	want = "inv.yaml:19: registry.maintenance.image: is not set: the registry's gc and prune CronJobs are " + why
	if got := mustLoad(t, rules+traefik).Warnings(); len(got) != 1 || got[0].String() != want {
		t.Errorf("with pruner rules: warnings = %v, want exactly\n%s", got, want)
	}
	off := edit(t, rules, "  pruner:\n", "  pruner:\n    enabled: false\n")
	if got := mustLoad(t, off+traefik).Warnings(); len(got) != 1 || !strings.Contains(got[0].String(), "the registry's gc CronJob is not installed") {
		t.Errorf("with the pruner off: warnings = %v", got)
	}
	if got := mustLoad(t, pinnedBase+traefik).Warnings(); len(got) != 0 {
		t.Errorf("with registry.maintenance.image: warnings = %v, want none", got)
	}
	t.Setenv("BOOT_REGISTRY_MAINTENANCE_IMAGE", pinnedImage)
	if got := mustLoad(t, base+traefik).Warnings(); len(got) != 0 {
		t.Errorf("with BOOT_REGISTRY_MAINTENANCE_IMAGE: warnings = %v, want none", got)
	}
	// The pruner as the admin, with htpasswd: warned; with token: its own user.
	htpasswd := edit(t, rules, "  pruner:\n", "  auth:\n    mode: htpasswd\n  pruner:\n")
	want = "inv.yaml:23: registry.auth.mode: is htpasswd: the prune CronJob logs in as the admin, whose password then crosses the cluster's network in plain HTTP to the registry's Service with every request (mode token (the default with boot's image): the pruner gets a user of its own that may only list, read and delete, and sends its password only to the token service)"
	if got := mustLoad(t, htpasswd+traefik).Warnings(); len(got) != 1 || got[0].String() != want {
		t.Errorf("htpasswd with the pruner: warnings = %v, want exactly\n%s", got, want)
	}
	if got := mustLoad(t, rules+traefik).Warnings(); len(got) != 0 {
		t.Errorf("token with the pruner: warnings = %v, want none", got)
	}
}

// testHostKey returns a fresh ed25519 public key in authorized_keys format.
func testHostKey(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
}

// TestACMECAFile: registry.acme.caFile is resolved beside the inventory and
// read at load; it must hold PEM certificates and nothing else.
func TestACMECAFile(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ACME CA"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	for _, tc := range []struct {
		name, content, want string
	}{
		{"two certificates", certPEM + certPEM, ""},
		{"not PEM", "hello\n", "ca.pem holds no PEM certificate"},
		{"empty", "", "ca.pem holds no PEM certificate"},
		{"a private key", certPEM + keyPEM, `ca.pem holds a PEM block of type "EC PRIVATE KEY" (only certificates belong here)`},
		{"text after the certificates", certPEM + "garbage\n", "ca.pem has text that is not PEM after 1 certificate(s)"},
		{"a broken certificate", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der[:40]})), "ca.pem: certificate 1 does not parse"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writeFile(t, filepath.Join(dir, "ca.pem"), tc.content)
			path := filepath.Join(dir, "inv.yaml")
			writeFile(t, path, edit(t, base, "  acmeEmail: ops@example.org\n",
				"  issuer: acme\n  acme:\n    server: https://acme.example.internal/directory\n    caFile: ca.pem\n"))
			inv, err := Load(path)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if inv.Registry.ACME.CAFile != filepath.Join(dir, "ca.pem") {
					t.Errorf("caFile = %q, want it resolved beside the inventory", inv.Registry.ACME.CAFile)
				}
				return
			}
			prefix := path + ":24: registry.acme.caFile: " + filepath.Join(dir, "ca.pem")
			if err == nil || !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want %q ... %q", err, prefix, tc.want)
			}
		})
	}
}

// pinnedBase is base with registry.maintenance.image, which, online, the
// registry's maintenance jobs need (without it: TestMaintenanceImageWarning).
const pinnedBase = base + "  maintenance:\n    image: " + pinnedImage + "\n"

const pinnedImage = "mirror.example.com/bootctl/boot@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// TestWarnings: ingress-nginx (the default) draws one warning at the
// controller's line, naming the retirement, the tested Kubernetes range and
// the one-field switch; traefik draws none.
func TestWarnings(t *testing.T) {
	isolate(t)
	inv := mustLoad(t, pinnedBase+"addons:\n  ingress:\n    controller: ingress-nginx\n")
	got := inv.Warnings()
	want := `inv.yaml:26: addons.ingress.controller: ingress-nginx was retired upstream in March 2026: its final chart 4.15.1 is tested upstream only up to Kubernetes 1.35 (cluster.kubernetesVersion is v1.37.2) (its maintained successor Traefik serves the same Ingress: switch with one field, addons.ingress.controller: traefik)`
	if len(got) != 1 || got[0].String() != want {
		t.Errorf("warnings = %v, want\n%s", got, want)
	}
	if got := mustLoad(t, pinnedBase).Warnings(); len(got) != 1 || got[0].String() != strings.Replace(want, ":26:", ":", 1) {
		t.Errorf("default controller: warnings = %v", got)
	}
	if got := mustLoad(t, pinnedBase+"addons:\n  ingress:\n    controller: traefik\n").Warnings(); len(got) != 0 {
		t.Errorf("traefik: warnings = %v, want none", got)
	}
}

// TestChartOverHTTP: a chart repository over plain http is refused at its
// line unless the chart says insecureHTTP: true; then the inventory loads
// with exactly one warning, at the repository's line, naming the chart and
// the tampering it allows. An https or oci:// repository draws none.
func TestChartOverHTTP(t *testing.T) {
	isolate(t)
	const traefik = "addons:\n  ingress:\n    controller: traefik\n  traefik:\n    repository: http://127.0.0.1:9/charts\n    name: traefik\n    version: 41.3.0\n"
	dir := t.TempDir()
	path := filepath.Join(dir, "inv.yaml")
	writeFile(t, path, pinnedBase+traefik)
	_, err := Load(path)
	want := path + `:28: addons.traefik.repository: "http://127.0.0.1:9/charts" is plain http`
	if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Count(err.Error(), "\n") != 0 {
		t.Fatalf("without insecureHTTP: error = %v, want one problem starting %q", err, want)
	}

	writeFile(t, path, pinnedBase+traefik+"    insecureHTTP: true\n")
	inv, err := Load(path)
	if err != nil {
		t.Fatalf("with insecureHTTP: %v", err)
	}
	got := inv.Warnings()
	wantWarning := path + `:28: addons.traefik.repository: chart traefik 41.3.0 comes over plain http from http://127.0.0.1:9/charts (insecureHTTP: true): its index and archive can be tampered with in transit (an https:// repository, an oci:// reference, a local path or the offline bundle)`
	if len(got) != 1 || got[0].String() != wantWarning {
		t.Errorf("with insecureHTTP: warnings = %v, want exactly\n%s", got, wantWarning)
	}
	if got := mustLoad(t, pinnedBase+"addons:\n  ingress:\n    controller: traefik\n").Warnings(); len(got) != 0 {
		t.Errorf("https and oci:// repositories: warnings = %v, want none", got)
	}
}
