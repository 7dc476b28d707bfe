package addons

import (
	"bufio"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"github.com/google/go-cmp/cmp"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/distribution/distribution/v3/configuration"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/util/validation"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current chart")

// strictDecoder decodes YAML into the typed Kubernetes API objects the chart may
// produce; an unknown or duplicate field is an error.
var strictDecoder = func() runtime.Decoder {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		appsv1.AddToScheme, corev1.AddToScheme, batchv1.AddToScheme, networkingv1.AddToScheme, rbacv1.AddToScheme, policyv1.AddToScheme, admissionv1.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	return kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme,
		kjson.SerializerOptions{Yaml: true, Strict: true})
}()

// rendered is one rendered chart: objects by "Kind/name", plus the raw manifests.
type rendered struct {
	manifests map[string]string
	objects   map[string]runtime.Object
}

func (r rendered) names() []string { return slices.Sorted(maps.Keys(r.objects)) }

func get[T runtime.Object](t *testing.T, r rendered, key string) T {
	t.Helper()
	o, ok := r.objects[key].(T)
	if !ok {
		t.Fatalf("no %s among %v", key, r.names())
	}
	return o
}

// decodeManifests splits every rendered template into documents and decodes each
// strictly.
func decodeManifests(t *testing.T, manifests map[string]string) rendered {
	t.Helper()
	r := rendered{manifests: manifests, objects: map[string]runtime.Object{}}
	for _, name := range slices.Sorted(maps.Keys(manifests)) {
		reader := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(manifests[name])))
		for {
			doc, err := reader.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: split YAML: %v", name, err)
			}
			if isBlankYAML(doc) {
				continue
			}
			obj, gvk, err := strictDecoder.Decode(doc, nil, nil)
			if err != nil {
				t.Fatalf("%s: strict decode: %v\n%s", name, err, doc)
			}
			meta, ok := obj.(interface {
				GetName() string
				GetNamespace() string
			})
			if !ok {
				t.Fatalf("%s: %s has no object metadata", name, gvk)
			}
			key := gvk.Kind + "/" + meta.GetName()
			if _, dup := r.objects[key]; dup {
				t.Fatalf("%s: %s rendered twice", name, key)
			}
			r.objects[key] = obj
		}
	}
	return r
}

func isBlankYAML(doc []byte) bool {
	for line := range strings.SplitSeq(string(doc), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && line != "---" && !strings.HasPrefix(line, "#") {
			return false
		}
	}
	return true
}

// checkGolden compares the manifests with testdata/<name>.golden (-update rewrites).
func checkGolden(t *testing.T, name string, manifests map[string]string) {
	t.Helper()
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(manifests)) {
		fmt.Fprintf(&b, "# Source: %s\n%s\n---\n", k, strings.TrimSpace(manifests[k]))
	}
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./addons -run TestRenderRegistry -update)", err)
	}
	if got := b.String(); got != string(want) {
		t.Errorf("rendered manifests differ from %s (rerun with -update and review the diff):\n%s", path, cmp.Diff(string(want), got))
	}
}

type renderCase struct {
	name      string
	release   string
	namespace string
	values    map[string]any
	fullname  string
	objects   []string
	s3        bool
	redis     string // address the registry uses, "" = cache off
	inChart   bool   // in-chart Redis deployed
	pruner    bool
	image     string // the maintenance jobs' image
	token     bool   // auth.mode token, the pruner as its own user
}

// pinnedMaintenanceImage is the maintenance jobs' image of requiredValues.
const pinnedMaintenanceImage = testMaintenanceRepository + "@" + testMaintenanceDigest

func renderCases() []renderCase {
	s3 := s3Values()
	s3["replicaCount"] = 2
	s3["ingress"] = map[string]any{"clusterIssuer": "", "tlsSecretName": "wildcard-tls", "proxyTimeoutSeconds": 1800}
	s3["maintenance"] = map[string]any{
		"imagePullSecrets": []any{map[string]any{"name": "registry-pull"}},
		"image":            map[string]any{"repository": testMaintenanceRepository, "digest": testMaintenanceDigest, "tag": "0.1.0"},
	}
	s3["auth"] = map[string]any{"mode": "token", "token": map[string]any{"existingSecret": RegistryTokenSecret, "replicaCount": 2},
		"prunerSecret": registryUserSecretName("boot-pruner")}
	s3["pruner"] = map[string]any{
		"enabled":      true,
		"maxDeletions": 50,
		"rules": []any{
			map[string]any{"repositories": []any{"app/*"}, "match": []any{"^PR-"}, "keepLatest": 5},
			map[string]any{"keepSemver": map[string]any{"highest": 20}, "keepDays": 14},
		},
	}
	gcObjects := func(ns, full string) []string {
		return []string{"CronJob/" + full + "-gc", "Role/" + full + "-gc", "RoleBinding/" + full + "-gc", "ServiceAccount/" + full + "-gc",
			"ValidatingAdmissionPolicy/" + ns + "." + full + "-gc-exec", "ValidatingAdmissionPolicyBinding/" + ns + "." + full + "-gc-exec"}
	}
	redisObjects := func(full string) []string {
		return []string{"Deployment/" + full + "-redis", "NetworkPolicy/" + full + "-redis", "Service/" + full + "-redis"}
	}
	base := func(full string) []string {
		return []string{"Secret/" + full + "-config", "Deployment/" + full, "Service/" + full, "Ingress/" + full}
	}
	return []renderCase{
		{
			name: "default", values: requiredValues(), fullname: "registry",
			objects: slices.Concat(base("registry"), []string{"PersistentVolumeClaim/registry"}, redisObjects("registry"), gcObjects(DefaultRegistryNamespace, "registry")),
			redis:   "registry-redis:6379", inChart: true, image: pinnedMaintenanceImage,
		},
		{
			name: "s3", release: "docker", namespace: "images", values: s3, fullname: "docker-registry",
			objects: slices.Concat(base("docker-registry"), redisObjects("docker-registry"), gcObjects("images", "docker-registry"),
				[]string{"ConfigMap/docker-registry-prune-rules", "CronJob/docker-registry-prune", "PodDisruptionBudget/docker-registry"},
				[]string{"Deployment/docker-registry-token", "Service/docker-registry-token", "PodDisruptionBudget/docker-registry-token"}),
			s3: true, redis: "docker-registry-redis:6379", inChart: true, pruner: true, image: pinnedMaintenanceImage, token: true,
		},
		{
			// A tag without a digest is the chart's choice to allow; boot
			// always gives a digest.
			name: "redis-external",
			values: withValues(map[string]any{"redis": map[string]any{"externalAddress": "cache.internal:6380"}, "ingress": map[string]any{"enabled": false},
				"maintenance": map[string]any{"image": map[string]any{"repository": testMaintenanceRepository, "tag": "0.1.0"}}}),
			fullname: "registry",
			objects:  slices.Concat([]string{"Secret/registry-config", "Deployment/registry", "Service/registry", "PersistentVolumeClaim/registry"}, gcObjects(DefaultRegistryNamespace, "registry")),
			redis:    "cache.internal:6380", image: testMaintenanceRepository + ":0.1.0",
		},
		{
			name:     "redis-disabled",
			values:   withValues(map[string]any{"cache": "none", "gc": map[string]any{"enabled": false}}),
			fullname: "registry",
			objects:  slices.Concat(base("registry"), []string{"PersistentVolumeClaim/registry"}),
		},
		{
			// No maintenance image: neither CronJob, even with gc and the
			// pruner enabled (the chart never runs them from this registry).
			name: "no-maintenance-image",
			values: withValues(map[string]any{"maintenance": map[string]any{"image": map[string]any{"repository": ""}},
				"pruner": map[string]any{"enabled": true, "rules": []any{map[string]any{"keepLatest": 5}}}}),
			fullname: "registry",
			objects:  slices.Concat(base("registry"), []string{"PersistentVolumeClaim/registry"}, redisObjects("registry")),
			redis:    "registry-redis:6379", inChart: true,
		},
	}
}

