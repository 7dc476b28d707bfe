package addons

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	kubefake "helm.sh/helm/v3/pkg/kube/fake"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/bootctl/boot/internal/testenv"
)

// The upstream release archives (../shared/upstream beside the project, see
// its README) and the chart folder inside each, below the archive's top
// folder.
const (
	certManagerArchive  = "cert-manager-v1.21.1.tar.gz"
	certManagerChartDir = "deploy/charts/cert-manager"
	certManagerVersion  = "v1.21.1"
	ingressNginxArchive = "ingress-nginx-chart-4.15.1.tar.gz"
	ingressNginxDir     = "charts/ingress-nginx"
	traefikArchive      = "traefik-helm-chart-v41.3.0.tar.gz"
	traefikChartDir     = "traefik"
)

// upstreamChartDir extracts the chart folder sub of the release archive into
// a temporary folder and returns the chart's folder there. The archives are
// read where they are, never copied into the tree.
func upstreamChartDir(t *testing.T, archive, sub string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "shared", "upstream", archive))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		testenv.Need(t, "the upstream release archive %s is not beside the project: %v", archive, err)
	}
	defer func() { _ = f.Close() }()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	dst := t.TempDir()
	tr := tar.NewReader(gz)
	found := false
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		// Paths are <top folder>/<path in the repository>.
		_, rel, _ := strings.Cut(h.Name, "/")
		if h.Typeflag != tar.TypeReg || !strings.HasPrefix(rel, sub+"/") || strings.Contains(rel, "..") {
			continue
		}
		out := filepath.Join(dst, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(out, data, 0o644); err != nil {
			t.Fatal(err)
		}
		found = true
	}
	if !found {
		t.Fatalf("%s holds no %s", p, sub)
	}
	return filepath.Join(dst, filepath.FromSlash(sub))
}

// upstreamChart loads one upstream chart from its release archive; the
// cert-manager chart's version (v0.0.0 in its sources) is stamped as its
// release does.
func upstreamChart(t *testing.T, archive, sub string) *chart.Chart {
	t.Helper()
	c, err := loader.LoadDir(upstreamChartDir(t, archive, sub))
	if err != nil {
		t.Fatal(err)
	}
	if archive == certManagerArchive {
		c.Metadata.Version, c.Metadata.AppVersion = certManagerVersion, certManagerVersion
	}
	return c
}

// renderRelease renders release r client-side with the Helm SDK, as an
// install at Kubernetes kubeVersion ("" = Helm's default) would: the objects
// of its manifest (the chart's crds/ too unless r.SkipCRDs) and of its hooks.
func renderRelease(t *testing.T, r Release, kubeVersion string) []*unstructured.Unstructured {
	t.Helper()
	cfg := &action.Configuration{
		Releases:     storage.Init(driver.NewMemory()),
		KubeClient:   &kubefake.PrintingKubeClient{Out: io.Discard},
		Capabilities: chartutil.DefaultCapabilities,
		Log:          func(string, ...any) {},
	}
	in := action.NewInstall(cfg)
	in.ReleaseName, in.Namespace = r.Name, r.Namespace
	in.DryRun, in.ClientOnly = true, true
	in.IncludeCRDs = !r.SkipCRDs
	if kubeVersion != "" {
		kv, err := chartutil.ParseKubeVersion(kubeVersion)
		if err != nil {
			t.Fatal(err)
		}
		in.KubeVersion = kv
	}
	rel, err := in.Run(r.Chart, r.Values)
	if err != nil {
		t.Fatalf("render %s: %v", r, err)
	}
	text := rel.Manifest
	for _, h := range rel.Hooks {
		text += "\n---\n" + h.Manifest
	}
	return splitObjects(t, text)
}

// splitObjects decodes a multi-document YAML manifest.
func splitObjects(t *testing.T, text string) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	reader := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(text)))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if isBlankYAML(doc) {
			continue
		}
		var obj map[string]any
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			t.Fatalf("%v\n%s", err, doc)
		}
		out = append(out, &unstructured.Unstructured{Object: obj})
	}
}

// find returns the rendered object of kind and name, failing the test
// without one.
func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	var have []string
	for _, o := range objs {
		have = append(have, o.GetKind()+"/"+o.GetName())
	}
	t.Fatalf("no %s/%s rendered (have %s)", kind, name, strings.Join(have, ", "))
	return nil
}

// ofKind returns the rendered objects of kind.
func ofKind(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// container returns the first container of a workload's pod template.
func container(t *testing.T, o *unstructured.Unstructured) map[string]any {
	t.Helper()
	cs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
	if len(cs) == 0 {
		t.Fatalf("%s/%s has no container", o.GetKind(), o.GetName())
	}
	return cs[0].(map[string]any)
}

// stringsOf returns a container's list field (args, ...) as strings.
func stringsOf(c map[string]any, field string) []string {
	var out []string
	list, _ := c[field].([]any)
	for _, v := range list {
		out = append(out, v.(string))
	}
	return out
}
