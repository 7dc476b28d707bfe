package addons

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"

	"github.com/bootctl/boot/internal/kubetest"
	"github.com/bootctl/boot/internal/route53test"
	"github.com/bootctl/boot/internal/testenv"
	"github.com/bootctl/boot/inventory"
)

// apiServer applies rendered objects to a real kube-apiserver.
type apiServer struct {
	t      *testing.T
	cs     kubernetes.Interface
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

func newAPIServer(t *testing.T, c *kubetest.Cluster) *apiServer {
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	return &apiServer{t: t, cs: cs, dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(cs.Discovery()))}
}

// version is the API server's Kubernetes version, e.g. v1.37.2.
func (a *apiServer) version() string {
	v, err := a.cs.Discovery().ServerVersion()
	if err != nil {
		a.t.Fatal(err)
	}
	return v.GitVersion
}

// dryRun sends every object to the API server as a server-side dry-run
// create with strict field validation, in namespace ns unless the object
// names its own (namespaces are made for real first: a dry run cannot
// create in a namespace that does not exist). CRDs are created for real,
// so that the custom resources after them are checked against their
// schemas. It returns the problems, one per refused object.
func (a *apiServer) dryRun(ctx context.Context, ns string, objs []*unstructured.Unstructured) []string {
	a.t.Helper()
	var problems []string
	for _, o := range objs {
		what := o.GetKind() + "/" + o.GetName()
		mapping, err := a.mapper.RESTMapping(o.GroupVersionKind().GroupKind(), o.GroupVersionKind().Version)
		if meta.IsNoMatchError(err) {
			a.mapper.Reset()
			mapping, err = a.mapper.RESTMapping(o.GroupVersionKind().GroupKind(), o.GroupVersionKind().Version)
		}
		if err != nil {
			problems = append(problems, what+": "+err.Error())
			continue
		}
		client := a.dyn.Resource(mapping.Resource)
		var ri dynamic.ResourceInterface = client
		if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
			if o.GetNamespace() == "" {
				o.SetNamespace(ns)
			}
			if err := ensureNamespace(ctx, a.cs, o.GetNamespace()); err != nil {
				a.t.Fatal(err)
			}
			ri = client.Namespace(o.GetNamespace())
		}
		if o.GetKind() == "CustomResourceDefinition" {
			if _, err := ri.Create(ctx, o, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				problems = append(problems, what+": "+err.Error())
			}
			a.waitEstablished(ctx, o.GetName())
			continue
		}
		if _, err := ri.Create(ctx, o, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"}); err != nil {
			problems = append(problems, what+": "+err.Error())
		}
	}
	return problems
}