func TestRenderRegistry(t *testing.T) {
	for _, tc := range renderCases() {
		t.Run(tc.name, func(t *testing.T) {
			out, err := RenderRegistry(RenderOptions{ReleaseName: tc.release, Namespace: tc.namespace, Values: tc.values})
			if err != nil {
				t.Fatal(err)
			}
			r := decodeManifests(t, out)
			if got, want := r.names(), slices.Sorted(slices.Values(tc.objects)); !slices.Equal(got, want) {
				t.Fatalf("rendered objects:\n  %v\nwant\n  %v", got, want)
			}
			checkGolden(t, tc.name, out)
			checkWorkloads(t, r)
			checkNames(t, r)
			checkRegistry(t, r, tc)
			checkRedis(t, r, tc)
			checkMaintenance(t, r, tc)
			checkToken(t, r, tc)
		})
	}
}

// podSpecs returns every pod template the chart renders, by owner key.
func podSpecs(r rendered) map[string]corev1.PodTemplateSpec {
	out := map[string]corev1.PodTemplateSpec{}
	for k, o := range r.objects {
		switch o := o.(type) {
		case *appsv1.Deployment:
			out[k] = o.Spec.Template
		case *batchv1.CronJob:
			out[k] = o.Spec.JobTemplate.Spec.Template
		}
	}
	return out
}

// checkWorkloads holds every container of the chart to the same rules: non-root,
// read-only root, no capabilities, RuntimeDefault seccomp, resources, and secrets
// only by reference to the credentials Secret (or the S3 Secret).
func checkWorkloads(t *testing.T, r rendered) {
	t.Helper()
	for owner, tpl := range podSpecs(r) {
		pod := tpl.Spec
		psc := pod.SecurityContext
		if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
			t.Errorf("%s: pod not forced non-root: %+v", owner, psc)
		}
		if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s: pod seccomp not RuntimeDefault", owner)
		}
		wantToken := strings.HasSuffix(owner, "-gc")
		if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken != wantToken {
			t.Errorf("%s: automountServiceAccountToken = %v, want %v", owner, pod.AutomountServiceAccountToken, wantToken)
		}
		for _, c := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
			sc := c.SecurityContext
			if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
				sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
				sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot ||
				sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 ||
				sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("%s/%s: container security context too loose: %+v", owner, c.Name, sc)
			}
			if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
				t.Errorf("%s/%s: resources incomplete: %+v", owner, c.Name, c.Resources)
			}
			if strings.HasSuffix(c.Image, ":latest") || !strings.Contains(c.Image, ":") {
				t.Errorf("%s/%s: image %q is not pinned", owner, c.Name, c.Image)
			}
			for _, e := range c.Env {
				if ref := e.ValueFrom; ref != nil && ref.SecretKeyRef != nil {
					s := ref.SecretKeyRef
					known := []string{CredentialsKeyUsername, CredentialsKeyPassword, CredentialsKeyHTTPSecret, CredentialsKeyRedisPassword}
					switch s.Name {
					case "registry-s3":
						known = []string{"accessKeyID", "secretAccessKey"}
					case registryUserSecretName("boot-pruner"):
						known = []string{corev1.BasicAuthUsernameKey, corev1.BasicAuthPasswordKey}
					case "registry-credentials":
					default:
						t.Errorf("%s/%s: env %s reads unknown Secret %q", owner, c.Name, e.Name, s.Name)
					}
					if !slices.Contains(known, s.Key) {
						t.Errorf("%s/%s: env %s reads key %q of %s", owner, c.Name, e.Name, s.Key, s.Name)
					}
				}
			}
			for _, m := range c.VolumeMounts {
				if m.SubPath != "" {
					t.Errorf("%s/%s: volume %s mounted with subPath (updates would not reach the pod)", owner, c.Name, m.Name)
				}
			}
		}
	}
}

