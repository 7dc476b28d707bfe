package addons

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bootctl/boot/internal/kubetest"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// foreignChart is a one-ConfigMap chart installed without boot's label.
func foreignChart() *chart.Chart {
	return &chart.Chart{
		Metadata: &chart.Metadata{APIVersion: chart.APIVersionV2, Name: "foreign", Version: "0.1.0"},
		Templates: []*chart.File{{Name: "templates/cm.yaml", Data: []byte(
			"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  a: b\n")}},
	}
}

// releaseSecrets returns the revisions Helm stored for name in namespace and
// the labels of the newest one.
func releaseSecrets(ctx context.Context, t *testing.T, cs kubernetes.Interface, namespace, name string) (int, map[string]string) {
	t.Helper()
	l, err := cs.CoreV1().Secrets(namespace).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm,name=" + name})
	if err != nil {
		t.Fatal(err)
	}
	var newest map[string]string
	for _, s := range l.Items {
		if s.Labels["status"] == "deployed" {
			newest = s.Labels
		}
	}
	return len(l.Items), newest
}

// converge applies r when its plan says it differs from what is deployed,
// as boot's runner does, and returns its revision and whether it changed.
func converge(ctx context.Context, h Helm, r Release) (revision int, changed bool, err error) {
	rev, todo, err := r.Plan(ctx, h)
	if err != nil || todo == "" {
		return rev, false, err
	}
	rev, err = r.Apply(ctx, h)
	return rev, err == nil, err
}

// TestReleaseApplyAgainstAPIServer installs the registry chart into a real
// kube-apiserver, re-applies it unchanged (no new revision), upgrades it with
// a changed value (one new revision), and checks that boot's uninstall
// removes only releases labelled as boot's.
func TestReleaseApplyAgainstAPIServer(t *testing.T) {
	c := kubetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := RegistryChart()
	if err != nil {
		t.Fatal(err)
	}
	h := Helm{Kubeconfig: c.Kubeconfig}
	r := Release{Name: "registry", Namespace: "registry", Chart: ch, Values: requiredValues(), Timeout: time.Minute}

	apply := func(step string, r Release, wantRev int, wantChanged bool) {
		t.Helper()
		rev, changed, err := converge(ctx, h, r)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if rev != wantRev || changed != wantChanged {
			t.Fatalf("%s: revision %d changed %v, want revision %d changed %v", step, rev, changed, wantRev, wantChanged)
		}
		if n, labels := releaseSecrets(ctx, t, cs, r.Namespace, r.Name); n != wantRev || labels[ManagedByLabel] != ManagedByBoot {
			t.Fatalf("%s: %d stored revisions, deployed labels %v; want %d revisions labelled %s=%s", step, n, labels, wantRev, ManagedByLabel, ManagedByBoot)
		}
	}

	apply("install", r, 1, true)
	if _, err := cs.AppsV1().Deployments("registry").Get(ctx, "registry", metav1.GetOptions{}); err != nil {
		t.Fatalf("install created no Deployment registry/registry: %v", err)
	}
	r.Values = requiredValues() // an equal but new map, as a fresh run builds
	apply("re-apply unchanged", r, 1, false)

	r.Values = withValues(map[string]any{"host": "images.example.com"})
	apply("upgrade with changed host", r, 2, true)
	ing, err := cs.NetworkingV1().Ingresses("registry").Get(ctx, "registry", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ing.Spec.Rules) == 0 || ing.Spec.Rules[0].Host != "images.example.com" {
		t.Fatalf("upgrade did not reach the Ingress: rules %+v", ing.Spec.Rules)
	}
	apply("re-apply upgraded", r, 2, false)

	// A release someone else installed, without boot's label.
	other, err := h.config("other")
	if err != nil {
		t.Fatal(err)
	}
	in := action.NewInstall(other)
	in.ReleaseName, in.Namespace, in.CreateNamespace = "foreign", "other", true
	if _, err := in.RunWithContext(ctx, foreignChart(), nil); err != nil {
		t.Fatal(err)
	}
	foreign := Release{Name: "foreign", Namespace: "other", Chart: foreignChart()}
	if _, _, err = foreign.Plan(ctx, h); err == nil || !strings.Contains(err.Error(), "not managed by boot") {
		t.Fatalf("Plan over a foreign release: want a refusal, got %v", err)
	}
	if _, err = foreign.Apply(ctx, h); err == nil || !strings.Contains(err.Error(), "not managed by boot") {
		t.Fatalf("Apply over a foreign release: want a refusal, got %v", err)
	}
	if _, err := h.Uninstall("other", "foreign", time.Minute); err == nil || !strings.Contains(err.Error(), "not managed by boot") {
		t.Fatalf("Uninstall of a foreign release: want a refusal, got %v", err)
	}

	owned, err := h.listOwned()
	if err != nil {
		t.Fatal(err)
	}
	var removed []string
	for _, r := range owned {
		if ok, err := h.Uninstall(r.Namespace, r.Name, time.Minute); err != nil || !ok {
			t.Fatalf("Uninstall %s: %v, %v", r, ok, err)
		}
		removed = append(removed, r.String())
	}
	if !slices.Equal(removed, []string{"registry/registry"}) {
		t.Fatalf("boot's releases were %q, want only registry/registry", removed)
	}
	if n, _ := releaseSecrets(ctx, t, cs, "registry", "registry"); n != 0 {
		t.Fatalf("%d revisions of registry/registry remain after uninstall", n)
	}
	if _, err := cs.AppsV1().Deployments("registry").Get(ctx, "registry", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("Deployment registry/registry after uninstall: want not found, got %v", err)
	}
	if n, _ := releaseSecrets(ctx, t, cs, "other", "foreign"); n != 1 {
		t.Fatalf("foreign release: %d revisions after removing boot's releases, want 1", n)
	}
	if _, err := cs.CoreV1().ConfigMaps("other").Get(ctx, "foreign", metav1.GetOptions{}); err != nil {
		t.Fatalf("foreign release's ConfigMap after removing boot's releases: %v", err)
	}
	if ok, err := h.Uninstall("registry", "registry", time.Minute); ok || err != nil {
		t.Fatalf("Uninstall of an absent release: removed %v, err %v; want false, nil", ok, err)
	}
}

