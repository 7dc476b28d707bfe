package inventory

import "time"

// APIVersion and Kind identify the inventory schema this package reads.
const (
	APIVersion = "boot/v1alpha1"
	Kind       = "Cluster"
)

// Roles a host can have.
const (
	RoleControlPlane = "control-plane"
	RoleWorker       = "worker"
)

// Host-key policies.
const (
	HostKeyStrict    = "strict"
	HostKeyAcceptNew = "accept-new"
)

// Package sources.
const (
	SourceOnline = "online"
	SourceBundle = "bundle"
)

// CNIFlannel is the only CNI boot installs for now.
const CNIFlannel = "flannel"

// Certificate issuers for the registry's TLS certificate.
const (
	IssuerLetsEncrypt        = "letsencrypt"
	IssuerLetsEncryptStaging = "letsencrypt-staging"
	IssuerSelfSigned         = "selfsigned"
	IssuerACME               = "acme" // any ACME directory, registry.acme.server
)

// ACME challenge solvers.
const (
	SolverHTTP01 = "http01" // through the ingress class nginx
	SolverDNS01  = "dns01"  // TXT records in the Route53 zone boot manages
)

// Ingress controllers. ingress-nginx was retired upstream in March 2026;
// Traefik serves the same Ingress objects (class nginx) through its
// kubernetesIngressNGINX provider.
const (
	IngressNginx   = "ingress-nginx"
	IngressTraefik = "traefik"
)

// Registry authentication modes.
const (
	// AuthToken: boot's token service (the registry chart runs it from the
	// maintenance image) checks passwords once per token and issues
	// short-lived ES256 tokens; users have roles.
	AuthToken = "token"
	// AuthHtpasswd: the registry checks a bcrypt htpasswd on every request;
	// one user, no roles.
	AuthHtpasswd = "htpasswd"
)

// Registry user roles (mode token): what a user may do in every repository.
const (
	RoleAdmin = "admin" // pull, push, delete, the catalog
	RolePush  = "push"  // pull, push
	RolePull  = "pull"  // pull
)

// Registry blob-descriptor caches (Registry.Cache).
const (
	CacheRedis    = "redis"    // shared by every replica
	CacheInMemory = "inmemory" // each registry pod's own
)

// Registry storage types.
const (
	StoragePVC = "pvc"
	StorageS3  = "s3"
)

// DNS providers.
const (
	DNSNone    = "none"
	DNSRoute53 = "route53"
)

// Ingress modes.
const (
	IngressHostNetwork = "hostNetwork"
	IngressNodePort    = "nodePort"
)

// Inventory is one cluster: its hosts, how to reach them, and what to put on them.
//
// Secrets never live in this structure in clear: fields ending in Env name an
// environment variable, fields ending in File name a file, and the value is
// read only when it is needed.
type Inventory struct {
	APIVersion string   `yaml:"apiVersion" mapstructure:"apiVersion"`
	Kind       string   `yaml:"kind" mapstructure:"kind"`
	Metadata   Metadata `yaml:"metadata" mapstructure:"metadata"`
	Cluster    Cluster  `yaml:"cluster" mapstructure:"cluster"`
	SSH        SSH      `yaml:"ssh" mapstructure:"ssh"`
	Hosts      []Host   `yaml:"hosts" mapstructure:"hosts"`
	Packages   Packages `yaml:"packages" mapstructure:"packages"`
	Registry   Registry `yaml:"registry" mapstructure:"registry"`
	DNS        DNS      `yaml:"dns" mapstructure:"dns"`
	Addons     Addons   `yaml:"addons" mapstructure:"addons"`
	// Proxy is the forward proxy every host reaches the outside through
	// (apt, containerd, docker, the kubelet); a host's own proxy replaces it.
	Proxy *Proxy `yaml:"proxy" mapstructure:"proxy"`

	// Path is the file the inventory was loaded from (not part of the schema).
	Path string `yaml:"-" mapstructure:"-"`

	// origins records where each field came from (file line or env var), so
	// that Validate can name it. Keys are field paths such as "hosts[1].ssh.port".
	origins map[string]origin
}