func envOf(c corev1.Container) map[string]corev1.EnvVar {
	out := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		out[e.Name] = e
	}
	return out
}

func secretEnv(e corev1.EnvVar) string {
	if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
		return ""
	}
	return e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
}

// subset reports whether every label of sel is in labels.
func subset(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return len(sel) > 0
}

func checkRegistry(t *testing.T, r rendered, tc renderCase) {
	t.Helper()
	d := get[*appsv1.Deployment](t, r, "Deployment/"+tc.fullname)
	if tc.s3 {
		if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType || *d.Spec.Replicas != 2 {
			t.Errorf("s3: strategy %q replicas %d, want rolling with 2", d.Spec.Strategy.Type, *d.Spec.Replicas)
		}
	} else if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType || *d.Spec.Replicas != 1 {
		t.Errorf("RWO volume: strategy %q replicas %d, want Recreate with 1", d.Spec.Strategy.Type, *d.Spec.Replicas)
	}
	if !subset(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
		t.Errorf("selector %v does not match pod labels", d.Spec.Selector.MatchLabels)
	}
	c := d.Spec.Template.Spec.Containers[0]
	if !strings.HasPrefix(c.Image, "docker.io/library/registry:3.") {
		t.Errorf("registry image %q", c.Image)
	}
	if !slices.Equal(c.Args, []string{"serve", "/etc/distribution/config.yml"}) {
		t.Errorf("registry args %v", c.Args)
	}
	// The debug listener is on the pod's loopback, which the kubelet's probes
	// cannot reach: they ask the API port's health-gated GET /.
	for _, p := range []*corev1.Probe{c.StartupProbe, c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/" || p.HTTPGet.Port.String() != "http" {
			t.Errorf("probe not on GET / of the http port: %+v", p)
		}
	}
	if len(c.Ports) != 1 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != 5000 {
		t.Errorf("registry container ports %+v, want only http 5000", c.Ports)
	}
	if c.LivenessProbe == nil {
		t.Error("no liveness probe")
	}
	env := envOf(c)
	if got := secretEnv(env["REGISTRY_HTTP_SECRET"]); got != "registry-credentials/httpSecret" {
		t.Errorf("REGISTRY_HTTP_SECRET from %q", got)
	}
	wantRedisEnv := ""
	if tc.redis != "" {
		wantRedisEnv = "registry-credentials/redisPassword"
	}
	if got := secretEnv(env["REGISTRY_REDIS_PASSWORD"]); got != wantRedisEnv {
		t.Errorf("REGISTRY_REDIS_PASSWORD from %q, want %q", got, wantRedisEnv)
	}
	if got := env[RegistryReadOnlyEnv].Value; got != RegistryReadOnlyOff {
		t.Errorf("%s = %q, want %q", RegistryReadOnlyEnv, got, RegistryReadOnlyOff)
	}
	if tc.s3 {
		if secretEnv(env["AWS_ACCESS_KEY_ID"]) != "registry-s3/accessKeyID" || secretEnv(env["AWS_SECRET_ACCESS_KEY"]) != "registry-s3/secretAccessKey" {
			t.Error("S3 keys not from the S3 Secret")
		}
	}

	volumes := map[string]corev1.Volume{}
	for _, v := range d.Spec.Template.Spec.Volumes {
		volumes[v.Name] = v
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m
	}
	wantAuth := corev1.SecretVolumeSource{SecretName: "registry-credentials", Items: []corev1.KeyToPath{{Key: CredentialsKeyHtpasswd, Path: "htpasswd"}}}
	if tc.token {
		wantAuth = corev1.SecretVolumeSource{SecretName: RegistryTokenSecret, Items: []corev1.KeyToPath{{Key: TokenCertKey, Path: "cert.pem"}}}
	}
	if a := volumes["auth"].Secret; a == nil || a.SecretName != wantAuth.SecretName || !slices.Equal(a.Items, wantAuth.Items) ||
		mounts["auth"].MountPath != "/etc/registry/auth" {
		t.Errorf("auth volume %+v mount %+v, want %+v", volumes["auth"], mounts["auth"], wantAuth)
	}
	if cv := volumes["config"].Secret; cv == nil || cv.SecretName != tc.fullname+"-config" || mounts["config"].MountPath != "/etc/distribution" {
		t.Errorf("config volume %+v", volumes["config"])
	}
	_, hasData := volumes["data"]
	if hasData == tc.s3 {
		t.Errorf("data volume present=%v with s3=%v", hasData, tc.s3)
	}
	if !tc.s3 {
		pvc := get[*corev1.PersistentVolumeClaim](t, r, "PersistentVolumeClaim/"+tc.fullname)
		if volumes["data"].PersistentVolumeClaim.ClaimName != pvc.Name || mounts["data"].MountPath != "/var/lib/registry" {
			t.Error("data volume is not the PVC at /var/lib/registry")
		}
		if !pvc.Spec.Resources.Requests.Storage().Equal(resource.MustParse("20Gi")) ||
			!slices.Equal(pvc.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}) {
			t.Errorf("pvc spec %+v", pvc.Spec)
		}
	}

	svc := get[*corev1.Service](t, r, "Service/"+tc.fullname)
	if !subset(svc.Spec.Selector, d.Spec.Template.Labels) || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 5000 || svc.Spec.Ports[0].TargetPort.String() != "http" {
		t.Errorf("service %+v: want only port 5000 to http (the debug listener, with pprof, stays in the pod)", svc.Spec)
	}

	ing, ok := r.objects["Ingress/"+tc.fullname].(*networkingv1.Ingress)
	if !ok {
		return
	}
	a := ing.Annotations
	if a["nginx.ingress.kubernetes.io/proxy-body-size"] != "0" || a["nginx.ingress.kubernetes.io/proxy-request-buffering"] != "off" {
		t.Errorf("ingress annotations %v", a)
	}
	for _, k := range []string{"nginx.ingress.kubernetes.io/proxy-read-timeout", "nginx.ingress.kubernetes.io/proxy-send-timeout"} {
		if n, err := strconv.Atoi(a[k]); err != nil || n < 600 {
			t.Errorf("%s = %q, want >= 600", k, a[k])
		}
	}
	wantIssuer, wantTLS := "letsencrypt", tc.fullname+"-tls"
	if tc.s3 {
		wantIssuer, wantTLS = "", "wildcard-tls"
	}
	if a["cert-manager.io/cluster-issuer"] != wantIssuer {
		t.Errorf("cluster-issuer = %q, want %q", a["cert-manager.io/cluster-issuer"], wantIssuer)
	}
	paths := ing.Spec.Rules[0].HTTP.Paths
	last := paths[len(paths)-1]
	if *ing.Spec.IngressClassName != "nginx" || len(ing.Spec.TLS) != 1 || ing.Spec.TLS[0].SecretName != wantTLS ||
		!slices.Equal(ing.Spec.TLS[0].Hosts, []string{"registry.example.com"}) || ing.Spec.Rules[0].Host != "registry.example.com" ||
		last.Path != "/" || last.Backend.Service.Name != svc.Name {
		t.Errorf("ingress spec %+v", ing.Spec)
	}
	if tc.token {
		// The registry's realm: /token on the same host, to the token service.
		if p := paths[0]; len(paths) != 2 || p.Path != "/token" || *p.PathType != networkingv1.PathTypePrefix ||
			p.Backend.Service.Name != tc.fullname+"-token" || p.Backend.Service.Port.Name != "http" {
			t.Errorf("ingress paths %+v, want /token (Prefix) to %s-token first", paths, tc.fullname)
		}
	} else if len(paths) != 1 {
		t.Errorf("ingress paths %+v, want / only", paths)
	}
}

