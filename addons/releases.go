package addons

import (
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"

	"github.com/bootctl/boot/bundle"
	"github.com/bootctl/boot/inventory"
)

// Release names and namespaces of the add-ons boot installs. The issuer
// release lives in cert-manager's namespace: a self-signed CA's Secret must be
// in cert-manager's cluster resource namespace, which is its own namespace.
const (
	IngressNginxRelease   = "ingress-nginx"
	IngressNginxNamespace = "ingress-nginx"
	TraefikRelease        = "traefik"
	TraefikNamespace      = "traefik"
	CertManagerRelease    = "cert-manager"
	CertManagerNamespace  = "cert-manager"
	IssuerRelease         = "cluster-issuer"
	IssuerNamespace       = CertManagerNamespace
)

// IngressRelease returns the release name and namespace of the ingress
// controller addons.ingress.controller names.
func IngressRelease(controller string) (name, namespace string, err error) {
	switch controller {
	case inventory.IngressNginx:
		return IngressNginxRelease, IngressNginxNamespace, nil
	case inventory.IngressTraefik:
		return TraefikRelease, TraefikNamespace, nil
	}
	return "", "", fmt.Errorf("addons.ingress.controller: unknown controller %q (%s or %s)", controller, inventory.IngressNginx, inventory.IngressTraefik)
}

// IngressNodeLabel marks the nodes that run the ingress controller (the
// inventory's hosts with ingress: true); the controller's DaemonSet selects
// IngressNodeLabel=IngressNodeValue.
const (
	IngressNodeLabel = "bootctl.io/ingress"
	IngressNodeValue = "true"
)

// IngressClassName is the IngressClass both ingress controllers serve, which
// the registry's Ingress and the ACME HTTP-01 solver use; its controller is
// IngressClassController under both (Traefik's kubernetesIngressNGINX
// provider serves the classes of that controller).
const (
	IngressClassName       = "nginx"
	IngressClassController = "k8s.io/ingress-nginx"
)

// Node ports of the ingress controller's Service in nodePort mode.
const (
	IngressHTTPNodePort  = 30080
	IngressHTTPSNodePort = 30443
)

// ingressProxyTimeoutSeconds is nginx's read and send timeout: large layers
// take minutes to upload. It matches the registry chart's per-Ingress
// default (ingress.proxyTimeoutSeconds).
const ingressProxyTimeoutSeconds = 900

// controlPlaneToleration lets the ingress controller run on a control plane
// marked for ingress.
var controlPlaneToleration = map[string]any{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}

// ACME directories of Let's Encrypt.
const (
	LetsEncryptProduction = "https://acme-v02.api.letsencrypt.org/directory"
	LetsEncryptStaging    = "https://acme-staging-v02.api.letsencrypt.org/directory"
)

// IngressNginxValues are the values for the upstream ingress-nginx chart
// (4.15.1, its final release) on bare metal, for addons.ingressMode:
//
//   - both modes: a DaemonSet on the nodes labelled IngressNodeLabel (also on
//     a control plane marked for ingress: its taint is tolerated), the
//     IngressClass "nginx", and the global nginx settings a registry needs
//     (no body size limit, no request buffering, 900 s read/send timeouts).
//     The validating admission webhook is off: its certificate is made by
//     hook Jobs that block an install until their image is pulled, and with
//     failurePolicy Fail it refuses every Ingress (the registry's included)
//     while the controller is not ready yet.
//   - hostNetwork: the controller binds ports 80 and 443 of its nodes; the
//     Service is ClusterIP only and Ingress status reports the nodes' addresses.
//   - nodePort: the Service is a NodePort (IngressHTTPNodePort,
//     IngressHTTPSNodePort) with externalTrafficPolicy Local, so traffic is
//     served by the controller on the node it reaches and keeps its source.
func IngressNginxValues(mode string) (map[string]any, error) {
	controller := map[string]any{
		"kind":                 "DaemonSet",
		"nodeSelector":         map[string]any{"kubernetes.io/os": "linux", IngressNodeLabel: IngressNodeValue},
		"tolerations":          []any{controlPlaneToleration},
		"ingressClassResource": map[string]any{"name": IngressClassName, "enabled": true},
		"config": map[string]any{
			"proxy-body-size":         "0",
			"proxy-request-buffering": "off",
			"proxy-read-timeout":      strconv.Itoa(ingressProxyTimeoutSeconds),
			"proxy-send-timeout":      strconv.Itoa(ingressProxyTimeoutSeconds),
		},
		"admissionWebhooks": map[string]any{"enabled": false},
	}
	switch mode {
	case inventory.IngressHostNetwork:
		controller["hostNetwork"] = true
		controller["dnsPolicy"] = "ClusterFirstWithHostNet"
		controller["publishService"] = map[string]any{"enabled": false}
		controller["service"] = map[string]any{"type": "ClusterIP"}
	case inventory.IngressNodePort:
		controller["service"] = map[string]any{
			"type":                  "NodePort",
			"externalTrafficPolicy": "Local",
			"nodePorts":             map[string]any{"http": IngressHTTPNodePort, "https": IngressHTTPSNodePort},
		}
	default:
		return nil, fmt.Errorf("addons.ingressMode: unknown mode %q (%s or %s)", mode, inventory.IngressHostNetwork, inventory.IngressNodePort)
	}
	return map[string]any{"controller": controller}, nil
}