// Metadata names the cluster.
type Metadata struct {
	// Name is the cluster's name (required): a DNS label, used for the
	// kubeconfig context and the default kubeconfig file name.
	Name string `yaml:"name" mapstructure:"name"`
}

// Cluster holds the Kubernetes settings.
type Cluster struct {
	KubernetesVersion string `yaml:"kubernetesVersion" mapstructure:"kubernetesVersion"` // vMAJOR.MINOR.PATCH, v1.30.0-v1.37.x; default v1.37.2
	PodCIDR           string `yaml:"podCIDR" mapstructure:"podCIDR"`                     // default 10.244.0.0/16
	ServiceCIDR       string `yaml:"serviceCIDR" mapstructure:"serviceCIDR"`             // default 10.96.0.0/12
	CNI               string `yaml:"cni" mapstructure:"cni"`                             // flannel (default)
	// ControlPlaneEndpoint is host[:port] of the API server (without a port,
	// APIServerPort); default: the control plane's address and APIServerPort.
	ControlPlaneEndpoint string `yaml:"controlPlaneEndpoint" mapstructure:"controlPlaneEndpoint"`
	APIServerPort        int    `yaml:"apiServerPort" mapstructure:"apiServerPort"` // default 6443
	// ImageRepository overrides where kubeadm pulls control-plane images from.
	ImageRepository string `yaml:"imageRepository" mapstructure:"imageRepository"`
	// Nameservers are the DNS servers the kubelet gives CoreDNS and
	// host-network pods as upstream, written to /etc/kubernetes/resolv.conf.
	// Needed when the hosts' /etc/resolv.conf names only a local stub
	// resolver other than systemd-resolved (e.g. Docker's 127.0.0.11, or
	// dnsmasq on 127.0.0.1): CoreDNS forwarding to a loopback address
	// reaches itself and stops with "Loop detected". Empty: the hosts'
	// resolv.conf (kubeadm picks systemd-resolved's real one by itself).
	Nameservers []string `yaml:"nameservers" mapstructure:"nameservers"`
	// RegistryMirrors are where containerd pulls images of an upstream
	// registry from instead (written as /etc/containerd/certs.d/<registry>/hosts.toml):
	// images keep their upstream names. Docker's daemon gets docker.io's
	// mirrors as its registry-mirrors.
	RegistryMirrors []RegistryMirror `yaml:"registryMirrors" mapstructure:"registryMirrors"`
	// Kubeconfig is where the admin kubeconfig is written on the operator's machine;
	// default <folder of the inventory file>/<metadata.name>.kubeconfig.
	Kubeconfig string `yaml:"kubeconfig" mapstructure:"kubeconfig"`
	// Kubelet holds what boot sets in every node's kubelet configuration.
	Kubelet Kubelet `yaml:"kubelet" mapstructure:"kubelet"`
}

// Kubelet holds what boot sets in every node's kubelet configuration (the
// kubelet-config ConfigMap kubeadm keeps, and each node's copy of it).
type Kubelet struct {
	// EvictionHard are the kubelet's hard eviction thresholds: below one,
	// the kubelet taints its Node with the pressure and evicts pods at once.
	// Empty: the kubelet's defaults.
	EvictionHard EvictionHard `yaml:"evictionHard" mapstructure:"evictionHard"`
}

// EvictionHard are kubelet hard eviction thresholds, each a percentage of
// the resource ("10%") or an amount ("2Gi"; for inodes a count, "100k"). A
// field left empty keeps the kubelet's default (KubeletEvictionDefaults).
type EvictionHard struct {
	MemoryAvailable   string `yaml:"memoryAvailable" mapstructure:"memoryAvailable"`     // memory.available, default 100Mi
	NodefsAvailable   string `yaml:"nodefsAvailable" mapstructure:"nodefsAvailable"`     // nodefs.available (the kubelet's own files), default 10%
	NodefsInodesFree  string `yaml:"nodefsInodesFree" mapstructure:"nodefsInodesFree"`   // nodefs.inodesFree, default 5%
	ImagefsAvailable  string `yaml:"imagefsAvailable" mapstructure:"imagefsAvailable"`   // imagefs.available (containerd's images), default 15%
	ImagefsInodesFree string `yaml:"imagefsInodesFree" mapstructure:"imagefsInodesFree"` // imagefs.inodesFree, default 5%
}

