package addons

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"sort"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	"k8s.io/cli-runtime/pkg/genericclioptions"
)

// Label boot puts on the Helm releases it owns (kept in the release's storage
// Secret); teardown removes exactly the releases carrying it.
const (
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedByBoot  = "boot"
)

// helmDriver is where Helm keeps release history: Secrets in the release's
// namespace.
const helmDriver = "secret"

// DefaultReleaseTimeout bounds one Helm operation (hooks, and readiness when
// waiting) when Release.Timeout is zero.
const DefaultReleaseTimeout = 5 * time.Minute

// Helm reaches a cluster for Helm operations.
type Helm struct {
	// Kubeconfig is the kubeconfig file's path.
	Kubeconfig string
	// Log receives Helm's debug lines; nil discards them.
	Log func(format string, v ...any)
}

// config returns a Helm action configuration for namespace ("" for all
// namespaces) with release history in Secrets.
func (h Helm) config(namespace string) (*action.Configuration, error) {
	flags := genericclioptions.NewConfigFlags(false)
	kubeconfig := h.Kubeconfig
	flags.KubeConfig = &kubeconfig
	ns := namespace
	flags.Namespace = &ns
	log := h.Log
	if log == nil {
		log = func(string, ...any) {}
	}
	cfg := new(action.Configuration)
	if err := cfg.Init(flags, namespace, helmDriver, log); err != nil {
		return nil, fmt.Errorf("helm (kubeconfig %s): %w", h.Kubeconfig, err)
	}
	return cfg, nil
}

// Release is one Helm release boot installs.
type Release struct {
	Name      string
	Namespace string
	Chart     *chart.Chart
	Values    map[string]any
	// Timeout bounds hooks and, with Wait, readiness (DefaultReleaseTimeout
	// when zero).
	Timeout time.Duration
	// Wait waits for the release's resources to be ready.
	Wait bool
	// SkipCRDs leaves out the CRDs of the chart's crds/ folder on install
	// (Helm never upgrades or removes those).
	SkipCRDs bool
	// Remove says the release must not exist: Apply uninstalls it when boot
	// installed it (the ingress controller not chosen, after a switch) and
	// has no Chart or Values.
	Remove bool
}

func (r Release) String() string { return r.Namespace + "/" + r.Name }

func (r Release) timeout() time.Duration {
	if r.Timeout > 0 {
		return r.Timeout
	}
	return DefaultReleaseTimeout
}

// Plan says, without changing anything, what Apply would do: "" when the
// release is in place as r describes it, else "install <chart> <version>",
// "upgrade ...", "record the digest of its inputs ..." or "remove". It also
// returns the deployed revision (0 when there is none). When the deployed
// revision carries the digest of r's inputs (InputsLabel), nothing is to
// do without rendering; otherwise it renders an upgrade against the
// cluster (a dry run) and compares it with the deployed revision: the same
// manifest, hooks, chart version and values mean that only the digest is
// to be recorded (or nothing, for a chart that calls lookup). A release of
// that name not labelled as boot's is refused (errNotBoots).
func (r Release) Plan(ctx context.Context, h Helm) (revision int, todo string, err error) {
	cfg, err := h.config(r.Namespace)
	if err != nil {
		return 0, "", fmt.Errorf("release %s: %w", r, err)
	}
	last, err := cfg.Releases.Last(r.Name)
	switch {
	case errors.Is(err, driver.ErrReleaseNotFound):
		if r.Remove {
			return 0, "", nil
		}
		return 0, "install " + r.chartVersion(), nil
	case err != nil:
		return 0, "", fmt.Errorf("release %s: reading history: %w", r, err)
	case !ownedByBoot(last):
		return 0, "", fmt.Errorf("release %s is %w (no label %s=%s); boot leaves it alone", r, errNotBoots, ManagedByLabel, ManagedByBoot)
	case r.Remove:
		return last.Version, "remove", nil
	case r.Chart == nil || r.Chart.Metadata == nil:
		return 0, "", fmt.Errorf("release %s: no chart", r)
	case last.Info == nil || last.Info.Status != release.StatusDeployed:
		status := release.StatusUnknown
		if last.Info != nil {
			status = last.Info.Status
		}
		return last.Version, fmt.Sprintf("upgrade to %s (revision %d is %s)", r.chartVersion(), last.Version, status), nil
	}
	key, err := r.inputs(cfg)
	if err != nil {
		return 0, "", err
	}
	if key != "" && last.Labels[InputsLabel] == key {
		return last.Version, "", nil
	}
	planned, err := r.upgrade(ctx, cfg, true, "")
	if err != nil {
		return 0, "", err
	}
	same, err := sameRelease(last, planned)
	if err != nil {
		return 0, "", fmt.Errorf("release %s: %w", r, err)
	}
	switch {
	case same && key == "":
		return last.Version, "", nil
	case same:
		return last.Version, RecordInputs, nil
	}
	if from := last.Chart.Metadata; from.Name+" "+from.Version != r.chartVersion() {
		return last.Version, "upgrade " + from.Name + " " + from.Version + " to " + r.chartVersion(), nil
	}
	return last.Version, "upgrade " + r.chartVersion() + " (its manifest or values changed)", nil
}

