package bundle

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// The generated module builds the five commands from the archive's
// folders and the root module from the module proxy (the archive's go.mod
// is the one the proxy serves for v1.21.1).
func TestCertManagerModule(t *testing.T) {
	u := loadTestUpstream(t)
	c, err := certManagerComponent(u)
	if err != nil {
		t.Fatal(err)
	}
	up, err := u.readFile(certManagerArchive, "go.mod")
	if err != nil {
		t.Fatal(err)
	}
	var pkgs []string
	for _, bin := range c.bins {
		pkgs = append(pkgs, bin.pkg)
	}
	got, err := generateModule("boot.bundle/"+c.name, c.module, c.version, up, c.local, c.pins, c.sources, pkgs)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "testdata/cert-manager.go.mod.golden", got)
	if !slices.Contains(c.ldflags, certManagerModule+"/pkg/util.AppVersion=v1.21.1") ||
		!slices.Contains(c.ldflags, certManagerModule+"/pkg/util.AppGitCommit=24e33194fb39488eff2bbf10c6dc640f407cad44") {
		t.Errorf("ldflags %q lack the version stamps", c.ldflags)
	}

	ctx := context.Background()
	modDir := t.TempDir()
	for _, src := range c.sources {
		key, err := fillSource(ctx, modDir, src)
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(modDir, filepath.FromSlash(src.dir))
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err != nil {
			t.Fatal(err)
		}
		f, err := modfile.Parse(src.dir+"/go.mod", data, nil)
		if err != nil {
			t.Fatal(err)
		}
		if f.Module.Mod.Path != src.path || len(f.Replace) != 0 {
			t.Errorf("%s/go.mod: module %s, %d replaces; want %s and none:\n%s", src.dir, f.Module.Mod.Path, len(f.Replace), src.path, data)
		}
		if !slices.ContainsFunc(f.Require, func(r *modfile.Require) bool {
			return r.Mod.Path == certManagerModule && r.Mod.Version == certManagerVersion
		}) {
			t.Errorf("%s/go.mod does not require %s %s:\n%s", src.dir, certManagerModule, certManagerVersion, data)
		}
		if _, err := os.Stat(filepath.Join(dir, "main.go")); err != nil {
			t.Error(err)
		}
		// The key follows the content: the same fill gives the same key,
		// a changed file another.
		if again, err := fillSource(ctx, modDir, src); err != nil || again != key {
			t.Errorf("%s: a second fill gave key %s (%v), the first %s", src.dir, again, err, key)
		}
		if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if changed, err := hashTree(dir); err != nil || "source "+src.path+" ./"+src.dir+" "+changed == key {
			t.Errorf("%s: a changed main.go keeps the key (%v)", src.dir, err)
		}
	}
}