// SSH is how boot reaches hosts. Hosts may override any of it.
type SSH struct {
	User             string        `yaml:"user" mapstructure:"user"`                         // default root
	Port             int           `yaml:"port" mapstructure:"port"`                         // default 22
	KeyPath          string        `yaml:"keyPath" mapstructure:"keyPath"`                   // private key file; empty = agent/password only
	KeyPassphraseEnv string        `yaml:"keyPassphraseEnv" mapstructure:"keyPassphraseEnv"` // env var holding the key's passphrase
	Agent            *bool         `yaml:"agent" mapstructure:"agent"`                       // use the agent at $SSH_AUTH_SOCK when that is set; default true
	PasswordEnv      string        `yaml:"passwordEnv" mapstructure:"passwordEnv"`           // env var holding the login password
	KnownHosts       string        `yaml:"knownHosts" mapstructure:"knownHosts"`             // default ~/.ssh/known_hosts
	HostKeyPolicy    string        `yaml:"hostKeyPolicy" mapstructure:"hostKeyPolicy"`       // strict (default) | accept-new
	ConnectTimeout   time.Duration `yaml:"connectTimeout" mapstructure:"connectTimeout"`     // default 10s
	Bastion          *Bastion      `yaml:"bastion" mapstructure:"bastion"`
	Sudo             Sudo          `yaml:"sudo" mapstructure:"sudo"`
}

// Bastion is one jump host, with its own credentials and host key. Its host
// key is checked like the hosts' (KnownHosts and HostKeyPolicy of SSH) unless
// HostKey pins it.
type Bastion struct {
	Address          string `yaml:"address" mapstructure:"address"`                   // IP or DNS name, required
	Port             int    `yaml:"port" mapstructure:"port"`                         // default 22
	User             string `yaml:"user" mapstructure:"user"`                         // default: ssh.user
	KeyPath          string `yaml:"keyPath" mapstructure:"keyPath"`                   // private key file; default ssh.keyPath
	KeyPassphraseEnv string `yaml:"keyPassphraseEnv" mapstructure:"keyPassphraseEnv"` // env var holding the key's passphrase; default ssh's with ssh.keyPath
	Agent            *bool  `yaml:"agent" mapstructure:"agent"`                       // default true (as ssh.agent)
	PasswordEnv      string `yaml:"passwordEnv" mapstructure:"passwordEnv"`           // env var holding the login password
	HostKey          string `yaml:"hostKey" mapstructure:"hostKey"`                   // pinned public key, authorized_keys format
}

// Sudo says how to become root when the SSH user is not root.
type Sudo struct {
	PasswordEnv string `yaml:"passwordEnv" mapstructure:"passwordEnv"` // env var with the sudo password; empty = passwordless sudo
}

// HostSSH holds the per-host overrides of SSH. Empty fields inherit; a host's
// own KeyPath does not inherit SSH.KeyPassphraseEnv.
type HostSSH struct {
	User             string `yaml:"user" mapstructure:"user"`
	Port             int    `yaml:"port" mapstructure:"port"`
	KeyPath          string `yaml:"keyPath" mapstructure:"keyPath"`
	KeyPassphraseEnv string `yaml:"keyPassphraseEnv" mapstructure:"keyPassphraseEnv"`
	PasswordEnv      string `yaml:"passwordEnv" mapstructure:"passwordEnv"`
	SudoPasswordEnv  string `yaml:"sudoPasswordEnv" mapstructure:"sudoPasswordEnv"`
}

// Host is one machine of the cluster.
type Host struct {
	Name           string  `yaml:"name" mapstructure:"name"`                     // node name, a DNS label
	Address        string  `yaml:"address" mapstructure:"address"`               // where SSH (and the operator) reach it: IP or DNS name
	PrivateAddress string  `yaml:"privateAddress" mapstructure:"privateAddress"` // cluster-internal IP; default Address (then Address must be an IP)
	Role           string  `yaml:"role" mapstructure:"role"`                     // control-plane | worker
	SSH            HostSSH `yaml:"ssh" mapstructure:"ssh"`
	HostKey        string  `yaml:"hostKey" mapstructure:"hostKey"` // pinned public key, authorized_keys format
	Ingress        *bool   `yaml:"ingress" mapstructure:"ingress"` // runs the ingress controller; default true on workers, false on the control plane
	// Proxy replaces the inventory's proxy for this host (e.g. the only
	// host that must go through one).
	Proxy *Proxy `yaml:"proxy" mapstructure:"proxy"`
}