// checkToken: with auth.mode token the registry verifies tokens of the
// token service (realm /token on its host, its certificate), and the token
// service runs the maintenance image with the key and users of the token
// Secret, behind a Service the Ingress and the pruner reach.
func checkToken(t *testing.T, r rendered, tc renderCase) {
	t.Helper()
	cfg := registryConfigOf(t, r, tc.fullname)
	_, hasHtpasswd := cfg.Auth["htpasswd"]
	token, hasToken := cfg.Auth["token"]
	if hasToken != tc.token || hasHtpasswd == tc.token || len(cfg.Auth) != 1 {
		t.Fatalf("auth %v with token=%v", cfg.Auth, tc.token)
	}
	if !tc.token {
		if _, ok := r.objects["Deployment/"+tc.fullname+"-token"]; ok {
			t.Error("htpasswd mode renders the token service")
		}
		return
	}
	want := map[string]any{"realm": "https://registry.example.com/token", "service": "registry.example.com", "issuer": TokenIssuer,
		"rootcertbundle": "/etc/registry/auth/cert.pem", "signingalgorithms": []any{"ES256"}}
	if fmt.Sprint(map[string]any(token)) != fmt.Sprint(want) {
		t.Errorf("auth.token = %v, want %v", token, want)
	}
	d := get[*appsv1.Deployment](t, r, "Deployment/"+tc.fullname+"-token")
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	wantArgs := []string{"registry", "token-server", "--listen", ":5001", "--users", "/etc/boot/token/users", "--key", "/etc/boot/token/key.pem",
		"--issuer", TokenIssuer, "--service", "registry.example.com", "--ttl", "5m"}
	if c.Image != tc.image || !slices.Equal(c.Command, []string{"boot"}) || !slices.Equal(c.Args, wantArgs) || *d.Spec.Replicas != 2 {
		t.Errorf("token service %s %v %v x%d, want %s boot %v x2", c.Image, c.Command, c.Args, *d.Spec.Replicas, tc.image, wantArgs)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("token readiness probe %+v", c.ReadinessProbe)
	}
	if len(pod.Volumes) != 1 || pod.Volumes[0].Secret == nil || pod.Volumes[0].Secret.SecretName != RegistryTokenSecret ||
		!slices.Equal(pod.Volumes[0].Secret.Items, []corev1.KeyToPath{{Key: TokenKeyKey, Path: "key.pem"}, {Key: TokenUsersKey, Path: "users"}}) ||
		len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != "/etc/boot/token" {
		t.Errorf("token volumes %+v mounts %+v", pod.Volumes, c.VolumeMounts)
	}
	svc := get[*corev1.Service](t, r, "Service/"+tc.fullname+"-token")
	if !subset(svc.Spec.Selector, d.Spec.Template.Labels) || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 5001 {
		t.Errorf("token service %+v", svc.Spec)
	}
	if regSvc := get[*corev1.Service](t, r, "Service/"+tc.fullname); subset(regSvc.Spec.Selector, d.Spec.Template.Labels) {
		t.Error("the registry's Service selects the token pods")
	}
}

