package addons

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"sync"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/releaseutil"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/bootctl/boot/internal/run"
	"github.com/bootctl/boot/inventory"
)

// Installer puts boot's add-ons on a cluster, in order: cert-manager, the
// ClusterIssuer, the ingress controller (ingress-nginx or Traefik, as
// addons.ingress.controller says), then the registry with its Secrets.
// Configure it, then run its Steps (or TeardownSteps) with run.Do and read
// Result. Every step is idempotent: a re-run with nothing changed makes no
// new Helm revision and rewrites no Secret.
//
// Without Wait, the ClusterIssuer can be refused by cert-manager's webhook
// while cert-manager's pods are still starting; a later run converges. With
// Wait, cert-manager's startupapicheck hook holds the install until the
// webhook answers.
type Installer struct {
	// Helm reaches the cluster (Helm.Kubeconfig is also used for the Secrets
	// and node labels boot manages outside Helm).
	Helm Helm
	// Charts loads the upstream charts from the inventory's sources.
	Charts ChartLoader
	// Inventory is loaded and validated.
	Inventory *inventory.Inventory
	// Wait waits for each release's resources to be ready before the next.
	Wait bool
	// Timeout bounds each release (DefaultReleaseTimeout when zero).
	Timeout time.Duration
	// Report hears of each step's outcome, of each change, of where each
	// chart came from and of what a release's readiness wait finds not ready
	// (a warning "waiting: ..."). It may be called from Helm's goroutines.
	Report run.Reporter
	// After names the earlier phases of the run whose changes the cluster's
	// API depends on (boot up's control plane, joins and kubeconfig): in a
	// dry run where one of them has pending changes, the steps say what they
	// will do after it instead of planning against the cluster as it is.
	After []string
	// Connect, when set, makes the cluster's API reachable at
	// Helm.Kubeconfig (a tunnel through the control plane); it is called
	// once, before the first step that needs the cluster.
	Connect func(ctx context.Context) error
	// Getenv reads the variables the inventory names (registry password, S3
	// keys); nil means os.Getenv.
	Getenv func(string) string
	// Route53 is how boot reaches Route53 (with the default AWS credential
	// chain of this machine) for the DNS-01 solver (registry.acme.solver
	// dns01): the hosted zone's ID is looked up there, that chain's static key
	// pair goes into Secret Route53CredentialsSecret, and an Endpoint (boot's
	// --route53-endpoint) is given to cert-manager's controller as well.
	Route53 Route53Config

	dns01       *dns01Solver         // found once, by route53Solver
	cs          kubernetes.Interface // once the cluster is reached
	unreachable bool                 // teardown: the cluster did not answer
	releases    []Release            // of Plan, once a step of Steps loaded them
	result      Result               // what the steps of Steps found and did
}

// AppliedRelease is one release after Install.
type AppliedRelease struct {
	Release  string `json:"release"` // namespace/name
	Chart    string `json:"chart"`   // name-version
	Revision int    `json:"revision"`
	Changed  bool   `json:"changed"`
}

// Result is what Install did.
type Result struct {
	Releases []AppliedRelease `json:"releases"`
	// Credentials are the registry's. When Credentials.Generated() the
	// password was made by this run: show it to the operator once.
	Credentials *RegistryCredentials `json:"credentials"`
	// CredentialsSecret is "namespace/name" of the Secret that keeps them.
	CredentialsSecret string `json:"credentialsSecret"`
	// Users are the registry's other users (mode token): the inventory's
	// and the pruner's, each with the Secret that keeps its password.
	Users []RegistryUser `json:"users,omitempty"`
}

func (in *Installer) getenv(name string) string {
	if in.Getenv != nil {
		return in.Getenv(name)
	}
	return os.Getenv(name)
}