// Proxy is a forward proxy: apt, containerd, docker and the kubelet use it
// (systemd drop-ins and an apt.conf.d file). boot adds to NoProxy what must
// never go through it: localhost, the pod and service CIDRs, every node's
// addresses, the API endpoint's host and the cluster's service domain.
type Proxy struct {
	HTTPProxy  string   `yaml:"httpProxy" mapstructure:"httpProxy"`   // http://host:port, for http:// URLs
	HTTPSProxy string   `yaml:"httpsProxy" mapstructure:"httpsProxy"` // http://host:port (or https://), for https:// URLs
	NoProxy    []string `yaml:"noProxy" mapstructure:"noProxy"`       // host names, .domain suffixes, IPs and CIDRs reached directly
}

// RegistryMirror is one upstream registry's mirrors.
type RegistryMirror struct {
	// Registry is the upstream registry as images name it: registry.k8s.io,
	// docker.io, quay.io, ghcr.io, or host[:port].
	Registry string `yaml:"registry" mapstructure:"registry"`
	// Endpoints are tried in order, then the registry itself: http(s)://host[:port][/path].
	// With a path (a registry that keeps each upstream under its own
	// prefix, e.g. https://mirror.example.com/v2/registry.k8s.io) the path
	// is used as is (containerd's override_path), so it must end in what
	// stands for /v2.
	Endpoints []string `yaml:"endpoints" mapstructure:"endpoints"`
	// CAFile is a PEM bundle of the CAs that signed the endpoints' TLS
	// certificates, when the system roots do not.
	CAFile string `yaml:"caFile" mapstructure:"caFile"`
}

// Packages says where the runtime and Kubernetes come from.
type Packages struct {
	Source string `yaml:"source" mapstructure:"source"` // online (default) | bundle
	Bundle string `yaml:"bundle" mapstructure:"bundle"` // bundle folder on the operator's machine; required when source is bundle
	// RuntimeBinary overrides the OCI runtime containerd runs (default runc);
	// the lab sets a wrapper here for hosts whose kernel lacks capabilities.
	// An absolute path on the hosts.
	RuntimeBinary string   `yaml:"runtimeBinary" mapstructure:"runtimeBinary"`
	Versions      Versions `yaml:"versions" mapstructure:"versions"`
	// Mirrors replace the online source's download sites.
	Mirrors PackageMirrors `yaml:"mirrors" mapstructure:"mirrors"`
}

// PackageMirrors are the online source's download sites' replacements.
type PackageMirrors struct {
	// Docker replaces https://download.docker.com: the repository is
	// <url>/linux/<debian|ubuntu>, signed by <url>/linux/<os>/gpg unless
	// keyFile is given.
	Docker *PackageMirror `yaml:"docker" mapstructure:"docker"`
	// Kubernetes replaces https://pkgs.k8s.io: the repository of minor
	// vX.Y is <url>/core:/stable:/vX.Y/deb/, signed by its Release.key
	// unless keyFile is given.
	Kubernetes *PackageMirror `yaml:"kubernetes" mapstructure:"kubernetes"`
	// Helm replaces https://get.helm.sh: <url>/helm-<version>-linux-<arch>.tar.gz
	// and its .sha256sum (keyFile does not apply).
	Helm *PackageMirror `yaml:"helm" mapstructure:"helm"`
}

// PackageMirror is a download site's replacement.
type PackageMirror struct {
	URL string `yaml:"url" mapstructure:"url"` // http(s):// base URL (https for helm)
	// CAFile is a PEM bundle of the CAs that signed the mirror's TLS
	// certificate, when the system roots do not (https only).
	CAFile string `yaml:"caFile" mapstructure:"caFile"`
	// KeyFile is the OpenPGP public key (armored) that signs the mirror's
	// repository, for a mirror that signs with its own key; empty: the key
	// the mirror serves where upstream serves its own.
	KeyFile string `yaml:"keyFile" mapstructure:"keyFile"`
}

