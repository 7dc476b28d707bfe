package addons

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/releaseutil"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/bootctl/boot/inventory"
)

// Installer puts boot's add-ons on a cluster, in order: cert-manager, the
// ClusterIssuer, the ingress controller (ingress-nginx or Traefik, as
// addons.ingress.controller says), then the registry with its Secrets. Configure
// it, then call Plan, Install or Teardown. Every step is idempotent: a re-run
// with nothing changed makes no new Helm revision and rewrites no Secret.
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
	// Progress, when set, hears of each step as it starts and ends, and of
	// what a release's readiness wait finds not ready. It may be called from
	// Helm's goroutines.
	Progress func(Event)
	// Getenv reads the variables the inventory names (registry password, S3
	// keys); nil means os.Getenv.
	Getenv func(string) string
	// Route53 is how boot reaches Route53 (with the default AWS credential
	// chain of this machine) for the DNS-01 solver (registry.acme.solver
	// dns01): the hosted zone's ID is looked up there, that chain's static key
	// pair goes into Secret Route53CredentialsSecret, and an Endpoint (boot's
	// --route53-endpoint) is given to cert-manager's controller as well.
	Route53 Route53Config

	dns01 *dns01Solver // found once, by route53Solver
}

// Event is one step's progress: Started when it begins; then, when it ends,
// Err (nil on success), whether it changed anything and how long it took.
type Event struct {
	// Step names what is done: "label ingress nodes", "registry credentials",
	// or a release "namespace/name".
	Step     string
	Started  bool
	Changed  bool
	Revision int // of a release, once applied
	Elapsed  time.Duration
	Err      error
	// Waiting, when set, is a note while the step runs (neither started nor
	// ended): what a release's readiness wait last found not ready, e.g.
	// "Deployment is not ready: registry/registry. 0 out of 1 expected pods
	// are ready".
	Waiting string
	// Warning, when set on a step's end, says what the step left alone, e.g.
	// "release traefik/traefik is not boot's: left alone".
	Warning string
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
}

func (in *Installer) getenv(name string) string {
	if in.Getenv != nil {
		return in.Getenv(name)
	}
	return os.Getenv(name)
}

func (in *Installer) emit(e Event) {
	if in.Progress != nil {
		in.Progress(e)
	}
}

// step runs fn as one reported step.
func (in *Installer) step(name string, fn func() (changed bool, revision int, err error)) error {
	in.emit(Event{Step: name, Started: true})
	start := time.Now()
	changed, rev, err := fn()
	e := Event{Step: name, Changed: changed, Revision: rev, Elapsed: time.Since(start), Err: err}
	if w, ok := err.(warning); ok {
		e.Err, e.Warning = nil, string(w)
	}
	in.emit(e)
	return e.Err
}

// warning is what a step's function returns to end the step with a warning
// rather than an error.
type warning string

func (w warning) Error() string { return string(w) }

// leaveForeign turns err, when it refuses to remove the release name as not
// boot's, into a warning: the ingress controller boot does not run may be
// the user's own release.
func leaveForeign(name string, err error) error {
	if errors.Is(err, errNotBoots) {
		return warning("release " + name + " is not boot's: left alone")
	}
	return err
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
		images, err := BundleImageValues(inv, r.Name)
		if err != nil {
			return nil, err
		}
		mergeValues(r.Values, images)
	}
	return releases, nil
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
	var c *chart.Chart
	err = in.step(fmt.Sprintf("chart %s: %s %s from %s", src.Field, src.Name, src.Version, from), func() (bool, int, error) {
		var err error
		c, err = in.Charts.Load(ctx, src)
		return false, 0, err
	})
	return c, err
}

func (in *Installer) clientset() (kubernetes.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", in.Helm.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", in.Helm.Kubeconfig, err)
	}
	return kubernetes.NewForConfig(cfg)
}

