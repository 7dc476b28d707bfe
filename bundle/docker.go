package bundle

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Docker Engine: dockerd and docker-proxy from Moby's module, the docker
// CLI, and Debian's static tini as docker-init.
const (
	mobyModule  = "github.com/moby/moby/v2"
	mobyVersion = "v2.0.0-beta.24"
	// dockerVersion is the Docker release mobyVersion and
	// dockerCLIVersion are, as `docker version` prints it.
	dockerVersion    = "29.8.1"
	dockerCLIModule  = "github.com/docker/cli"
	dockerCLIVersion = "v" + dockerVersion + "+incompatible"
	// dockerCLIDir is the folder of the generated module the CLI's module
	// is built from.
	dockerCLIDir = "src/cli"
	// tiniPackage is Debian's package of tini; its static build is
	// tiniStatic, installed as docker-init (dockerd's --init process).
	tiniPackage = "tini"
	tiniStatic  = "usr/bin/tini-static"
)

// dockerStaticTags are the build tags of Docker's static release binaries
// (hack/make/.binary, scripts/build/binary): the pure Go resolver and user
// lookup, and static_build.
var dockerStaticTags = []string{"netgo", "osusergo", "static_build"}

// dockerComponents build dockerd and docker-proxy, and the docker CLI,
// stamped as Docker's own build does (dockerversion.Version and GitCommit,
// cli/version.Version and GitCommit) so that `docker version` shows
// dockerVersion. The module proxy does not tell the commit of a release, so
// GitCommit names the module version built.
func dockerComponents() []goComponent {
	return []goComponent{
		{
			name: "moby", module: mobyModule, version: mobyVersion,
			bins: []goBinary{
				{pkg: mobyModule + "/cmd/dockerd", name: "dockerd", dest: "bin"},
				{pkg: mobyModule + "/cmd/docker-proxy", name: "docker-proxy", dest: "bin"},
			},
			tags: dockerStaticTags,
			ldflags: []string{
				"-X", mobyModule + "/dockerversion.Version=" + dockerVersion,
				"-X", mobyModule + "/dockerversion.GitCommit=" + mobyVersion,
			},
		},
		{
			// The CLI's repository has no go.mod (it is versioned by
			// date, not semver): its requirements are in vendor.mod and
			// vendor.sum, which become the go.mod and go.sum of a copy
			// built from a folder of the generated module.
			name: "docker-cli", module: dockerCLIModule, version: dockerCLIVersion, modFile: "vendor.mod",
			bins: []goBinary{{pkg: dockerCLIModule + "/cmd/docker", name: "docker", dest: "bin"}},
			tags: dockerStaticTags,
			ldflags: []string{
				"-X", dockerCLIModule + "/cli/version.Version=" + dockerVersion,
				"-X", dockerCLIModule + "/cli/version.GitCommit=" + dockerCLIVersion,
			},
			sources: []localModule{{path: dockerCLIModule, dir: dockerCLIDir, fill: func(ctx context.Context, dst string) error {
				if err := copyModule(ctx, dockerCLIModule, dockerCLIVersion, dst); err != nil {
					return err
				}
				return useVendorMod(dst)
			}}},
		},
	}
}

// useVendorMod makes the module folder dir, a copy of a module that keeps
// its requirements in vendor.mod and vendor.sum instead of go.mod and go.sum,
// buildable as a module: vendor.mod becomes go.mod, vendor.sum go.sum, and
// the vendor folder is removed (the generated module resolves the
// requirements from the module proxy). dir must hold vendor.mod and no
// go.mod.
func useVendorMod(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
		return fmt.Errorf("%s: holds a go.mod beside vendor.mod", dir)
	}
	if err := os.Rename(filepath.Join(dir, "vendor.mod"), filepath.Join(dir, "go.mod")); err != nil {
		return fmt.Errorf("%s: no vendor.mod to use as go.mod: %w", dir, err)
	}
	err := os.Rename(filepath.Join(dir, "vendor.sum"), filepath.Join(dir, "go.sum"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return os.RemoveAll(filepath.Join(dir, "vendor"))
}

// tiniBinary unpacks Debian's static tini (tiniPackage, at the version apt
// would install) into the cache and returns its path and the package's
// version.
func (b *builder) tiniBinary(ctx context.Context) (path, version string, err error) {
	start := time.Now()
	versions, err := candidateVersions(ctx, []string{tiniPackage})
	if err != nil {
		return "", "", err
	}
	version = versions[tiniPackage]
	dir := filepath.Join(b.cache, "debian", "files", tiniPackage+"_"+version)
	key := keyOf(tiniPackage, version, tiniStatic)
	if cached(dir, key) {
		fmt.Fprintf(b.log, "bundle: %s %s: cached\n", tiniPackage, version)
		return filepath.Join(dir, "docker-init"), version, nil
	}
	root, err := b.unpackDebs(ctx, []string{tiniPackage}, versions)
	if err != nil {
		return "", "", err
	}
	defer os.RemoveAll(root)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	src := filepath.Join(root, filepath.FromSlash(tiniStatic))
	if err := copyFile(filepath.Join(dir, "docker-init"), src, 0o755); err != nil {
		return "", "", fmt.Errorf("debian package %s %s: %w", tiniPackage, version, err)
	}
	if err := writeStamp(dir, key, []string{"docker-init"}); err != nil {
		return "", "", err
	}
	fmt.Fprintf(b.log, "bundle: %s %s: unpacked in %s\n", tiniPackage, version, time.Since(start).Round(time.Millisecond))
	return filepath.Join(dir, "docker-init"), version, nil
}
