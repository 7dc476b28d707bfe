package addons

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"

	"github.com/bootctl/boot/bundle"
	"github.com/bootctl/boot/internal/testenv"
	"github.com/bootctl/boot/inventory"
)

// TestRegistryImageValues: with packages from a bundle, the registry, Redis
// and the maintenance jobs run the bundle's images from
// cluster.imageRepository, under the names the bundle's manifest gives them
// and pinned by its digests: the rendered gc CronJob runs
// <imageRepository>/bootctl/boot@sha256:..., never an image of the registry
// it maintains. registry.maintenance.image, when given, wins over the
// bundle's; online, the chart's images stay.
func TestRegistryImageValues(t *testing.T) {
	dir := testenv.BundleDir(t)
	m, err := bundle.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	digests := map[string]string{}
	for _, img := range m.Images {
		digests[img.Component] = img.Digest
	}
	inv := &inventory.Inventory{
		Cluster:  inventory.Cluster{ImageRepository: "172.29.40.2:5000"},
		Packages: inventory.Packages{Source: inventory.SourceBundle, Bundle: dir},
		Registry: inventory.Registry{Host: "registry.lab.test", Issuer: "selfsigned", Storage: inventory.Storage{Type: inventory.StoragePVC, Size: "1Gi"}, Replicas: 1,
			Auth: inventory.RegistryAuth{Mode: inventory.AuthToken}},
	}
	v, err := BundleImageValues(inv, DefaultRegistryRelease)
	if err != nil {
		t.Fatal(err)
	}
	reg := v["image"].(map[string]any)
	redis := v["redis"].(map[string]any)["image"].(map[string]any)
	boot := v["maintenance"].(map[string]any)["image"].(map[string]any)
	if reg["repository"] != "172.29.40.2:5000/library/registry" || !strings.HasPrefix(reg["tag"].(string), "3.1.") || reg["digest"] != digests["registry"] {
		t.Errorf("registry image %v", reg)
	}
	if redis["repository"] != "172.29.40.2:5000/library/redis" || !strings.HasSuffix(redis["tag"].(string), "-debian") || redis["digest"] != digests["redis"] {
		t.Errorf("redis image %v", redis)
	}
	if boot["repository"] != "172.29.40.2:5000/bootctl/boot" || boot["tag"] == "" || boot["digest"] != digests["boot"] || !strings.HasPrefix(digests["boot"], "sha256:") {
		t.Errorf("boot image %v, manifest digest %q", boot, digests["boot"])
	}
	// The chart accepts them (its schema refuses registries older than 3.1)
	// and runs them by digest, merged as the installer merges them.
	render := func(inv *inventory.Inventory) rendered {
		t.Helper()
		values, err := RegistryValues(inv.Registry)
		if err != nil {
			t.Fatal(err)
		}
		images, err := BundleImageValues(inv, DefaultRegistryRelease)
		if err != nil {
			t.Fatal(err)
		}
		mergeValues(values, images)
		out, err := RenderRegistry(RenderOptions{Values: values})
		if err != nil {
			t.Fatalf("the chart refuses the images: %v", err)
		}
		return decodeManifests(t, out)
	}
	r := render(inv)
	gc := get[*batchv1.CronJob](t, r, "CronJob/registry-gc")
	if got, want := gc.Spec.JobTemplate.Spec.Template.Spec.Containers[0].Image, "172.29.40.2:5000/bootctl/boot@"+digests["boot"]; got != want {
		t.Errorf("the gc CronJob runs %s, want %s", got, want)
	}
	if got, want := get[*appsv1.Deployment](t, r, "Deployment/registry").Spec.Template.Spec.Containers[0].Image, "172.29.40.2:5000/library/registry@"+digests["registry"]; got != want {
		t.Errorf("the registry runs %s, want %s", got, want)
	}
	if got, want := get[*appsv1.Deployment](t, r, "Deployment/registry-redis").Spec.Template.Spec.Containers[0].Image, "172.29.40.2:5000/library/redis@"+digests["redis"]; got != want {
		t.Errorf("redis runs %s, want %s", got, want)
	}
	// The token service runs the bundle's boot image too.
	if got, want := get[*appsv1.Deployment](t, r, "Deployment/registry-token").Spec.Template.Spec.Containers[0].Image, "172.29.40.2:5000/bootctl/boot@"+digests["boot"]; got != want {
		t.Errorf("the token service runs %s, want %s", got, want)
	}

	// registry.maintenance.image wins over the bundle's boot image.
	inv.Registry.Maintenance.Image = pinnedMaintenanceImage
	v, err = BundleImageValues(inv, DefaultRegistryRelease)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := v["maintenance"]; ok {
		t.Errorf("with registry.maintenance.image the bundle still gives %v", v["maintenance"])
	}
	gc = get[*batchv1.CronJob](t, render(inv), "CronJob/registry-gc")
	if got := gc.Spec.JobTemplate.Spec.Template.Spec.Containers[0].Image; got != pinnedMaintenanceImage {
		t.Errorf("with registry.maintenance.image the gc CronJob runs %s, want %s", got, pinnedMaintenanceImage)
	}
	inv.Registry.Maintenance.Image = ""

	// A bundle without boot's image (built by an older boot): the jobs are
	// left out with htpasswd; mode token, whose service runs it, is refused.
	old := *m
	old.Images = slices.DeleteFunc(slices.Clone(m.Images), func(img bundle.Image) bool { return img.Component == "boot" })
	data, err := json.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	oldDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(oldDir, bundle.ManifestName), data, 0o644); err != nil {
		t.Fatal(err)
	}
	inv.Packages.Bundle = oldDir
	if _, err := BundleImageValues(inv, DefaultRegistryRelease); err == nil || !strings.Contains(err.Error(), "has no boot image, which the registry's token service runs (registry.auth.mode token)") {
		t.Errorf("mode token, bundle without boot's image: %v", err)
	}
	inv.Registry.Auth.Mode = inventory.AuthHtpasswd
	if v, err := BundleImageValues(inv, DefaultRegistryRelease); err != nil || v["maintenance"] != nil {
		t.Errorf("mode htpasswd, bundle without boot's image: %v %v, want no maintenance image", v["maintenance"], err)
	}
	inv.Packages.Bundle = dir

	inv.Cluster.ImageRepository = ""
	if _, err := BundleImageValues(inv, DefaultRegistryRelease); err == nil || !strings.Contains(err.Error(), "cluster.imageRepository") {
		t.Errorf("no image repository: %v", err)
	}
	inv.Packages.Source = inventory.SourceOnline
	if v, err := BundleImageValues(inv, DefaultRegistryRelease); v != nil || err != nil {
		t.Errorf("online: %v %v, want nothing", v, err)
	}
}

