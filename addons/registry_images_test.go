package addons

import (
	"strings"
	"testing"

	"github.com/bootctl/boot/bundle"
	"github.com/bootctl/boot/internal/testenv"
	"github.com/bootctl/boot/inventory"
)

// TestRegistryImageValues: with packages from a bundle, the registry and
// Redis run the bundle's images from cluster.imageRepository, under the
// names the bundle's manifest gives them; online, the chart's stay.
func TestRegistryImageValues(t *testing.T) {
	dir := testenv.BundleDir(t)
	inv := &inventory.Inventory{
		Cluster:  inventory.Cluster{ImageRepository: "172.29.40.2:5000"},
		Packages: inventory.Packages{Source: inventory.SourceBundle, Bundle: dir},
	}
	v, err := BundleImageValues(inv, DefaultRegistryRelease)
	if err != nil {
		t.Fatal(err)
	}
	reg := v["image"].(map[string]any)
	redis := v["redis"].(map[string]any)["image"].(map[string]any)
	if reg["repository"] != "172.29.40.2:5000/library/registry" || !strings.HasPrefix(reg["tag"].(string), "3.1.") {
		t.Errorf("registry image %v", reg)
	}
	if redis["repository"] != "172.29.40.2:5000/library/redis" || !strings.HasSuffix(redis["tag"].(string), "-debian") {
		t.Errorf("redis image %v", redis)
	}
	boot := v["maintenance"].(map[string]any)["image"].(map[string]any)
	if boot["repository"] != "172.29.40.2:5000/bootctl/boot" || boot["tag"] == "" {
		t.Errorf("boot image %v", boot)
	}
	// The chart accepts them (its schema refuses registries older than 3.1).
	values, err := RegistryValues(inventory.Registry{Host: "registry.lab.test", Issuer: "selfsigned",
		Storage: inventory.Storage{Type: inventory.StoragePVC, Size: "1Gi"}})
	if err != nil {
		t.Fatal(err)
	}
	values["image"] = reg
	values["redis"].(map[string]any)["image"] = redis
	values["maintenance"].(map[string]any)["image"] = boot
	out, err := RenderRegistry(RenderOptions{Values: values})
	if err != nil {
		t.Fatalf("the chart refuses the bundle's images: %v", err)
	}
	all := strings.Join([]string{out["registry/templates/deployment.yaml"], out["registry/templates/redis.yaml"], out["registry/templates/gc.yaml"]}, "\n")
	for _, img := range []string{"172.29.40.2:5000/library/registry:" + reg["tag"].(string), "172.29.40.2:5000/library/redis:" + redis["tag"].(string),
		"172.29.40.2:5000/bootctl/boot:" + boot["tag"].(string)} {
		if !strings.Contains(all, img) {
			t.Errorf("the rendered manifests do not run %s", img)
		}
	}

	inv.Cluster.ImageRepository = ""
	if _, err := BundleImageValues(inv, DefaultRegistryRelease); err == nil || !strings.Contains(err.Error(), "cluster.imageRepository") {
		t.Errorf("no image repository: %v", err)
	}
	inv.Packages.Source = inventory.SourceOnline
	if v, err := BundleImageValues(inv, DefaultRegistryRelease); v != nil || err != nil {
		t.Errorf("online: %v %v, want nothing", v, err)
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