// Versions pins what the online source installs. Containerd (containerd.io)
// and Docker (docker-ce, docker-ce-cli) are package versions such as 28.1.1
// or an exact apt version; empty = the installed one, else the newest. Helm
// is a release, 3.22.0 or v3.22.0; empty = the one boot pins. "latest" and
// ranges are refused. (cniPlugins, read by nothing, was removed: the CNI
// plugins come from the bundle, or online with kubelet's package.)
type Versions struct {
	Containerd string `yaml:"containerd" mapstructure:"containerd"`
	Docker     string `yaml:"docker" mapstructure:"docker"`
	Helm       string `yaml:"helm" mapstructure:"helm"`
}

// Registry is the private Docker registry boot installs.
type Registry struct {
	Host      string  `yaml:"host" mapstructure:"host"`           // required DNS name, e.g. registry.example.com
	ACMEEmail string  `yaml:"acmeEmail" mapstructure:"acmeEmail"` // ACME account e-mail; required for the letsencrypt issuers
	Issuer    string  `yaml:"issuer" mapstructure:"issuer"`       // letsencrypt (default) | letsencrypt-staging | selfsigned | acme
	ACME      ACME    `yaml:"acme" mapstructure:"acme"`
	Namespace string  `yaml:"namespace" mapstructure:"namespace"` // default docker-registry
	Storage   Storage `yaml:"storage" mapstructure:"storage"`
	// Replicas is how many registry pods serve: default 2 with storage
	// type s3 (spread over the nodes, with a PodDisruptionBudget), 1 with
	// pvc (a ReadWriteOnce volume attaches to one node: more is refused).
	Replicas int          `yaml:"replicas" mapstructure:"replicas"`
	Auth     RegistryAuth `yaml:"auth" mapstructure:"auth"`
	Redis    Redis        `yaml:"redis" mapstructure:"redis"`
	GC       GC           `yaml:"gc" mapstructure:"gc"`
	Pruner   Pruner       `yaml:"pruner" mapstructure:"pruner"`
	// Maintenance is where the gc and prune CronJobs' image comes from.
	Maintenance Maintenance `yaml:"maintenance" mapstructure:"maintenance"`
}

// ACME says how an ACME issuer (acme, letsencrypt, letsencrypt-staging)
// gets the registry's certificate.
type ACME struct {
	// Server is the ACME directory's https:// URL; required with issuer acme
	// (any ACME CA: step-ca, a corporate CA, Pebble), refused with the others.
	Server string `yaml:"server" mapstructure:"server"`
	// CAFile is a PEM bundle of the CAs that signed the ACME server's TLS
	// certificate, when the system roots do not; read and checked at load.
	// Only with issuer acme.
	CAFile string `yaml:"caFile" mapstructure:"caFile"`
	// Solver answers the challenges: http01 (default; through the ingress
	// class nginx) or dns01 (TXT records in the Route53 zone of dns.zone, with
	// the AWS credentials boot itself uses; needs dns.provider route53).
	Solver string `yaml:"solver" mapstructure:"solver"`
	// RecursiveNameservers (host:port, dns01 only) are the only servers
	// cert-manager's DNS-01 self-check asks: for split-horizon DNS or private
	// zones. Empty: cert-manager's own choice.
	RecursiveNameservers []string `yaml:"recursiveNameservers" mapstructure:"recursiveNameservers"`
}

// Storage is where the registry keeps blobs.
type Storage struct {
	Type         string `yaml:"type" mapstructure:"type"`                 // pvc (default) | s3
	Size         string `yaml:"size" mapstructure:"size"`                 // PVC size, default 20Gi
	StorageClass string `yaml:"storageClass" mapstructure:"storageClass"` // PVC storage class; empty = cluster default
	S3           *S3    `yaml:"s3" mapstructure:"s3"`                     // required when type is s3
}