// Traefik's entrypoint ports inside the pod in nodePort mode (the chart's
// defaults); in hostNetwork mode its entrypoints listen on 80 and 443.
const (
	traefikWebPort       = 8000
	traefikWebsecurePort = 8443
)

// TraefikValues are the values for the upstream Traefik chart (41.3.0,
// Traefik v3.7) that make it serve what ingress-nginx serves, for
// addons.ingressMode, with statusAddresses (the addresses the registry's
// DNS record points at) reported in the status of the Ingresses it serves:
//
//   - the kubernetesIngressNGINX provider only (the kubernetesCRD and
//     kubernetesIngress providers are off, so the chart's Traefik CRDs are
//     not needed: the release skips them), serving Ingresses of class nginx
//     through the IngressClass nginx with controller k8s.io/ingress-nginx,
//     which the release creates (extraObjects; the chart's own IngressClass
//     is Traefik's and stays off), and reading the ingress-nginx annotations;
//     the provider's global settings are ingress-nginx's (no body size limit,
//     no request buffering, 900 s read/send timeouts);
//   - entrypoints whose read and write timeouts are off (Traefik's readTimeout
//     of 60 s cuts any upload longer than a minute: a multi-gigabyte layer
//     push), idle connections closed after 180 s;
//   - no call home (checkNewVersion and sendAnonymousUsage off), no
//     dashboard, no metrics entrypoint (its port 9100 is node-exporter's);
//   - a DaemonSet on the nodes labelled IngressNodeLabel (a control plane
//     marked for ingress included);
//   - hostNetwork: Traefik binds ports 80 and 443 of its nodes, as root with
//     only the capability NET_BIND_SERVICE (every other capability dropped,
//     read-only root file system); a rolling update replaces one pod at a
//     time (two pods cannot hold a node's ports); the Service is ClusterIP;
//   - nodePort: Traefik runs as the chart's non-root user on 8000/8443 behind
//     a NodePort Service (IngressHTTPNodePort, IngressHTTPSNodePort) with
//     externalTrafficPolicy Local.
//
// Ingress status comes from publishStatusAddress rather than publishService:
// the provider copies a ClusterIP or NodePort Service's cluster IP, which no
// client outside the cluster can use.
func TraefikValues(mode string, statusAddresses []string) (map[string]any, error) {
	if len(statusAddresses) == 0 {
		return nil, errors.New("traefik: no addresses to report in the Ingress status (the ingress hosts' or dns.addresses)")
	}
	timeouts := map[string]any{"respondingTimeouts": map[string]any{"readTimeout": "0s", "writeTimeout": "0s", "idleTimeout": "180s"}}
	web := map[string]any{"transport": timeouts}
	websecure := map[string]any{"transport": timeouts}
	v := map[string]any{
		"deployment":   map[string]any{"kind": "DaemonSet"},
		"nodeSelector": map[string]any{"kubernetes.io/os": "linux", IngressNodeLabel: IngressNodeValue},
		"tolerations":  []any{controlPlaneToleration},
		"ingressClass": map[string]any{"enabled": false},
		"ingressRoute": map[string]any{"dashboard": map[string]any{"enabled": false}},
		"api":          map[string]any{"dashboard": false},
		"global":       map[string]any{"checkNewVersion": false, "sendAnonymousUsage": false},
		// The chart writes the flag only to turn it on; off is Traefik's default, said here too.
		"additionalArguments": []any{"--global.sendAnonymousUsage=false"},
		"metrics":             map[string]any{"prometheus": nil},
		"ports":               map[string]any{"metrics": nil, "web": web, "websecure": websecure},
		"updateStrategy":      map[string]any{"type": "RollingUpdate", "rollingUpdate": map[string]any{"maxUnavailable": 1, "maxSurge": 0}},
		"providers": map[string]any{
			"kubernetesCRD":     map[string]any{"enabled": false},
			"kubernetesIngress": map[string]any{"enabled": false},
			"kubernetesIngressNGINX": map[string]any{
				"enabled":               true,
				"ingressClass":          IngressClassName,
				"controllerClass":       IngressClassController,
				"publishStatusAddress":  strings.Join(statusAddresses, ","),
				"proxyBodySize":         0,
				"proxyRequestBuffering": false,
				"proxyReadTimeout":      ingressProxyTimeoutSeconds,
				"proxySendTimeout":      ingressProxyTimeoutSeconds,
			},
		},
		"extraObjects": []any{map[string]any{
			"apiVersion": "networking.k8s.io/v1",
			"kind":       "IngressClass",
			"metadata":   map[string]any{"name": IngressClassName},
			"spec":       map[string]any{"controller": IngressClassController},
		}},
	}
	switch mode {
	case inventory.IngressHostNetwork:
		v["hostNetwork"] = true
		v["deployment"].(map[string]any)["dnsPolicy"] = "ClusterFirstWithHostNet"
		web["port"], web["hostPort"] = 80, 80
		websecure["port"], websecure["hostPort"] = 443, 443
		v["service"] = map[string]any{"spec": map[string]any{"type": "ClusterIP"}}
		v["podSecurityContext"] = map[string]any{"runAsUser": 0, "runAsGroup": 0, "runAsNonRoot": false}
		v["securityContext"] = map[string]any{
			"allowPrivilegeEscalation": false,
			"readOnlyRootFilesystem":   true,
			"capabilities":             map[string]any{"drop": []any{"ALL"}, "add": []any{"NET_BIND_SERVICE"}},
		}
	case inventory.IngressNodePort:
		web["port"], web["nodePort"] = traefikWebPort, IngressHTTPNodePort
		websecure["port"], websecure["nodePort"] = traefikWebsecurePort, IngressHTTPSNodePort
		v["service"] = map[string]any{"spec": map[string]any{"type": "NodePort", "externalTrafficPolicy": "Local"}}
	default:
		return nil, fmt.Errorf("addons.ingressMode: unknown mode %q (%s or %s)", mode, inventory.IngressHostNetwork, inventory.IngressNodePort)
	}
	return v, nil
}