// TestReleaseInputsDigest checks the digest of a release's inputs on a real
// kube-apiserver: boot's install records it; a plan that finds it equal
// decides "nothing to do" without rendering (shown by a stored manifest
// that no longer matches, which only a render would notice); a release
// without it (made by an earlier boot) gets it recorded once, without a new
// revision; changed values are an upgrade. A chart that calls lookup gets
// no digest and is always rendered.
func TestReleaseInputsDigest(t *testing.T) {
	c := kubetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	h := Helm{Kubeconfig: c.Kubeconfig}
	cm := func(data string) *chart.Chart {
		return &chart.Chart{
			Metadata: &chart.Metadata{APIVersion: chart.APIVersionV2, Name: "cm", Version: "0.1.0"},
			Templates: []*chart.File{{Name: "templates/cm.yaml", Data: []byte(
				"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  a: {{ .Values.a | quote }}\n" + data)}},
		}
	}
	r := Release{Name: "cm", Namespace: "digest", Chart: cm(""), Values: map[string]any{"a": "1"}, Timeout: time.Minute}
	plan := func(step, want string) {
		t.Helper()
		if _, todo, err := r.Plan(ctx, h); err != nil || todo != want {
			t.Fatalf("%s: plan %q, %v; want %q", step, todo, err, want)
		}
	}
	if _, err := r.Apply(ctx, h); err != nil {
		t.Fatal(err)
	}
	_, labels := releaseSecrets(ctx, t, cs, "digest", "cm")
	key := labels[InputsLabel]
	if len(key) != 40 {
		t.Fatalf("install recorded %s=%q", InputsLabel, key)
	}
	plan("unchanged", "")

	cfg, err := h.config("digest")
	if err != nil {
		t.Fatal(err)
	}
	last, err := cfg.Releases.Last("cm")
	if err != nil {
		t.Fatal(err)
	}
	manifest := last.Manifest
	last.Manifest += "# edited\n"
	if err := cfg.Releases.Update(last); err != nil {
		t.Fatal(err)
	}
	plan("digest equal, stored manifest edited", "")

	last.Manifest = manifest
	delete(last.Labels, InputsLabel)
	if err := cfg.Releases.Update(last); err != nil {
		t.Fatal(err)
	}
	plan("no digest", "record the digest of its inputs (its manifest is unchanged)")
	if rev, err := r.RecordDigest(h); err != nil || rev != 1 {
		t.Fatalf("recording the digest: revision %d, %v; want revision 1", rev, err)
	}
	if n, labels := releaseSecrets(ctx, t, cs, "digest", "cm"); n != 1 || labels[InputsLabel] != key {
		t.Fatalf("after recording: %d revisions, %s=%q; want 1 revision and %q", n, InputsLabel, labels[InputsLabel], key)
	}
	plan("digest recorded", "")

	r.Values = map[string]any{"a": "2"}
	plan("values changed", "upgrade cm 0.1.0 (its manifest or values changed)")
	if rev, err := r.Apply(ctx, h); err != nil || rev != 2 {
		t.Fatalf("upgrade: revision %d, %v", rev, err)
	}
	if _, labels := releaseSecrets(ctx, t, cs, "digest", "cm"); labels[InputsLabel] == key || len(labels[InputsLabel]) != 40 {
		t.Fatalf("upgrade recorded %s=%q (before: %q)", InputsLabel, labels[InputsLabel], key)
	}

	// A template that calls lookup: no digest, rendered at every plan.
	l := Release{Name: "lk", Namespace: "digest", Chart: cm("  b: {{ (lookup \"v1\" \"Namespace\" \"\" \"digest\").metadata.name | quote }}\n"), Values: map[string]any{"a": "1"}, Timeout: time.Minute}
	if _, err := l.Apply(ctx, h); err != nil {
		t.Fatal(err)
	}
	if _, labels := releaseSecrets(ctx, t, cs, "digest", "lk"); labels[InputsLabel] != "" {
		t.Fatalf("a chart calling lookup got %s=%q", InputsLabel, labels[InputsLabel])
	}
	if _, todo, err := l.Plan(ctx, h); err != nil || todo != "" {
		t.Fatalf("lookup chart, unchanged: plan %q, %v", todo, err)
	}
}