// Install labels the ingress nodes, applies the releases of Plan in order
// (a Remove release as the step "remove namespace/name", which leaves a
// release that is not boot's alone with a warning) and, before the
// issuer's release, keeps Secret Route53CredentialsSecret in step with the
// DNS-01 solver (its key pair with dns01, removed without), and before the
// registry's release makes sure its Secrets exist: the credentials
// (generated once, then always read back, never overwritten), the pull
// Secret for the maintenance jobs, and the S3 keys when the inventory names
// them. It stops at the first error.
func (in *Installer) Install(ctx context.Context) (*Result, error) {
	releases, err := in.Plan(ctx)
	if err != nil {
		return nil, err
	}
	cs, err := in.clientset()
	if err != nil {
		return nil, err
	}
	res := &Result{}
	if err := in.step("label ingress nodes", func() (bool, int, error) {
		changed, err := in.labelIngressNodes(ctx, cs)
		return changed, 0, err
	}); err != nil {
		return res, err
	}
	for _, r := range releases {
		if r.Remove {
			if err := in.step("remove "+r.String(), func() (bool, int, error) {
				_, removed, err := r.Apply(ctx, in.Helm)
				return removed, 0, leaveForeign(r.String(), err)
			}); err != nil {
				return res, err
			}
			continue
		}
		if r.Name == IssuerRelease {
			if err := in.step("route53 credentials", func() (bool, int, error) {
				changed, err := in.route53Secret(ctx, cs)
				return changed, 0, err
			}); err != nil {
				return res, err
			}
		}
		if r.Name == DefaultRegistryRelease {
			if err := in.step("registry secrets", func() (bool, int, error) {
				creds, changed, err := in.registrySecrets(ctx, cs, r.Namespace)
				res.Credentials = creds
				res.CredentialsSecret = r.Namespace + "/" + RegistryCredentialsSecret
				return changed, 0, err
			}); err != nil {
				return res, err
			}
		}
		var applied AppliedRelease
		err := in.step(r.String(), func() (bool, int, error) {
			w := &waitWatcher{next: in.Helm.Log, seen: func(msg string) { in.emit(Event{Step: r.String(), Waiting: msg}) }}
			h := in.Helm
			h.Log = w.log
			rev, changed, err := r.Apply(ctx, h)
			if err != nil && r.Wait {
				if pending := notReadyObjects(ctx, cs, in.Helm, r); len(pending) > 0 {
					err = fmt.Errorf("%w; not ready: %s", err, strings.Join(pending, ", "))
				} else if last := w.lastNotReady(); last != "" {
					err = fmt.Errorf("%w; last seen: %s", err, last)
				}
			}
			applied = AppliedRelease{Release: r.String(), Chart: r.Chart.Metadata.Name + "-" + r.Chart.Metadata.Version, Revision: rev, Changed: changed}
			return changed, rev, err
		})
		if err != nil {
			return res, err
		}
		res.Releases = append(res.Releases, applied)
	}
	return res, nil
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
// unbound PersistentVolumeClaims, sorted. It is best effort: what it cannot
// read it leaves out.
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
		pods := func(ready, want int32) {
			if ready < want {
				out = append(out, fmt.Sprintf("%s (%d of %d pods ready)", what, ready, want))
			}
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
				pods(d.Status.ReadyReplicas, replicas(d.Spec.Replicas))
			}
		case "StatefulSet":
			if s, err := cs.AppsV1().StatefulSets(ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
				pods(s.Status.ReadyReplicas, replicas(s.Spec.Replicas))
			}
		case "DaemonSet":
			if d, err := cs.AppsV1().DaemonSets(ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
				pods(d.Status.NumberReady, d.Status.DesiredNumberScheduled)
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

// Teardown removes boot's releases in the reverse of Install's order, both
// ingress controllers' included (an ingress controller's release that boot
// does not own is left alone with a warning; another release of one of
// those names that boot does not own is refused), then any other release labelled
// as boot's, the Secrets boot made beside the registry and for the DNS-01
// solver, and the ingress node label. Namespaces and
// cert-manager's CRDs (which its chart keeps) stay. It returns what it
// removed.
func (in *Installer) Teardown(ctx context.Context) ([]string, error) {
	inv := in.Inventory
	if inv == nil {
		return nil, errors.New("addons: no inventory")
	}
	var removed []string
	order := []struct {
		namespace, name string
		controller      bool
	}{
		{inv.Registry.Namespace, DefaultRegistryRelease, false},
		{IngressNginxNamespace, IngressNginxRelease, true},
		{TraefikNamespace, TraefikRelease, true},
		{IssuerNamespace, IssuerRelease, false},
		{CertManagerNamespace, CertManagerRelease, false},
	}
	for _, r := range order {
		name := r.namespace + "/" + r.name
		var ok bool
		if err := in.step("remove "+name, func() (bool, int, error) {
			var err error
			ok, err = in.Helm.Uninstall(r.namespace, r.name, in.Timeout)
			if r.controller {
				err = leaveForeign(name, err)
			}
			return ok, 0, err
		}); err != nil {
			return removed, err
		}
		if ok {
			removed = append(removed, "release "+name)
		}
	}
	var others []string
	if err := in.step("remove other releases of boot", func() (bool, int, error) {
		var err error
		others, err = in.Helm.UninstallOwned(ctx, in.Timeout)
		return len(others) > 0, 0, err
	}); err != nil {
		return removed, err
	}
	for _, o := range others {
		removed = append(removed, "release "+o)
	}
	cs, err := in.clientset()
	if err != nil {
		return removed, err
	}
	for _, s := range []struct{ namespace, name string }{
		{inv.Registry.Namespace, RegistryCredentialsSecret},
		{inv.Registry.Namespace, RegistryPullSecret},
		{inv.Registry.Namespace, RegistryS3Secret},
		{CertManagerNamespace, Route53CredentialsSecret},
	} {
		what := "secret " + s.namespace + "/" + s.name
		var ok bool
		if err := in.step("remove "+what, func() (bool, int, error) {
			ok, err = deleteOwnedSecret(ctx, cs, s.namespace, s.name)
			return ok, 0, err
		}); err != nil {
			return removed, err
		}
		if ok {
			removed = append(removed, what)
		}
	}
	var unlabelled []string
	if err := in.step("unlabel ingress nodes", func() (bool, int, error) {
		unlabelled, err = setIngressLabels(ctx, cs, nil)
		return len(unlabelled) > 0, 0, err
	}); err != nil {
		return removed, err
	}
	for _, n := range unlabelled {
		removed = append(removed, "label "+IngressNodeLabel+" of node "+n)
	}
	return removed, nil
}

// labelIngressNodes labels the inventory's ingress hosts' nodes and unlabels
// any other node carrying the label. A missing node is an error naming the host.
func (in *Installer) labelIngressNodes(ctx context.Context, cs kubernetes.Interface) (bool, error) {
	want := map[string]bool{}
	for _, h := range in.Inventory.IngressHosts() {
		want[h.Name] = true
	}
	changed, err := setIngressLabels(ctx, cs, want)
	return len(changed) > 0, err
}

// setIngressLabels makes IngressNodeLabel present on exactly the nodes in
// want and returns the nodes it changed, sorted.
func setIngressLabels(ctx context.Context, cs kubernetes.Interface, want map[string]bool) ([]string, error) {
	var changed []string
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		node, err := cs.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return changed, fmt.Errorf("ingress host %s: no node of that name in the cluster", n)
		}
		if err != nil {
			return changed, fmt.Errorf("node %s: %w", n, err)
		}
		if node.Labels[IngressNodeLabel] == IngressNodeValue {
			continue
		}
		if err := patchNodeLabel(ctx, cs, n, IngressNodeValue); err != nil {
			return changed, err
		}
		changed = append(changed, n)
	}
	labelled, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: IngressNodeLabel})
	if err != nil {
		return changed, fmt.Errorf("listing nodes labelled %s: %w", IngressNodeLabel, err)
	}
	for _, node := range labelled.Items {
		if want[node.Name] {
			continue
		}
		if err := patchNodeLabel(ctx, cs, node.Name, ""); err != nil {
			return changed, err
		}
		changed = append(changed, node.Name)
	}
	sort.Strings(changed)
	return changed, nil
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