// CertManagerValues are the values for the upstream cert-manager chart: its
// CRDs come with the release (crds.enabled; the chart keeps them on
// uninstall, so certificates elsewhere survive a teardown). The chart's
// startupapicheck hook Job, which waits until the webhook answers, runs only
// when boot waits for readiness: without waiting (images that cannot be
// pulled yet) the hook would block the install until its timeout.
// enableCertificateOwnerRef makes a certificate's Secret go with its
// Certificate, so a teardown leaves no TLS keys behind.
//
// With the DNS-01 solver (registry.acme.solver dns01), the controller's
// self-check asks only registry.acme.recursiveNameservers when the inventory
// names them, and when boot itself reaches Route53 at route53Endpoint
// (--route53-endpoint: a proxy, or a test's Route53), the controller's AWS
// SDK is sent there too (AWS_ENDPOINT_URL_ROUTE_53).
func CertManagerValues(wait bool, r inventory.Registry, route53Endpoint string) map[string]any {
	v := map[string]any{
		"crds":                      map[string]any{"enabled": true},
		"startupapicheck":           map[string]any{"enabled": wait},
		"enableCertificateOwnerRef": true,
	}
	if r.ACME.Solver != inventory.SolverDNS01 {
		return v
	}
	if ns := r.ACME.RecursiveNameservers; len(ns) > 0 {
		v["dns01RecursiveNameserversOnly"] = true
		v["dns01RecursiveNameservers"] = strings.Join(ns, ",")
	}
	if route53Endpoint != "" {
		v["extraEnv"] = []any{map[string]any{"name": "AWS_ENDPOINT_URL_ROUTE_53", "value": route53Endpoint}}
	}
	return v
}

