package inventory

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/ssh"

	"github.com/bootctl/boot/internal/boundedfile"
)

// Supported Kubernetes minor versions (v1.MIN.x to v1.MAX.x).
const (
	minKubernetesMinor = 30
	maxKubernetesMinor = 37
)

// Validate checks a defaulted inventory (Load has already done so) and
// returns an *Error listing every problem, or nil.
func (inv Inventory) Validate() error {
	return asError(inv.validate())
}

// problem makes a Problem for field, located at the field or else at its
// nearest enclosing field that has a line (or an env var).
func (inv *Inventory) problem(field, msg, expected string) Problem {
	p := Problem{File: inv.Path, Field: field, Message: msg, Expected: expected}
	for f := field; f != ""; f = parentField(f) {
		if o, ok := inv.origins[f]; ok {
			p.Line, p.Env = o.line, o.env
			break
		}
	}
	return p
}

// parentField is the path of the field enclosing field ("" at the top).
func parentField(field string) string {
	if i := strings.LastIndexAny(field, ".["); i >= 0 {
		return field[:i]
	}
	return ""
}

// checker collects problems.
type checker struct {
	inv      *Inventory
	problems []Problem
}

func (c *checker) add(field, msg, expected string) {
	c.problems = append(c.problems, c.inv.problem(field, msg, expected))
}

func (inv Inventory) validate() []Problem {
	c := &checker{inv: &inv}
	c.header()
	c.cluster()
	c.kubelet()
	c.ssh()
	c.hosts()
	c.packages()
	c.mirrors()
	c.registry()
	c.dns()
	c.addons()
	return c.problems
}

