package lab

import (
	"fmt"
	"path/filepath"
	"strings"

	"helm.sh/helm/v3/pkg/chart/loader"

	"github.com/bootctl/boot/addons"
	"github.com/bootctl/boot/bootstrap"
	"github.com/bootctl/boot/bundle"
)

// onlineAliases are the names, besides its own, under which the lab
// registry serves each bundle image (by RepoTag), so that an online node
// pulling the upstream name through cluster.registryMirrors finds it:
//
//   - kubeadm asks registry.k8s.io for coredns/coredns:<tag> (the bundle
//     names it coredns:<tag>, as kubeadm asks another image repository);
//   - boot's online flannel manifest asks ghcr.io for the CNI plugin at
//     upstream's tag;
//   - the registry chart's Redis and Traefik's chart ask docker.io for their
//     default tags (redis:7.4.2-alpine, traefik:<the chart's appVersion>).
//
// Where the upstream tag is another version than the bundle builds (the
// flannel plugin, Redis, Traefik), the bundle's image stands in for it: the
// lab has no other, and it does the same job (the same command line and
// ports); what the lab proves online is the path, not those versions.
func onlineAliases(b *bundle.Bundle) (map[string][]string, error) {
	byComponent := map[string]string{}
	for _, img := range b.Manifest.Images {
		byComponent[img.Component] = img.RepoTag
	}
	out := map[string][]string{}
	add := func(component, name string) {
		name = strings.TrimPrefix(name, "docker.io/")
		if repo, _, _ := strings.Cut(name, ":"); !strings.Contains(repo, "/") {
			name = "library/" + name // Docker Hub's official images, as containerd asks for them
		}
		if rt, ok := byComponent[component]; ok && rt != name {
			out[rt] = append(out[rt], name)
		}
	}
	if rt, ok := byComponent["coredns"]; ok {
		add("coredns", "coredns/"+rt)
	}
	add("flannel-cni-plugin", bootstrap.FlannelPluginImage)
	registry, err := addons.RegistryChart()
	if err != nil {
		return nil, err
	}
	if img, ok := chartImage(registry.Values, "redis", "image"); ok {
		add("redis", img)
	}
	if c, ok := b.Manifest.Chart("traefik"); ok {
		ch, err := loader.Load(filepath.Join(b.Dir, c.Path))
		if err != nil {
			return nil, fmt.Errorf("bundle chart %s: %w", c.Path, err)
		}
		// Its image values are empty: the templates default to
		// docker.io/traefik at the chart's appVersion.
		add("traefik", "traefik:"+ch.Metadata.AppVersion)
	}
	return out, nil
}

// chartImage reads repository:tag (the tag optional) from the values' map
// at path.
func chartImage(values map[string]any, path ...string) (string, bool) {
	m := values
	for _, p := range path {
		next, ok := m[p].(map[string]any)
		if !ok {
			return "", false
		}
		m = next
	}
	repo, _ := m["repository"].(string)
	if repo == "" {
		return "", false
	}
	if tag, _ := m["tag"].(string); tag != "" {
		repo += ":" + tag
	}
	return repo, true
}