func checkRedis(t *testing.T, r rendered, tc renderCase) {
	t.Helper()
	if !tc.inChart {
		return
	}
	d := get[*appsv1.Deployment](t, r, "Deployment/"+tc.fullname+"-redis")
	c := d.Spec.Template.Spec.Containers[0]
	args := strings.Join(c.Args, " ")
	for _, want := range []string{"/run/redis-auth/redis.conf --maxmemory 256mb", "--maxmemory-policy allkeys-lru", "--save  --appendonly no"} {
		if !strings.Contains(args, want) {
			t.Errorf("redis args %q lack %q", args, want)
		}
	}
	// The password reaches Redis in the config file the init container writes,
	// never on its command line.
	if strings.Contains(args, "requirepass") || strings.Contains(args, "$(") {
		t.Errorf("redis args %q pass the password", args)
	}
	env := envOf(c)
	inits := d.Spec.Template.Spec.InitContainers
	if len(inits) != 1 || secretEnv(envOf(inits[0])["REDIS_PASSWORD"]) != "registry-credentials/redisPassword" ||
		secretEnv(env["REDISCLI_AUTH"]) != "registry-credentials/redisPassword" {
		t.Error("redis password not from the credentials Secret")
	}
	if _, ok := env["REDIS_PASSWORD"]; ok {
		t.Error("the redis container still gets REDIS_PASSWORD")
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.Exec == nil || c.LivenessProbe == nil {
		t.Error("redis probes missing")
	}
	svc := get[*corev1.Service](t, r, "Service/"+tc.fullname+"-redis")
	if !subset(svc.Spec.Selector, d.Spec.Template.Labels) || svc.Spec.Ports[0].Port != 6379 {
		t.Errorf("redis service %+v", svc.Spec)
	}

	np := get[*networkingv1.NetworkPolicy](t, r, "NetworkPolicy/"+tc.fullname+"-redis")
	if !subset(np.Spec.PodSelector.MatchLabels, d.Spec.Template.Labels) {
		t.Error("network policy does not select the redis pods")
	}
	if len(np.Spec.Ingress) != 1 || len(np.Spec.Ingress[0].Ports) != 1 || np.Spec.Ingress[0].Ports[0].Port.String() != "redis" {
		t.Fatalf("network policy ingress %+v", np.Spec.Ingress)
	}
	// Exactly the registry pods and the gc job pods (when there is a gc job)
	// may connect.
	pods := podSpecs(r)
	allowed := map[string]bool{}
	for _, peer := range np.Spec.Ingress[0].From {
		if peer.NamespaceSelector != nil || peer.IPBlock != nil || peer.PodSelector == nil {
			t.Errorf("peer %+v reaches beyond the release's pods", peer)
			continue
		}
		for owner, tpl := range pods {
			if subset(peer.PodSelector.MatchLabels, tpl.Labels) {
				allowed[owner] = true
			}
		}
	}
	want := []string{"Deployment/" + tc.fullname}
	if _, ok := r.objects["CronJob/"+tc.fullname+"-gc"]; ok {
		want = append(want, "CronJob/"+tc.fullname+"-gc")
	}
	if got := slices.Sorted(maps.Keys(allowed)); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Errorf("pods allowed to reach redis: %v, want %v", got, want)
	}
}

func checkMaintenance(t *testing.T, r rendered, tc renderCase) {
	t.Helper()
	wantImage := tc.image
	if gc, ok := r.objects["CronJob/"+tc.fullname+"-gc"].(*batchv1.CronJob); ok {
		if gc.Spec.Schedule != "30 */12 * * *" || gc.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
			t.Errorf("gc schedule %q policy %q", gc.Spec.Schedule, gc.Spec.ConcurrencyPolicy)
		}
		pod := gc.Spec.JobTemplate.Spec.Template.Spec
		c := pod.Containers[0]
		if c.Image != wantImage || pod.ServiceAccountName != tc.fullname+"-gc" || pod.RestartPolicy != corev1.RestartPolicyNever {
			t.Errorf("gc pod image %q sa %q restart %q", c.Image, pod.ServiceAccountName, pod.RestartPolicy)
		}
		ns := tc.namespace
		if ns == "" {
			ns = DefaultRegistryNamespace
		}
		want := []string{"registry", "gc", "--namespace", ns, "--deployment", tc.fullname, "--container", "registry",
			"--config", "/etc/distribution/config.yml"}
		if tc.redis != "" {
			want = append(want, "--redis", tc.redis, "--redis-db", "0")
		}
		want = append(want, "--timeout", "30m")
		if !slices.Equal(c.Command, []string{"boot"}) || !slices.Equal(c.Args, want) {
			t.Errorf("gc command %v %v, want boot %v", c.Command, c.Args, want)
		}
		wantPw := ""
		if tc.redis != "" {
			wantPw = "registry-credentials/redisPassword"
		}
		if got := secretEnv(envOf(c)["BOOT_REDIS_PASSWORD"]); got != wantPw {
			t.Errorf("BOOT_REDIS_PASSWORD from %q, want %q", got, wantPw)
		}
		role := get[*rbacv1.Role](t, r, "Role/"+tc.fullname+"-gc")
		wantRules := []rbacv1.PolicyRule{
			{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, ResourceNames: []string{tc.fullname}, Verbs: []string{"get", "patch"}},
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}},
			{APIGroups: []string{""}, Resources: []string{"pods/exec"}, Verbs: []string{"create", "get"}},
		}
		if fmt.Sprint(role.Rules) != fmt.Sprint(wantRules) {
			t.Errorf("gc role rules %+v", role.Rules)
		}
		rb := get[*rbacv1.RoleBinding](t, r, "RoleBinding/"+tc.fullname+"-gc")
		if rb.RoleRef.Name != role.Name || rb.RoleRef.Kind != "Role" || len(rb.Subjects) != 1 ||
			rb.Subjects[0].Kind != "ServiceAccount" || rb.Subjects[0].Name != pod.ServiceAccountName || rb.Subjects[0].Namespace != ns {
			t.Errorf("gc role binding %+v", rb)
		}
	}
	if !tc.pruner {
		return
	}
	cj := get[*batchv1.CronJob](t, r, "CronJob/"+tc.fullname+"-prune")
	if cj.Spec.Schedule != "0 */12 * * *" || cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
		t.Errorf("prune schedule %q policy %q", cj.Spec.Schedule, cj.Spec.ConcurrencyPolicy)
	}
	pod := cj.Spec.JobTemplate.Spec.Template.Spec
	c := pod.Containers[0]
	want := []string{"prune", "--registry", "http://" + tc.fullname + "." + tc.namespace + ".svc:5000",
		"--rules", "/etc/boot/prune/rules.yaml", "--max-deletions", "50"}
	user := "registry-credentials"
	if tc.token {
		want = append(want, "--token-url", "http://"+tc.fullname+"-token."+tc.namespace+".svc:5001/token")
		user = registryUserSecretName("boot-pruner")
	}
	if c.Image != wantImage || !slices.Equal(c.Args, want) {
		t.Errorf("prune image %q args %v, want %v", c.Image, c.Args, want)
	}
	if !slices.Equal(pod.ImagePullSecrets, []corev1.LocalObjectReference{{Name: "registry-pull"}}) {
		t.Errorf("prune pull secrets %v", pod.ImagePullSecrets)
	}
	env := envOf(c)
	if secretEnv(env["BOOT_REGISTRY_USERNAME"]) != user+"/username" || secretEnv(env["BOOT_REGISTRY_PASSWORD"]) != user+"/password" {
		t.Errorf("prune credentials not from Secret %s", user)
	}
	cm := get[*corev1.ConfigMap](t, r, "ConfigMap/"+tc.fullname+"-prune-rules")
	want2 := "rules:\n- keepLatest: 5\n  match:\n  - ^PR-\n  repositories:\n  - app/*\n- keepDays: 14\n  keepSemver:\n    highest: 20\n"
	if cm.Data["rules.yaml"] != want2 {
		t.Errorf("rules.yaml =\n%s\nwant\n%s", cm.Data["rules.yaml"], want2)
	}
	var rulesMounted bool
	for _, v := range pod.Volumes {
		if v.ConfigMap != nil && v.ConfigMap.Name == cm.Name {
			for _, m := range c.VolumeMounts {
				rulesMounted = rulesMounted || (m.Name == v.Name && m.MountPath == "/etc/boot/prune")
			}
		}
	}
	if !rulesMounted {
		t.Error("rules ConfigMap not mounted at /etc/boot/prune")
	}
}