var (
	dnsLabelRe     = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	envNameRe      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	kubeVersionRe  = regexp.MustCompile(`^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$`)
	exactVersionRe = regexp.MustCompile(`^v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)
	userRe         = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,31}$`)
	quantityRe     = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$`)
	redisMemoryRe  = regexp.MustCompile(`^(?i)[0-9]+(b|k|kb|m|mb|g|gb)?$`)
	bucketRe       = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	regionRe       = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
)

const (
	expectLabel   = "a DNS label: lower-case letters, digits and -, at most 63"
	expectAddress = "an IP address or a DNS name"
	expectPort    = "a port, 1-65535"
	expectEnvName = "the NAME of an environment variable: letters, digits and _, not starting with a digit"
	expectPinned  = "an exact version such as 1.2.3 or v1.2.3"
)

func (c *checker) header() {
	inv := c.inv
	if inv.APIVersion != APIVersion {
		c.add("apiVersion", "is "+quote(inv.APIVersion), APIVersion)
	}
	if inv.Kind != Kind {
		c.add("kind", "is "+quote(inv.Kind), Kind)
	}
	c.label("metadata.name", inv.Metadata.Name)
}

func (c *checker) cluster() {
	cl := c.inv.Cluster
	c.kubernetesVersion("cluster.kubernetesVersion", cl.KubernetesVersion)
	pod := c.cidr("cluster.podCIDR", cl.PodCIDR)
	svc := c.cidr("cluster.serviceCIDR", cl.ServiceCIDR)
	if pod.IsValid() {
		c.podCapacity(pod)
	}
	if svc.IsValid() {
		// kube-apiserver's limit on the service range.
		if longest := map[bool]int{true: 12, false: 108}[svc.Addr().Is4()]; svc.Bits() < longest {
			c.add("cluster.serviceCIDR", fmt.Sprintf("/%d is too large", svc.Bits()), fmt.Sprintf("a prefix of /%d or longer", longest))
		}
	}
	if pod.IsValid() && svc.IsValid() {
		switch {
		case pod.Addr().Is4() != svc.Addr().Is4():
			c.add("cluster.serviceCIDR", "is not of the same IP family as cluster.podCIDR", "both IPv4 or both IPv6")
		case pod.Overlaps(svc):
			c.add("cluster.serviceCIDR", fmt.Sprintf("%s overlaps cluster.podCIDR %s", svc, pod), "separate ranges")
		}
	}
	if cl.CNI != CNIFlannel {
		c.add("cluster.cni", "unknown CNI "+quote(cl.CNI), CNIFlannel)
	}
	c.port("cluster.apiServerPort", cl.APIServerPort)
	// The default endpoint is made of fields checked on their own (the
	// control plane's address: see host). Defaults have added the port.
	cp := c.inv.ControlPlane()
	if ep := cl.ControlPlaneEndpoint; ep != "" && ep != net.JoinHostPort(cp.Address, strconv.Itoa(cl.APIServerPort)) {
		if err := CheckHostPort(ep); err != nil {
			c.add("cluster.controlPlaneEndpoint", quote(ep)+" "+err.Error(), "an IP address or a lower-case DNS name, optionally with :port")
		}
	}
	switch r := cl.ImageRepository; {
	case r == "" && c.inv.Packages.Source == SourceBundle:
		c.add("cluster.imageRepository", "is missing",
			"the registry that serves the bundle's images to the add-ons, required when packages.source is "+SourceBundle)
	case r != "":
		if err := CheckImageRepository(r); err != nil {
			c.add("cluster.imageRepository", quote(r)+" "+err.Error(), "lower-case host[:port]/path without a scheme, tag or digest, e.g. registry.k8s.io")
		}
	}
	for i, ns := range cl.Nameservers {
		if a, err := netip.ParseAddr(ns); err != nil || a.IsLoopback() || a.IsUnspecified() {
			c.add(fmt.Sprintf("cluster.nameservers[%d]", i), quote(ns)+" is not a DNS server pods can reach", "IP addresses, not loopback ones")
		}
	}
	if len(cl.Nameservers) > 3 {
		c.add("cluster.nameservers", fmt.Sprintf("has %d servers", len(cl.Nameservers)), "at most 3 (the resolver's limit)")
	}
}

// podCapacity checks that the pod CIDR holds one node subnet (/24, or /64
// for IPv6, as kubeadm's controller-manager allocates) per host.
func (c *checker) podCapacity(pod netip.Prefix) {
	nodeBits := 24
	if pod.Addr().Is6() {
		nodeBits = 64
	}
	switch {
	case pod.Bits() > nodeBits:
		c.add("cluster.podCIDR", fmt.Sprintf("/%d is smaller than one node's /%d", pod.Bits(), nodeBits), fmt.Sprintf("a prefix of /%d or shorter", nodeBits))
	case nodeBits-pod.Bits() < 20 && 1<<(nodeBits-pod.Bits()) < len(c.inv.Hosts):
		c.add("cluster.podCIDR", fmt.Sprintf("/%d has room for %d nodes (one /%d each), the inventory has %d hosts",
			pod.Bits(), 1<<(nodeBits-pod.Bits()), nodeBits, len(c.inv.Hosts)), "a larger range")
	}
}

func (c *checker) ssh() {
	s := c.inv.SSH
	c.user("ssh.user", s.User)
	c.port("ssh.port", s.Port)
	c.envName("ssh.keyPassphraseEnv", s.KeyPassphraseEnv)
	c.envName("ssh.passwordEnv", s.PasswordEnv)
	c.envName("ssh.sudo.passwordEnv", s.Sudo.PasswordEnv)
	if s.KnownHosts == "" {
		c.add("ssh.knownHosts", "is empty", "a known_hosts file path")
	}
	if s.HostKeyPolicy != HostKeyStrict && s.HostKeyPolicy != HostKeyAcceptNew {
		c.add("ssh.hostKeyPolicy", "unknown policy "+quote(s.HostKeyPolicy), HostKeyStrict+" or "+HostKeyAcceptNew)
	}
	if s.ConnectTimeout <= 0 {
		c.add("ssh.connectTimeout", "is "+s.ConnectTimeout.String(), "a positive duration such as 10s")
	}
	if b := s.Bastion; b != nil {
		if b.Address == "" {
			c.add("ssh.bastion.address", "is missing", expectAddress)
		} else if !isAddress(b.Address) {
			c.add("ssh.bastion.address", quote(b.Address)+" is not an IP address or DNS name", expectAddress)
		}
		c.port("ssh.bastion.port", b.Port)
		c.user("ssh.bastion.user", b.User)
		c.envName("ssh.bastion.keyPassphraseEnv", b.KeyPassphraseEnv)
		c.envName("ssh.bastion.passwordEnv", b.PasswordEnv)
		c.hostKey("ssh.bastion.hostKey", b.HostKey)
	}
}

func (c *checker) hosts() {
	if len(c.inv.Hosts) == 0 {
		c.add("hosts", "no hosts", "one control-plane host and at least one worker")
		return
	}
	seen := hostsSeen{names: map[string]int{}, addrs: map[string]int{}, privs: map[string]int{}}
	for i, h := range c.inv.Hosts {
		c.host(i, h, &seen)
	}
	c.hostRoles()
	c.hostsOutsideClusterRanges(seen.privIPs)
}

// hostsSeen is what the hosts checked so far use, by index in hosts: names,
// normalised addresses and private addresses, and the good private IPs.
type hostsSeen struct {
	names, addrs, privs map[string]int
	privIPs             []fieldIP
}

// fieldIP is a host's private IP and the field that holds it.
type fieldIP struct {
	field string
	ip    netip.Addr
}

// host checks hosts[i], reporting names and addresses earlier hosts use.
func (c *checker) host(i int, h Host, seen *hostsSeen) {
	f := func(name string) string { return hostField(i, name) }
	if c.label(f("name"), h.Name) {
		if j, dup := seen.names[h.Name]; dup {
			c.add(f("name"), fmt.Sprintf("%s is also the name of hosts[%d]", quote(h.Name), j), "unique host names")
		} else {
			seen.names[h.Name] = i
		}
	}
	addressOK := c.hostAddress(i, h.Address, seen)
	// A private address defaulted from a bad address is not reported twice.
	if h.PrivateAddress != "" && (addressOK || h.PrivateAddress != h.Address) {
		c.hostPrivateAddress(i, h.PrivateAddress, seen)
	}
	if h.Role != RoleControlPlane && h.Role != RoleWorker {
		c.add(f("role"), "unknown role "+quote(h.Role), RoleControlPlane+" or "+RoleWorker)
	}
	if addressOK && h.Role == RoleControlPlane {
		// kubeadm puts it in the API server's certificate and, by default,
		// in the endpoint every node reaches the API server at.
		if err := CheckHost(h.Address); err != nil {
			c.add(f("address"), quote(h.Address)+" "+err.Error()+": the control plane's address is in the API server's certificate",
				"an IP address or a lower-case DNS name without a final dot")
		}
	}
	c.user(f("ssh.user"), h.SSH.User)
	if h.SSH.Port != 0 {
		c.port(f("ssh.port"), h.SSH.Port)
	}
	c.envName(f("ssh.keyPassphraseEnv"), h.SSH.KeyPassphraseEnv)
	c.envName(f("ssh.passwordEnv"), h.SSH.PasswordEnv)
	c.envName(f("ssh.sudoPasswordEnv"), h.SSH.SudoPasswordEnv)
	c.hostKey(f("hostKey"), h.HostKey)
}

// hostAddress checks hosts[i].address and returns whether it is good and
// not another host's.
func (c *checker) hostAddress(i int, addr string, seen *hostsSeen) bool {
	field := hostField(i, "address")
	switch {
	case addr == "":
		c.add(field, "is missing", expectAddress)
	case !isAddress(addr):
		c.add(field, quote(addr)+" is not an IP address or DNS name", expectAddress)
	default:
		key := normalAddress(addr)
		if j, dup := seen.addrs[key]; dup {
			c.add(field, fmt.Sprintf("%s is also the address of hosts[%d]", quote(addr), j), "unique addresses")
			return false
		}
		seen.addrs[key] = i
		return true
	}
	return false
}

// hostPrivateAddress checks hosts[i].privateAddress, an IP no other host has.
func (c *checker) hostPrivateAddress(i int, priv string, seen *hostsSeen) {
	field := hostField(i, "privateAddress")
	ip, err := netip.ParseAddr(priv)
	if err != nil || ip.Zone() != "" {
		c.add(field, quote(priv)+" is not an IP address",
			"the host's cluster-internal IP; set privateAddress when address is a DNS name")
		return
	}
	key := ip.Unmap().String()
	if j, dup := seen.privs[key]; dup {
		c.add(field, fmt.Sprintf("%s is also the private address of hosts[%d]", quote(priv), j), "unique addresses")
		return
	}
	seen.privs[key] = i
	seen.privIPs = append(seen.privIPs, fieldIP{field, ip.Unmap()})
}

// hostRoles checks that the hosts make a cluster: one control plane, a
// worker, an ingress host.
func (c *checker) hostRoles() {
	inv := c.inv
	if cps := inv.hostsWithRole(RoleControlPlane); len(cps) != 1 {
		c.add("hosts", fmt.Sprintf("has %d control-plane hosts", len(cps)), "exactly one host with role: "+RoleControlPlane)
	}
	if len(inv.Workers()) == 0 {
		c.add("hosts", "has no worker", "at least one host with role: "+RoleWorker)
	}
	if len(inv.IngressHosts()) == 0 {
		c.add("hosts", "no host runs the ingress controller", "at least one host with ingress: true (workers by default)")
	}
}

// hostsOutsideClusterRanges reports host private IPs inside the cluster's
// pod or service range.
func (c *checker) hostsOutsideClusterRanges(privIPs []fieldIP) {
	for _, cidr := range []struct{ field, value string }{
		{"cluster.podCIDR", c.inv.Cluster.PodCIDR},
		{"cluster.serviceCIDR", c.inv.Cluster.ServiceCIDR},
	} {
		prefix, err := netip.ParsePrefix(cidr.value)
		if err != nil {
			continue // reported by cluster()
		}
		for _, p := range privIPs {
			if prefix.Masked().Contains(p.ip) {
				c.add(p.field, fmt.Sprintf("%s is inside %s %s", p.ip, cidr.field, prefix), "host addresses outside the pod and service ranges")
			}
		}
	}
}

func (c *checker) packages() {
	p := c.inv.Packages
	switch p.Source {
	case SourceOnline:
	case SourceBundle:
		if p.Bundle == "" {
			c.add("packages.bundle", "is missing", "the bundle folder, required when source is "+SourceBundle)
		}
	default:
		c.add("packages.source", "unknown source "+quote(p.Source), SourceOnline+" or "+SourceBundle)
	}
	if p.RuntimeBinary != "" {
		if err := CheckHostPath(p.RuntimeBinary); err != nil {
			c.add("packages.runtimeBinary", quote(p.RuntimeBinary)+" "+err.Error(), "an absolute path on the hosts")
		}
	}
	for _, v := range []struct{ field, value string }{
		{"packages.versions.containerd", p.Versions.Containerd},
		{"packages.versions.docker", p.Versions.Docker},
	} {
		if v.value == "" {
			continue
		}
		if err := CheckPackageVersion(v.value); err != nil {
			c.add(v.field, quote(v.value)+" "+err.Error(), "an exact version such as 28.1.1 or an apt version such as 5:28.1.1-1~debian.12~bookworm: a digit first, then letters, digits and . + ~ : -; or empty")
		}
	}
	if v := p.Versions.Helm; v != "" {
		if _, err := HelmVersion(v); err != nil {
			c.add("packages.versions.helm", quote(v)+" "+err.Error(), "an exact release such as 3.22.0 or v3.22.0, or empty for boot's pinned one")
		}
	}
}

func (c *checker) registry() {
	r := c.inv.Registry
	switch {
	case r.Host == "":
		c.add("registry.host", "is missing", "the registry's DNS name, e.g. registry.example.com")
	case !isFQDN(r.Host):
		c.add("registry.host", quote(r.Host)+" is not a DNS name", "a fully qualified DNS name, e.g. registry.example.com")
	case r.Host != strings.ToLower(r.Host) || strings.HasSuffix(r.Host, "."):
		// The Ingress, the certificate and the chart take it as written.
		c.add("registry.host", quote(r.Host)+" is not a lower-case DNS name without a final dot", "e.g. registry.example.com")
	}
	switch r.Issuer {
	case IssuerLetsEncrypt, IssuerLetsEncryptStaging:
		if r.ACMEEmail == "" {
			c.add("registry.acmeEmail", "is missing", "an e-mail address for the Let's Encrypt account, required with issuer "+r.Issuer)
		}
	case IssuerSelfSigned, IssuerACME:
	default:
		c.add("registry.issuer", "unknown issuer "+quote(r.Issuer),
			IssuerLetsEncrypt+", "+IssuerLetsEncryptStaging+", "+IssuerSelfSigned+" or "+IssuerACME)
	}
	if r.ACMEEmail != "" && !isEmail(r.ACMEEmail) {
		c.add("registry.acmeEmail", quote(r.ACMEEmail)+" is not an e-mail address", "name@domain.tld")
	}
	c.acme(r)
	c.label("registry.namespace", r.Namespace)

	st := r.Storage
	switch st.Type {
	case StoragePVC:
		if !quantityRe.MatchString(st.Size) || strings.Trim(strings.TrimRight(st.Size, "KMGTPEik"), "0.") == "" {
			c.add("registry.storage.size", quote(st.Size)+" is not a size", "a positive Kubernetes quantity such as 20Gi")
		}
		if st.S3 != nil {
			c.add("registry.storage.s3", "is set but storage.type is "+StoragePVC, "type: "+StorageS3+" to use S3, or no s3 section")
		}
	case StorageS3:
		c.s3(st.S3)
	default:
		c.add("registry.storage.type", "unknown storage type "+quote(st.Type), StoragePVC+" or "+StorageS3)
	}
	switch {
	case r.Replicas < 1 || r.Replicas > maxRegistryReplicas:
		c.add("registry.replicas", fmt.Sprintf("is %d", r.Replicas), fmt.Sprintf("1 to %d", maxRegistryReplicas))
	case r.Replicas > 1 && st.Type != StorageS3:
		c.add("registry.replicas", fmt.Sprintf("is %d with storage type %s: the registry's ReadWriteOnce volume attaches to one node", r.Replicas, st.Type),
			"1, or storage.type "+StorageS3+" for several replicas")
	case r.Replicas > 1 && r.Cache() != CacheRedis:
		c.add("registry.redis.enabled", fmt.Sprintf("is false with %d replicas: each would keep its own cache and miss the blobs the others delete", r.Replicas),
			"true (the default with storage type s3), or replicas: 1")
	}
	if sc := st.StorageClass; sc != "" && (!IsDNSName(sc) || sc != strings.ToLower(sc)) {
		c.add("registry.storage.storageClass", quote(sc)+" is not a storage class name", "a lower-case DNS name")
	}
	c.registryAuth(r)
	if !redisMemoryRe.MatchString(r.Redis.MaxMemory) || strings.Trim(r.Redis.MaxMemory, "0bkmgBKMG") == "" {
		c.add("registry.redis.maxMemory", quote(r.Redis.MaxMemory)+" is not a memory size", "a positive Redis size such as 256mb")
	}
	c.cron("registry.gc.schedule", r.GC.Schedule)
	c.cron("registry.pruner.schedule", r.Pruner.Schedule)
	if r.Pruner.MaxDeletions < 0 {
		c.add("registry.pruner.maxDeletions", fmt.Sprintf("is %d", r.Pruner.MaxDeletions), "0 or more (0 = 500)")
	}
	for i, rule := range r.Pruner.Rules {
		c.pruneRule(fmt.Sprintf("registry.pruner.rules[%d]", i), rule)
	}
	c.maintenanceImage(r)
}

// expectMaintenanceImage is what registry.maintenance.image takes.
const expectMaintenanceImage = "boot's image pinned by digest, repository[:tag]@sha256:<64 hex>, from a registry other than registry.host"

// maintenanceImage checks registry.maintenance.image: pinned by digest,
// and not in the registry the jobs maintain (the pruner could delete it,
// and a registry that cannot serve would stop its own repair).
func (c *checker) maintenanceImage(r Registry) {
	img := r.Maintenance.Image
	if img == "" {
		return
	}
	p, err := ParsePinnedImage(img)
	switch {
	case err != nil:
		c.add("registry.maintenance.image", quote(img)+" "+err.Error(), expectMaintenanceImage)
	case p.Host() == r.Host:
		c.add("registry.maintenance.image", quote(img)+" is in the registry the maintenance jobs maintain (registry.host): they would run an image from the registry they change", expectMaintenanceImage)
	}
}

// acme checks registry.acme against registry.issuer and dns.provider.
// maxRegistryReplicas bounds registry.replicas.
const maxRegistryReplicas = 20

// maxRegistryUserName bounds registry.auth.users[].name, so that Secret
// registry-user-<name> is a DNS label.
const maxRegistryUserName = 63 - len("registry-user-")

// maxRegistryUser bounds registry.auth.user in bytes.
const maxRegistryUser = 64

// PrunerUser is the registry user (role delete) the in-cluster pruner runs
// as in mode token; no inventory user may take its name.
const PrunerUser = "boot-pruner"

// registryAuth checks registry.auth: the mode, the admin and the other users.
func (c *checker) registryAuth(r Registry) {
	a := r.Auth
	switch a.Mode {
	case AuthToken:
		if !c.inv.BootImageKnown() {
			c.add("registry.auth.mode", "is "+AuthToken+" but registry.maintenance.image is not set: the token service runs boot's image",
				"registry.maintenance.image (boot's image pinned by digest), or mode "+AuthHtpasswd)
		}
	case AuthHtpasswd:
		if len(a.Users) > 0 {
			c.add("registry.auth.users", "is set but registry.auth.mode is "+AuthHtpasswd+", which has one user and no roles", "mode "+AuthToken+" for users with roles, or no users")
		}
	default:
		c.add("registry.auth.mode", "unknown mode "+quote(a.Mode), AuthToken+" or "+AuthHtpasswd)
	}
	c.registryUser("registry.auth.user", a.User)
	c.envName("registry.auth.passwordEnv", a.PasswordEnv)
	seen := map[string]string{a.User: "registry.auth.user", PrunerUser: "the pruner's own user"}
	for i, u := range a.Users {
		f := fmt.Sprintf("registry.auth.users[%d]", i)
		if c.registryUser(f+".name", u.Name) {
			// The name names its Secret, registry-user-<name>.
			if !IsDNSName(u.Name) || strings.HasSuffix(u.Name, ".") || u.Name != strings.ToLower(u.Name) || len(u.Name) > maxRegistryUserName {
				c.add(f+".name", quote(u.Name)+" is not a lower-case name", fmt.Sprintf("at most %d lower-case letters, digits, '-' and '.' (it names Secret registry-user-<name>)", maxRegistryUserName))
			} else if prev, dup := seen[u.Name]; dup {
				c.add(f+".name", quote(u.Name)+" is taken by "+prev, "a name of its own")
			}
			seen[u.Name] = f
		}
		switch u.Role {
		case RoleAdmin, RolePush, RolePull:
		case "":
			c.add(f+".role", "is missing", RoleAdmin+", "+RolePush+" or "+RolePull)
		default:
			c.add(f+".role", "unknown role "+quote(u.Role), RoleAdmin+" (pull, push, delete), "+RolePush+" (pull, push) or "+RolePull+" (pull)")
		}
		c.envName(f+".passwordEnv", u.PasswordEnv)
	}
}

// registryUser checks a registry login name as htpasswd and HTTP basic
// authentication carry it (addons' credentials refuse the same), and
// reports whether it is one.
func (c *checker) registryUser(field, u string) bool {
	const expected = "at most 64 bytes of UTF-8, no ':', white space or control characters"
	switch {
	case u == "":
		c.add(field, "is empty", expected)
	case len(u) > maxRegistryUser:
		c.add(field, fmt.Sprintf("is %d bytes long", len(u)), expected)
	case !utf8.ValidString(u):
		c.add(field, "is not valid UTF-8", expected)
	case strings.ContainsRune(u, ':'), strings.IndexFunc(u, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		c.add(field, quote(u)+" is not a user name", expected)
	default:
		return true
	}
	return false
}

func (c *checker) acme(r Registry) {
	a := r.ACME
	switch u, err := url.Parse(a.Server); {
	case r.Issuer == IssuerACME && a.Server == "":
		c.add("registry.acme.server", "is missing", "the ACME directory's https:// URL, required with issuer "+IssuerACME)
	case a.Server != "" && r.Issuer != IssuerACME:
		c.add("registry.acme.server", "is set but registry.issuer is "+r.Issuer, "issuer: "+IssuerACME+" to use another ACME directory, or no server")
	case a.Server != "" && (err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil):
		c.add("registry.acme.server", quote(a.Server)+" is not an https:// URL", "the ACME directory's https:// URL, e.g. https://acme.example.com/directory")
	}
	if a.CAFile != "" {
		if r.Issuer != IssuerACME {
			c.add("registry.acme.caFile", "is set but registry.issuer is "+r.Issuer, "only with issuer: "+IssuerACME)
		} else if msg := checkCAFile(a.CAFile); msg != "" {
			c.add("registry.acme.caFile", msg, "a PEM file of CA certificates")
		}
	}
	switch a.Solver {
	case SolverHTTP01:
		if len(a.RecursiveNameservers) > 0 {
			c.add("registry.acme.recursiveNameservers", "is set but registry.acme.solver is "+SolverHTTP01, "only with solver: "+SolverDNS01)
		}
	case SolverDNS01:
		switch {
		case r.Issuer == IssuerSelfSigned:
			c.add("registry.acme.solver", "is "+SolverDNS01+" but registry.issuer is "+IssuerSelfSigned+", which solves no challenges", "an ACME issuer, or no solver")
		case c.inv.DNS.Provider != DNSRoute53:
			c.add("registry.acme.solver", SolverDNS01+" needs a Route53 zone but dns.provider is "+c.inv.DNS.Provider,
				"dns.provider: "+DNSRoute53+" with dns.zone, the zone the challenges' TXT records go in")
		}
	default:
		c.add("registry.acme.solver", "unknown solver "+quote(a.Solver), SolverHTTP01+" or "+SolverDNS01)
	}
	for i, ns := range a.RecursiveNameservers {
		host, port, err := net.SplitHostPort(ns)
		n, perr := strconv.Atoi(port)
		if err != nil || !isAddress(host) || perr != nil || n < 1 || n > 65535 {
			c.add(fmt.Sprintf("registry.acme.recursiveNameservers[%d]", i), quote(ns)+" is not host:port", "a DNS server as host:port, e.g. 10.0.0.2:53")
		}
	}
}

// maxCAFile bounds a CA bundle file (a system's whole bundle is a few
// hundred KiB).
const maxCAFile = 4 << 20

// checkCAFile reads a PEM CA bundle and says what is wrong with it, or "".
func checkCAFile(p string) string {
	data, err := boundedfile.Read(p, "CA bundle", maxCAFile)
	if err != nil {
		return "cannot be read: " + err.Error()
	}
	n := 0
	for rest := data; ; n++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			if n > 0 && strings.TrimSpace(string(rest)) != "" {
				return fmt.Sprintf("%s has text that is not PEM after %d certificate(s)", p, n)
			}
			break
		}
		if block.Type != "CERTIFICATE" {
			return fmt.Sprintf("%s holds a PEM block of type %s (only certificates belong here)", p, quote(block.Type))
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return fmt.Sprintf("%s: certificate %d does not parse: %v", p, n+1, err)
		}
	}
	if n == 0 {
		return p + " holds no PEM certificate"
	}
	return ""
}

func (c *checker) s3(s3 *S3) {
	if s3 == nil {
		c.add("registry.storage.s3", "is missing", "bucket and region, required when storage.type is "+StorageS3)
		return
	}
	if !bucketRe.MatchString(s3.Bucket) {
		c.add("registry.storage.s3.bucket", quote(s3.Bucket)+" is not a bucket name", "3-63 lower-case letters, digits, '.' and '-'")
	}
	if !regionRe.MatchString(s3.Region) {
		c.add("registry.storage.s3.region", quote(s3.Region)+" is not a region", "a region such as eu-west-1")
	}
	if e := s3.Endpoint; e != "" {
		if u, err := url.Parse(e); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			c.add("registry.storage.s3.endpoint", quote(e)+" is not a URL", "http(s)://host[:port] of an S3-compatible service")
		}
	}
	c.envName("registry.storage.s3.accessKeyEnv", s3.AccessKeyEnv)
	c.envName("registry.storage.s3.secretKeyEnv", s3.SecretKeyEnv)
	if (s3.AccessKeyEnv == "") != (s3.SecretKeyEnv == "") {
		c.add("registry.storage.s3", "names only one of accessKeyEnv and secretKeyEnv", "both (static credentials) or neither (the nodes' AWS identity)")
	}
}

func (c *checker) pruneRule(field string, r PruneRule) {
	for i, g := range r.Repositories {
		if _, err := path.Match(g, ""); err != nil || g == "" {
			c.add(fmt.Sprintf("%s.repositories[%d]", field, i), quote(g)+" is not a glob", "a repository pattern such as releases/*")
		}
	}
	for _, list := range []struct {
		name     string
		patterns []string
	}{{"match", r.Match}, {"ignore", r.Ignore}} {
		for i, re := range list.patterns {
			if _, err := regexp.Compile(re); err != nil {
				c.add(fmt.Sprintf("%s.%s[%d]", field, list.name, i), quote(re)+" is not a regular expression: "+
					strings.TrimPrefix(err.Error(), "error parsing regexp: "), "Go RE2 syntax, e.g. ^PR-")
			}
		}
	}
	if r.KeepLatest == nil && r.KeepSemver == nil && r.KeepDays == nil {
		c.add(field, "keeps nothing", "at least one of keepLatest, keepSemver, keepDays")
	}
	if r.KeepLatest != nil && *r.KeepLatest < 0 {
		c.add(field+".keepLatest", fmt.Sprintf("is %d", *r.KeepLatest), "0 or more")
	}
	if r.KeepDays != nil && *r.KeepDays < 0 {
		c.add(field+".keepDays", fmt.Sprintf("is %d", *r.KeepDays), "0 or more")
	}
	if r.KeepSemver != nil && r.KeepSemver.Highest < 0 {
		c.add(field+".keepSemver.highest", fmt.Sprintf("is %d", r.KeepSemver.Highest), "0 or more (0 = every valid version)")
	}
}

func (c *checker) dns() {
	inv := c.inv
	d := inv.DNS
	switch d.Provider {
	case DNSNone:
	case DNSRoute53:
		zone := strings.ToLower(strings.TrimSuffix(d.Zone, "."))
		host := strings.ToLower(strings.TrimSuffix(inv.Registry.Host, "."))
		switch {
		case d.Zone == "":
			c.add("dns.zone", "is missing", "the hosted zone's name, required with provider "+DNSRoute53)
		case !isFQDN(d.Zone):
			c.add("dns.zone", quote(d.Zone)+" is not a DNS name", "a zone name such as example.com")
		case host != "" && host != zone && !strings.HasSuffix(host, "."+zone):
			c.add("registry.host", fmt.Sprintf("%s is not inside dns.zone %s", quote(inv.Registry.Host), quote(d.Zone)),
				"a name in the zone, e.g. registry."+zone)
		}
		if len(d.Addresses) == 0 {
			for i, h := range inv.Hosts {
				if h.Ingress == nil || !*h.Ingress {
					continue
				}
				if !isIP(h.Address) && isAddress(h.Address) {
					c.add("dns.addresses", fmt.Sprintf("is empty and ingress host %s has the DNS name %s", h.Name, quote(h.Address)),
						"the IP addresses the registry's record points at")
					break
				}
				if isIP(h.Address) && !isIPv4(h.Address) {
					c.add(hostField(i, "address"), fmt.Sprintf("%s is not an IPv4 address, and with dns.addresses empty the registry's A record points at the ingress hosts", quote(h.Address)),
						"IPv4 addresses for the ingress hosts, or dns.addresses")
				}
			}
		}
		for i, a := range d.Addresses {
			if isIP(a) && !isIPv4(a) {
				c.add(fmt.Sprintf("dns.addresses[%d]", i), quote(a)+" is not an IPv4 address: the registry's record in "+DNSRoute53+" is an A record", "IPv4 addresses")
			}
		}
	default:
		c.add("dns.provider", "unknown provider "+quote(d.Provider), DNSRoute53+" or "+DNSNone)
	}
	if d.TTL < 1 || d.TTL > 86400 {
		c.add("dns.ttl", fmt.Sprintf("is %d", d.TTL), "seconds, 1-86400")
	}
	for i, a := range d.Addresses {
		if !isIP(a) {
			c.add(fmt.Sprintf("dns.addresses[%d]", i), quote(a)+" is not an IP address", "IPv4 or IPv6 addresses")
		}
	}
}

func (c *checker) addons() {
	a := c.inv.Addons
	if a.Ingress.Controller != IngressNginx && a.Ingress.Controller != IngressTraefik {
		c.add("addons.ingress.controller", "unknown controller "+quote(a.Ingress.Controller), IngressNginx+" or "+IngressTraefik)
	}
	for _, ch := range a.fieldCharts() {
		c.chart(ch.field, ch.chart)
	}
	if a.IngressMode != IngressHostNetwork && a.IngressMode != IngressNodePort {
		c.add("addons.ingressMode", "unknown mode "+quote(a.IngressMode), IngressHostNetwork+" or "+IngressNodePort)
	}
}

// fieldChart is one chart of the addons section with its field.
type fieldChart struct {
	field string
	chart Chart
}

func (a Addons) fieldCharts() []fieldChart {
	return []fieldChart{{"addons.ingressNginx", a.IngressNginx}, {"addons.traefik", a.Traefik}, {"addons.certManager", a.CertManager}}
}

func (c *checker) chart(field string, ch Chart) {
	if ch.Path != "" {
		if ch.InsecureHTTP {
			c.add(field+".insecureHTTP", "is set but the chart comes from path", "insecureHTTP only with an http:// repository")
		}
		if ch.Version != "" && !exactVersionRe.MatchString(ch.Version) {
			c.add(field+".version", quote(ch.Version)+" is not pinned", expectPinned)
		}
		return
	}
	u, err := url.Parse(ch.Repository)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http" && u.Scheme != "oci") {
		c.add(field+".repository", quote(ch.Repository)+" is not a chart repository", "an https:// repository or an oci:// chart reference")
	} else {
		switch {
		case u.Scheme == "http" && !ch.InsecureHTTP:
			c.add(field+".repository", quote(ch.Repository)+" is plain http: the chart's index and archive could be tampered with in transit",
				"an https:// repository or an oci:// chart reference; or, to accept that, insecureHTTP: true beside it")
		case u.Scheme != "http" && ch.InsecureHTTP:
			c.add(field+".insecureHTTP", "is set but the repository is "+u.Scheme+"://", "insecureHTTP only with an http:// repository")
		}
		if u.Scheme != "oci" && ch.Name == "" {
			c.add(field+".name", "is missing", "the chart's name in the repository")
		}
	}
	switch {
	case ch.Version == "":
		c.add(field+".version", "is missing", expectPinned)
	case !exactVersionRe.MatchString(ch.Version):
		c.add(field+".version", quote(ch.Version)+" is not pinned", expectPinned)
	}
}

// Field checks. Each reports on field and returns whether the value is good.

func (c *checker) label(field, v string) bool {
	if v == "" {
		c.add(field, "is missing", expectLabel)
		return false
	}
	if !dnsLabelRe.MatchString(v) {
		c.add(field, quote(v)+" is not a DNS label", expectLabel)
		return false
	}
	return true
}

func (c *checker) port(field string, n int) {
	if n < 1 || n > 65535 {
		c.add(field, fmt.Sprintf("is %d", n), expectPort)
	}
}

// user checks a login name; empty means inherited and is fine.
func (c *checker) user(field, u string) {
	if u != "" && !userRe.MatchString(u) {
		c.add(field, quote(u)+" is not a user name", "a login name: letters, digits, _ . -")
	}
}

// envName checks the name of an environment variable (empty = not used).
// The value is never echoed: it may be the secret itself, put there by mistake.
func (c *checker) envName(field, name string) {
	if name != "" && !envNameRe.MatchString(name) {
		c.add(field, "is not a valid environment variable name", expectEnvName)
	}
}

func (c *checker) hostKey(field, key string) {
	if key == "" {
		return
	}
	_, _, options, rest, err := ssh.ParseAuthorizedKey([]byte(key))
	if err != nil || len(options) > 0 || strings.TrimSpace(string(rest)) != "" {
		c.add(field, "is not one SSH public key", `one key in authorized_keys format, e.g. "ssh-ed25519 AAAA..."`)
	}
}

func (c *checker) kubernetesVersion(field, v string) {
	expected := fmt.Sprintf("vMAJOR.MINOR.PATCH from v1.%d.0 to v1.%d.x, e.g. %s", minKubernetesMinor, maxKubernetesMinor, defaultKubernetesVersion)
	m := kubeVersionRe.FindStringSubmatch(v)
	if m == nil {
		c.add(field, quote(v)+" is not a version", expected)
		return
	}
	minor, err := strconv.Atoi(m[2])
	if m[1] != "1" || err != nil || minor < minKubernetesMinor || minor > maxKubernetesMinor {
		c.add(field, quote(v)+" is not supported", expected)
	}
}

// cidr parses a CIDR, reporting it when bad; it returns the zero Prefix then.
func (c *checker) cidr(field, v string) netip.Prefix {
	p, err := netip.ParsePrefix(v)
	if err != nil {
		c.add(field, quote(v)+" is not a CIDR", "a network such as 10.244.0.0/16")
		return netip.Prefix{}
	}
	if p != p.Masked() {
		c.add(field, quote(v)+" has host bits set", "the network address, "+p.Masked().String())
		return netip.Prefix{}
	}
	return p
}

var cronFields = []struct {
	name   string
	lo, hi int
	names  []string // names for lo, lo+1, ...
}{
	{"minute", 0, 59, nil},
	{"hour", 0, 23, nil},
	{"day of month", 1, 31, nil},
	{"month", 1, 12, strings.Fields("jan feb mar apr may jun jul aug sep oct nov dec")},
	{"day of week", 0, 7, strings.Fields("sun mon tue wed thu fri sat")},
}

func (c *checker) cron(field, spec string) {
	const expected = `5 cron fields: minute hour day-of-month month day-of-week, e.g. "0 */12 * * *"`
	fields := strings.Fields(spec)
	if len(fields) != len(cronFields) {
		c.add(field, fmt.Sprintf("%s has %d fields", quote(spec), len(fields)), expected)
		return
	}
	for i, f := range fields {
		if cf := cronFields[i]; !cronFieldOK(f, cf.lo, cf.hi, cf.names) {
			c.add(field, fmt.Sprintf("the %s field %s is not valid", cf.name, quote(f)),
				fmt.Sprintf("*, numbers %d-%d, ranges a-b, lists a,b and steps /n", cf.lo, cf.hi))
		}
	}
}

// cronFieldOK checks one cron field: a comma list of *, n or n-m, each
// optionally followed by /step.
func cronFieldOK(f string, lo, hi int, names []string) bool {
	value := func(s string) (int, bool) {
		for i, n := range names {
			if strings.EqualFold(s, n) {
				return lo + i, true
			}
		}
		n, err := strconv.Atoi(s)
		return n, err == nil && n >= lo && n <= hi
	}
	for item := range strings.SplitSeq(f, ",") {
		rng, step, hasStep := strings.Cut(item, "/")
		if hasStep {
			if n, err := strconv.Atoi(step); err != nil || n < 1 {
				return false
			}
		}
		if rng == "*" {
			continue
		}
		lo, hi, isRange := strings.Cut(rng, "-")
		a, ok := value(lo)
		if !ok {
			return false
		}
		if isRange {
			if b, ok := value(hi); !ok || b < a {
				return false
			}
		}
	}
	return true
}

// Value predicates.

func isIP(s string) bool {
	ip, err := netip.ParseAddr(s)
	return err == nil && ip.Zone() == ""
}

// isIPv4 is an IPv4 address, also written as an IPv4-mapped IPv6 one.
func isIPv4(s string) bool {
	ip, err := netip.ParseAddr(s)
	return err == nil && ip.Unmap().Is4()
}

// isFQDN is a DNS name with at least two labels.
func isFQDN(s string) bool {
	return IsDNSName(s) && strings.Contains(strings.TrimSuffix(s, "."), ".")
}

func isAddress(s string) bool {
	return isIP(s) || IsDNSName(s)
}

// normalAddress makes equal addresses compare equal.
func normalAddress(s string) string {
	if ip, err := netip.ParseAddr(s); err == nil {
		return ip.Unmap().String()
	}
	return strings.ToLower(strings.TrimSuffix(s, "."))
}

func isEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return false
	}
	at := strings.LastIndex(s, "@")
	return at > 0 && isFQDN(s[at+1:])
}

// ingressNginxTestedUpTo is the newest Kubernetes minor version the final
// ingress-nginx chart (4.15.1) is tested with upstream.
const ingressNginxTestedUpTo = "1.35"

// Warnings lists what is valid but needs the operator's attention, each
// located like a problem (file:line: field: message (what to do)): today,
// the ingress controller ingress-nginx, retired upstream, each chart whose
// http:// repository insecureHTTP accepts, each registry mirror of a
// registry nothing pulls from, online a missing
// registry.maintenance.image (no gc and prune CronJobs then), and a prune
// job that logs in as the admin (auth mode htpasswd).
func (inv Inventory) Warnings() []Problem {
	var out []Problem
	if inv.Addons.Ingress.Controller == IngressNginx {
		out = append(out, inv.problem("addons.ingress.controller",
			fmt.Sprintf("ingress-nginx was retired upstream in March 2026: its final chart 4.15.1 is tested upstream only up to Kubernetes %s (cluster.kubernetesVersion is %s)",
				ingressNginxTestedUpTo, inv.Cluster.KubernetesVersion),
			"its maintained successor Traefik serves the same Ingress: switch with one field, addons.ingress.controller: "+IngressTraefik))
	}
	if !inv.BootImageKnown() {
		jobs := "the registry's gc CronJob is"
		if inv.Registry.Pruner.Runs() {
			jobs = "the registry's gc and prune CronJobs are"
		}
		out = append(out, inv.problem("registry.maintenance.image",
			"is not set: "+jobs+" not installed, so no blob is ever freed. boot runs them only from its image pinned by digest from a source it controls, never by a tag from the registry they maintain, where whoever can push could replace the image and run code with the jobs' rights",
			"boot's image (images/boot.tar of `boot bundle build`, its digest in the bundle's manifest.json) pushed to a registry you control and given as repository@sha256:<digest>; or run `boot registry gc --kubeconfig ...` yourself"))
	}
	r := inv.Registry
	if r.Auth.Mode == AuthHtpasswd && r.Pruner.Runs() && inv.BootImageKnown() {
		out = append(out, inv.problem("registry.auth.mode",
			"is "+AuthHtpasswd+": the prune CronJob logs in as the admin, whose password then crosses the cluster's network in plain HTTP to the registry's Service with every request",
			"mode "+AuthToken+" (the default with boot's image): the pruner gets a user of its own that may only list, read and delete, and sends its password only to the token service"))
	}
	out = append(out, inv.mirrorWarnings()...)
	for _, ch := range inv.Addons.fieldCharts() {
		if ch.chart.Path == "" && ch.chart.InsecureHTTP {
			out = append(out, inv.problem(ch.field+".repository",
				fmt.Sprintf("chart %s %s comes over plain http from %s (insecureHTTP: true): its index and archive can be tampered with in transit",
					ch.chart.Name, ch.chart.Version, ch.chart.Repository),
				"an https:// repository, an oci:// reference, a local path or the offline bundle"))
		}
	}
	return out
}