// TestRegistryMaintenanceImageOnline: online, the maintenance jobs' image is
// registry.maintenance.image, run by its digest; without it neither the gc
// nor the prune CronJob is installed (rather than one pulling boot's image
// by a tag from the registry it maintains). A reference that is not pinned
// is refused naming the field.
func TestRegistryMaintenanceImageOnline(t *testing.T) {
	enabled, days := true, 7
	r := inventory.Registry{Host: "registry.example.com", Issuer: inventory.IssuerSelfSigned, Auth: inventory.RegistryAuth{Mode: inventory.AuthHtpasswd},
		Storage: inventory.Storage{Type: inventory.StoragePVC, Size: "1Gi"}, Replicas: 1,
		Pruner: inventory.Pruner{Enabled: &enabled, Rules: []inventory.PruneRule{{KeepDays: &days}}}}
	render := func(r inventory.Registry) rendered {
		t.Helper()
		values, err := RegistryValues(r)
		if err != nil {
			t.Fatal(err)
		}
		out, err := RenderRegistry(RenderOptions{Values: values})
		if err != nil {
			t.Fatal(err)
		}
		return decodeManifests(t, out)
	}
	for _, name := range render(r).names() {
		if strings.HasPrefix(name, "CronJob/") || strings.HasSuffix(name, "-gc") {
			t.Errorf("without registry.maintenance.image the chart renders %s", name)
		}
	}
	r.Maintenance.Image = testMaintenanceRepository + ":v1.2.3@" + testMaintenanceDigest
	objs := render(r)
	for _, cj := range []string{"CronJob/registry-gc", "CronJob/registry-prune"} {
		if got := get[*batchv1.CronJob](t, objs, cj).Spec.JobTemplate.Spec.Template.Spec.Containers[0].Image; got != pinnedMaintenanceImage {
			t.Errorf("%s runs %s, want %s", cj, got, pinnedMaintenanceImage)
		}
	}
	r.Maintenance.Image = testMaintenanceRepository + ":v1.2.3"
	if _, err := RegistryValues(r); err == nil || !strings.HasPrefix(err.Error(), "registry.maintenance.image: ") || !strings.Contains(err.Error(), "not pinned by a digest") {
		t.Errorf("a tag-only image: %v", err)
	}
}

// TestRegistryChartDefaultImageIsBundled: the chart's default registry image
// (values image.repository:tag, and Chart.yaml's appVersion) is the one the
// bundle builds, as the real bundle's manifest names it. Online installs thus
// run the same distribution release the offline ones do.
func TestRegistryChartDefaultImageIsBundled(t *testing.T) {
	m, err := bundle.ReadManifest(testenv.BundleDir(t))
	if err != nil {
		t.Fatal(err)
	}
	var bundled string
	for _, img := range m.Images {
		if img.Component == "registry" {
			bundled = img.Name
		}
	}
	if bundled == "" {
		t.Fatal("the bundle's manifest names no registry image")
	}
	c, err := RegistryChart()
	if err != nil {
		t.Fatal(err)
	}
	img := c.Values["image"].(map[string]any)
	if got := img["repository"].(string) + ":" + img["tag"].(string); got != bundled {
		t.Errorf("chart default image %s, the bundle builds %s", got, bundled)
	}
	if _, tag, _ := strings.Cut(bundled, ":"); c.Metadata.AppVersion != tag {
		t.Errorf("Chart.yaml appVersion %q, the bundle builds %s", c.Metadata.AppVersion, tag)
	}
}
