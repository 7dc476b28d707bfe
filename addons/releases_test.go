package addons

import (
	"bufio"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/bootctl/boot/inventory"
	"github.com/bootctl/boot/pruner"
)

// renderIssuer renders the embedded issuer chart client-side into objects
// keyed by "Kind/name".
func renderIssuer(t *testing.T, values map[string]any) (map[string]map[string]any, error) {
	t.Helper()
	c, err := IssuerChart()
	if err != nil {
		t.Fatal(err)
	}
	top, err := chartutil.ToRenderValues(c, values, chartutil.ReleaseOptions{Name: IssuerRelease, Namespace: IssuerNamespace, IsInstall: true}, chartutil.DefaultCapabilities.Copy())
	if err != nil {
		return nil, err
	}
	out, err := engine.Engine{Strict: true}.Render(c, top)
	if err != nil {
		return nil, err
	}
	objects := map[string]map[string]any{}
	for name, text := range out {
		reader := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(text)))
		for {
			doc, err := reader.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if isBlankYAML(doc) {
				continue
			}
			var obj map[string]any
			if err := yaml.UnmarshalStrict(doc, &obj); err != nil {
				t.Fatalf("%s: %v\n%s", name, err, doc)
			}
			meta, _ := obj["metadata"].(map[string]any)
			objects[obj["kind"].(string)+"/"+meta["name"].(string)] = obj
		}
	}
	return objects, nil
}