// ClusterIssuerName is the name of the ClusterIssuer boot makes for
// registry.issuer; the registry's Ingress refers to it. A self-signed issuer
// is a CA issuer named "selfsigned" whose root is "selfsigned-root".
func ClusterIssuerName(issuer string) string { return issuer }

// Route53CredentialsSecret, in cert-manager's namespace, holds the static
// AWS key pair of the DNS-01 solver under Route53AccessKeyIDKey and
// Route53SecretAccessKeyKey (the issuer chart's template names those keys).
const (
	Route53CredentialsSecret  = "route53-credentials"
	Route53AccessKeyIDKey     = "access-key-id"
	Route53SecretAccessKeyKey = "secret-access-key"
)

// Route53Solver is where cert-manager's DNS-01 solver writes its TXT
// records: the hosted zone of dns.zone, as boot found it by its exact name,
// and the region the API calls are signed for. Its key pair is in Secret
// Route53CredentialsSecret, never in values.
type Route53Solver struct {
	Region       string
	HostedZoneID string // without the "/hostedzone/" prefix
}

// IssuerValues are the values of boot's issuer chart for the inventory's
// registry section: an ACME issuer (Let's Encrypt production or staging, or
// registry.acme.server with the CA bundle of registry.acme.caFile) with the
// account e-mail registry.acmeEmail and the solver registry.acme.solver
// (HTTP-01 through the ingress class nginx, or DNS-01 in Route53 at
// route53, required then), or a self-signed CA.
func IssuerValues(r inventory.Registry, route53 *Route53Solver) (map[string]any, error) {
	v := map[string]any{"name": ClusterIssuerName(r.Issuer)}
	acme := func(server string) (map[string]any, error) {
		a := map[string]any{"server": server, "email": r.ACMEEmail, "solver": inventory.SolverHTTP01, "ingressClassName": IngressClassName}
		if r.ACME.CAFile != "" {
			pem, err := os.ReadFile(r.ACME.CAFile)
			if err != nil {
				return nil, fmt.Errorf("registry.acme.caFile: %w", err)
			}
			a["caBundle"] = base64.StdEncoding.EncodeToString(pem)
		}
		switch r.ACME.Solver {
		case "", inventory.SolverHTTP01:
		case inventory.SolverDNS01:
			if route53 == nil || route53.HostedZoneID == "" {
				return nil, errors.New("registry.acme.solver: dns01 needs the Route53 hosted zone of dns.zone")
			}
			a["solver"] = inventory.SolverDNS01
			a["route53"] = map[string]any{"region": route53.Region, "hostedZoneID": route53.HostedZoneID, "credentialsSecret": Route53CredentialsSecret}
		default:
			return nil, fmt.Errorf("registry.acme.solver: unknown solver %q (%s or %s)", r.ACME.Solver, inventory.SolverHTTP01, inventory.SolverDNS01)
		}
		v["type"] = "acme"
		v["acme"] = a
		return v, nil
	}
	switch r.Issuer {
	case inventory.IssuerLetsEncrypt, inventory.IssuerLetsEncryptStaging:
		if r.ACMEEmail == "" {
			return nil, fmt.Errorf("registry.acmeEmail: is missing (an e-mail address for the Let's Encrypt account, required with issuer %s)", r.Issuer)
		}
		if r.Issuer == inventory.IssuerLetsEncrypt {
			return acme(LetsEncryptProduction)
		}
		return acme(LetsEncryptStaging)
	case inventory.IssuerACME:
		if r.ACME.Server == "" {
			return nil, errors.New("registry.acme.server: is missing (the ACME directory's https:// URL, required with issuer acme)")
		}
		return acme(r.ACME.Server)
	case inventory.IssuerSelfSigned:
		v["type"] = "selfsigned"
		return v, nil
	}
	return nil, fmt.Errorf("registry.issuer: unknown issuer %q (%s, %s, %s or %s)", r.Issuer,
		inventory.IssuerLetsEncrypt, inventory.IssuerLetsEncryptStaging, inventory.IssuerSelfSigned, inventory.IssuerACME)
}

