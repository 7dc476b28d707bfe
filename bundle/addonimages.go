package bundle

import (
	"fmt"
	"regexp"
	"strings"
)

// Where the registry add-on's images put things.
const (
	registryBinary = "bin/registry"
	registryConfig = "etc/distribution/config.yml"
	redisServer    = "usr/bin/redis-server"
)

// registryImageSpec is the CNCF distribution registry's image, named as
// upstream's: the binary at /bin/registry, the CA certificates, and a
// default configuration in /etc/distribution (which the registry chart
// mounts over). As in upstream's image the default command serves that
// configuration; the registry reads no configuration unless given one
// (an argument or REGISTRY_CONFIGURATION_PATH).
func registryImageSpec(b *builder, bin string, ca []byte) (imageSpec, error) {
	cfg, err := files.ReadFile("files/registry-config.yml")
	if err != nil {
		return imageSpec{}, err
	}
	certs, err := b.makeLayer([]layerFile{{path: caBundlePath, data: ca, mode: 0o644}})
	if err != nil {
		return imageSpec{}, err
	}
	reg, err := b.makeLayer([]layerFile{
		{path: registryBinary, src: bin, mode: 0o755},
		{path: registryConfig, data: cfg, mode: 0o644},
		{path: "var/lib/registry", dir: true, mode: 0o755},
	})
	if err != nil {
		return imageSpec{}, err
	}
	tag := strings.TrimPrefix(registryVersion, "v")
	return imageSpec{
		name: "docker.io/library/registry:" + tag, repoTag: "library/registry:" + tag, file: "registry.tar",
		component: "registry", version: registryVersion, layers: []layer{certs, reg},
		entrypoint: []string{"/" + registryBinary},
		cmd:        []string{"serve", "/" + registryConfig},
	}, nil
}

// redisImageSpec is Redis from Debian's packages (the layer of redisSet)
// at Debian version version, tagged with its upstream version, e.g.
// docker.io/library/redis:7.0.15-debian.
func redisImageSpec(l layer, version string) (imageSpec, error) {
	up := debianUpstreamVersion(version)
	if up == "" {
		return imageSpec{}, fmt.Errorf("redis-server version %q: no upstream version in it", version)
	}
	tag := up + "-debian"
	return imageSpec{
		name: "docker.io/library/redis:" + tag, repoTag: "library/redis:" + tag, file: "redis.tar",
		component: "redis", version: version, layers: []layer{l},
		entrypoint: []string{"/" + redisServer},
		workingDir: "/data",
	}, nil
}

// debianUpstreamVersion is the upstream part of a Debian version: without
// the epoch ("5:") and the Debian revision ("-1~deb12u10").
func debianUpstreamVersion(v string) string {
	if _, after, ok := strings.Cut(v, ":"); ok {
		v = after
	}
	if i := strings.LastIndex(v, "-"); i >= 0 {
		v = v[:i]
	}
	return v
}

// bootTagRe keeps what an image tag allows of boot's version.
var bootTagRe = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// bootImageSpec packs the boot executable bin (version version) with
// Debian's CA certificates as docker.io/bootctl/boot:<version>, the image
// the registry chart's prune and gc jobs run (command "boot" on PATH).
func bootImageSpec(b *builder, bin, version string, ca []byte) (imageSpec, error) {
	if version == "" {
		return imageSpec{}, fmt.Errorf("boot image: no version given")
	}
	tag := bootTagRe.ReplaceAllString(version, "_")
	if len(tag) > 128 {
		tag = tag[:128]
	}
	l, err := b.makeLayer([]layerFile{
		{path: caBundlePath, data: ca, mode: 0o644},
		{path: "usr/local/bin/boot", src: bin, mode: 0o755},
	})
	if err != nil {
		return imageSpec{}, err
	}
	return imageSpec{
		name: "docker.io/bootctl/boot:" + tag, repoTag: "bootctl/boot:" + tag, file: "boot.tar",
		component: "boot", version: version, layers: []layer{l},
		entrypoint: []string{"/usr/local/bin/boot"},
	}, nil
}