// registrySecrets makes sure the registry's namespace and Secrets exist and
// returns the credentials. Stored credentials are read back and never
// replaced; new ones are made only when there are none.
func (in *Installer) registrySecrets(ctx context.Context, cs kubernetes.Interface, namespace string) (*RegistryCredentials, bool, error) {
	reg := in.Inventory.Registry
	changed, err := ensureNamespace(ctx, cs, namespace)
	if err != nil {
		return nil, false, err
	}
	var password string
	if env := reg.Auth.PasswordEnv; env != "" {
		if password = in.getenv(env); password == "" {
			return nil, false, fmt.Errorf("registry.auth.passwordEnv: variable %s is empty or unset", env)
		}
	}
	var creds *RegistryCredentials
	secrets := cs.CoreV1().Secrets(namespace)
	stored, err := secrets.Get(ctx, RegistryCredentialsSecret, metav1.GetOptions{})
	switch {
	case err == nil:
		if creds, err = RegistryCredentialsFromSecret(stored); err != nil {
			return nil, changed, err
		}
		if creds.Username() != reg.Auth.User {
			return nil, changed, fmt.Errorf("registry.auth.user is %q but Secret %s/%s holds credentials for %q; delete that Secret to make new credentials",
				reg.Auth.User, namespace, RegistryCredentialsSecret, creds.Username())
		}
		if password != "" && password != creds.Password() {
			return nil, changed, fmt.Errorf("registry.auth.passwordEnv: the password in %s differs from the one kept in Secret %s/%s, which boot never overwrites; delete that Secret to change the password",
				reg.Auth.PasswordEnv, namespace, RegistryCredentialsSecret)
		}
	case apierrors.IsNotFound(err):
		if creds, err = NewRegistryCredentials(reg.Auth.User, password); err != nil {
			if reg.Auth.PasswordEnv != "" {
				err = fmt.Errorf("registry.auth.passwordEnv (%s): %w", reg.Auth.PasswordEnv, err)
			}
			return nil, changed, err
		}
		if _, err := secrets.Create(ctx, creds.Secret(RegistryCredentialsSecret, namespace), metav1.CreateOptions{}); err != nil {
			return nil, changed, fmt.Errorf("creating Secret %s/%s: %w", namespace, RegistryCredentialsSecret, err)
		}
		changed = true
	default:
		return nil, changed, fmt.Errorf("reading Secret %s/%s: %w", namespace, RegistryCredentialsSecret, err)
	}

	pull, err := creds.PullSecret(RegistryPullSecret, namespace, reg.Host)
	if err != nil {
		return nil, changed, err
	}
	c, err := applySecret(ctx, cs, pull)
	if err != nil {
		return nil, changed, err
	}
	changed = changed || c

	if s3 := reg.Storage.S3; reg.Storage.Type == inventory.StorageS3 && s3 != nil && (s3.AccessKeyEnv != "" || s3.SecretKeyEnv != "") {
		keys := map[string][]byte{}
		for _, k := range []struct{ field, env, key string }{
			{"registry.storage.s3.accessKeyEnv", s3.AccessKeyEnv, "accessKeyID"},
			{"registry.storage.s3.secretKeyEnv", s3.SecretKeyEnv, "secretAccessKey"},
		} {
			v := ""
			if k.env != "" {
				v = in.getenv(k.env)
			}
			if v == "" {
				return nil, changed, fmt.Errorf("%s: variable %q is empty or unset (set both accessKeyEnv and secretKeyEnv, or neither)", k.field, k.env)
			}
			keys[k.key] = []byte(v)
		}
		secret := &corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: secretMeta(RegistryS3Secret, namespace, "registry-s3"),
			Type:       corev1.SecretTypeOpaque,
			Data:       keys,
		}
		c, err := applySecret(ctx, cs, secret)
		if err != nil {
			return nil, changed, err
		}
		changed = changed || c
	}
	return creds, changed, nil
}