func (r Release) chartVersion() string {
	return r.Chart.Metadata.Name + " " + r.Chart.Metadata.Version
}

// Apply makes the release what Plan compares it with: installed when it is
// absent, otherwise upgraded to exactly r's chart and values (earlier values
// are not reused). It returns the release's new revision. A Remove release
// is uninstalled instead when boot owns it (with Wait, until its pods are
// gone). A release of that name not labelled as boot's is refused.
func (r Release) Apply(ctx context.Context, h Helm) (revision int, err error) {
	if r.Remove {
		_, err := h.uninstall(r.Namespace, r.Name, r.Timeout, r.Wait)
		return 0, err
	}
	if r.Chart == nil || r.Chart.Metadata == nil {
		return 0, fmt.Errorf("release %s: no chart", r)
	}
	cfg, err := h.config(r.Namespace)
	if err != nil {
		return 0, fmt.Errorf("release %s: %w", r, err)
	}
	last, err := cfg.Releases.Last(r.Name)
	absent := errors.Is(err, driver.ErrReleaseNotFound)
	switch {
	case absent:
	case err != nil:
		return 0, fmt.Errorf("release %s: reading history: %w", r, err)
	case !ownedByBoot(last):
		return 0, fmt.Errorf("release %s is %w (no label %s=%s); boot leaves it alone", r, errNotBoots, ManagedByLabel, ManagedByBoot)
	}
	key, err := r.inputs(cfg)
	if err != nil {
		return 0, err
	}
	if absent {
		return r.install(ctx, cfg, key)
	}
	done, err := r.upgrade(ctx, cfg, false, key)
	if err != nil {
		return 0, err
	}
	return done.Version, nil
}

// RecordInputs is the plan of a release whose manifest is unchanged but
// whose deployed revision lacks the digest of its inputs (made by an
// earlier boot, or before the cluster was upgraded): RecordDigest does it.
const RecordInputs = "record the digest of its inputs (its manifest is unchanged)"

