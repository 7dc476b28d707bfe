package addons

import (
	"embed"
	"fmt"
	"io/fs"
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
	CertManagerRelease    = "cert-manager"
	CertManagerNamespace  = "cert-manager"
	IssuerRelease         = "cluster-issuer"
	IssuerNamespace       = CertManagerNamespace
)

// IngressNodeLabel marks the nodes that run the ingress controller (the
// inventory's hosts with ingress: true); the ingress-nginx DaemonSet selects
// IngressNodeLabel=IngressNodeValue.
const (
	IngressNodeLabel = "bootctl.io/ingress"
	IngressNodeValue = "true"
)

// IngressClassName is the IngressClass ingress-nginx serves, which the
// registry's Ingress and the ACME HTTP-01 solver use.
const IngressClassName = "nginx"

// Node ports of the ingress controller's Service in nodePort mode.
const (
	IngressHTTPNodePort  = 30080
	IngressHTTPSNodePort = 30443
)

// ingressProxyTimeoutSeconds is nginx's read and send timeout: large layers
// take minutes to upload. It matches the registry chart's per-Ingress
// default (ingress.proxyTimeoutSeconds).
const ingressProxyTimeoutSeconds = "900"

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
		"kind":         "DaemonSet",
		"nodeSelector": map[string]any{"kubernetes.io/os": "linux", IngressNodeLabel: IngressNodeValue},
		"tolerations": []any{
			map[string]any{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"},
		},
		"ingressClassResource": map[string]any{"name": IngressClassName, "enabled": true},
		"config": map[string]any{
			"proxy-body-size":         "0",
			"proxy-request-buffering": "off",
			"proxy-read-timeout":      ingressProxyTimeoutSeconds,
			"proxy-send-timeout":      ingressProxyTimeoutSeconds,
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

// CertManagerValues are the values for the upstream cert-manager chart: its
// CRDs come with the release (crds.enabled; the chart keeps them on
// uninstall, so certificates elsewhere survive a teardown). The chart's
// startupapicheck hook Job, which waits until the webhook answers, runs only
// when boot waits for readiness: without waiting (images that cannot be
// pulled yet) the hook would block the install until its timeout.
// enableCertificateOwnerRef makes a certificate's Secret go with its
// Certificate, so a teardown leaves no TLS keys behind.
func CertManagerValues(wait bool) map[string]any {
	return map[string]any{
		"crds":                      map[string]any{"enabled": true},
		"startupapicheck":           map[string]any{"enabled": wait},
		"enableCertificateOwnerRef": true,
	}
}

// ClusterIssuerName is the name of the ClusterIssuer boot makes for
// registry.issuer; the registry's Ingress refers to it. A self-signed issuer
// is a CA issuer named "selfsigned" whose root is "selfsigned-root".
func ClusterIssuerName(issuer string) string { return issuer }

// IssuerValues are the values of boot's issuer chart for the inventory's
// registry section: Let's Encrypt production or staging over HTTP-01 with
// the account e-mail registry.acmeEmail, or a self-signed CA.
func IssuerValues(r inventory.Registry) (map[string]any, error) {
	v := map[string]any{"name": ClusterIssuerName(r.Issuer)}
	acme := func(server string) (map[string]any, error) {
		if r.ACMEEmail == "" {
			return nil, fmt.Errorf("registry.acmeEmail: is missing (an e-mail address for the Let's Encrypt account, required with issuer %s)", r.Issuer)
		}
		v["type"] = "acme"
		v["acme"] = map[string]any{"server": server, "email": r.ACMEEmail, "ingressClassName": IngressClassName}
		return v, nil
	}
	switch r.Issuer {
	case inventory.IssuerLetsEncrypt:
		return acme(LetsEncryptProduction)
	case inventory.IssuerLetsEncryptStaging:
		return acme(LetsEncryptStaging)
	case inventory.IssuerSelfSigned:
		v["type"] = "selfsigned"
		return v, nil
	}
	return nil, fmt.Errorf("registry.issuer: unknown issuer %q (%s, %s or %s)", r.Issuer,
		inventory.IssuerLetsEncrypt, inventory.IssuerLetsEncryptStaging, inventory.IssuerSelfSigned)
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
// Redis, the TLS certificate from ClusterIssuerName, and the gc and pruner
// schedules and rules. The chart's own defaults cover the rest.
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
	redis := map[string]any{"enabled": r.Redis.Enabled == nil || *r.Redis.Enabled}
	if r.Redis.MaxMemory != "" {
		redis["maxMemory"] = r.Redis.MaxMemory
	}
	pruner := map[string]any{"enabled": false}
	if (r.Pruner.Enabled == nil || *r.Pruner.Enabled) && len(r.Pruner.Rules) > 0 {
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
	return map[string]any{
		"host":        r.Host,
		"credentials": map[string]any{"existingSecret": RegistryCredentialsSecret},
		"storage":     storage,
		"redis":       redis,
		"ingress":     map[string]any{"className": IngressClassName, "clusterIssuer": ClusterIssuerName(r.Issuer)},
		"maintenance": map[string]any{"imagePullSecrets": []any{map[string]any{"name": RegistryPullSecret}}},
		"pruner":      pruner,
		"gc":          gc,
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

// RegistryImageValues returns, when packages come from a bundle, the
// registry chart's values that run the bundle's registry and Redis images
// from cluster.imageRepository (where a bundle's images are served, as the
// lab's registry does): {"image": ..., "redis": {"image": ...}}, and
// {"maintenance": {"image": ...}} when the bundle carries boot's image for
// the prune and gc jobs. Without a bundle it returns nil and the chart's
// defaults stay.
func RegistryImageValues(inv *inventory.Inventory) (map[string]any, error) {
	if inv.Packages.Source != inventory.SourceBundle {
		return nil, nil
	}
	repo := inv.Cluster.ImageRepository
	if repo == "" {
		return nil, fmt.Errorf("cluster.imageRepository: is empty: with packages.source bundle the registry's images come from there")
	}
	m, err := bundle.ReadManifest(inv.Packages.Bundle)
	if err != nil {
		return nil, fmt.Errorf("packages.bundle: %w", err)
	}
	images := map[string]map[string]any{}
	for _, img := range m.Images {
		if img.Component != "registry" && img.Component != "redis" && img.Component != "boot" {
			continue
		}
		name, tag, ok := strings.Cut(img.RepoTag, ":")
		if !ok {
			return nil, fmt.Errorf("packages.bundle: image %s has no tag", img.RepoTag)
		}
		images[img.Component] = map[string]any{"repository": repo + "/" + name, "tag": tag}
	}
	for _, c := range []string{"registry", "redis"} {
		if images[c] == nil {
			return nil, fmt.Errorf("packages.bundle: the bundle has no %s image (rebuild it with this boot)", c)
		}
	}
	v := map[string]any{"image": images["registry"], "redis": map[string]any{"image": images["redis"]}}
	if images["boot"] != nil {
		v["maintenance"] = map[string]any{"image": images["boot"]}
	}
	return v, nil
}