// S3 storage; credentials come from the environment, never the file. With
// neither AccessKeyEnv nor SecretKeyEnv the registry uses the nodes' own AWS
// identity (instance role).
type S3 struct {
	Bucket          string `yaml:"bucket" mapstructure:"bucket"`             // required
	Region          string `yaml:"region" mapstructure:"region"`             // required
	Endpoint        string `yaml:"endpoint" mapstructure:"endpoint"`         // http(s) URL of an S3-compatible service; empty = AWS
	AccessKeyEnv    string `yaml:"accessKeyEnv" mapstructure:"accessKeyEnv"` // env var holding the access key id (set both or neither)
	SecretKeyEnv    string `yaml:"secretKeyEnv" mapstructure:"secretKeyEnv"` // env var holding the secret key
	RedirectDisable bool   `yaml:"redirectDisable" mapstructure:"redirectDisable"`
}

// RegistryAuth is how the registry checks its users.
type RegistryAuth struct {
	// Mode is token or htpasswd. Default: token when the maintenance image
	// is known (registry.maintenance.image, or packages.source bundle, whose
	// boot image runs the token service), htpasswd otherwise.
	Mode string `yaml:"mode" mapstructure:"mode"`
	User string `yaml:"user" mapstructure:"user"` // the admin; default admin
	// PasswordEnv names an env var with the password; empty = generated once and kept in a Secret.
	PasswordEnv string `yaml:"passwordEnv" mapstructure:"passwordEnv"`
	// Users are more users, each with a role (mode token only).
	Users []RegistryUser `yaml:"users" mapstructure:"users"`
}

// RegistryUser is one more registry user (mode token).
type RegistryUser struct {
	Name string `yaml:"name" mapstructure:"name"`
	Role string `yaml:"role" mapstructure:"role"` // admin, push or pull
	// PasswordEnv names an env var with the password; empty = generated once and kept in a Secret.
	PasswordEnv string `yaml:"passwordEnv" mapstructure:"passwordEnv"`
}

// Cache is the registry's blob-descriptor cache: CacheRedis with
// redis.enabled (or before defaults, unset), CacheInMemory without.
func (r Registry) Cache() string {
	if r.Redis.Enabled == nil || *r.Redis.Enabled {
		return CacheRedis
	}
	return CacheInMemory
}

// BootImageKnown reports whether boot's own image is known (from the
// bundle, or registry.maintenance.image): the maintenance jobs and the token
// service run it.
func (inv Inventory) BootImageKnown() bool {
	return inv.Packages.Source == SourceBundle || inv.Registry.Maintenance.Image != ""
}

// Runs reports whether the prune job is installed: enabled (or unset) and
// with rules (no rules, no pruning).
func (p Pruner) Runs() bool {
	return (p.Enabled == nil || *p.Enabled) && len(p.Rules) > 0
}

// Redis is the registry's blob-descriptor cache.
type Redis struct {
	// Enabled: the cache is Redis, shared by every replica; otherwise each
	// registry pod's own (inmemory), one replica only. Default: true with
	// storage type s3, false with pvc, where a Redis round trip costs more
	// than the volume's read it saves.
	Enabled   *bool  `yaml:"enabled" mapstructure:"enabled"`
	MaxMemory string `yaml:"maxMemory" mapstructure:"maxMemory"` // default 256mb
}

// GC schedules the registry's garbage collection.
type GC struct {
	Schedule string `yaml:"schedule" mapstructure:"schedule"` // cron, default "30 */12 * * *"
}

// Maintenance says which image the registry's maintenance jobs (the gc and
// prune CronJobs, which run boot) run.
type Maintenance struct {
	// Image is boot's image pinned by digest, repository[:tag]@sha256:<64
	// hex>, from a registry other than registry.host (the jobs never run an
	// image from the registry they maintain). With packages.source bundle it
	// defaults to the bundle's boot image from cluster.imageRepository;
	// online, without it, the gc and prune CronJobs are not installed.
	Image string `yaml:"image" mapstructure:"image"`
}

// Pruner schedules the image pruner and holds its rules.
type Pruner struct {
	Enabled      *bool       `yaml:"enabled" mapstructure:"enabled"`           // default true
	Schedule     string      `yaml:"schedule" mapstructure:"schedule"`         // cron, default "0 */12 * * *"
	MaxDeletions int         `yaml:"maxDeletions" mapstructure:"maxDeletions"` // guard, default 500 (0 = default)
	Rules        []PruneRule `yaml:"rules" mapstructure:"rules"`
}

