package addons

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/bootctl/boot/internal/kubetest"
	"github.com/bootctl/boot/internal/route53test"
	"github.com/bootctl/boot/internal/run"
	"github.com/bootctl/boot/internal/testenv"
	"github.com/bootctl/boot/inventory"
)

var (
	crdResource           = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	clusterIssuerResource = schema.GroupVersionResource{Group: "cert-manager.io", Version: "v1", Resource: "clusterissuers"}
	certificateResource   = schema.GroupVersionResource{Group: "cert-manager.io", Version: "v1", Resource: "certificates"}
)

// applyStandInCRDs creates the stand-in chart's CRDs
// (testdata/charts/cert-manager-standin/crds), which stand in for
// cert-manager's real CRDs (the cert-manager chart installs those; it
// cannot be downloaded here), and waits until the API server serves them.
func applyStandInCRDs(ctx context.Context, t *testing.T, cfg *rest.Config) {
	t.Helper()
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("testdata/charts/cert-manager-standin/crds/certmanager-crds.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	reader := utilyaml.NewYAMLReader(bufio.NewReader(f))
	var names []string
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if isBlankYAML(doc) {
			continue
		}
		var obj map[string]any
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{Object: obj}
		if _, err := dyn.Resource(crdResource).Create(ctx, u, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		names = append(names, u.GetName())
	}
	for _, name := range names {
		for {
			u, err := dyn.Resource(crdResource).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
			established := slices.ContainsFunc(conds, func(c any) bool {
				m, _ := c.(map[string]any)
				return m["type"] == "Established" && m["status"] == "True"
			})
			if established {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("CRD %s not established: %v", name, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// testInventory writes and loads an inventory whose two upstream charts are
// the small test chart (the real ones cannot be downloaded here): the same
// local-path source an air-gapped bundle uses.
func testInventory(t *testing.T, extra string) *inventory.Inventory {
	t.Helper()
	chartPath, err := filepath.Abs(testChartDir)
	if err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf(`apiVersion: boot/v1alpha1
kind: Cluster
metadata:
  name: lab
hosts:
  - name: cp1
    address: 192.0.2.10
    role: control-plane
  - name: w1
    address: 192.0.2.11
    role: worker
  - name: w2
    address: 192.0.2.12
    role: worker
registry:
  host: registry.example.com
  acmeEmail: ops@example.org
%saddons:
  ingressNginx:
    path: %s
  certManager:
    path: %s
`, extra, chartPath, chartPath)
	return testenv.Inventory(t, text)
}

// events collects an Installer's progress.
type events struct {
	mu  sync.Mutex
	all []run.Event
}

func (e *events) add(ev run.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, ev)
}

// ended returns the steps that ended, in order, as "step changed", "step
// error" or "step" (nothing to do, or a chart loaded).
func (e *events) ended() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.all {
		switch {
		case ev.Host == "charts": // loading them changes nothing
		case ev.Status == run.Failed:
			out = append(out, ev.Host+" error")
		case ev.Status == run.Changed:
			out = append(out, ev.Host+" changed")
		case ev.Status == run.OK && (ev.Message == "nothing to do" || ev.Message == "loaded"):
			out = append(out, ev.Host)
		}
	}
	return out
}

// warnings returns the steps' warnings as "step: warning", those of
// readiness waits (prefixed "waiting: ") when waiting, the others otherwise.
func (e *events) warnings(waiting bool) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.all {
		if msg, ok := strings.CutPrefix(ev.Message, waitingPrefix); ev.Status == run.Warning && ok == waiting {
			out = append(out, ev.Host+": "+msg)
		}
	}
	return out
}

// install runs the Installer's steps as boot addons does.
func install(ctx context.Context, in *Installer) (*Result, error) {
	steps, err := in.Steps()
	if err != nil {
		return nil, err
	}
	err = run.Do(ctx, steps, run.Options{Report: in.Report})
	return in.Result(), run.Cause(err)
}

// teardown runs the Installer's TeardownSteps as boot teardown does and
// returns what they removed: "release ns/name", "secret ns/name" and "label
// <IngressNodeLabel> of node <name>".
func teardown(ctx context.Context, in *Installer) ([]string, error) {
	var removed []string
	report := func(e run.Event) {
		in.Report.Report(e)
		if e.Status != run.Changed {
			return
		}
		switch what, _ := strings.CutPrefix(e.Message, "remove "); {
		case e.Host == "remove other releases of boot":
			for r := range strings.SplitSeq(what, ", ") {
				removed = append(removed, "release "+r)
			}
		case e.Host == "unlabel ingress nodes":
			for n := range strings.SplitSeq(strings.TrimPrefix(e.Message, "unlabel node(s) "), ", ") {
				removed = append(removed, "label "+IngressNodeLabel+" of node "+n)
			}
		case strings.HasPrefix(e.Host, "remove secret "):
			removed = append(removed, strings.TrimPrefix(e.Host, "remove "))
		default:
			removed = append(removed, "release "+strings.TrimPrefix(e.Host, "remove "))
		}
	}
	err := run.Do(ctx, in.TeardownSteps(), run.Options{Report: report})
	return removed, run.Cause(err)
}

// TestInstallerAgainstAPIServer runs Install and Teardown, the code path of
// `boot addons` and `boot teardown`, against a real kube-apiserver with
// stand-ins for cert-manager's CRDs: the releases go in in order, the
// ClusterIssuer and the registry land, the ingress hosts' nodes are
// labelled and the credentials are generated once; a re-run changes
// nothing; switching the issuer upgrades exactly the issuer and registry
// releases; Let's Encrypt over DNS-01 puts the zone in the ClusterIssuer and
// the key pair in its Secret only, refuses temporary credentials, and drops
// the Secret again with HTTP-01; teardown removes only what boot made.
func TestInstallerAgainstAPIServer(t *testing.T) {
	c := kubetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	api := newAPIServer(t, c)
	cs, dyn := api.cs, api.dyn
	applyStandInCRDs(ctx, t, c.Config)
	// Nodes as kubeadm would have registered them; w3 carries the ingress
	// label but is no ingress host of the inventory.
	for _, n := range []string{"cp1", "w1", "w2", "w3"} {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}}
		if n == "w3" {
			node.Labels = map[string]string{IngressNodeLabel: IngressNodeValue}
		}
		if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	h := Helm{Kubeconfig: c.Kubeconfig}
	inv := testInventory(t, "")
	cacheDir := t.TempDir()
	run := func(inv *inventory.Inventory) (*Result, []string) {
		t.Helper()
		ev := &events{}
		in := &Installer{Helm: h, Charts: ChartLoader{CacheDir: cacheDir}, Inventory: inv, Timeout: time.Minute, Report: ev.add}
		res, err := install(ctx, in)
		if err != nil {
			t.Fatalf("install: %v (steps %q)", err, ev.ended())
		}
		return res, ev.ended()
	}
	revisions := func(res *Result) []string {
		var out []string
		for _, r := range res.Releases {
			out = append(out, fmt.Sprintf("%s %s r%d %v", r.Release, r.Chart, r.Revision, r.Changed))
		}
		return out
	}

	// First run: everything is made.
	res, steps := run(inv)
	wantSteps := []string{
		"label ingress nodes changed",
		"cert-manager/cert-manager changed",
		"route53 credentials",
		"cert-manager/cluster-issuer changed",
		"remove traefik/traefik",
		"ingress-nginx/ingress-nginx changed",
		"registry secrets changed",
		"docker-registry/registry changed",
	}
	if !slices.Equal(steps, wantSteps) {
		t.Fatalf("first run steps:\n%q\nwant\n%q", steps, wantSteps)
	}
	want := []string{
		"cert-manager/cert-manager hello-0.1.0 r1 true",
		"cert-manager/cluster-issuer cluster-issuer-0.2.0 r1 true",
		"ingress-nginx/ingress-nginx hello-0.1.0 r1 true",
		"docker-registry/registry registry-0.1.0 r1 true",
	}
	if got := revisions(res); !slices.Equal(got, want) {
		t.Fatalf("first run:\n%q\nwant\n%q", got, want)
	}
	if !res.Credentials.Generated() || res.Credentials.Username() != "admin" || res.CredentialsSecret != "docker-registry/registry-credentials" {
		t.Fatalf("first run credentials: generated %v, user %q, secret %q", res.Credentials.Generated(), res.Credentials.Username(), res.CredentialsSecret)
	}
	password := res.Credentials.Password()
	// The result may be printed or encoded: the password never shows.
	encoded, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{string(encoded), fmt.Sprintf("%v %+v %#v", res, res, res)} {
		if strings.Contains(s, password) {
			t.Fatalf("the password shows in the result: %s", s)
		}
	}
	le, err := dyn.Resource(clusterIssuerResource).Get(ctx, "letsencrypt", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("ClusterIssuer letsencrypt: %v", err)
	}
	if email, _, _ := unstructured.NestedString(le.Object, "spec", "acme", "email"); email != "ops@example.org" {
		t.Fatalf("ClusterIssuer letsencrypt: e-mail %q", email)
	}
	ing, err := cs.NetworkingV1().Ingresses("docker-registry").Get(ctx, "registry", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ing.Annotations["cert-manager.io/cluster-issuer"] != "letsencrypt" {
		t.Fatalf("registry Ingress issuer annotation %q", ing.Annotations["cert-manager.io/cluster-issuer"])
	}
	checkLabels := func(step string, want ...string) {
		t.Helper()
		nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: IngressNodeLabel + "=" + IngressNodeValue})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, n := range nodes.Items {
			got = append(got, n.Name)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("%s: nodes labelled for ingress %q, want %q", step, got, want)
		}
	}
	checkLabels("first run", "w1", "w2")
	secret, err := cs.CoreV1().Secrets("docker-registry").Get(ctx, RegistryCredentialsSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Secrets("docker-registry").Get(ctx, RegistryPullSecret, metav1.GetOptions{}); err != nil {
		t.Fatalf("pull secret: %v", err)
	}

	// Second run with nothing changed: no step changes anything, the
	// credentials are read back, not made again.
	res, steps = run(testInventory(t, ""))
	wantSteps = []string{
		"label ingress nodes", "cert-manager/cert-manager", "route53 credentials", "cert-manager/cluster-issuer",
		"remove traefik/traefik", "ingress-nginx/ingress-nginx", "registry secrets", "docker-registry/registry",
	}
	if !slices.Equal(steps, wantSteps) {
		t.Fatalf("re-run steps:\n%q\nwant\n%q", steps, wantSteps)
	}
	for i := range want {
		want[i] = strings.Replace(want[i], " true", " false", 1)
	}
	if got := revisions(res); !slices.Equal(got, want) {
		t.Fatalf("re-run:\n%q\nwant\n%q", got, want)
	}
	if res.Credentials.Generated() || res.Credentials.Password() != password {
		t.Fatal("re-run made new credentials")
	}
	again, err := cs.CoreV1().Secrets("docker-registry").Get(ctx, RegistryCredentialsSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if again.ResourceVersion != secret.ResourceVersion {
		t.Fatal("re-run rewrote the credentials Secret")
	}

	// A release without the digest of its inputs (made by an earlier
	// boot): the run records it, with no new revision, and the next run
	// has nothing to do.
	cfg, err := h.config("docker-registry")
	if err != nil {
		t.Fatal(err)
	}
	last, err := cfg.Releases.Last("registry")
	if err != nil {
		t.Fatal(err)
	}
	delete(last.Labels, InputsLabel)
	if err := cfg.Releases.Update(last); err != nil {
		t.Fatal(err)
	}
	res, steps = run(testInventory(t, ""))
	if !slices.Contains(steps, "docker-registry/registry changed") || !slices.Contains(revisions(res), "docker-registry/registry registry-0.1.0 r1 true") {
		t.Fatalf("run over a release without its digest: steps %q, releases %q", steps, revisions(res))
	}
	if _, steps = run(testInventory(t, "")); !slices.Equal(steps, wantSteps) {
		t.Fatalf("run after the digest was recorded: steps %q", steps)
	}

	// A changed value: the self-signed issuer replaces Let's Encrypt; only the
	// issuer and the registry (whose Ingress names the issuer) change.
	res, _ = run(testInventory(t, "  issuer: selfsigned\n"))
	want = []string{
		"cert-manager/cert-manager hello-0.1.0 r1 false",
		"cert-manager/cluster-issuer cluster-issuer-0.2.0 r2 true",
		"ingress-nginx/ingress-nginx hello-0.1.0 r1 false",
		"docker-registry/registry registry-0.1.0 r2 true",
	}
	if got := revisions(res); !slices.Equal(got, want) {
		t.Fatalf("issuer switched:\n%q\nwant\n%q", got, want)
	}
	for _, name := range []string{"selfsigned", "selfsigned-root"} {
		if _, err := dyn.Resource(clusterIssuerResource).Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Fatalf("ClusterIssuer %s: %v", name, err)
		}
	}
	if _, err := dyn.Resource(certificateResource).Namespace(CertManagerNamespace).Get(ctx, "selfsigned-ca", metav1.GetOptions{}); err != nil {
		t.Fatalf("CA Certificate: %v", err)
	}
	if _, err := dyn.Resource(clusterIssuerResource).Get(ctx, "letsencrypt", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("ClusterIssuer letsencrypt after the switch: want not found, got %v", err)
	}

	// Let's Encrypt over DNS-01 in the Route53 zone of dns.zone: the zone's
	// ID goes into the ClusterIssuer, the key pair of the AWS credential chain
	// into Secret cert-manager/route53-credentials and nowhere else (values,
	// progress, errors); cert-manager's controller gets the nameservers and
	// boot's Route53 endpoint.
	r53 := route53test.Start(t)
	route53test.SetCredentialsEnv(t, route53test.AccessKey, route53test.SecretKey)
	r53.AddZone("ZDNS01TEST", "example.com", false)
	const dns01 = "  acme:\n    solver: dns01\n    recursiveNameservers: [\"10.0.0.2:53\"]\ndns:\n  provider: route53\n  zone: example.com\n"
	var seen []string // every step, note and error of the DNS-01 runs
	runDNS01 := func(extra string) (*Result, []string, error) {
		t.Helper()
		ev := &events{}
		in := &Installer{Helm: h, Charts: ChartLoader{CacheDir: cacheDir}, Inventory: testInventory(t, extra), Timeout: time.Minute,
			Report: ev.add, Route53: Route53Config{Endpoint: r53.URL()}}
		releases, perr := in.Plan(ctx)
		if perr == nil {
			encoded, err := json.Marshal(releasesValues(releases))
			if err != nil {
				t.Fatal(err)
			}
			seen = append(seen, string(encoded))
		}
		res, err := install(ctx, in)
		for _, e := range ev.all {
			seen = append(seen, fmt.Sprintf("%s %s %s", e.Host, e.Status, e.Message))
		}
		if err != nil {
			seen = append(seen, err.Error())
		}
		return res, ev.ended(), err
	}
	res, steps, err = runDNS01(dns01)
	if err != nil {
		t.Fatalf("DNS-01: %v (steps %q)", err, steps)
	}
	want = []string{
		"cert-manager/cert-manager hello-0.1.0 r2 true",
		"cert-manager/cluster-issuer cluster-issuer-0.2.0 r3 true",
		"ingress-nginx/ingress-nginx hello-0.1.0 r1 false",
		"docker-registry/registry registry-0.1.0 r3 true",
	}
	if got := revisions(res); !slices.Equal(got, want) || !slices.Contains(steps, "route53 credentials changed") {
		t.Fatalf("DNS-01:\n%q\nwant\n%q (steps %q)", got, want, steps)
	}
	le, err = dyn.Resource(clusterIssuerResource).Get(ctx, "letsencrypt", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	solvers, _, _ := unstructured.NestedSlice(le.Object, "spec", "acme", "solvers")
	if len(solvers) != 1 {
		t.Fatalf("ClusterIssuer letsencrypt solvers %v", solvers)
	}
	route53, _, _ := unstructured.NestedMap(solvers[0].(map[string]any), "dns01", "route53")
	if route53["hostedZoneID"] != "ZDNS01TEST" || route53["region"] != "us-east-1" {
		t.Fatalf("ClusterIssuer letsencrypt route53 solver %v", route53)
	}
	r53Secret, err := cs.CoreV1().Secrets(CertManagerNamespace).Get(ctx, Route53CredentialsSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(r53Secret.Data[Route53AccessKeyIDKey]) != route53test.AccessKey || string(r53Secret.Data[Route53SecretAccessKeyKey]) != route53test.SecretKey || r53Secret.Labels[ManagedByLabel] != ManagedByBoot {
		t.Fatalf("Secret %s: labels %v, %d keys", Route53CredentialsSecret, r53Secret.Labels, len(r53Secret.Data))
	}
	// Nothing changes on a re-run.
	if _, steps, err = runDNS01(dns01); err != nil || slices.ContainsFunc(steps, func(s string) bool { return strings.HasSuffix(s, " changed") }) {
		t.Fatalf("DNS-01 re-run: %v, steps %q", err, steps)
	}
	// Temporary credentials are refused, before anything changes.
	t.Setenv("AWS_SESSION_TOKEN", "session-token-never-shown")
	_, steps, err = runDNS01(dns01)
	if err == nil || !strings.Contains(err.Error(), "are temporary: cert-manager's route53 solver needs a static key pair") || !strings.Contains(err.Error(), "IRSA") || len(steps) != 0 {
		t.Fatalf("DNS-01 with a session token: %v (steps %q)", err, steps)
	}
	t.Setenv("AWS_SESSION_TOKEN", "")
	// Back to HTTP-01: the Secret goes; DNS-01 again: it comes back.
	if _, steps, err = runDNS01(""); err != nil || !slices.Contains(steps, "route53 credentials changed") {
		t.Fatalf("back to HTTP-01: %v, steps %q", err, steps)
	}
	if _, err := cs.CoreV1().Secrets(CertManagerNamespace).Get(ctx, Route53CredentialsSecret, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("Secret %s after HTTP-01: %v", Route53CredentialsSecret, err)
	}
	if _, _, err = runDNS01(dns01); err != nil {
		t.Fatal(err)
	}
	for _, s := range seen {
		for _, secret := range []string{route53test.SecretKey, route53test.SecretKey[:12], "session-token-never-shown"} {
			if strings.Contains(s, secret) {
				t.Fatalf("a secret shows in values, progress or errors: %s", s)
			}
		}
	}

	// A release and a Secret someone else made, without boot's label.
	other, err := h.config("other")
	if err != nil {
		t.Fatal(err)
	}
	install := action.NewInstall(other)
	install.ReleaseName, install.Namespace, install.CreateNamespace = "foreign", "other", true
	if _, err := install.RunWithContext(ctx, foreignChart(), nil); err != nil {
		t.Fatal(err)
	}
	foreignSecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "mine", Namespace: "docker-registry"}}
	if _, err := cs.CoreV1().Secrets("docker-registry").Create(ctx, foreignSecret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	ev := &events{}
	removed, err := teardown(ctx, &Installer{Helm: h, Inventory: inv, Timeout: time.Minute, Report: ev.add})
	if err != nil {
		t.Fatalf("teardown: %v (steps %q)", err, ev.ended())
	}
	wantRemoved := []string{
		"release docker-registry/registry",
		"release ingress-nginx/ingress-nginx",
		"release cert-manager/cluster-issuer",
		"release cert-manager/cert-manager",
		"secret docker-registry/registry-credentials",
		"secret docker-registry/registry-pull",
		"secret cert-manager/route53-credentials",
		"label bootctl.io/ingress of node w1",
		"label bootctl.io/ingress of node w2",
	}
	if !slices.Equal(removed, wantRemoved) {
		t.Fatalf("teardown removed:\n%q\nwant\n%q", removed, wantRemoved)
	}
	checkLabels("after teardown")
	for _, name := range []string{"selfsigned", "selfsigned-root", "letsencrypt"} {
		if _, err := dyn.Resource(clusterIssuerResource).Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("ClusterIssuer %s after teardown: want not found, got %v", name, err)
		}
	}
	if _, err := cs.CoreV1().Secrets("docker-registry").Get(ctx, "mine", metav1.GetOptions{}); err != nil {
		t.Fatalf("teardown touched a Secret boot does not own: %v", err)
	}
	if n, _ := releaseSecrets(ctx, t, cs, "other", "foreign"); n != 1 {
		t.Fatalf("foreign release: %d revisions after teardown, want 1", n)
	}
	// Nothing left: a second teardown removes nothing.
	removed, err = teardown(ctx, &Installer{Helm: h, Inventory: inv, Timeout: time.Minute})
	if err != nil || len(removed) != 0 {
		t.Fatalf("second teardown: removed %q, err %v", removed, err)
	}
}

// TestInstallerWaitAndSecrets checks, against a real kube-apiserver (where
// no pod ever runs and no volume binds): with Wait, a release that cannot
// become ready fails at its timeout with an error naming what is not ready,
// and what Helm's wait reports is passed on as progress; a password from registry.auth.passwordEnv is used and kept, a
// different one later is refused rather than overwriting the Secret; S3 keys
// from the environment land in their Secret, and a missing variable is named.
func TestInstallerWaitAndSecrets(t *testing.T) {
	c := kubetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	applyStandInCRDs(ctx, t, c.Config)
	for _, n := range []string{"cp1", "w1", "w2"} {
		if _, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	h := Helm{Kubeconfig: c.Kubeconfig}
	const password = "correct-horse-battery-staple"
	env := map[string]string{"REG_PASSWORD": password, "S3_AK": "AKIAEXAMPLE", "S3_SK": "s3-secret-key-example"}
	// First with a volume claim (which never binds here) and waiting.
	inv := testInventory(t, "  auth:\n    passwordEnv: REG_PASSWORD\n")
	ev := &events{}
	in := &Installer{
		Helm: h, Charts: ChartLoader{CacheDir: t.TempDir()}, Inventory: inv,
		Wait: true, Timeout: 5 * time.Second, Report: ev.add,
		Getenv: func(k string) string { return env[k] },
	}
	res, err := install(ctx, in)
	// On a volume the cache is each pod's own (no Redis Deployment).
	const notReady = "; not ready: Deployment docker-registry/registry (0 of 1 pods ready; no pod), PersistentVolumeClaim docker-registry/registry (not bound)"
	if err == nil || !strings.HasPrefix(err.Error(), "release docker-registry/registry: install: ") || !strings.HasSuffix(err.Error(), notReady) {
		t.Fatalf("install with wait: got %v, want a timeout naming what is not ready", err)
	}
	waiting := ev.warnings(true)
	if !slices.Equal(waiting, []string{"docker-registry/registry: PersistentVolumeClaim is not bound: docker-registry/registry"}) {
		t.Fatalf("progress while waiting: %q", waiting)
	}
	if steps := ev.ended(); !slices.Equal(steps, []string{
		"label ingress nodes changed", "cert-manager/cert-manager changed", "route53 credentials", "cert-manager/cluster-issuer changed",
		"remove traefik/traefik", "ingress-nginx/ingress-nginx changed", "registry secrets changed", "docker-registry/registry error",
	}) {
		t.Fatalf("steps %q", steps)
	}
	if res.Credentials == nil || res.Credentials.Generated() || res.Credentials.Password() != password {
		t.Fatal("the password from registry.auth.passwordEnv was not used")
	}
	for _, e := range ev.all {
		if strings.Contains(e.Message, password) {
			t.Fatalf("an event shows the password: %v", e)
		}
	}

	// Then S3 storage with keys from the environment, without waiting: the
	// failed release converges and the S3 Secret is made.
	in.Inventory = testInventory(t, `  auth:
    passwordEnv: REG_PASSWORD
  storage:
    type: s3
    s3:
      bucket: images
      region: eu-west-1
      accessKeyEnv: S3_AK
      secretKeyEnv: S3_SK
`)
	in.Wait = false
	if res, err = install(ctx, in); err != nil {
		t.Fatal(err)
	}
	if r := res.Releases[len(res.Releases)-1]; r.Release != "docker-registry/registry" || r.Revision != 2 || !r.Changed {
		t.Fatalf("registry after the failed install: %+v", r)
	}
	s3, err := cs.CoreV1().Secrets("docker-registry").Get(ctx, RegistryS3Secret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(s3.Data["accessKeyID"]) != env["S3_AK"] || string(s3.Data["secretAccessKey"]) != env["S3_SK"] || s3.Labels[ManagedByLabel] != ManagedByBoot {
		t.Fatalf("S3 Secret: labels %v, keys %d", s3.Labels, len(s3.Data))
	}

	// A rotated S3 key updates its Secret.
	env["S3_SK"] = "rotated-secret-key"
	if _, err := install(ctx, in); err != nil {
		t.Fatal(err)
	}
	if s3, err = cs.CoreV1().Secrets("docker-registry").Get(ctx, RegistryS3Secret, metav1.GetOptions{}); err != nil || string(s3.Data["secretAccessKey"]) != "rotated-secret-key" {
		t.Fatalf("rotated S3 key not applied (%v)", err)
	}
	env["REG_PASSWORD"] = "another-password-entirely"
	_, err = install(ctx, in)
	if err == nil || !strings.HasPrefix(err.Error(), "registry.auth.passwordEnv: the password in REG_PASSWORD differs") || strings.Contains(err.Error(), "another-password") {
		t.Fatalf("changed password: got %v", err)
	}
	stored, err := cs.CoreV1().Secrets("docker-registry").Get(ctx, RegistryCredentialsSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(stored.Data[CredentialsKeyPassword]) != password {
		t.Fatal("the stored password was overwritten")
	}
	env["REG_PASSWORD"] = password
	delete(env, "S3_SK")
	_, err = install(ctx, in)
	if err == nil || !strings.HasPrefix(err.Error(), `registry.storage.s3.secretKeyEnv: variable "S3_SK" is empty or unset`) {
		t.Fatalf("missing S3 key variable: got %v", err)
	}
}

// TestInstallerLeavesForeignIngressController checks, against a real
// kube-apiserver, that a traefik/traefik release boot did not install (the
// user's own) is left alone with a warning naming it when Install runs
// ingress-nginx and when Teardown runs, and that both still do the rest.
func TestInstallerLeavesForeignIngressController(t *testing.T) {
	c := kubetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	api := newAPIServer(t, c)
	applyStandInCRDs(ctx, t, c.Config)
	for _, n := range []string{"cp1", "w1", "w2"} {
		if _, err := api.cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	h := Helm{Kubeconfig: c.Kubeconfig}
	cfg, err := h.config(TraefikNamespace)
	if err != nil {
		t.Fatal(err)
	}
	foreign := action.NewInstall(cfg)
	foreign.ReleaseName, foreign.Namespace, foreign.CreateNamespace = TraefikRelease, TraefikNamespace, true
	if _, err := foreign.RunWithContext(ctx, foreignChart(), nil); err != nil {
		t.Fatal(err)
	}
	const warning = "release traefik/traefik is not boot's: left alone"
	check := func(what string, ev *events, want []string) {
		t.Helper()
		warnings := ev.warnings(false)
		if want := []string{"remove traefik/traefik: " + warning}; !slices.Equal(warnings, want) {
			t.Errorf("%s: warnings %q, want %q", what, warnings, want)
		}
		if got := ev.ended(); !slices.Contains(got, "remove traefik/traefik") || len(got) < len(want) || !slices.Equal(got[len(got)-len(want):], want) {
			t.Errorf("%s: steps %q, want \"remove traefik/traefik\" unchanged and to end with %q", what, got, want)
		}
		if n, labels := releaseSecrets(ctx, t, api.cs, TraefikNamespace, TraefikRelease); n != 1 || labels[ManagedByLabel] != "" {
			t.Errorf("%s: foreign release traefik/traefik: %d revisions, labels %v; want it untouched", what, n, labels)
		}
	}

	inv := testInventory(t, "")
	ev := &events{}
	in := &Installer{Helm: h, Charts: ChartLoader{CacheDir: t.TempDir()}, Inventory: inv, Timeout: time.Minute, Report: ev.add}
	if _, err := install(ctx, in); err != nil {
		t.Fatalf("install: %v (steps %q)", err, ev.ended())
	}
	check("install", ev, []string{"ingress-nginx/ingress-nginx changed", "registry secrets changed", "docker-registry/registry changed"})

	ev = &events{}
	removed, err := teardown(ctx, &Installer{Helm: h, Inventory: inv, Timeout: time.Minute, Report: ev.add})
	if err != nil {
		t.Fatalf("teardown: %v (steps %q)", err, ev.ended())
	}
	check("teardown", ev, []string{"unlabel ingress nodes changed"})
	for _, r := range []string{"release docker-registry/registry", "release ingress-nginx/ingress-nginx", "release cert-manager/cluster-issuer", "release cert-manager/cert-manager"} {
		if !slices.Contains(removed, r) {
			t.Errorf("teardown removed %q, want %s among them", removed, r)
		}
	}
}