func (a *apiServer) waitEstablished(ctx context.Context, name string) {
	a.t.Helper()
	for {
		u, err := a.dyn.Resource(crdResource).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			a.t.Fatal(err)
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		if slices.ContainsFunc(conds, func(c any) bool {
			m, _ := c.(map[string]any)
			return m["type"] == "Established" && m["status"] == "True"
		}) {
			return
		}
		select {
		case <-ctx.Done():
			a.t.Fatalf("CRD %s not established: %v", name, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stampedChartDir extracts an upstream chart into a folder of its own,
// stamping cert-manager's version as its release does, for addons.<x>.path.
func stampedChartDir(t *testing.T, archive, sub string) string {
	t.Helper()
	dir := upstreamChartDir(t, archive, sub)
	if archive == certManagerArchive {
		p := filepath.Join(dir, "Chart.yaml")
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		stamped := regexp.MustCompile(`(?m)^(version|appVersion): v0\.0\.0$`).ReplaceAllString(string(data), "${1}: "+certManagerVersion)
		if err := os.WriteFile(p, []byte(stamped), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestIngressSwitchWithUpstreamCharts drives the switch ingress-nginx ->
// traefik -> ingress-nginx with the real charts from their release archives
// (cert-manager v1.21.1, ingress-nginx 4.15.1, Traefik 41.3.0) against a
// real kube-apiserver at the bundle's Kubernetes version, where no pod ever
// runs:
//
//   - each plan's cert-manager and issuer releases (whose ClusterIssuer
//     cert-manager's webhook, which cannot run here, would have to admit)
//     are rendered and applied with server-side dry run, cert-manager's CRDs
//     for real (the issuers: Let's Encrypt over HTTP-01 and DNS-01, any ACME
//     directory with a CA bundle); so is each ingress chart in the mode the
//     switch does not install;
//   - the ingress releases and the registry's are installed for real, as
//     Plan orders them: after each switch the other controller's release is
//     gone, the IngressClass nginx (controller k8s.io/ingress-nginx) belongs
//     to the chosen one, and the registry's release and Ingress are
//     untouched;
//   - teardown removes whichever controller is installed.
func TestIngressSwitchWithUpstreamCharts(t *testing.T) {
	c := kubetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	api := newAPIServer(t, c)
	kubeVersion := api.version()
	for _, n := range []string{"cp1", "w1", "w2"} {
		if _, err := api.cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// The DNS-01 solver's zone and key pair, from a Route53 of the test's own.
	r53 := route53test.Start(t)
	route53test.SetCredentialsEnv(t, route53test.AccessKey, route53test.SecretKey)
	r53.AddZone("ZSWITCHTEST", "example.com", false)
	caFile := filepath.Join(t.TempDir(), "acme-ca.pem")
	if err := os.WriteFile(caFile, testCAPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}

	certManager := stampedChartDir(t, certManagerArchive, certManagerChartDir)
	nginx := stampedChartDir(t, ingressNginxArchive, ingressNginxDir)
	traefik := stampedChartDir(t, traefikArchive, traefikChartDir)
	inventoryFor := func(controller, mode, issuer string) *inventory.Inventory {
		t.Helper()
		text := fmt.Sprintf(`apiVersion: boot/v1alpha1
kind: Cluster
metadata:
  name: lab
hosts:
  - {name: cp1, address: 192.0.2.10, role: control-plane}
  - {name: w1, address: 192.0.2.11, role: worker}
  - {name: w2, address: 192.0.2.12, role: worker}
registry:
  host: registry.example.com
  acmeEmail: ops@example.org
%s
dns:
  provider: route53
  zone: example.com
addons:
  ingress:
    controller: %s
  ingressMode: %s
  ingressNginx: {path: %s}
  traefik: {path: %s}
  certManager: {path: %s}
`, issuer, controller, mode, nginx, traefik, certManager)
		return testenv.Inventory(t, text)
	}
	const (
		http01 = "  issuer: letsencrypt"
		dns01  = "  issuer: letsencrypt\n  acme:\n    solver: dns01\n    recursiveNameservers: [\"10.0.0.2:53\"]"
		acme   = "  issuer: acme\n  acme:\n    server: https://acme.example.internal/directory\n    caFile: %s\n    solver: dns01"
	)
	h := Helm{Kubeconfig: c.Kubeconfig}
	var ingressVersion string // the registry Ingress's resourceVersion after the first run
	run := func(step string, inv *inventory.Inventory) {
		t.Helper()
		in := &Installer{Helm: h, Charts: ChartLoader{CacheDir: t.TempDir()}, Inventory: inv, Timeout: time.Minute, Route53: Route53Config{Endpoint: r53.URL()}}
		releases, err := in.Plan(ctx)
		if err != nil {
			t.Fatalf("%s: plan: %v", step, err)
		}
		var names []string
		for _, r := range releases {
			names = append(names, fmt.Sprintf("%s remove=%v", r, r.Remove))
		}
		other, chosen := "traefik/traefik", "ingress-nginx/ingress-nginx"
		if inv.Addons.Ingress.Controller == inventory.IngressTraefik {
			other, chosen = chosen, other
		}
		wantNames := []string{"cert-manager/cert-manager remove=false", "cert-manager/cluster-issuer remove=false",
			other + " remove=true", chosen + " remove=false", "docker-registry/registry remove=false"}
		if !slices.Equal(names, wantNames) {
			t.Fatalf("%s: plan %q, want %q", step, names, wantNames)
		}
		encoded, err := json.Marshal(releasesValues(releases))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(encoded), route53test.SecretKey) {
			t.Fatalf("%s: the Route53 secret key is in the releases' values", step)
		}
		for _, r := range releases {
			switch {
			case r.Name == CertManagerRelease || r.Name == IssuerRelease:
				if problems := api.dryRun(ctx, r.Namespace, renderRelease(t, r, kubeVersion)); len(problems) > 0 {
					t.Errorf("%s: %s refused by the API server:\n%s", step, r, strings.Join(problems, "\n"))
				}
			default:
				if _, _, err := converge(ctx, h, r); err != nil {
					t.Fatalf("%s: %s: %v", step, r, err)
				}
			}
		}
		// The IngressClass belongs to the chosen controller's release.
		ic, err := api.cs.NetworkingV1().IngressClasses().Get(ctx, IngressClassName, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s: IngressClass nginx: %v", step, err)
		}
		if ic.Spec.Controller != IngressClassController || ic.Annotations["meta.helm.sh/release-name"]+"/"+ic.Annotations["meta.helm.sh/release-namespace"] != strings.Split(chosen, "/")[1]+"/"+strings.Split(chosen, "/")[0] {
			t.Errorf("%s: IngressClass nginx: controller %q, annotations %v", step, ic.Spec.Controller, ic.Annotations)
		}
		for _, r := range []string{chosen, other} {
			ns, name, _ := strings.Cut(r, "/")
			n, _ := releaseSecrets(ctx, t, api.cs, ns, name)
			if (r == chosen) != (n > 0) {
				t.Errorf("%s: release %s has %d revisions stored", step, r, n)
			}
		}
		ds, err := api.cs.AppsV1().DaemonSets(strings.Split(chosen, "/")[0]).List(ctx, metav1.ListOptions{})
		if err != nil || len(ds.Items) != 1 || ds.Items[0].Spec.Template.Spec.NodeSelector[IngressNodeLabel] != IngressNodeValue {
			t.Errorf("%s: DaemonSets of %s: %v %v", step, chosen, ds, err)
		}
		if ds, err := api.cs.AppsV1().DaemonSets(strings.Split(other, "/")[0]).List(ctx, metav1.ListOptions{}); err != nil || len(ds.Items) != 0 {
			t.Errorf("%s: %s left DaemonSets: %v %v", step, other, ds, err)
		}
		ing, err := api.cs.NetworkingV1().Ingresses(inv.Registry.Namespace).Get(ctx, "registry", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ingressVersion == "" {
			ingressVersion = ing.ResourceVersion
		} else if ing.ResourceVersion != ingressVersion {
			t.Errorf("%s: the registry's Ingress changed with the controller", step)
		}
		if *ing.Spec.IngressClassName != IngressClassName {
			t.Errorf("%s: the registry's Ingress has class %q", step, *ing.Spec.IngressClassName)
		}
	}
	run("ingress-nginx, HTTP-01", inventoryFor(inventory.IngressNginx, inventory.IngressHostNetwork, http01))
	run("switched to traefik, DNS-01", inventoryFor(inventory.IngressTraefik, inventory.IngressHostNetwork, dns01))
	if _, err := api.cs.CoreV1().Namespaces().Get(ctx, TraefikNamespace, metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	run("switched back to ingress-nginx", inventoryFor(inventory.IngressNginx, inventory.IngressHostNetwork, http01))

	removed, err := teardown(ctx, &Installer{Helm: h, Inventory: inventoryFor(inventory.IngressTraefik, inventory.IngressHostNetwork, http01), Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"release docker-registry/registry", "release ingress-nginx/ingress-nginx"}; !slices.Equal(removed, want) {
		t.Errorf("teardown removed %q, want %q", removed, want)
	}
	if _, err := api.cs.NetworkingV1().IngressClasses().Get(ctx, IngressClassName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("IngressClass nginx after teardown: %v", err)
	}

	// Each ingress chart in the mode the switch did not install, and the
	// issuer for any ACME directory with its CA bundle, as server-side dry
	// runs on the emptied cluster (cert-manager's CRDs stay).
	for _, controller := range []string{inventory.IngressNginx, inventory.IngressTraefik} {
		in := &Installer{Charts: ChartLoader{CacheDir: t.TempDir()}, Inventory: inventoryFor(controller, inventory.IngressNodePort, fmt.Sprintf(acme, caFile)),
			Route53: Route53Config{Endpoint: r53.URL()}}
		releases, err := in.Plan(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range []Release{releases[1], releases[3]} {
			if problems := api.dryRun(ctx, r.Namespace, renderRelease(t, r, kubeVersion)); len(problems) > 0 {
				t.Errorf("%s (%s, nodePort, acme) refused by the API server:\n%s", r, controller, strings.Join(problems, "\n"))
			}
		}
	}
}

// releasesValues collects the values of releases, for a look at what they
// hold.
func releasesValues(releases []Release) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, r := range releases {
		out[r.String()] = r.Values
	}
	return out
}

// testCAPEM returns a fresh self-signed CA certificate in PEM.
func testCAPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ACME server CA"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