// PruneRule selects repositories and tags and says which of them to keep.
// Semantics are those of the pruner package. At least one of KeepLatest,
// KeepSemver and KeepDays must be set; counts are never negative.
type PruneRule struct {
	Repositories []string    `yaml:"repositories" mapstructure:"repositories"` // globs (path.Match syntax); empty = all
	Match        []string    `yaml:"match" mapstructure:"match"`               // tag regexes (Go RE2 syntax); empty = all
	Ignore       []string    `yaml:"ignore" mapstructure:"ignore"`             // tag regexes never touched
	KeepLatest   *int        `yaml:"keepLatest" mapstructure:"keepLatest"`
	KeepSemver   *KeepSemver `yaml:"keepSemver" mapstructure:"keepSemver"`
	KeepDays     *int        `yaml:"keepDays" mapstructure:"keepDays"`
}

// KeepSemver keeps only semantic-version tags, optionally only the highest N.
type KeepSemver struct {
	Highest int `yaml:"highest" mapstructure:"highest"` // 0 = all valid versions
}

// DNS is the record that points the registry host at the ingress nodes.
type DNS struct {
	Provider string `yaml:"provider" mapstructure:"provider"` // route53 | none (default)
	Zone     string `yaml:"zone" mapstructure:"zone"`         // hosted zone name, e.g. example.com; required for route53, must contain registry.host
	TTL      int    `yaml:"ttl" mapstructure:"ttl"`           // seconds, 1-86400; default 300
	// Addresses overrides the A record's targets; default: the ingress hosts' addresses.
	Addresses []string `yaml:"addresses" mapstructure:"addresses"`
}

// Addons chooses the ingress controller and pins the charts boot installs.
type Addons struct {
	Ingress Ingress `yaml:"ingress" mapstructure:"ingress"`
	// IngressNginx defaults to repository https://kubernetes.github.io/ingress-nginx,
	// name ingress-nginx, version 4.15.1 (the final upstream release: the
	// ingress-nginx project was retired in March 2026).
	IngressNginx Chart `yaml:"ingressNginx" mapstructure:"ingressNginx"`
	// Traefik defaults to repository https://traefik.github.io/charts, name
	// traefik, version 41.3.0.
	Traefik Chart `yaml:"traefik" mapstructure:"traefik"`
	// CertManager defaults to repository oci://quay.io/jetstack/charts/cert-manager,
	// name cert-manager, version v1.21.1.
	CertManager Chart `yaml:"certManager" mapstructure:"certManager"`
	// IngressMode is hostNetwork (default: a DaemonSet on the ingress hosts' ports 80/443) or nodePort.
	IngressMode string `yaml:"ingressMode" mapstructure:"ingressMode"`
}

// Ingress chooses the controller that serves the registry's Ingress (class
// nginx): ingress-nginx (default) or traefik. Switching is this one field and
// a re-run: the other controller's release, when boot installed it, is
// removed in that run.
type Ingress struct {
	Controller string `yaml:"controller" mapstructure:"controller"`
}

// Chart says where a chart comes from: a repository URL (https:// index or
// oci://) with a pinned version, or a local path/archive. Defaults are filled
// only when Path is empty.
type Chart struct {
	// Repository is an https:// chart repository (whose index lists Name)
	// or the full oci:// reference of the chart; an http:// one only with
	// InsecureHTTP.
	Repository string `yaml:"repository" mapstructure:"repository"`
	// InsecureHTTP accepts an http:// Repository, which is refused otherwise:
	// its index and archive travel unauthenticated and can be tampered with
	// in transit (the archive's digest is checked against an index that came
	// the same way), so boot warns about it. Only with an http:// Repository.
	InsecureHTTP bool `yaml:"insecureHTTP" mapstructure:"insecureHTTP"`
	// Name is the chart's name in an http(s) repository; for oci:// it
	// defaults to the reference's last path element.
	Name string `yaml:"name" mapstructure:"name"`
	// Version is an exact version (1.2.3 or v1.2.3, optionally -pre/+build);
	// ranges and "latest" are refused. Optional only with Path.
	Version string `yaml:"version" mapstructure:"version"`
	// Path is a local chart folder or .tgz; when set, Repository is not used.
	Path string `yaml:"path" mapstructure:"path"`
}