// TestRegistryChartSchemaRejects feeds bad values and expects a message that names
// the value and the problem.
func TestRegistryChartSchemaRejects(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values map[string]any
		want   []string
	}{
		{"no host", withValues(map[string]any{"host": ""}), []string{"/host", "minLength"}},
		{"bad host", withValues(map[string]any{"host": "Registry_Example"}), []string{"/host", "does not match pattern"}},
		{"no credentials", withValues(map[string]any{"credentials": map[string]any{"existingSecret": ""}}), []string{"/credentials/existingSecret", "minLength", "credentials.existingSecret: name of the Secret made by boot"}},
		{"registry 3.0", withValues(map[string]any{"image": map[string]any{"tag": "3.0.0"}}), []string{"/image/tag", "does not match pattern", "image.tag: distribution 3.1 or newer (3.0 has a cache revocation bug)"}},
		{"registry 2", withValues(map[string]any{"image": map[string]any{"tag": "2.8.3"}}), []string{"/image/tag"}},
		{"latest tag", withValues(map[string]any{"image": map[string]any{"tag": "latest"}}), []string{"/image/tag"}},
		{"unknown key", withValues(map[string]any{"hots": "x"}), []string{"additional properties 'hots' not allowed"}},
		{"unknown storage", withValues(map[string]any{"storage": map[string]any{"type": "gcs"}}), []string{"/storage/type", "'filesystem'", "'s3'"}},
		{"s3 without bucket", withValues(map[string]any{"storage": map[string]any{"type": "s3"}}), []string{"/storage/s3/bucket", "minLength", "storage.s3.bucket: the S3 bucket; required when storage.type is s3"}},
		{"bad size", withValues(map[string]any{"storage": map[string]any{"filesystem": map[string]any{"size": "20GB"}}}), []string{"/storage/filesystem/size"}},
		{"bad access mode", withValues(map[string]any{"storage": map[string]any{"filesystem": map[string]any{"accessMode": "RWO"}}}), []string{"/storage/filesystem/accessMode"}},
		{"bad purge age", withValues(map[string]any{"storage": map[string]any{"uploadPurging": map[string]any{"age": "1 week"}}}), []string{"/storage/uploadPurging/age"}},
		{"redis address without port", withValues(map[string]any{"redis": map[string]any{"externalAddress": "redis.internal"}}), []string{"/redis/externalAddress", "redis.externalAddress: host:port of an external Redis"}},
		{"redis db", withValues(map[string]any{"redis": map[string]any{"db": 16}}), []string{"/redis/db", "maximum"}},
		{"redis maxmemory", withValues(map[string]any{"redis": map[string]any{"maxMemory": "lots"}}), []string{"/redis/maxMemory"}},
		{"short proxy timeout", withValues(map[string]any{"ingress": map[string]any{"proxyTimeoutSeconds": 60}}), []string{"/ingress/proxyTimeoutSeconds", "minimum", "registries need at least 600 s"}},
		{"bad schedule", withValues(map[string]any{"gc": map[string]any{"schedule": "every 12h"}}), []string{"/gc/schedule", `gc.schedule: a cron schedule with five fields, e.g. "0 */12 * * *"`}},
		{"bad gc timeout", withValues(map[string]any{"gc": map[string]any{"timeout": "30 minutes"}}), []string{"/gc/timeout", "gc.timeout: a Go duration such as 30s"}},
		{"pruner without rules", withValues(map[string]any{"pruner": map[string]any{"enabled": true}}), []string{"/pruner/rules", "minItems"}},
		{"wrong type", withValues(map[string]any{"readOnly": "yes"}), []string{"/readOnly", "want boolean"}},
		{"long fullname", withValues(map[string]any{"fullnameOverride": strings.Repeat("r", 41)}), []string{"/fullnameOverride", "maxLength"}},
		{"short maintenance digest", withValues(map[string]any{"maintenance": map[string]any{"image": map[string]any{"repository": testMaintenanceRepository, "digest": "sha256:0123abcd"}}}),
			[]string{"/maintenance/image/digest", "does not match pattern"}},
		{"upper-case maintenance digest", withValues(map[string]any{"maintenance": map[string]any{"image": map[string]any{"repository": testMaintenanceRepository, "digest": strings.ToUpper(testMaintenanceDigest)}}}),
			[]string{"/maintenance/image/digest"}},
		{"maintenance repository with a tag", withValues(map[string]any{"maintenance": map[string]any{"image": map[string]any{"repository": testMaintenanceRepository + ":0.1.0", "digest": testMaintenanceDigest}}}),
			[]string{"/maintenance/image/repository", "does not match pattern"}},
		{"registry digest not sha256", withValues(map[string]any{"image": map[string]any{"digest": "md5:0123456789abcdef0123456789abcdef"}}), []string{"/image/digest", "does not match pattern"}},
		{"redis digest without algorithm", withValues(map[string]any{"redis": map[string]any{"image": map[string]any{"digest": strings.TrimPrefix(testMaintenanceDigest, "sha256:")}}}),
			[]string{"/redis/image/digest", "does not match pattern"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := RenderRegistry(RenderOptions{Values: tc.values})
			if err == nil {
				t.Fatal("rendered")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestRegistryChartTemplateChecks covers what the schema cannot say and what holds
// even when a caller skips schema validation (helm --skip-schema-validation).
func TestRegistryChartTemplateChecks(t *testing.T) {
	t.Run("replicas need shared storage", func(t *testing.T) {
		_, err := RenderRegistry(RenderOptions{Values: withValues(map[string]any{"replicaCount": 2})})
		if err == nil || !strings.Contains(err.Error(), "replicaCount > 1 needs storage.type s3") {
			t.Fatalf("error = %v", err)
		}
	})
	c, err := RegistryChart()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		values map[string]any
		want   string
	}{
		{"credentials", withValues(map[string]any{"credentials": map[string]any{"existingSecret": ""}}), "credentials.existingSecret is required"},
		{"host", withValues(map[string]any{"host": ""}), "host is required"},
		{"s3 bucket", withValues(map[string]any{"storage": map[string]any{"type": "s3"}}), "storage.s3.bucket is required when storage.type is s3"},
		{"pruner rules", withValues(map[string]any{"pruner": map[string]any{"enabled": true}}), "pruner.enabled is true but pruner.rules is empty"},
		{"pruner rules without a maintenance image", withValues(map[string]any{"pruner": map[string]any{"enabled": true}, "maintenance": map[string]any{"image": map[string]any{"repository": ""}}}),
			"pruner.enabled is true but pruner.rules is empty"},
		{"maintenance image neither pinned nor tagged", withValues(map[string]any{"maintenance": map[string]any{"image": map[string]any{"repository": testMaintenanceRepository}}}),
			"maintenance.image.repository needs maintenance.image.digest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			top, err := chartutil.ToRenderValuesWithSchemaValidation(c, tc.values,
				chartutil.ReleaseOptions{Name: "registry", Namespace: "registry"}, nil, true)
			if err != nil {
				t.Fatal(err)
			}
			_, err = engine.Engine{Strict: true}.Render(c, top)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestRegistryChartLint runs the Helm SDK's linter (what `helm lint` runs) on the
// chart's source folder with the required values and with S3 values.
func TestRegistryChartLint(t *testing.T) {
	for name, values := range map[string]map[string]any{"default": requiredValues(), "s3": renderCases()[1].values} {
		t.Run(name, func(t *testing.T) {
			l := lint.All(filepath.Join("charts", "registry"), values, "registry", false)
			for _, m := range l.Messages {
				t.Errorf("lint: %s", m)
			}
			if l.HighestSeverity != support.UnknownSev {
				t.Errorf("highest lint severity %d", l.HighestSeverity)
			}
		})
	}
	t.Run("refuses without credentials", func(t *testing.T) {
		l := lint.All(filepath.Join("charts", "registry"), map[string]any{"host": "registry.example.com"}, "registry", false)
		if l.HighestSeverity < support.ErrorSev {
			t.Fatalf("lint passes without credentials.existingSecret: %v", l.Messages)
		}
	})
}

// TestRegistryChartEmbedded checks the embedded chart is the chart in the source tree.
func TestRegistryChartEmbedded(t *testing.T) {
	c, err := RegistryChart()
	if err != nil {
		t.Fatal(err)
	}
	if c.Metadata.Name != "registry" || c.Metadata.APIVersion != "v2" || c.Schema == nil {
		t.Fatalf("chart %s %s schema=%v", c.Metadata.Name, c.Metadata.APIVersion, c.Schema != nil)
	}
	var names []string
	for _, tpl := range c.Templates {
		names = append(names, tpl.Name)
	}
	onDisk, err := filepath.Glob(filepath.Join("charts", "registry", "templates", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range onDisk {
		want := "templates/" + filepath.Base(p)
		if !slices.Contains(names, want) {
			t.Errorf("%s is not embedded (templates: %v)", want, names)
		}
	}
}

func TestRegistryChartNotes(t *testing.T) {
	out, err := renderRegistryChart(RenderOptions{Values: requiredValues()})
	if err != nil {
		t.Fatal(err)
	}
	notes := out[registryNotesTemplate]
	for _, want := range []string{"https://registry.example.com", "docker login registry.example.com", "--password-stdin", "secret registry-credentials"} {
		if !strings.Contains(notes, want) {
			t.Errorf("NOTES.txt lacks %q:\n%s", want, notes)
		}
	}
	manifests, err := RenderRegistry(RenderOptions{Values: requiredValues()})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := manifests[registryNotesTemplate]; ok {
		t.Error("RenderRegistry returns NOTES.txt among the manifests")
	}
}

// TestRegistryChartImageDigests: a digest pins each image of the chart, the
// registry's, Redis' (its init container too) and the maintenance jobs':
// the pods run repository@digest, whatever the tag says.
func TestRegistryChartImageDigests(t *testing.T) {
	const regDigest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	const redisDigest = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	values := withValues(map[string]any{
		"image":  map[string]any{"repository": "docker.io/library/registry", "tag": "3.1.2", "digest": regDigest},
		"redis":  map[string]any{"image": map[string]any{"repository": "docker.io/library/redis", "tag": "7.4.2-alpine", "digest": redisDigest}},
		"pruner": map[string]any{"enabled": true, "rules": []any{map[string]any{"keepLatest": 5}}},
	})
	out, err := RenderRegistry(RenderOptions{Values: values})
	if err != nil {
		t.Fatal(err)
	}
	r := decodeManifests(t, out)
	want := map[string]string{
		"Deployment/registry":       "docker.io/library/registry@" + regDigest,
		"Deployment/registry-redis": "docker.io/library/redis@" + redisDigest,
		"CronJob/registry-gc":       pinnedMaintenanceImage,
		"CronJob/registry-prune":    pinnedMaintenanceImage,
	}
	pods := podSpecs(r)
	for owner, image := range want {
		tpl, ok := pods[owner]
		if !ok {
			t.Fatalf("no %s among %v", owner, r.names())
		}
		for _, c := range append(slices.Clone(tpl.Spec.InitContainers), tpl.Spec.Containers...) {
			if c.Image != image {
				t.Errorf("%s/%s runs %s, want %s", owner, c.Name, c.Image, image)
			}
		}
	}
}

// TestRegistryChartNotesWithoutMaintenanceImage: without the maintenance
// image the notes say that neither job is installed, and why.
func TestRegistryChartNotesWithoutMaintenanceImage(t *testing.T) {
	out, err := renderRegistryChart(RenderOptions{Values: withValues(map[string]any{"maintenance": map[string]any{"image": map[string]any{"repository": ""}}})})
	if err != nil {
		t.Fatal(err)
	}
	notes := out[registryNotesTemplate]
	if !strings.Contains(notes, "no maintenance.image.repository") || !strings.Contains(notes, "neither prune nor gc is installed") || strings.Contains(notes, "CronJob") {
		t.Errorf("NOTES.txt:\n%s", notes)
	}
	out, err = renderRegistryChart(RenderOptions{Values: requiredValues()})
	if err != nil {
		t.Fatal(err)
	}
	if notes := out[registryNotesTemplate]; !strings.Contains(notes, "gc:    CronJob registry-gc") {
		t.Errorf("NOTES.txt with the maintenance image:\n%s", notes)
	}
}

// TestRegistryChartHoldsNoSecret renders every case next to real credentials and
// checks no secret value reaches a manifest; the same check finds them in the
// credentials Secret itself, so it can see them when they are there.
func TestRegistryChartHoldsNoSecret(t *testing.T) {
	creds, err := NewRegistryCredentials("admin", "")
	if err != nil {
		t.Fatal(err)
	}
	secretYAML, err := runtime.Encode(kjson.NewYAMLSerializer(kjson.DefaultMetaFactory, nil, nil), creds.Secret("registry-credentials", "registry"))
	if err != nil {
		t.Fatal(err)
	}
	leaks := func(text string) []string {
		var found []string
		for i, s := range secretsOf(creds) {
			for _, form := range []string{s, base64.StdEncoding.EncodeToString([]byte(s))} {
				if strings.Contains(text, form) {
					found = append(found, fmt.Sprintf("secret %d", i))
				}
			}
		}
		return found
	}
	if len(leaks(string(secretYAML))) == 0 {
		t.Fatal("the leak check does not find the secrets in the credentials Secret")
	}
	for _, tc := range renderCases() {
		out, err := renderRegistryChart(RenderOptions{ReleaseName: tc.release, Namespace: tc.namespace, Values: tc.values})
		if err != nil {
			t.Fatal(err)
		}
		for name, text := range out {
			if l := leaks(text); len(l) > 0 {
				t.Errorf("%s/%s holds %v", tc.name, name, l)
			}
		}
	}
}

// checkNames holds every object to the API server's naming rules: names are DNS
// subdomains (Services DNS labels, CronJobs at most 52 characters so their Jobs fit)
// and labels are valid.
func checkNames(t *testing.T, r rendered) {
	t.Helper()
	for key, o := range r.objects {
		meta, err := apimeta.Accessor(o)
		if err != nil {
			t.Fatal(err)
		}
		name := meta.GetName()
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
			t.Errorf("%s: %v", key, errs)
		}
		switch o.(type) {
		case *corev1.Service:
			if errs := validation.IsDNS1035Label(name); len(errs) > 0 {
				t.Errorf("%s: %v", key, errs)
			}
		case *batchv1.CronJob:
			if len(name) > 52 {
				t.Errorf("%s: CronJob name longer than 52 characters", key)
			}
		}
		labels := maps.Clone(meta.GetLabels())
		for owner, tpl := range podSpecs(r) {
			if owner == key {
				maps.Copy(labels, tpl.Labels)
			}
		}
		for k, v := range labels {
			if errs := slices.Concat(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)); len(errs) > 0 {
				t.Errorf("%s: label %s=%s: %v", key, k, v, errs)
			}
		}
	}
}

// TestRegistryChartLongReleaseName renders with the longest release name Helm
// allows (53 characters).
func TestRegistryChartLongReleaseName(t *testing.T) {
	release := "a-very-long-release-name-for-the-registry-of-team-x42"[:52] + "z"
	out, err := RenderRegistry(RenderOptions{ReleaseName: release, Namespace: "registry", Values: renderCases()[1].values})
	if err != nil {
		t.Fatal(err)
	}
	r := decodeManifests(t, out)
	checkNames(t, r)
	if _, ok := r.objects["CronJob/"+release[:40]+"-gc"]; !ok {
		t.Errorf("gc CronJob not named after the 40-character fullname: %v", r.names())
	}
}

// registryConfigOf parses the config.yml of the rendered config Secret.
func registryConfigOf(t *testing.T, r rendered, fullname string) *configuration.Configuration {
	t.Helper()
	s := get[*corev1.Secret](t, r, "Secret/"+fullname+"-config")
	raw, ok := s.Data["config.yml"]
	if !ok {
		t.Fatalf("Secret %s-config has no config.yml", fullname)
	}
	return parseConfig(t, raw)
}
