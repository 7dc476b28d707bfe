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

	// Path is the file the inventory was loaded from (not part of the schema).
	Path string `yaml:"-" mapstructure:"-"`
}

// Metadata names the cluster.
type Metadata struct {
	// Name is the cluster's name: a DNS label, used for the kubeconfig context.
	Name string `yaml:"name" mapstructure:"name"`
}

// Cluster holds the Kubernetes settings.
type Cluster struct {
	KubernetesVersion string `yaml:"kubernetesVersion" mapstructure:"kubernetesVersion"` // e.g. v1.37.2
	PodCIDR           string `yaml:"podCIDR" mapstructure:"podCIDR"`                     // default 10.244.0.0/16
	ServiceCIDR       string `yaml:"serviceCIDR" mapstructure:"serviceCIDR"`             // default 10.96.0.0/12
	CNI               string `yaml:"cni" mapstructure:"cni"`                             // flannel (default)
	// ControlPlaneEndpoint is host[:port] of the API server; default: the
	// control plane's address and APIServerPort.
	ControlPlaneEndpoint string `yaml:"controlPlaneEndpoint" mapstructure:"controlPlaneEndpoint"`
	APIServerPort        int    `yaml:"apiServerPort" mapstructure:"apiServerPort"` // default 6443
	// ImageRepository overrides where kubeadm pulls control-plane images from.
	ImageRepository string `yaml:"imageRepository" mapstructure:"imageRepository"`
	// Kubeconfig is where the admin kubeconfig is written on the operator's machine;
	// default ./<name>.kubeconfig beside the inventory.
	Kubeconfig string `yaml:"kubeconfig" mapstructure:"kubeconfig"`
}

// SSH is how boot reaches hosts. Hosts may override any of it.
type SSH struct {
	User             string        `yaml:"user" mapstructure:"user"`                         // default root
	Port             int           `yaml:"port" mapstructure:"port"`                         // default 22
	KeyPath          string        `yaml:"keyPath" mapstructure:"keyPath"`                   // private key file
	KeyPassphraseEnv string        `yaml:"keyPassphraseEnv" mapstructure:"keyPassphraseEnv"` // env var holding the key's passphrase
	Agent            *bool         `yaml:"agent" mapstructure:"agent"`                       // use $SSH_AUTH_SOCK; default true when set
	PasswordEnv      string        `yaml:"passwordEnv" mapstructure:"passwordEnv"`           // env var holding the login password
	KnownHosts       string        `yaml:"knownHosts" mapstructure:"knownHosts"`             // default ~/.ssh/known_hosts
	HostKeyPolicy    string        `yaml:"hostKeyPolicy" mapstructure:"hostKeyPolicy"`       // strict (default) | accept-new
	ConnectTimeout   time.Duration `yaml:"connectTimeout" mapstructure:"connectTimeout"`     // default 10s
	Bastion          *Bastion      `yaml:"bastion" mapstructure:"bastion"`
	Sudo             Sudo          `yaml:"sudo" mapstructure:"sudo"`
}

// Bastion is one jump host, with its own credentials and host key.
type Bastion struct {
	Address          string `yaml:"address" mapstructure:"address"`
	Port             int    `yaml:"port" mapstructure:"port"` // default 22
	User             string `yaml:"user" mapstructure:"user"`
	KeyPath          string `yaml:"keyPath" mapstructure:"keyPath"`
	KeyPassphraseEnv string `yaml:"keyPassphraseEnv" mapstructure:"keyPassphraseEnv"`
	Agent            *bool  `yaml:"agent" mapstructure:"agent"`
	PasswordEnv      string `yaml:"passwordEnv" mapstructure:"passwordEnv"`
	HostKey          string `yaml:"hostKey" mapstructure:"hostKey"` // pinned public key, authorized_keys format
}

// Sudo says how to become root when the SSH user is not root.
type Sudo struct {
	PasswordEnv string `yaml:"passwordEnv" mapstructure:"passwordEnv"` // env var with the sudo password; empty = passwordless sudo
}

// HostSSH holds the per-host overrides of SSH. Empty fields inherit.
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
	PrivateAddress string  `yaml:"privateAddress" mapstructure:"privateAddress"` // cluster-internal IP; default Address
	Role           string  `yaml:"role" mapstructure:"role"`                     // control-plane | worker
	SSH            HostSSH `yaml:"ssh" mapstructure:"ssh"`
	HostKey        string  `yaml:"hostKey" mapstructure:"hostKey"` // pinned public key, authorized_keys format
	Ingress        *bool   `yaml:"ingress" mapstructure:"ingress"` // runs the ingress controller; default: workers
}

// Packages says where the runtime and Kubernetes come from.
type Packages struct {
	Source string `yaml:"source" mapstructure:"source"` // online (default) | bundle
	Bundle string `yaml:"bundle" mapstructure:"bundle"` // bundle folder when source is bundle
	// RuntimeBinary overrides the OCI runtime containerd runs (default runc);
	// the lab sets a wrapper here for hosts whose kernel lacks capabilities.
	RuntimeBinary string   `yaml:"runtimeBinary" mapstructure:"runtimeBinary"`
	Versions      Versions `yaml:"versions" mapstructure:"versions"`
}