// Plan loads the charts and returns the releases Install applies, in order:
// cert-manager, the ClusterIssuer, the removal of the ingress controller not
// chosen (a Remove release: after a switch of addons.ingress.controller, the
// other one's release goes, if boot installed it, before the chosen one
// takes the IngressClass nginx and the host ports), the chosen ingress
// controller (ingress-nginx or Traefik), the registry. It needs no cluster;
// with the DNS-01 solver it looks up the hosted zone in Route53.
func (in *Installer) Plan(ctx context.Context) ([]Release, error) {
	inv := in.Inventory
	if inv == nil {
		return nil, errors.New("addons: no inventory")
	}
	ingressName, ingressNamespace, err := IngressRelease(inv.Addons.Ingress.Controller)
	if err != nil {
		return nil, err
	}
	certManager, err := in.upstreamChart(ctx, ChartSourceOf("addons."+SlotCertManager, inv.Addons.CertManager))
	if err != nil {
		return nil, err
	}
	ingress := Release{Name: ingressName, Namespace: ingressNamespace}
	retired := Release{Name: TraefikRelease, Namespace: TraefikNamespace, Remove: true}
	switch ingressName {
	case IngressNginxRelease:
		ingress.Chart, err = in.upstreamChart(ctx, ChartSourceOf("addons."+SlotIngressNginx, inv.Addons.IngressNginx))
		if err == nil {
			ingress.Values, err = IngressNginxValues(inv.Addons.IngressMode)
		}
	case TraefikRelease:
		retired = Release{Name: IngressNginxRelease, Namespace: IngressNginxNamespace, Remove: true}
		ingress.SkipCRDs = true // its providers read no Traefik resources
		ingress.Chart, err = in.upstreamChart(ctx, ChartSourceOf("addons."+SlotTraefik, inv.Addons.Traefik))
		if err == nil {
			ingress.Values, err = TraefikValues(inv.Addons.IngressMode, inv.RecordAddresses())
		}
	}
	if err != nil {
		return nil, err
	}
	issuer, err := IssuerChart()
	if err != nil {
		return nil, err
	}
	registry, err := RegistryChart()
	if err != nil {
		return nil, err
	}
	var route53 *Route53Solver
	if usesDNS01(inv) {
		d, err := in.route53Solver(ctx)
		if err != nil {
			return nil, err
		}
		route53 = &d.solver
	}
	issuerValues, err := IssuerValues(inv.Registry, route53)
	if err != nil {
		return nil, err
	}
	registryValues, err := RegistryValues(inv.Registry)
	if err != nil {
		return nil, err
	}
	releases := []Release{
		{Name: CertManagerRelease, Namespace: CertManagerNamespace, Chart: certManager, Values: CertManagerValues(in.Wait, inv.Registry, in.Route53.Endpoint)},
		{Name: IssuerRelease, Namespace: IssuerNamespace, Chart: issuer, Values: issuerValues},
		retired,
		ingress,
		{Name: DefaultRegistryRelease, Namespace: inv.Registry.Namespace, Chart: registry, Values: registryValues},
	}
	for i := range releases {
		r := &releases[i]
		r.Wait, r.Timeout = in.Wait, in.Timeout
		if r.Remove {
			continue
		}
		if err := checkKubeVersion(r, inv.Cluster.KubernetesVersion); err != nil {
			return nil, err
		}
		images, err := BundleImageValues(inv, r.Name)
		if err != nil {
			return nil, err
		}
		mergeValues(r.Values, images)
	}
	return releases, nil
}

// checkKubeVersion refuses a release whose chart's kubeVersion constraint
// the cluster's Kubernetes version does not meet, before any change (an
// upgrade would otherwise leave the release failing once the cluster runs
// the new version).
func checkKubeVersion(r *Release, version string) error {
	m := r.Chart.Metadata
	if m == nil || m.KubeVersion == "" || version == "" || chartutil.IsCompatibleRange(m.KubeVersion, version) {
		return nil
	}
	return fmt.Errorf("release %s/%s: chart %s %s needs Kubernetes %s, and cluster.kubernetesVersion is %s: use a chart version that supports it (addons.<chart>.version) or keep the cluster's version",
		r.Namespace, r.Name, m.Name, m.Version, m.KubeVersion, version)
}

// upstreamChart loads an upstream chart from its source. With packages from
// a bundle and no addons.<slot>.path, the chart comes from the bundle when
// the bundle holds it (see ChartSource.FromBundle), and a step named
// "chart addons.<slot>: <name> <version> from bundle" (or "from <repository>
// (not in the bundle)") reports where it came from.
func (in *Installer) upstreamChart(ctx context.Context, src ChartSource) (*chart.Chart, error) {
	inv := in.Inventory
	if inv.Packages.Source != inventory.SourceBundle || src.Path != "" {
		return in.Charts.Load(ctx, src)
	}
	src, err := src.FromBundle(inv.Packages.Bundle)
	if err != nil {
		return nil, err
	}
	from := "bundle"
	if src.Bundle == "" {
		from = src.Repository + " (not in the bundle)"
	}
	start := time.Now()
	c, err := in.Charts.Load(ctx, src)
	e := run.Event{Phase: Phase, Host: fmt.Sprintf("chart %s: %s %s from %s", src.Field, src.Name, src.Version, from), Status: run.OK, Message: "loaded", Duration: time.Since(start)}
	if err != nil {
		e.Status, e.Message = run.Failed, err.Error()
	}
	in.Report.Report(e)
	return c, err
}

func (in *Installer) clientset() (kubernetes.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", in.Helm.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", in.Helm.Kubeconfig, err)
	}
	return kubernetes.NewForConfig(cfg)
}

// notReady matches what Helm's readiness wait logs about a resource that is
// not ready yet ("Deployment is not ready: ns/name. ...", "PersistentVolumeClaim
// is not bound: ns/name", "Service does not have load balancer ingress IP
// address: ns/name", ...).
var notReady = regexp.MustCompile(`^[A-Za-z]+ (is not ready|is not bound|is not completed|is failed|does not have [a-z ]+): `)

