package bundle

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
)

// chartArchive packages a small chart named name at version (and described
// as description) with Helm's chartutil.Save and returns the archive's bytes.
func chartArchive(t *testing.T, name, version string, description ...string) []byte {
	t.Helper()
	c := &chart.Chart{
		Metadata:  &chart.Metadata{APIVersion: chart.APIVersionV2, Name: name, Version: version, Description: strings.Join(description, " ")},
		Values:    map[string]any{"replicas": 1},
		Templates: []*chart.File{{Name: "templates/cm.yaml", Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n")}},
	}
	p, err := chartutil.Save(c, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// chartBundle writes a bundle folder holding one other file and the charts,
// through the code Build writes them with, and returns it.
func chartBundle(t *testing.T, charts []ChartArchive) string {
	t.Helper()
	if err := checkCharts(charts); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	m := Manifest{KubernetesVersion: "v1.37.2", Arch: "amd64"}
	add := (&bundleStage{dir: dir, m: &m}).add
	if err := add("bin/tool", "", []byte("#!/bin/sh\n"), 0o755, "tool", "v1"); err != nil {
		t.Fatal(err)
	}
	var err error
	if m.Charts, err = addCharts(add, charts); err != nil {
		t.Fatal(err)
	}
	data, err := m.encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ManifestName), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestBundleCharts packs two charts, opens the bundle (every file checked),
// finds one chart by slot checking only its file, and sees a tampered chart
// refused by Open, by verify's code path, and by VerifiedFile, each naming
// the file.
func TestBundleCharts(t *testing.T) {
	ingress := chartArchive(t, "ingress-nginx", "4.15.1")
	certManager := chartArchive(t, "cert-manager", "v1.19.1")
	charts := []ChartArchive{
		{Slot: "ingressNginx", Name: "ingress-nginx", Version: "4.15.1", Data: ingress},
		{Slot: "certManager", Name: "cert-manager", Version: "v1.19.1", Data: certManager},
	}
	dir := chartBundle(t, charts)

	b, err := Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	want := []Chart{
		{Slot: "certManager", Name: "cert-manager", Version: "v1.19.1", Path: "charts/cert-manager-v1.19.1.tgz"},
		{Slot: "ingressNginx", Name: "ingress-nginx", Version: "4.15.1", Path: "charts/ingress-nginx-4.15.1.tgz"},
	}
	if len(b.Manifest.Charts) != 2 || b.Manifest.Charts[0] != want[0] || b.Manifest.Charts[1] != want[1] {
		t.Fatalf("manifest charts %+v, want %+v", b.Manifest.Charts, want)
	}
	if got := b.Manifest.ChartsHeld(); got != "certManager: cert-manager v1.19.1, ingressNginx: ingress-nginx 4.15.1" {
		t.Errorf("ChartsHeld: %q", got)
	}
	var listed bool
	for _, f := range b.Manifest.Files {
		if f.Path == "charts/ingress-nginx-4.15.1.tgz" {
			listed = f.Size == int64(len(ingress)) && f.Component == "ingress-nginx" && f.Version == "4.15.1"
		}
	}
	if !listed {
		t.Errorf("charts/ingress-nginx-4.15.1.tgz not listed with its size, name and version in %+v", b.Manifest.Files)
	}

	m, err := ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	c, ok := m.Chart("ingressNginx")
	if !ok {
		t.Fatal("no chart for slot ingressNginx")
	}
	if _, ok := m.Chart("registry"); ok {
		t.Error("a chart for slot registry, which was not packed")
	}
	// Only the chart's file is checked: a tampered other file does not
	// matter to VerifiedFile (Open refuses the bundle).
	if err := os.WriteFile(filepath.Join(dir, "bin", "tool"), []byte("#!/bin/zs\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	p, err := m.VerifiedFile(dir, c.Path)
	if err != nil {
		t.Fatalf("VerifiedFile: %v", err)
	}
	loaded, err := loader.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Metadata.Name != "ingress-nginx" || loaded.Metadata.Version != "4.15.1" {
		t.Errorf("bundle's chart file holds %s %s", loaded.Metadata.Name, loaded.Metadata.Version)
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "file bin/tool: sha256") {
		t.Errorf("Open with a tampered bin/tool: %v", err)
	}
	if _, err := m.VerifiedFile(dir, "charts/nope-1.0.0.tgz"); err == nil || !strings.Contains(err.Error(), "charts/nope-1.0.0.tgz is not in the manifest") {
		t.Errorf("VerifiedFile of an unlisted file: %v", err)
	}

	// A tampered chart: same size, one byte changed; then a truncated one.
	for _, tc := range []struct {
		name   string
		change func([]byte) []byte
		want   string
	}{
		{"changed byte", func(d []byte) []byte { d = append([]byte{}, d...); d[len(d)/2] ^= 0xff; return d }, "file charts/ingress-nginx-4.15.1.tgz: sha256"},
		{"truncated", func(d []byte) []byte { return d[:len(d)-1] }, "file charts/ingress-nginx-4.15.1.tgz: size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := chartBundle(t, charts)
			p := filepath.Join(dir, "charts", "ingress-nginx-4.15.1.tgz")
			if err := os.WriteFile(p, tc.change(ingress), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open: got %v, want an error containing %q", err, tc.want)
			}
			m, err := ReadManifest(dir)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := m.VerifiedFile(dir, "charts/ingress-nginx-4.15.1.tgz"); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("VerifiedFile: got %v, want an error containing %q", err, tc.want)
			}
			if _, err := m.VerifiedFile(dir, "charts/cert-manager-v1.19.1.tgz"); err != nil {
				t.Errorf("VerifiedFile of the untouched chart: %v", err)
			}
		})
	}
}

// TestCheckCharts refuses what Build must not pack, before it builds.
func TestCheckCharts(t *testing.T) {
	hello := chartArchive(t, "hello", "0.1.0")
	cases := []struct {
		name   string
		charts []ChartArchive
		want   string
	}{
		{"bad slot", []ChartArchive{{Slot: "Ingress Nginx", Name: "hello", Version: "0.1.0", Data: hello}}, `slot "Ingress Nginx"`},
		{"slot twice", []ChartArchive{{Slot: "a", Name: "hello", Version: "0.1.0", Data: hello}, {Slot: "a", Name: "hello", Version: "0.1.0", Data: hello}}, "a second chart for that slot"},
		{"bad name", []ChartArchive{{Slot: "a", Name: "../hello", Version: "0.1.0", Data: hello}}, `"../hello" is not a chart name`},
		{"range", []ChartArchive{{Slot: "a", Name: "hello", Version: "^0.1", Data: hello}}, `"^0.1" is not an exact chart version`},
		{"not an archive", []ChartArchive{{Slot: "a", Name: "hello", Version: "0.1.0", Data: []byte("hello")}}, "hello 0.1.0: not a chart archive"},
		{"other version", []ChartArchive{{Slot: "a", Name: "hello", Version: "0.2.0", Data: hello}}, "the archive holds chart hello 0.1.0, not hello 0.2.0"},
		{"other name", []ChartArchive{{Slot: "a", Name: "world", Version: "0.1.0", Data: hello}}, "the archive holds chart hello 0.1.0, not world 0.1.0"},
		{"two archives of one version", []ChartArchive{{Slot: "a", Name: "hello", Version: "0.1.0", Data: hello}, {Slot: "b", Name: "hello", Version: "0.1.0", Data: chartArchive(t, "hello", "0.1.0", "another")}},
			`another archive of hello 0.1.0 than slot "a"'s; both would be charts/hello-0.1.0.tgz`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := checkCharts(tc.charts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if err := checkCharts([]ChartArchive{{Slot: "ingressNginx", Name: "hello", Version: "0.1.0", Data: hello}}); err != nil {
		t.Fatalf("a good chart: %v", err)
	}
	// Two slots with the same archive share its file.
	dir := chartBundle(t, []ChartArchive{{Slot: "ingressNginx", Name: "hello", Version: "0.1.0", Data: hello}, {Slot: "certManager", Name: "hello", Version: "0.1.0", Data: hello}})
	b, err := Open(dir)
	if err != nil {
		t.Fatalf("two slots sharing a chart: %v", err)
	}
	if len(b.Manifest.Charts) != 2 || b.Manifest.Charts[0].Path != b.Manifest.Charts[1].Path || len(b.Manifest.Files) != 2 {
		t.Errorf("two slots sharing a chart: charts %+v, files %+v", b.Manifest.Charts, b.Manifest.Files)
	}
	// Build checks the charts before anything else that takes time.
	err = Build(t.Context(), Options{KubernetesVersions: []string{"v1.37.2"}, Out: t.TempDir(), CacheDir: t.TempDir(), Charts: cases[0].charts})
	if err == nil || !strings.Contains(err.Error(), `slot "Ingress Nginx"`) {
		t.Fatalf("Build with a bad chart: %v", err)
	}
}

// TestParseManifestCharts refuses chart entries that do not match the files.
func TestParseManifestCharts(t *testing.T) {
	good := Manifest{KubernetesVersion: "v1.37.2", Arch: "amd64",
		Files:  []File{{Path: "charts/hello-0.1.0.tgz", SHA256: strings.Repeat("ab", 32), Size: 1}},
		Charts: []Chart{{Slot: "ingressNginx", Name: "hello", Version: "0.1.0", Path: "charts/hello-0.1.0.tgz"}},
	}
	cases := []struct {
		name string
		edit func(m *Manifest)
		want string
	}{
		{"valid", func(*Manifest) {}, ""},
		{"not a file", func(m *Manifest) { m.Files[0].Path = "charts/other.tgz" }, "charts[0].path (charts/hello-0.1.0.tgz): not listed in files"},
		{"other path", func(m *Manifest) { m.Charts[0].Path = "bin/hello" }, `charts[0].path (ingressNginx): "bin/hello", want charts/hello-0.1.0.tgz`},
		{"slot twice", func(m *Manifest) { m.Charts = append(m.Charts, m.Charts[0]) }, `charts[1].slot: "ingressNginx" listed twice`},
		{"no version", func(m *Manifest) { m.Charts[0].Version = "" }, "charts[0].version (ingressNginx)"},
		{"no slot", func(m *Manifest) { m.Charts[0].Slot = "" }, "charts[0].slot"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := good
			m.Files = append([]File{}, good.Files...)
			m.Charts = append([]Chart{}, good.Charts...)
			tc.edit(&m)
			data, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			_, err = ParseManifest(data)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("valid manifest: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