func ensureNamespace(ctx context.Context, cs kubernetes.Interface, name string) (bool, error) {
	_, err := cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		return false, nil
	}
	if !apierrors.IsNotFound(err) {
		return false, fmt.Errorf("namespace %s: %w", name, err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return false, fmt.Errorf("creating namespace %s: %w", name, err)
	}
	return true, nil
}

// applySecret creates s, or updates the Secret of that name when it is boot's
// and differs. A Secret of that name that boot does not own is refused.
func applySecret(ctx context.Context, cs kubernetes.Interface, s *corev1.Secret) (bool, error) {
	secrets := cs.CoreV1().Secrets(s.Namespace)
	cur, err := secrets.Get(ctx, s.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if _, err := secrets.Create(ctx, s, metav1.CreateOptions{}); err != nil {
			return false, fmt.Errorf("creating Secret %s/%s: %w", s.Namespace, s.Name, err)
		}
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading Secret %s/%s: %w", s.Namespace, s.Name, err)
	}
	if cur.Labels[ManagedByLabel] != ManagedByBoot {
		return false, fmt.Errorf("Secret %s/%s exists and is not managed by boot (no label %s=%s); boot leaves it alone", s.Namespace, s.Name, ManagedByLabel, ManagedByBoot)
	}
	if cur.Type == s.Type && reflect.DeepEqual(cur.Data, s.Data) && reflect.DeepEqual(cur.Labels, s.Labels) {
		return false, nil
	}
	if cur.Type != s.Type {
		// The type of a Secret cannot change: replace it.
		if err := secrets.Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil {
			return false, fmt.Errorf("replacing Secret %s/%s: %w", s.Namespace, s.Name, err)
		}
		if _, err := secrets.Create(ctx, s, metav1.CreateOptions{}); err != nil {
			return false, fmt.Errorf("creating Secret %s/%s: %w", s.Namespace, s.Name, err)
		}
		return true, nil
	}
	next := cur.DeepCopy()
	next.Data, next.Labels = s.Data, s.Labels
	if _, err := secrets.Update(ctx, next, metav1.UpdateOptions{}); err != nil {
		return false, fmt.Errorf("updating Secret %s/%s: %w", s.Namespace, s.Name, err)
	}
	return true, nil
}

// deleteOwnedSecret deletes the Secret if it is there and labelled as boot's.
func deleteOwnedSecret(ctx context.Context, cs kubernetes.Interface, namespace, name string) (bool, error) {
	secrets := cs.CoreV1().Secrets(namespace)
	cur, err := secrets.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading Secret %s/%s: %w", namespace, name, err)
	}
	if cur.Labels[ManagedByLabel] != ManagedByBoot {
		return false, nil
	}
	if err := secrets.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return false, fmt.Errorf("deleting Secret %s/%s: %w", namespace, name, err)
	}
	return true, nil
}