// fakeBinaries writes a stand-in file for each cert-manager binary.
func fakeBinaries(t *testing.T) map[string]string {
	t.Helper()
	built := map[string]string{}
	dir := t.TempDir()
	for _, cmd := range certManagerCommands {
		p := filepath.Join(dir, "cert-manager-"+cmd)
		if err := os.WriteFile(p, []byte("#!/bin/sh\necho "+cmd+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		built["cert-manager-"+cmd] = p
	}
	return built
}

// The images are named as the chart asks, run the command as 1000:1000,
// hold the CA certificates and licenses, and are reproducible.
func TestCertManagerImages(t *testing.T) {
	u := loadTestUpstream(t)
	built := fakeBinaries(t)
	ca := pemCert(t, "test root")
	digests := map[string]string{}
	for round := 0; round < 2; round++ {
		b := &builder{cache: t.TempDir(), log: io.Discard}
		specs, err := certManagerImageSpecs(b, u, built, ca)
		if err != nil {
			t.Fatal(err)
		}
		if len(specs) != len(certManagerCommands) {
			t.Fatalf("%d images, want %d", len(specs), len(certManagerCommands))
		}
		for i, spec := range specs {
			cmd := certManagerCommands[i]
			want := imageSpec{
				name: "quay.io/jetstack/cert-manager-" + cmd + ":v1.21.1", repoTag: "jetstack/cert-manager-" + cmd + ":v1.21.1",
				file: "cert-manager-" + cmd + ".tar", component: "cert-manager-" + cmd, version: "v1.21.1",
				entrypoint: []string{"/app/cmd/" + cmd + "/" + cmd}, user: "1000:1000",
			}
			got := spec
			got.layers = nil
			if got.name != want.name || got.repoTag != want.repoTag || got.file != want.file || got.component != want.component ||
				got.version != want.version || !slices.Equal(got.entrypoint, want.entrypoint) || got.user != want.user || got.cmd != nil {
				t.Errorf("image %+v, want %+v", got, want)
			}
			archive, digest, err := b.buildImage(spec)
			if err != nil {
				t.Fatal(err)
			}
			if round == 1 && digests[spec.name] != digest {
				t.Errorf("%s: digest %s, then %s from another cache", spec.name, digests[spec.name], digest)
			}
			digests[spec.name] = digest
			cf, files := imageContents(t, archiveImage(t, archive, spec.name))
			if cf.Config.User != "1000:1000" || !slices.Equal(cf.Config.Entrypoint, want.entrypoint) || cf.OS != "linux" || cf.Architecture != "amd64" {
				t.Errorf("%s: config user %q entrypoint %q %s/%s", spec.name, cf.Config.User, cf.Config.Entrypoint, cf.OS, cf.Architecture)
			}
			for _, f := range []string{caBundlePath, "app/cmd/" + cmd + "/" + cmd, "licenses/LICENSE", "licenses/LICENSES"} {
				if _, ok := files[f]; !ok {
					t.Errorf("%s lacks /%s", spec.name, f)
				}
			}
		}
	}
}

// podSpecs decodes the Deployments and Jobs of rendered manifests.
func podSpecs(t *testing.T, rendered map[string]string) map[string]corev1.PodSpec {
	t.Helper()
	pods := map[string]corev1.PodSpec{}
	for file, doc := range rendered {
		if !strings.HasSuffix(file, ".yaml") {
			continue // NOTES.txt
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(doc), 4096)
		for {
			var obj struct {
				Kind     string `json:"kind"`
				Metadata struct {
					Name string `json:"name"`
				} `json:"metadata"`
			}
			var raw map[string]any
			if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			data, err := yaml.Marshal(raw)
			if err != nil {
				t.Fatal(err)
			}
			if err := yaml.Unmarshal(data, &obj); err != nil {
				t.Fatal(err)
			}
			switch obj.Kind {
			case "Deployment":
				var d appsv1.Deployment
				if err := yaml.Unmarshal(data, &d); err != nil {
					t.Fatal(err)
				}
				pods[obj.Metadata.Name] = d.Spec.Template.Spec
			case "Job":
				var j batchv1.Job
				if err := yaml.Unmarshal(data, &j); err != nil {
					t.Fatal(err)
				}
				pods[obj.Metadata.Name] = j.Spec.Template.Spec
			}
		}
	}
	return pods
}

// The chart packed from the archive renders, with only imageRegistry set,
// exactly the bundle's images under that repository (R + "/" + RepoTag),
// using their entrypoints, as non-root.
func TestCertManagerChartRunsBundleImages(t *testing.T) {
	u := loadTestUpstream(t)
	ch := loadUpstreamChart(t, u, "cert-manager", certManagerVersion)
	specs, err := certManagerImageSpecs(&builder{cache: t.TempDir(), log: io.Discard}, u, fakeBinaries(t), pemCert(t, "test root"))
	if err != nil {
		t.Fatal(err)
	}
	const repo = "10.0.0.1:5000/mirror"
	serves := map[string]bool{}
	for _, s := range specs {
		serves[repo+"/"+s.repoTag] = true
	}
	vals, err := chartutil.ToRenderValues(ch, map[string]any{"imageRegistry": repo, "crds": map[string]any{"enabled": true}},
		chartutil.ReleaseOptions{Name: "cert-manager", Namespace: "cert-manager", IsInstall: true}, chartutil.DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	rendered, err := engine.Render(ch, vals)
	if err != nil {
		t.Fatal(err)
	}
	crds := 0
	for file, doc := range rendered {
		if strings.Contains(file, "/templates/crd-") && strings.Contains(doc, "kind: CustomResourceDefinition") {
			crds++
		}
	}
	if crds != 6 {
		t.Errorf("the chart rendered %d CRDs with crds.enabled, want 6", crds)
	}
	pods := podSpecs(t, rendered)
	var images []string
	for pod, spec := range pods {
		if spec.SecurityContext == nil || spec.SecurityContext.RunAsNonRoot == nil || !*spec.SecurityContext.RunAsNonRoot {
			t.Errorf("%s: runAsNonRoot not set (the images' numeric user is then not needed: check the chart)", pod)
		}
		for _, c := range spec.Containers {
			images = append(images, c.Image)
			if !serves[c.Image] {
				t.Errorf("%s runs %s, which the bundle does not serve under %s", pod, c.Image, repo)
			}
			if len(c.Command) != 0 {
				t.Errorf("%s sets command %q: the image's entrypoint is not used", pod, c.Command)
			}
		}
		if pod == "cert-manager" {
			solver := "--acme-http01-solver-image=" + repo + "/jetstack/cert-manager-acmesolver:v1.21.1"
			if !slices.Contains(spec.Containers[0].Args, solver) {
				t.Errorf("the controller's args %q lack %s", spec.Containers[0].Args, solver)
			}
		}
	}
	sort.Strings(images)
	want := []string{}
	for _, cmd := range []string{"cainjector", "controller", "startupapicheck", "webhook"} {
		want = append(want, repo+"/jetstack/cert-manager-"+cmd+":v1.21.1")
	}
	if !slices.Equal(images, want) {
		t.Errorf("the chart runs %q, want %q", images, want)
	}
}