// RecordDigest puts the digest of r's inputs on its deployed revision, as
// a label: no new revision, and no second rendering (Plan, which said
// RecordInputs, found the manifest unchanged). It returns the revision.
func (r Release) RecordDigest(h Helm) (revision int, err error) {
	cfg, err := h.config(r.Namespace)
	if err != nil {
		return 0, fmt.Errorf("release %s: %w", r, err)
	}
	last, err := cfg.Releases.Last(r.Name)
	if err != nil {
		return 0, fmt.Errorf("release %s: reading history: %w", r, err)
	}
	if !ownedByBoot(last) {
		return 0, fmt.Errorf("release %s is %w (no label %s=%s); boot leaves it alone", r, errNotBoots, ManagedByLabel, ManagedByBoot)
	}
	key, err := r.inputs(cfg)
	if err != nil {
		return 0, err
	}
	if key == "" {
		return last.Version, nil
	}
	labels := maps.Clone(last.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[InputsLabel] = key
	last.Labels = labels
	if err := cfg.Releases.Update(last); err != nil {
		return 0, fmt.Errorf("release %s: recording its inputs: %w", r, err)
	}
	return last.Version, nil
}

// boots returns the labels boot gives a release it installs or upgrades:
// its owner, and the digest of its inputs when there is one.
func boots(inputs string) map[string]string {
	l := map[string]string{ManagedByLabel: ManagedByBoot}
	if inputs != "" {
		l[InputsLabel] = inputs
	}
	return l
}

func (r Release) install(ctx context.Context, cfg *action.Configuration, inputs string) (int, error) {
	in := action.NewInstall(cfg)
	in.ReleaseName = r.Name
	in.Namespace = r.Namespace
	in.CreateNamespace = true
	in.SkipCRDs = r.SkipCRDs
	in.Wait = r.Wait
	in.Timeout = r.timeout()
	in.Labels = boots(inputs)
	rel, err := in.RunWithContext(ctx, r.Chart, r.Values)
	if err != nil {
		return 0, fmt.Errorf("release %s: install: %w", r, err)
	}
	return rel.Version, nil
}

// upgrade upgrades the release to r's chart and exactly r's values (earlier
// values are not reused); with dryRun it renders against the cluster and
// stores nothing.
func (r Release) upgrade(ctx context.Context, cfg *action.Configuration, dryRun bool, inputs string) (*release.Release, error) {
	up := action.NewUpgrade(cfg)
	up.Namespace = r.Namespace
	up.ResetValues = true
	up.Wait = r.Wait
	up.Timeout = r.timeout()
	up.Labels = boots(inputs)
	if dryRun {
		up.DryRun = true
		up.DryRunOption = "server"
		// A plan compares manifests; validating them against the API's
		// schema costs a download of it per release, and the upgrade that
		// follows a changed plan validates anyway.
		up.DisableOpenAPIValidation = true
	}
	rel, err := up.RunWithContext(ctx, r.Name, r.Chart, r.Values)
	if err != nil {
		what := "upgrade"
		if dryRun {
			what = "planning upgrade"
		}
		return nil, fmt.Errorf("release %s: %s: %w", r, what, err)
	}
	return rel, nil
}

// sameRelease reports whether planned would change nothing over current:
// same manifest, hooks, chart name and version, and values.
func sameRelease(current, planned *release.Release) (bool, error) {
	if current.Manifest != planned.Manifest {
		return false, nil
	}
	if current.Chart == nil || current.Chart.Metadata == nil ||
		current.Chart.Metadata.Name != planned.Chart.Metadata.Name ||
		current.Chart.Metadata.Version != planned.Chart.Metadata.Version {
		return false, nil
	}
	if !reflect.DeepEqual(hookManifests(current), hookManifests(planned)) {
		return false, nil
	}
	// Stored values come back from JSON; compare both as JSON data.
	a, err := jsonData(current.Config)
	if err != nil {
		return false, err
	}
	b, err := jsonData(planned.Config)
	if err != nil {
		return false, err
	}
	return reflect.DeepEqual(a, b), nil
}

func hookManifests(r *release.Release) []string {
	out := make([]string, 0, len(r.Hooks))
	for _, h := range r.Hooks {
		out = append(out, h.Path+"\x00"+h.Manifest)
	}
	sort.Strings(out)
	return out
}

func jsonData(v map[string]any) (any, error) {
	if len(v) == 0 {
		return map[string]any{}, nil
	}
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("values: %w", err)
	}
	var out any
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("values: %w", err)
	}
	return out, nil
}

func ownedByBoot(r *release.Release) bool {
	return r.Labels[ManagedByLabel] == ManagedByBoot
}

// errNotBoots is in the error Uninstall gives for a release that exists but
// is not labelled as boot's.
var errNotBoots = errors.New("not managed by boot")

// Uninstall removes the release name in namespace if boot owns it. It
// reports whether a release was removed; a release not labelled as boot's is
// refused with an error (errNotBoots) and left in place.
func (h Helm) Uninstall(namespace, name string, timeout time.Duration) (bool, error) {
	return h.uninstall(namespace, name, timeout, false)
}

// uninstall is Uninstall; with wait, the release's objects are deleted in
// the foreground and it returns once they are gone, their pods included (so
// that a DaemonSet's host ports are free again).
func (h Helm) uninstall(namespace, name string, timeout time.Duration, wait bool) (bool, error) {
	cfg, err := h.config(namespace)
	if err != nil {
		return false, err
	}
	last, err := cfg.Releases.Last(name)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("release %s/%s: reading history: %w", namespace, name, err)
	}
	if !ownedByBoot(last) {
		return false, fmt.Errorf("release %s/%s is %w (no label %s=%s); not removing it", namespace, name, errNotBoots, ManagedByLabel, ManagedByBoot)
	}
	un := action.NewUninstall(cfg)
	if wait {
		un.Wait = true
		un.DeletionPropagation = "foreground"
	}
	un.Timeout = timeout
	if un.Timeout <= 0 {
		un.Timeout = DefaultReleaseTimeout
	}
	if _, err := un.Run(name); err != nil {
		return false, fmt.Errorf("release %s/%s: uninstall: %w", namespace, name, err)
	}
	return true, nil
}

// listOwned returns every release in every namespace labelled as boot's,
// as Remove releases.
func (h Helm) listOwned() ([]Release, error) {
	rels, err := h.Managed()
	if err != nil {
		return nil, err
	}
	out := make([]Release, len(rels))
	for i, rel := range rels {
		out[i] = Release{Name: rel.Name, Namespace: rel.Namespace, Remove: true}
	}
	return out, nil
}
