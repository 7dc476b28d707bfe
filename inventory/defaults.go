package inventory

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Defaults, filled by applyDefaults; each is also documented beside its field
// in types.go.
const (
	defaultKubernetesVersion = "v1.37.2"
	defaultPodCIDR           = "10.244.0.0/16"
	defaultServiceCIDR       = "10.96.0.0/12"
	defaultAPIServerPort     = 6443
	defaultSSHUser           = "root"
	defaultSSHPort           = 22
	defaultKnownHosts        = "~/.ssh/known_hosts"
	defaultConnectTimeout    = 10 * time.Second
	defaultRegistryNamespace = "docker-registry"
	defaultStorageSize       = "20Gi"
	defaultS3Replicas        = 2
	defaultRegistryUser      = "admin"
	defaultRedisMaxMemory    = "256mb"
	defaultGCSchedule        = "30 */12 * * *"
	defaultPrunerSchedule    = "0 */12 * * *"
	defaultMaxDeletions      = 500
	defaultDNSTTL            = 300

	// The final upstream ingress-nginx chart: the project was retired in March 2026.
	defaultIngressNginxRepository = "https://kubernetes.github.io/ingress-nginx"
	defaultIngressNginxChart      = "ingress-nginx"
	defaultIngressNginxVersion    = "4.15.1"

	defaultCertManagerRepository = "oci://quay.io/jetstack/charts/cert-manager"
	defaultCertManagerChart      = "cert-manager"
	defaultCertManagerVersion    = "v1.21.1"

	defaultTraefikRepository = "https://traefik.github.io/charts"
	defaultTraefikChart      = "traefik"
	defaultTraefikVersion    = "41.3.0"
)

// applyDefaults fills every field left empty with its default. It is the
// only place defaults are set. Paths are resolved afterwards by resolvePaths.
func (inv *Inventory) applyDefaults() {
	c := &inv.Cluster
	setString(&c.KubernetesVersion, defaultKubernetesVersion)
	setString(&c.PodCIDR, defaultPodCIDR)
	setString(&c.ServiceCIDR, defaultServiceCIDR)
	setString(&c.CNI, CNIFlannel)
	setInt(&c.APIServerPort, defaultAPIServerPort)
	if c.Kubeconfig == "" && inv.Metadata.Name != "" {
		c.Kubeconfig = inv.Metadata.Name + ".kubeconfig" // resolved beside the inventory
	}

	s := &inv.SSH
	setString(&s.User, defaultSSHUser)
	setInt(&s.Port, defaultSSHPort)
	setString(&s.KnownHosts, defaultKnownHosts)
	setString(&s.HostKeyPolicy, HostKeyStrict)
	if s.ConnectTimeout == 0 {
		s.ConnectTimeout = defaultConnectTimeout
	}
	setBool(&s.Agent, true)
	if b := s.Bastion; b != nil {
		setInt(&b.Port, defaultSSHPort)
		setString(&b.User, s.User)
		setBool(&b.Agent, true)
		if b.KeyPath == "" && s.KeyPath != "" {
			b.KeyPath, b.KeyPassphraseEnv = s.KeyPath, pick(b.KeyPassphraseEnv, s.KeyPassphraseEnv)
			inv.copyOrigin("ssh.keyPath", "ssh.bastion.keyPath")
		}
	}

	for i := range inv.Hosts {
		h := &inv.Hosts[i]
		if h.PrivateAddress == "" {
			h.PrivateAddress = h.Address
			inv.copyOrigin(hostField(i, "address"), hostField(i, "privateAddress"))
		}
		setBool(&h.Ingress, h.Role == RoleWorker)
	}
	// After the hosts' defaults: the endpoint is the control plane's address.
	if cps := inv.hostsWithRole(RoleControlPlane); c.ControlPlaneEndpoint == "" && len(cps) == 1 && cps[0].Address != "" {
		c.ControlPlaneEndpoint = cps[0].Address
	}
	if ep := c.ControlPlaneEndpoint; ep != "" {
		if _, _, err := net.SplitHostPort(ep); err != nil {
			c.ControlPlaneEndpoint = net.JoinHostPort(strings.Trim(ep, "[]"), strconv.Itoa(c.APIServerPort))
		}
	}

	setString(&inv.Packages.Source, SourceOnline)

	r := &inv.Registry
	setString(&r.Namespace, defaultRegistryNamespace)
	setString(&r.Issuer, IssuerLetsEncrypt)
	setString(&r.ACME.Solver, SolverHTTP01)
	setString(&r.Storage.Type, StoragePVC)
	setString(&r.Storage.Size, defaultStorageSize)
	if r.Storage.Type == StorageS3 {
		setInt(&r.Replicas, defaultS3Replicas)
	} else {
		setInt(&r.Replicas, 1)
	}
	setString(&r.Auth.User, defaultRegistryUser)
	if inv.BootImageKnown() {
		setString(&r.Auth.Mode, AuthToken)
	} else {
		setString(&r.Auth.Mode, AuthHtpasswd)
	}
	setBool(&r.Redis.Enabled, r.Storage.Type == StorageS3)
	setString(&r.Redis.MaxMemory, defaultRedisMaxMemory)
	setString(&r.GC.Schedule, defaultGCSchedule)
	setBool(&r.Pruner.Enabled, true)
	setString(&r.Pruner.Schedule, defaultPrunerSchedule)
	setInt(&r.Pruner.MaxDeletions, defaultMaxDeletions)

	setString(&inv.DNS.Provider, DNSNone)
	setInt(&inv.DNS.TTL, defaultDNSTTL)

	defaultAddons(&inv.Addons)
}