// The "all:" prefix keeps _helpers.tpl.
//
//go:embed all:charts/issuer
var issuerChartFS embed.FS

// IssuerChart returns boot's embedded ClusterIssuer chart (charts/issuer),
// loaded with the Helm SDK; every call loads a fresh copy.
func IssuerChart() (*chart.Chart, error) {
	return embeddedChart(issuerChartFS, "charts/issuer")
}

// embeddedChart loads the chart in folder dir of fsys.
func embeddedChart(fsys fs.FS, dir string) (*chart.Chart, error) {
	var files []*loader.BufferedFile
	err := fs.WalkDir(fsys, dir, func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		files = append(files, &loader.BufferedFile{Name: strings.TrimPrefix(name, dir+"/"), Data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read embedded chart %s: %w", dir, err)
	}
	c, err := loader.LoadFiles(files)
	if err != nil {
		return nil, fmt.Errorf("load embedded chart %s: %w", dir, err)
	}
	return c, nil
}

// Secrets boot keeps beside the registry, in its namespace.
const (
	// RegistryCredentialsSecret holds the registry's credentials (see
	// RegistryCredentials.Secret); the chart reads it by name.
	RegistryCredentialsSecret = "registry-credentials"
	// RegistryPullSecret lets the maintenance jobs pull boot's image from the
	// registry.
	RegistryPullSecret = "registry-pull"
	// RegistryS3Secret holds the S3 access key pair read from the variables
	// registry.storage.s3.accessKeyEnv and secretKeyEnv.
	RegistryS3Secret = "registry-s3"
)

// RegistryValues are the registry chart's values for the inventory's
// registry section: host, the credentials Secret, storage (a PVC or S3),
// Redis, the TLS certificate from ClusterIssuerName, the gc and pruner
// schedules and rules, and the maintenance jobs' image from
// registry.maintenance.image, pinned by digest. Without that image the
// chart installs neither job unless BundleImageValues gives the bundle's.
// The chart's own defaults cover the rest.
func RegistryValues(r inventory.Registry) (map[string]any, error) {
	storage := map[string]any{}
	switch r.Storage.Type {
	case inventory.StoragePVC:
		storage["type"] = "filesystem"
		storage["filesystem"] = map[string]any{"size": r.Storage.Size, "storageClass": r.Storage.StorageClass}
	case inventory.StorageS3:
		s3 := r.Storage.S3
		if s3 == nil {
			return nil, fmt.Errorf("registry.storage.s3: is missing (bucket and region, required with storage type s3)")
		}
		v := map[string]any{"bucket": s3.Bucket, "region": s3.Region}
		if s3.Endpoint != "" {
			// S3-compatible stores seldom serve virtual-host-style bucket names.
			v["regionEndpoint"] = s3.Endpoint
			v["forcePathStyle"] = true
		}
		if s3.AccessKeyEnv != "" || s3.SecretKeyEnv != "" {
			v["existingSecret"] = RegistryS3Secret
		}
		storage["type"] = "s3"
		storage["s3"] = v
		storage["redirect"] = map[string]any{"disable": s3.RedirectDisable}
	default:
		return nil, fmt.Errorf("registry.storage.type: unknown type %q (%s or %s)", r.Storage.Type, inventory.StoragePVC, inventory.StorageS3)
	}
	redis := map[string]any{}
	if r.Redis.MaxMemory != "" {
		redis["maxMemory"] = r.Redis.MaxMemory
	}
	pruner := map[string]any{"enabled": false}
	if r.Pruner.Runs() {
		pruner["enabled"] = true
		rules := make([]any, 0, len(r.Pruner.Rules))
		for _, rule := range r.Pruner.Rules {
			rules = append(rules, pruneRuleValues(rule))
		}
		pruner["rules"] = rules
	}
	if r.Pruner.Schedule != "" {
		pruner["schedule"] = r.Pruner.Schedule
	}
	if r.Pruner.MaxDeletions > 0 {
		pruner["maxDeletions"] = r.Pruner.MaxDeletions
	}
	gc := map[string]any{"enabled": true}
	if r.GC.Schedule != "" {
		gc["schedule"] = r.GC.Schedule
	}
	maintenance := map[string]any{"imagePullSecrets": []any{map[string]any{"name": RegistryPullSecret}}}
	if img := r.Maintenance.Image; img != "" {
		p, err := inventory.ParsePinnedImage(img)
		if err != nil {
			return nil, fmt.Errorf("registry.maintenance.image: %w", err)
		}
		image := map[string]any{"repository": p.Repository, "digest": p.Digest}
		if p.Tag != "" {
			image["tag"] = p.Tag
		}
		maintenance["image"] = image
	}
	auth := map[string]any{"mode": r.Auth.Mode}
	switch r.Auth.Mode {
	case inventory.AuthHtpasswd:
	case inventory.AuthToken:
		auth["token"] = map[string]any{"existingSecret": RegistryTokenSecret, "issuer": TokenIssuer, "replicaCount": r.Replicas}
		auth["prunerSecret"] = registryUserSecretName(inventory.PrunerUser)
	default:
		return nil, fmt.Errorf("registry.auth.mode: unknown mode %q (%s or %s)", r.Auth.Mode, inventory.AuthToken, inventory.AuthHtpasswd)
	}
	return map[string]any{
		"host":         r.Host,
		"replicaCount": r.Replicas,
		"auth":         auth,
		"credentials":  map[string]any{"existingSecret": RegistryCredentialsSecret},
		"storage":      storage,
		"cache":        r.Cache(),
		"redis":        redis,
		"ingress":      map[string]any{"className": IngressClassName, "clusterIssuer": ClusterIssuerName(r.Issuer)},
		"maintenance":  maintenance,
		"pruner":       pruner,
		"gc":           gc,
	}, nil
}

// pruneRuleValues writes one rule in the pruner's format (keys as in
// pruner.Rule), leaving out what the inventory leaves out.
func pruneRuleValues(r inventory.PruneRule) map[string]any {
	v := map[string]any{}
	list := func(key string, s []string) {
		if len(s) > 0 {
			items := make([]any, len(s))
			for i, x := range s {
				items[i] = x
			}
			v[key] = items
		}
	}
	list("repositories", r.Repositories)
	list("match", r.Match)
	list("ignore", r.Ignore)
	if r.KeepLatest != nil {
		v["keepLatest"] = *r.KeepLatest
	}
	if r.KeepSemver != nil {
		ks := map[string]any{}
		if r.KeepSemver.Highest > 0 {
			ks["highest"] = r.KeepSemver.Highest
		}
		v["keepSemver"] = ks
	}
	if r.KeepDays != nil {
		v["keepDays"] = *r.KeepDays
	}
	return v
}

// imageSlot places one bundle image, found by its manifest Image.Component,
// in a chart's values at path (keys separated by "."), as
// {"repository": <cluster.imageRepository>/<name>, "tag": <tag>}, or, with
// split, as {"registry": <cluster.imageRepository>, "repository": <name>,
// "tag": <tag>}; with digest, pinned too: "digest" is the manifest's
// Image.Digest, which the chart then runs (repository@digest). An optional
// image the bundle lacks is left to the chart.
type imageSlot struct {
	component, path         string
	optional, split, digest bool
}

// maintenanceImagePath is the registry chart's value of the maintenance
// jobs' image.
const maintenanceImagePath = "maintenance.image"

// bundleImageSlots are, per release, the images a bundle provides for it.
var bundleImageSlots = map[string][]imageSlot{
	DefaultRegistryRelease: {
		{component: "registry", path: "image", digest: true},
		{component: "redis", path: "redis.image", digest: true},
		{component: "boot", path: maintenanceImagePath, optional: true, digest: true}, // the prune and gc jobs
	},
	CertManagerRelease: {
		{component: "cert-manager-controller", path: "image"},
		{component: "cert-manager-webhook", path: "webhook.image"},
		{component: "cert-manager-cainjector", path: "cainjector.image"},
		{component: "cert-manager-acmesolver", path: "acmesolver.image"}, // the controller's --acme-http01-solver-image
		{component: "cert-manager-startupapicheck", path: "startupapicheck.image"},
	},
	TraefikRelease: {{component: "traefik", path: "image", split: true}},
}

// BundleImageValues returns, when packages come from a bundle, the values
// that make release's chart (DefaultRegistryRelease, CertManagerRelease or
// TraefikRelease) run the bundle's images from cluster.imageRepository,
// where a bundle's images are served (as the lab's registry does), under the
// names its manifest gives them (Image.RepoTag); boot's registry chart runs
// them pinned by the manifest's digests (Image.Digest, as the registry at
// cluster.imageRepository reports it after a push), so the maintenance jobs'
// image comes from the bundle, never from the registry they maintain, unless
// registry.maintenance.image names another (then RegistryValues gives that).
// Without a bundle, or for another release, it returns nil and the chart's
// images stay. A bundle without an image the chart needs (built by an older
// boot) is an error naming the component.
func BundleImageValues(inv *inventory.Inventory, release string) (map[string]any, error) {
	slots := bundleImageSlots[release]
	if inv.Packages.Source != inventory.SourceBundle || len(slots) == 0 {
		return nil, nil
	}
	repo := inv.Cluster.ImageRepository
	if repo == "" {
		return nil, fmt.Errorf("cluster.imageRepository: is empty: with packages.source bundle the add-ons' images come from there")
	}
	m, err := bundle.ReadManifest(inv.Packages.Bundle)
	if err != nil {
		return nil, fmt.Errorf("packages.bundle: %w", err)
	}
	images := map[string]bundle.Image{}
	for _, img := range m.Images {
		images[img.Component] = img
	}
	v := map[string]any{}
	for _, s := range slots {
		if s.path == maintenanceImagePath && inv.Registry.Maintenance.Image != "" {
			continue
		}
		img, ok := images[s.component]
		if !ok {
			// The token service runs the maintenance image: without it
			// mode token cannot work.
			if s.path == maintenanceImagePath && inv.Registry.Auth.Mode == inventory.AuthToken {
				return nil, fmt.Errorf("packages.bundle: the bundle %s has no %s image, which the registry's token service runs (registry.auth.mode %s): it was built by an older boot; rebuild the bundle, or set registry.auth.mode: %s",
					inv.Packages.Bundle, s.component, inventory.AuthToken, inventory.AuthHtpasswd)
			}
			if s.optional {
				continue
			}
			return nil, fmt.Errorf("packages.bundle: the bundle %s has no %s image, which the %s release runs: it was built by an older boot; rebuild the bundle", inv.Packages.Bundle, s.component, release)
		}
		name, tag, ok := strings.Cut(img.RepoTag, ":")
		if !ok {
			return nil, fmt.Errorf("packages.bundle: image %s has no tag", img.RepoTag)
		}
		image := map[string]any{"repository": repo + "/" + name, "tag": tag}
		if s.split {
			image = map[string]any{"registry": repo, "repository": name, "tag": tag}
		}
		if s.digest {
			image["digest"] = img.Digest
		}
		mergeValues(v, nested(s.path, image))
	}
	return v, nil
}

// nested returns {"a": {"b": value}} for path "a.b".
func nested(path string, value any) map[string]any {
	keys := strings.Split(path, ".")
	for i := len(keys) - 1; i > 0; i-- {
		value = map[string]any{keys[i]: value}
	}
	return map[string]any{keys[0]: value}
}

// mergeValues merges src into dst: maps merge key by key, anything else in
// src replaces what dst holds.
func mergeValues(dst, src map[string]any) {
	for k, sv := range src {
		sm, sok := sv.(map[string]any)
		dm, dok := dst[k].(map[string]any)
		if sok && dok {
			mergeValues(dm, sm)
			continue
		}
		dst[k] = sv
	}
}