// TestIssuerChart renders the issuer chart for each registry.issuer: ACME
// issuers for Let's Encrypt production and staging with the e-mail and an
// HTTP-01 solver of class nginx, any ACME directory with its CA bundle over
// DNS-01 in Route53 (the key pair by reference to its Secret), or a
// self-signed root that signs a CA certificate that backs a CA issuer; the
// chart lints clean and its schema refuses what cert-manager would not take.
func TestIssuerChart(t *testing.T) {
	spec := func(o map[string]any) map[string]any { return o["spec"].(map[string]any) }
	for _, tc := range []struct{ issuer, server string }{
		{inventory.IssuerLetsEncrypt, LetsEncryptProduction},
		{inventory.IssuerLetsEncryptStaging, LetsEncryptStaging},
	} {
		values, err := IssuerValues(inventory.Registry{Host: "registry.example.com", Issuer: tc.issuer, ACMEEmail: "ops@example.org"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := renderIssuer(t, values)
		if err != nil {
			t.Fatalf("%s: %v", tc.issuer, err)
		}
		if len(objs) != 1 {
			t.Fatalf("%s: rendered %d objects, want one ClusterIssuer", tc.issuer, len(objs))
		}
		ci, ok := objs["ClusterIssuer/"+ClusterIssuerName(tc.issuer)]
		if !ok {
			t.Fatalf("%s: no ClusterIssuer %s", tc.issuer, ClusterIssuerName(tc.issuer))
		}
		want := map[string]any{
			"server":              tc.server,
			"email":               "ops@example.org",
			"privateKeySecretRef": map[string]any{"name": tc.issuer + "-account-key"},
			"solvers":             []any{map[string]any{"http01": map[string]any{"ingress": map[string]any{"ingressClassName": "nginx"}}}},
		}
		if d := cmp.Diff(want, spec(ci)["acme"]); d != "" {
			t.Errorf("%s: spec.acme (-want +got):\n%s", tc.issuer, d)
		}
	}

	// Any ACME directory, with the CA bundle of its TLS certificate, over
	// DNS-01 in the Route53 zone boot found.
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	caPEM := "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
	if err := os.WriteFile(caFile, []byte(caPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	acmeRegistry := inventory.Registry{Issuer: inventory.IssuerACME, ACME: inventory.ACME{
		Server: "https://acme.example.internal/directory", CAFile: caFile, Solver: inventory.SolverDNS01}}
	values, err := IssuerValues(acmeRegistry, &Route53Solver{Region: "us-east-1", HostedZoneID: "Z0123456789ABC"})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := renderIssuer(t, values)
	if err != nil {
		t.Fatal(err)
	}
	secretRef := func(key string) map[string]any { return map[string]any{"name": Route53CredentialsSecret, "key": key} }
	want := map[string]any{
		"server":              "https://acme.example.internal/directory",
		"caBundle":            base64.StdEncoding.EncodeToString([]byte(caPEM)),
		"privateKeySecretRef": map[string]any{"name": "acme-account-key"},
		"solvers": []any{map[string]any{"dns01": map[string]any{"route53": map[string]any{
			"region": "us-east-1", "hostedZoneID": "Z0123456789ABC",
			"accessKeyIDSecretRef": secretRef(Route53AccessKeyIDKey), "secretAccessKeySecretRef": secretRef(Route53SecretAccessKeyKey),
		}}}},
	}
	if d := cmp.Diff(want, spec(objs["ClusterIssuer/acme"])["acme"]); d != "" {
		t.Errorf("acme over DNS-01: spec.acme (-want +got):\n%s", d)
	}
	if _, err := IssuerValues(acmeRegistry, nil); err == nil || !strings.HasPrefix(err.Error(), "registry.acme.solver: dns01 needs the Route53 hosted zone") {
		t.Errorf("dns01 without a zone: %v", err)
	}
	acmeRegistry.ACME.CAFile = filepath.Join(t.TempDir(), "gone.pem")
	if _, err := IssuerValues(acmeRegistry, &Route53Solver{Region: "us-east-1", HostedZoneID: "Z1"}); err == nil || !strings.HasPrefix(err.Error(), "registry.acme.caFile: ") {
		t.Errorf("unreadable CA file: %v", err)
	}
	for _, bad := range []map[string]any{
		{"type": "acme", "acme": map[string]any{"server": "http://acme.example.internal/directory"}},
		{"type": "acme", "acme": map[string]any{"solver": "dns01"}},
		{"type": "acme", "acme": map[string]any{"solver": "dns01", "route53": map[string]any{"hostedZoneID": ""}}},
		{"type": "acme", "acme": map[string]any{"solver": "tlsalpn01"}},
		{"type": "acme", "acme": map[string]any{"caBundle": "not base64!"}},
	} {
		if _, err := renderIssuer(t, bad); err == nil {
			t.Errorf("the chart's schema accepts %v", bad)
		}
	}

	values, err = IssuerValues(inventory.Registry{Host: "registry.example.com", Issuer: inventory.IssuerSelfSigned}, nil)
	if err != nil {
		t.Fatal(err)
	}
	objs, err = renderIssuer(t, values)
	if err != nil {
		t.Fatal(err)
	}
	root, ca, cert := objs["ClusterIssuer/selfsigned-root"], objs["ClusterIssuer/selfsigned"], objs["Certificate/selfsigned-ca"]
	if root == nil || ca == nil || cert == nil || len(objs) != 3 {
		t.Fatalf("self-signed: rendered %v, want ClusterIssuers selfsigned-root and selfsigned and Certificate selfsigned-ca", keys(objs))
	}
	if d := cmp.Diff(map[string]any{}, spec(root)["selfSigned"]); d != "" {
		t.Errorf("root issuer is not selfSigned: %v", spec(root))
	}
	cs := spec(cert)
	if cs["isCA"] != true || cs["secretName"] != "selfsigned-ca" || cert["metadata"].(map[string]any)["namespace"] != CertManagerNamespace {
		t.Errorf("CA certificate: %v", cert)
	}
	if d := cmp.Diff(map[string]any{"name": "selfsigned-root", "kind": "ClusterIssuer", "group": "cert-manager.io"}, cs["issuerRef"]); d != "" {
		t.Errorf("CA certificate's issuerRef (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string]any{"secretName": "selfsigned-ca"}, spec(ca)["ca"]); d != "" {
		t.Errorf("CA issuer's spec.ca (-want +got):\n%s", d)
	}

	for name, v := range map[string]map[string]any{"acme": {"name": "letsencrypt", "type": "acme", "acme": map[string]any{"email": "ops@example.org"}}, "selfsigned": values} {
		l := lint.All(filepath.Join("charts", "issuer"), v, IssuerNamespace, false)
		for _, m := range l.Messages {
			if m.Severity > support.InfoSev {
				t.Errorf("lint %s: %s", name, m)
			}
		}
	}
	if _, err := renderIssuer(t, map[string]any{"type": "acme", "acme": map[string]any{"email": "ops"}}); err == nil || !strings.Contains(err.Error(), "email") {
		t.Errorf("ACME issuer with a bad e-mail: got %v, want a schema error naming email", err)
	}
	l := lint.All(filepath.Join("charts", "issuer"), map[string]any{"type": "vault"}, IssuerNamespace, false)
	if l.HighestSeverity < support.ErrorSev {
		t.Errorf("lint accepts type vault: %v", l.Messages)
	}
	if _, err := IssuerValues(inventory.Registry{Issuer: inventory.IssuerLetsEncrypt}, nil); err == nil || !strings.HasPrefix(err.Error(), "registry.acmeEmail: is missing") {
		t.Errorf("letsencrypt without acmeEmail: got %v", err)
	}
}

// TestIssuerChartEmbedded checks the embedded chart is the one in the source tree.
func TestIssuerChartEmbedded(t *testing.T) {
	c, err := IssuerChart()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range append(c.Raw, c.Templates...) {
		if strings.HasPrefix(f.Name, "templates/") {
			disk, err := os.ReadFile(filepath.Join("charts", "issuer", f.Name))
			if err != nil || string(disk) != string(f.Data) {
				t.Errorf("embedded %s differs from the source tree (%v)", f.Name, err)
			}
			n++
		}
	}
	if n == 0 {
		t.Fatal("no templates embedded")
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestIngressNginxValues checks the two ingress modes' differences and the
// refusal of an unknown mode.
func TestIngressNginxValues(t *testing.T) {
	host, err := IngressNginxValues(inventory.IngressHostNetwork)
	if err != nil {
		t.Fatal(err)
	}
	np, err := IngressNginxValues(inventory.IngressNodePort)
	if err != nil {
		t.Fatal(err)
	}
	hc, nc := host["controller"].(map[string]any), np["controller"].(map[string]any)
	if hc["hostNetwork"] != true || hc["dnsPolicy"] != "ClusterFirstWithHostNet" || hc["service"].(map[string]any)["type"] != "ClusterIP" {
		t.Errorf("hostNetwork mode: %v", hc)
	}
	if _, ok := nc["hostNetwork"]; ok || nc["service"].(map[string]any)["type"] != "NodePort" {
		t.Errorf("nodePort mode: %v", nc)
	}
	for _, c := range []map[string]any{hc, nc} {
		if c["kind"] != "DaemonSet" || c["nodeSelector"].(map[string]any)[IngressNodeLabel] != IngressNodeValue {
			t.Errorf("controller does not run on the labelled nodes: %v", c)
		}
		cfg := c["config"].(map[string]any)
		if cfg["proxy-body-size"] != "0" || cfg["proxy-request-buffering"] != "off" || cfg["proxy-read-timeout"] != "900" || cfg["proxy-send-timeout"] != "900" {
			t.Errorf("registry settings: %v", cfg)
		}
	}
	if _, err := IngressNginxValues("loadBalancer"); err == nil || !strings.HasPrefix(err.Error(), "addons.ingressMode:") {
		t.Errorf("unknown mode: %v", err)
	}
}

// TestRegistryValues renders the registry chart with the values built from
// an inventory's registry section and checks they reach the objects: the
// Ingress's issuer, the pruner's rules (read back by the pruner package) and
// schedules, S3 with keys from the S3 Secret.
func TestRegistryValues(t *testing.T) {
	keep, days := 10, 30
	enabled := true
	r := inventory.Registry{
		Host: "images.example.com", Issuer: inventory.IssuerSelfSigned, Namespace: "docker-registry",
		Storage: inventory.Storage{Type: inventory.StoragePVC, Size: "50Gi"}, Replicas: 1,
		Auth:        inventory.RegistryAuth{Mode: inventory.AuthHtpasswd, User: "admin"},
		Redis:       inventory.Redis{Enabled: &enabled, MaxMemory: "128mb"},
		GC:          inventory.GC{Schedule: "15 3 * * *"},
		Maintenance: inventory.Maintenance{Image: "mirror.example.com/bootctl/boot:0.1.0@" + testMaintenanceDigest},
		Pruner: inventory.Pruner{Enabled: &enabled, Schedule: "0 2 * * *", MaxDeletions: 50, Rules: []inventory.PruneRule{
			{Repositories: []string{"app/*"}, Match: []string{"^PR-"}, KeepLatest: &keep},
			{KeepSemver: &inventory.KeepSemver{Highest: 3}, KeepDays: &days},
		}},
	}
	values, err := RegistryValues(r)
	if err != nil {
		t.Fatal(err)
	}
	out, err := RenderRegistry(RenderOptions{Namespace: r.Namespace, Values: values})
	if err != nil {
		t.Fatal(err)
	}
	objs := decodeManifests(t, out)
	ing := get[*networkingv1.Ingress](t, objs, "Ingress/registry")
	if ing.Annotations["cert-manager.io/cluster-issuer"] != "selfsigned" || *ing.Spec.IngressClassName != "nginx" || ing.Spec.Rules[0].Host != "images.example.com" {
		t.Errorf("Ingress: annotations %v, class %v, rules %v", ing.Annotations, *ing.Spec.IngressClassName, ing.Spec.Rules)
	}
	gc := get[*batchv1.CronJob](t, objs, "CronJob/registry-gc")
	prune := get[*batchv1.CronJob](t, objs, "CronJob/registry-prune")
	if gc.Spec.Schedule != "15 3 * * *" || prune.Spec.Schedule != "0 2 * * *" {
		t.Errorf("schedules: gc %q, prune %q", gc.Spec.Schedule, prune.Spec.Schedule)
	}
	// The rules reach the pruner as the inventory gave them.
	cm := get[*corev1.ConfigMap](t, objs, "ConfigMap/registry-prune-rules")
	rules, err := pruner.ParseRules(strings.NewReader(cm.Data["rules.yaml"]))
	if err != nil {
		t.Fatalf("pruner cannot read the rendered rules: %v\n%s", err, cm.Data["rules.yaml"])
	}
	if len(rules.Rules) != 2 {
		t.Fatalf("%d rules, want 2", len(rules.Rules))
	}
	r0, r1 := rules.Rules[0], rules.Rules[1]
	if !slices.Equal(r0.Repositories, []string{"app/*"}) || !slices.Equal(r0.Match, []string{"^PR-"}) || r0.KeepLatest == nil || *r0.KeepLatest != 10 || r0.KeepDays != nil || r0.KeepSemver != nil {
		t.Errorf("rule 1: %+v", r0)
	}
	if r1.KeepSemver == nil || r1.KeepSemver.Highest != 3 || r1.KeepDays == nil || *r1.KeepDays != 30 || r1.Repositories != nil || r1.KeepLatest != nil {
		t.Errorf("rule 2: %+v", r1)
	}
	args := prune.Spec.JobTemplate.Spec.Template.Spec.Containers[0].Args
	if i := slices.Index(args, "--max-deletions"); i < 0 || i+1 >= len(args) || args[i+1] != "50" {
		t.Errorf("prune job args %q lack --max-deletions 50", args)
	}
	if ps := prune.Spec.JobTemplate.Spec.Template.Spec.ImagePullSecrets; len(ps) != 1 || ps[0].Name != RegistryPullSecret {
		t.Errorf("prune job pull secrets %v, want %s", ps, RegistryPullSecret)
	}

	s3 := r
	s3.Storage = inventory.Storage{Type: inventory.StorageS3, S3: &inventory.S3{Bucket: "b", Region: "eu-west-1", Endpoint: "https://minio.example.com", AccessKeyEnv: "AK", SecretKeyEnv: "SK"}}
	values, err = RegistryValues(s3)
	if err != nil {
		t.Fatal(err)
	}
	config, err := RenderRegistryConfig(values)
	if err != nil {
		t.Fatal(err)
	}
	out, err = RenderRegistry(RenderOptions{Namespace: r.Namespace, Values: values})
	if err != nil {
		t.Fatal(err)
	}
	d := get[*appsv1.Deployment](t, decodeManifests(t, out), "Deployment/registry")
	var fromS3Secret int
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == RegistryS3Secret {
			fromS3Secret++
		}
	}
	if fromS3Secret != 2 {
		t.Errorf("registry container reads %d variables from Secret %s, want the key pair", fromS3Secret, RegistryS3Secret)
	}
	for _, want := range []string{"bucket: b", "region: eu-west-1", "regionendpoint: https://minio.example.com", "forcepathstyle: true"} {
		if !strings.Contains(strings.ToLower(string(config)), want) {
			t.Errorf("config.yml lacks %q:\n%s", want, config)
		}
	}
	if _, err := RegistryValues(inventory.Registry{Storage: inventory.Storage{Type: "nfs"}}); err == nil || !strings.HasPrefix(err.Error(), "registry.storage.type:") {
		t.Errorf("unknown storage type: %v", err)
	}
}
