package lab

import (
	"strings"
	"testing"

	"github.com/bootctl/boot/bootstrap"
	"github.com/bootctl/boot/bundle"
	"github.com/bootctl/boot/internal/testenv"
)

// TestOnlineAliases reads the built bundle: the names online nodes ask
// upstream registries for (kubeadm's coredns, boot's flannel plugin, the
// registry chart's Redis and Traefik's chart default, Docker Hub's official
// images under library/) lead to the bundle's images.
func TestOnlineAliases(t *testing.T) {
	b, err := bundle.Open(testenv.BundleDir(t))
	if err != nil {
		t.Fatal(err)
	}
	aliases, err := onlineAliases(b)
	if err != nil {
		t.Fatal(err)
	}
	byComponent := map[string]string{}
	for _, img := range b.Manifest.Images {
		byComponent[img.Component] = img.RepoTag
	}
	want := map[string]string{
		"coredns":            "coredns/" + byComponent["coredns"],
		"flannel-cni-plugin": bootstrap.FlannelPluginImage,
		"redis":              "library/redis:7.4.2-alpine",
		"traefik":            "library/traefik:v3.",
	}
	for component, name := range want {
		got := aliases[byComponent[component]]
		if len(got) != 1 || !strings.HasPrefix(got[0], name) {
			t.Errorf("%s (%s): aliases %v, want %s", component, byComponent[component], got, name)
		}
	}
	if len(aliases) != len(want) {
		t.Errorf("aliases = %v, want only %v's", aliases, want)
	}
}