// waitWatcher passes Helm's log lines on and keeps the last not-ready one,
// reporting each change.
type waitWatcher struct {
	next func(string, ...any)
	seen func(string)
	mu   sync.Mutex
	last string
}

func (w *waitWatcher) log(format string, v ...any) {
	if w.next != nil {
		w.next(format, v...)
	}
	msg := fmt.Sprintf(format, v...)
	if !notReady.MatchString(msg) {
		return
	}
	w.mu.Lock()
	changed := msg != w.last
	w.last = msg
	w.mu.Unlock()
	if changed {
		w.seen(msg)
	}
}

func (w *waitWatcher) lastNotReady() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

// notReadyObjects lists the workloads and volume claims of release r, as
// last stored, that are not ready: Deployments and StatefulSets with fewer
// ready pods than replicas, DaemonSets with fewer ready pods than scheduled,
// unbound PersistentVolumeClaims, sorted; a workload with why its first
// pod not ready is not (podTrouble). It is best effort: what it cannot read
// it leaves out.
func notReadyObjects(ctx context.Context, cs kubernetes.Interface, h Helm, r Release) []string {
	cfg, err := h.config(r.Namespace)
	if err != nil {
		return nil
	}
	last, err := cfg.Releases.Last(r.Name)
	if err != nil {
		return nil
	}
	var out []string
	for _, doc := range releaseutil.SplitManifests(last.Manifest) {
		var obj struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if sigsyaml.Unmarshal([]byte(doc), &obj) != nil {
			continue
		}
		ns, name := obj.Metadata.Namespace, obj.Metadata.Name
		if ns == "" {
			ns = r.Namespace
		}
		what := obj.Kind + " " + ns + "/" + name
		pods := func(ready, want int32, sel *metav1.LabelSelector) {
			if ready >= want {
				return
			}
			why := ""
			if t := podTrouble(ctx, cs, ns, sel); t != "" {
				why = "; " + t
			}
			out = append(out, fmt.Sprintf("%s (%d of %d pods ready%s)", what, ready, want, why))
		}
		replicas := func(p *int32) int32 {
			if p == nil {
				return 1
			}
			return *p
		}
		switch obj.Kind {
		case "Deployment":
			if d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
				pods(d.Status.ReadyReplicas, replicas(d.Spec.Replicas), d.Spec.Selector)
			}
		case "StatefulSet":
			if s, err := cs.AppsV1().StatefulSets(ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
				pods(s.Status.ReadyReplicas, replicas(s.Spec.Replicas), s.Spec.Selector)
			}
		case "DaemonSet":
			if d, err := cs.AppsV1().DaemonSets(ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
				pods(d.Status.NumberReady, d.Status.DesiredNumberScheduled, d.Spec.Selector)
			}
		case "PersistentVolumeClaim":
			if p, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{}); err == nil && p.Status.Phase != corev1.ClaimBound {
				out = append(out, what+" (not bound)")
			}
		}
	}
	sort.Strings(out)
	return out
}

// ingressLabelChanges returns, sorted, the nodes in want that lack
// IngressNodeLabel and the other nodes that carry it. A node of want that
// the cluster does not have is an error naming it.
func ingressLabelChanges(ctx context.Context, cs kubernetes.Interface, want map[string]bool) (label, unlabel []string, err error) {
	for n := range want {
		node, err := cs.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, nil, fmt.Errorf("ingress host %s: no node of that name in the cluster", n)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("node %s: %w", n, err)
		}
		if node.Labels[IngressNodeLabel] != IngressNodeValue {
			label = append(label, n)
		}
	}
	labelled, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: IngressNodeLabel})
	if err != nil {
		return nil, nil, fmt.Errorf("listing nodes labelled %s: %w", IngressNodeLabel, err)
	}
	for _, node := range labelled.Items {
		if !want[node.Name] {
			unlabel = append(unlabel, node.Name)
		}
	}
	sort.Strings(label)
	sort.Strings(unlabel)
	return label, unlabel, nil
}

// setIngressLabels puts IngressNodeLabel on the nodes label and takes it off
// the nodes unlabel.
func setIngressLabels(ctx context.Context, cs kubernetes.Interface, label, unlabel []string) error {
	for _, n := range label {
		if err := patchNodeLabel(ctx, cs, n, IngressNodeValue); err != nil {
			return err
		}
	}
	for _, n := range unlabel {
		if err := patchNodeLabel(ctx, cs, n, ""); err != nil {
			return err
		}
	}
	return nil
}

// patchNodeLabel sets IngressNodeLabel on node to value, or removes it when
// value is empty.
func patchNodeLabel(ctx context.Context, cs kubernetes.Interface, node, value string) error {
	v := "null"
	if value != "" {
		v = fmt.Sprintf("%q", value)
	}
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%s}}}`, IngressNodeLabel, v)
	if _, err := cs.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("node %s: setting label %s: %w", node, IngressNodeLabel, err)
	}
	return nil
}