// DefaultAddons returns the addons section an inventory gets when it names
// no charts: the pinned upstream charts, the default ingress controller and
// mode. It is the one place the charts' pins live.
func DefaultAddons() Addons {
	var a Addons
	defaultAddons(&a)
	return a
}

func defaultAddons(a *Addons) {
	setString(&a.Ingress.Controller, IngressNginx)
	defaultChart(&a.IngressNginx, defaultIngressNginxRepository, defaultIngressNginxChart, defaultIngressNginxVersion)
	defaultChart(&a.Traefik, defaultTraefikRepository, defaultTraefikChart, defaultTraefikVersion)
	defaultChart(&a.CertManager, defaultCertManagerRepository, defaultCertManagerChart, defaultCertManagerVersion)
	setString(&a.IngressMode, IngressHostNetwork)
}

// defaultChart fills a chart that does not come from a local path. The
// defaults' name is kept only with the default repository; another oci://
// reference is named after its last path element.
func defaultChart(ch *Chart, repository, name, version string) {
	if ch.Path != "" {
		return
	}
	setString(&ch.Repository, repository)
	setString(&ch.Version, version)
	switch {
	case ch.Repository == repository:
		setString(&ch.Name, name)
	case strings.HasPrefix(ch.Repository, "oci://"):
		setString(&ch.Name, ch.Repository[strings.LastIndex(ch.Repository, "/")+1:])
	}
}

// copyOrigin makes a field defaulted from another one point where that one
// came from, so that a problem with the value names the right line.
func (inv *Inventory) copyOrigin(from, to string) {
	if o, ok := inv.origins[from]; ok {
		inv.origins[to] = o
	}
}

func setString(p *string, def string) {
	if *p == "" {
		*p = def
	}
}

func setInt(p *int, def int) {
	if *p == 0 {
		*p = def
	}
}

func setBool(p **bool, def bool) {
	if *p == nil {
		*p = &def
	}
}

func hostField(i int, name string) string {
	return "hosts[" + strconv.Itoa(i) + "]." + name
}

// resolvePaths makes every operator-side path absolute: "~" and "~/..." are
// the home folder; a relative path from the file (or a default) is relative
// to the inventory's folder, one from the environment to the current folder.
func (inv *Inventory) resolvePaths() []Problem {
	type pathField struct {
		field string
		p     *string
	}
	fields := []pathField{
		{"cluster.kubeconfig", &inv.Cluster.Kubeconfig},
		{"ssh.keyPath", &inv.SSH.KeyPath},
		{"ssh.knownHosts", &inv.SSH.KnownHosts},
		{"packages.bundle", &inv.Packages.Bundle},
		{"registry.acme.caFile", &inv.Registry.ACME.CAFile},
		{"addons.ingressNginx.path", &inv.Addons.IngressNginx.Path},
		{"addons.traefik.path", &inv.Addons.Traefik.Path},
		{"addons.certManager.path", &inv.Addons.CertManager.Path},
	}
	if inv.SSH.Bastion != nil {
		fields = append(fields, pathField{"ssh.bastion.keyPath", &inv.SSH.Bastion.KeyPath})
	}
	for i := range inv.Hosts {
		fields = append(fields, pathField{hostField(i, "ssh.keyPath"), &inv.Hosts[i].SSH.KeyPath})
	}
	for _, m := range inv.Packages.fieldMirrors() {
		if m.mirror != nil {
			fields = append(fields, pathField{m.field + ".caFile", &m.mirror.CAFile}, pathField{m.field + ".keyFile", &m.mirror.KeyFile})
		}
	}
	for i := range inv.Cluster.RegistryMirrors {
		fields = append(fields, pathField{fmt.Sprintf("cluster.registryMirrors[%d].caFile", i), &inv.Cluster.RegistryMirrors[i].CAFile})
	}
	var problems []Problem
	for _, f := range fields {
		if *f.p == "" {
			continue
		}
		base := filepath.Dir(inv.Path)
		if inv.origins[f.field].env != "" {
			base = "."
		}
		resolved, msg := resolvePath(*f.p, base)
		if msg != "" {
			problems = append(problems, inv.problem(f.field, msg, "an absolute path, a path relative to the inventory, or ~/path"))
			continue
		}
		*f.p = resolved
	}
	return problems
}

// resolvePath resolves p as resolvePaths says, or says what is wrong.
func resolvePath(p, base string) (string, string) {
	if p == "~" || strings.HasPrefix(p, "~/") {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", "cannot expand ~: the home folder is unknown ($HOME is not set)"
		}
		p = filepath.Join(home, p[1:])
	} else if strings.HasPrefix(p, "~") {
		return "", quote(p) + " uses ~user, which is not supported"
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(base, p)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", "cannot make " + quote(p) + " absolute: " + err.Error()
	}
	return abs, ""
}