// Versions pins what the online source installs.
type Versions struct {
	Containerd string `yaml:"containerd" mapstructure:"containerd"`
	Docker     string `yaml:"docker" mapstructure:"docker"`
	Helm       string `yaml:"helm" mapstructure:"helm"`
	CNIPlugins string `yaml:"cniPlugins" mapstructure:"cniPlugins"`
}

// Registry is the private Docker registry boot installs.
type Registry struct {
	Host      string       `yaml:"host" mapstructure:"host"`           // e.g. registry.example.com
	ACMEEmail string       `yaml:"acmeEmail" mapstructure:"acmeEmail"` // Let's Encrypt account e-mail
	Issuer    string       `yaml:"issuer" mapstructure:"issuer"`       // letsencrypt (default) | letsencrypt-staging | selfsigned
	Namespace string       `yaml:"namespace" mapstructure:"namespace"` // default docker-registry
	Storage   Storage      `yaml:"storage" mapstructure:"storage"`
	Auth      RegistryAuth `yaml:"auth" mapstructure:"auth"`
	Redis     Redis        `yaml:"redis" mapstructure:"redis"`
	GC        GC           `yaml:"gc" mapstructure:"gc"`
	Pruner    Pruner       `yaml:"pruner" mapstructure:"pruner"`
}

// Storage is where the registry keeps blobs.
type Storage struct {
	Type         string `yaml:"type" mapstructure:"type"`                 // pvc (default) | s3
	Size         string `yaml:"size" mapstructure:"size"`                 // PVC size, default 20Gi
	StorageClass string `yaml:"storageClass" mapstructure:"storageClass"` // PVC storage class; empty = cluster default
	S3           *S3    `yaml:"s3" mapstructure:"s3"`
}

// S3 storage; credentials come from the environment, never the file.
type S3 struct {
	Bucket          string `yaml:"bucket" mapstructure:"bucket"`
	Region          string `yaml:"region" mapstructure:"region"`
	Endpoint        string `yaml:"endpoint" mapstructure:"endpoint"`
	AccessKeyEnv    string `yaml:"accessKeyEnv" mapstructure:"accessKeyEnv"`
	SecretKeyEnv    string `yaml:"secretKeyEnv" mapstructure:"secretKeyEnv"`
	RedirectDisable bool   `yaml:"redirectDisable" mapstructure:"redirectDisable"`
}

// RegistryAuth is the registry's htpasswd login.
type RegistryAuth struct {
	User string `yaml:"user" mapstructure:"user"` // default admin
	// PasswordEnv names an env var with the password; empty = generated once and kept in a Secret.
	PasswordEnv string `yaml:"passwordEnv" mapstructure:"passwordEnv"`
}

// Redis is the registry's blob-descriptor cache.
type Redis struct {
	Enabled   *bool  `yaml:"enabled" mapstructure:"enabled"`     // default true
	MaxMemory string `yaml:"maxMemory" mapstructure:"maxMemory"` // default 256mb
}

// GC schedules the registry's garbage collection.
type GC struct {
	Schedule string `yaml:"schedule" mapstructure:"schedule"` // cron, default "30 */12 * * *"
}

// Pruner schedules the image pruner and holds its rules.
type Pruner struct {
	Enabled      *bool       `yaml:"enabled" mapstructure:"enabled"`           // default true
	Schedule     string      `yaml:"schedule" mapstructure:"schedule"`         // cron, default "0 */12 * * *"
	MaxDeletions int         `yaml:"maxDeletions" mapstructure:"maxDeletions"` // guard, default 500
	Rules        []PruneRule `yaml:"rules" mapstructure:"rules"`
}

// PruneRule selects repositories and tags and says which of them to keep.
// Semantics are those of the pruner package.
type PruneRule struct {
	Repositories []string    `yaml:"repositories" mapstructure:"repositories"` // globs; empty = all
	Match        []string    `yaml:"match" mapstructure:"match"`               // tag regexes; empty = all
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
	Zone     string `yaml:"zone" mapstructure:"zone"`         // hosted zone name, e.g. example.com
	TTL      int    `yaml:"ttl" mapstructure:"ttl"`           // default 300
	// Addresses overrides the A record's targets; default: the ingress hosts' addresses.
	Addresses []string `yaml:"addresses" mapstructure:"addresses"`
}

// Addons pins the charts boot installs.
type Addons struct {
	IngressNginx Chart `yaml:"ingressNginx" mapstructure:"ingressNginx"`
	CertManager  Chart `yaml:"certManager" mapstructure:"certManager"`
	// IngressMode is hostNetwork (default: a DaemonSet on the ingress hosts' ports 80/443) or nodePort.
	IngressMode string `yaml:"ingressMode" mapstructure:"ingressMode"`
}

// Chart says where a chart comes from: a repository URL (https:// index or
// oci://) with a pinned version, or a local path/archive.
type Chart struct {
	Repository string `yaml:"repository" mapstructure:"repository"`
	Name       string `yaml:"name" mapstructure:"name"`
	Version    string `yaml:"version" mapstructure:"version"`
	Path       string `yaml:"path" mapstructure:"path"`
}
