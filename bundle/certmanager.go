package bundle

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/mod/modfile"
)

// cert-manager, built from its release archive's commands and the root
// module from the module proxy.
const (
	certManagerModule  = "github.com/cert-manager/cert-manager"
	certManagerVersion = "v1.21.1"
	// certManagerUser is the user and group of upstream's images (the
	// chart sets runAsNonRoot, which needs a numeric user).
	certManagerUser = "1000:1000"
)

// certManagerCommands are cert-manager's five commands: each the folder
// cmd/<name> of the release archive and its own module
// github.com/cert-manager/cert-manager/<name>-binary, never published.
var certManagerCommands = []string{"controller", "webhook", "cainjector", "acmesolver", "startupapicheck"}

// certManagerComponent builds cert-manager's commands with the version
// stamps of upstream's release build.
func certManagerComponent(u *Upstream) (goComponent, error) {
	a, _, err := u.archive(certManagerArchive)
	if err != nil {
		return goComponent{}, err
	}
	if a.tag != certManagerVersion {
		return goComponent{}, fmt.Errorf("upstream archive %s is of %s, want %s", a.file, a.tag, certManagerVersion)
	}
	c := goComponent{
		name: "cert-manager", module: certManagerModule, version: certManagerVersion,
		// v5.13.7, which cert-manager asks for, is not served by the module
		// proxy; v5.13.9 is and compiles with it.
		pins: map[string]string{"github.com/Venafi/vcert/v5": "v5.13.9"},
		ldflags: []string{
			"-X", certManagerModule + "/pkg/util.AppVersion=" + certManagerVersion,
			"-X", certManagerModule + "/pkg/util.AppGitCommit=" + a.commit,
		},
	}
	for _, name := range certManagerCommands {
		mod := certManagerModule + "/" + name + "-binary"
		c.sources = append(c.sources, localModule{path: mod, dir: "src/" + name, fill: func(_ context.Context, dst string) error {
			return u.certManagerCommand(name, dst)
		}})
		c.bins = append(c.bins, goBinary{pkg: mod, name: "cert-manager-" + name})
	}
	return c, nil
}

// certManagerCommand writes command name's module from the release archive
// into dst, its go.mod requiring the root module at certManagerVersion
// instead of replacing it by the repository's root folder (../../).
func (u *Upstream) certManagerCommand(name, dst string) error {
	if err := u.extract(certManagerArchive, "cmd/"+name, dst); err != nil {
		return err
	}
	p := filepath.Join(dst, "go.mod")
	data, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	f, err := modfile.Parse("cmd/"+name+"/go.mod", data, nil)
	if err != nil {
		return err
	}
	if err := f.DropReplace(certManagerModule, ""); err != nil {
		return err
	}
	if err := f.AddRequire(certManagerModule, certManagerVersion); err != nil {
		return err
	}
	f.Cleanup()
	out, err := f.Format()
	if err != nil {
		return err
	}
	return os.WriteFile(p, out, 0o644)
}

// certManagerImageSpecs are cert-manager's five images, named as its chart
// asks (quay.io/jetstack/cert-manager-<command>:<version>): the command at
// /app/cmd/<command>/<command> as in upstream's images, the licenses in
// /licenses, and Debian's CA certificates (the controller talks to ACME
// servers); user 1000:1000. built maps the binaries' names
// (cert-manager-<command>) to their files.
func certManagerImageSpecs(b *builder, u *Upstream, built map[string]string, ca []byte) ([]imageSpec, error) {
	license, err := u.readFile(certManagerArchive, "LICENSE")
	if err != nil {
		return nil, err
	}
	certs, err := b.makeLayer([]layerFile{{path: caBundlePath, data: ca, mode: 0o644}})
	if err != nil {
		return nil, err
	}
	var specs []imageSpec
	for _, name := range certManagerCommands {
		repo := "cert-manager-" + name
		notices, err := u.readFile(certManagerArchive, "cmd/"+name+"/LICENSES")
		if err != nil {
			return nil, err
		}
		bin := "app/cmd/" + name + "/" + name
		l, err := b.makeLayer([]layerFile{
			{path: bin, src: built[repo], mode: 0o755},
			{path: "licenses/LICENSE", data: license, mode: 0o644},
			{path: "licenses/LICENSES", data: notices, mode: 0o644},
		})
		if err != nil {
			return nil, err
		}
		specs = append(specs, imageSpec{
			name: "quay.io/jetstack/" + repo + ":" + certManagerVersion, repoTag: "jetstack/" + repo + ":" + certManagerVersion,
			file: repo + ".tar", component: repo, version: certManagerVersion,
			layers: []layer{certs, l}, entrypoint: []string{"/" + bin}, user: certManagerUser,
		})
	}
	return specs, nil
}
