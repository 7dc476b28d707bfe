package bundle

import (
	"bytes"
	"context"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/mod/modfile"
)

// Traefik, the ingress controller that reads ingress-nginx's Ingresses
// (its kubernetesIngressNGINX provider), built from the module proxy.
const (
	traefikModule  = "github.com/traefik/traefik/v3"
	traefikVersion = "v3.7.13"
	traefikImage   = "docker.io/library/traefik:" + traefikVersion
	// traefikUser is the user and group the Traefik chart runs as
	// (podSecurityContext runAsUser/runAsGroup, with runAsNonRoot).
	traefikUser = "65532:65532"
	traefikBin  = "usr/local/bin/traefik"
)

// The modules Traefik needs that the module proxy does not serve as asked.
const (
	// traefikExtModule is Traefik's dynamic configuration extension, a
	// folder of its repository (replace => ./pkg/config/dynamic/ext) that
	// is not published.
	traefikExtModule = "github.com/traefik/traefik/dynamic/ext"
	// legoModule is the ACME library; its list of DNS providers imports
	// SDKs the module proxy refuses.
	legoModule = "github.com/go-acme/lego/v5"
	// httpAuthModule is replaced by Traefik (since v3.7.11) with its fork
	// github.com/containous/go-http-auth at b975dcaa8c48, which the proxy
	// refuses (as it refuses the fork's version list); httpAuthFork at
	// httpAuthForkVersion, what Traefik v3.6 uses, is served, has the API
	// Traefik calls, and its go.mod names httpAuthModule. Whatever the
	// newer commit changed is missing.
	httpAuthModule      = "github.com/abbot/go-http-auth"
	httpAuthFork        = "github.com/containous/go-http-auth"
	httpAuthForkVersion = "v0.4.1-0.20200324110947-a37a7636d23e"
)

// legoProvidersFile lists lego's DNS providers by name.
const legoProvidersFile = "providers/dns/zz_gen_dns_providers.go"

// legoDropped are the DNS providers left out of lego's list, each with the
// SDK module (at the version lego asks) the module proxy refuses.
var legoDropped = map[string]string{
	"edgedns":     "github.com/akamai/AkamaiOPEN-edgegrid-golang/v13",
	"huaweicloud": "github.com/huaweicloud/huaweicloud-sdk-go-v3",
	"oraclecloud": "github.com/nrdcg/oci-go-sdk/common/v1065",
	"sakuracloud": "github.com/sacloud/sacloud-sdk-go",
	"ucloud":      "github.com/ucloud/ucloud-sdk-go",
	"yandexcloud": "github.com/yandex-cloud/go-sdk/services/dns",
}

// traefikComponent builds Traefik's one binary with the version stamps of
// its own build (Makefile: Version and Codename). It needs no pins: the
// three modules the proxy does not serve as asked are sources.
func traefikComponent() goComponent {
	return goComponent{
		name: "traefik", module: traefikModule, version: traefikVersion,
		bins: []goBinary{{pkg: traefikModule + "/cmd/traefik", name: "traefik"}},
		ldflags: []string{
			"-X", traefikModule + "/pkg/version.Version=" + traefikVersion,
			"-X", traefikModule + "/pkg/version.Codename=cheddar",
		},
		sources: []localModule{
			{path: traefikExtModule, dir: "traefik-dynamic-ext", fill: writeTraefikExt},
			{path: legoModule, dir: "lego", fill: copyTrimmedLego},
			{path: httpAuthModule, dir: "go-http-auth", fill: copyHTTPAuthFork},
		},
	}
}

// writeTraefikExt writes a stand-in for Traefik's dynamic configuration
// extension: the two types Traefik embeds (inline) in its HTTP
// configuration and routers, without fields, as in Traefik's own
// repository.
func writeTraefikExt(_ context.Context, dst string) error {
	gomod := "module " + traefikExtModule + "\n\ngo 1.22\n"
	src := `// Package ext stands in for Traefik's dynamic configuration extension,
// which the module proxy does not serve.
package ext

// HTTP extends Traefik's HTTP configuration; it adds nothing.
type HTTP struct{}

// Router extends Traefik's HTTP routers; it adds nothing.
type Router struct{}
`
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dst, "go.mod"), []byte(gomod), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dst, "ext.go"), []byte(src), 0o644)
}

// copyTrimmedLego copies lego at the version Traefik requires from the
// module cache into dst and removes the providers of legoDropped from its
// list of DNS providers; nothing else changes.
func copyTrimmedLego(ctx context.Context, dst string) error {
	up, err := upstreamGoMod(ctx, traefikModule, traefikVersion)
	if err != nil {
		return err
	}
	f, err := modfile.ParseLax(traefikModule+"@"+traefikVersion+"/go.mod", up, nil)
	if err != nil {
		return err
	}
	version := ""
	for _, r := range f.Require {
		if r.Mod.Path == legoModule {
			version = r.Mod.Version
		}
	}
	if version == "" {
		return fmt.Errorf("%s@%s/go.mod: requires no %s", traefikModule, traefikVersion, legoModule)
	}
	if err := copyModule(ctx, legoModule, version, dst); err != nil {
		return err
	}
	p := filepath.Join(dst, filepath.FromSlash(legoProvidersFile))
	src, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	out, err := trimProviders(legoModule+"@"+version+"/"+legoProvidersFile, src, legoDropped)
	if err != nil {
		return err
	}
	return os.WriteFile(p, out, 0o644)
}

// copyHTTPAuthFork copies Traefik's go-http-auth fork, at the version the
// module proxy serves, from the module cache into dst.
func copyHTTPAuthFork(ctx context.Context, dst string) error {
	if err := copyModule(ctx, httpAuthFork, httpAuthForkVersion, dst); err != nil {
		return err
	}
	data, err := os.ReadFile(filepath.Join(dst, "go.mod"))
	if err != nil {
		return err
	}
	if got := modfile.ModulePath(data); got != httpAuthModule {
		return fmt.Errorf("%s@%s/go.mod: module %q, want %s", httpAuthFork, httpAuthForkVersion, got, httpAuthModule)
	}
	return nil
}

// copyModule copies module@version from the module cache (downloading it
// from the module proxy if needed) into dst, which it replaces, with
// writable files.
func copyModule(ctx context.Context, module, version, dst string) error {
	dir, _, err := downloadModule(ctx, module, version)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(dst); err != nil {
		return err
	}
	if err := os.CopyFS(dst, os.DirFS(dir)); err != nil {
		return fmt.Errorf("%s@%s: %w", module, version, err)
	}
	return filepath.WalkDir(dst, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		return os.Chmod(p, 0o644)
	})
}

// trimProviders removes from lego's generated list of DNS providers (the
// Go file src, named name in errors) the import of each provider in drop
// and the switch cases that return it. Each provider must be there.
func trimProviders(name string, src []byte, drop map[string]string) ([]byte, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.ParseComments)
	if err != nil {
		return nil, err
	}
	found := map[string]bool{}
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.IMPORT {
			continue
		}
		var keep []ast.Spec
		for _, s := range gd.Specs {
			is := s.(*ast.ImportSpec)
			path, err := strconv.Unquote(is.Path.Value)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", fset.Position(is.Pos()), err)
			}
			if p, ok := strings.CutPrefix(path, legoModule+"/providers/dns/"); ok && drop[p] != "" {
				if is.Name != nil {
					return nil, fmt.Errorf("%s: import of %s is renamed", fset.Position(is.Pos()), path)
				}
				found[p] = true
				continue
			}
			keep = append(keep, s)
		}
		gd.Specs = keep
	}
	cases := map[string]int{}
	ast.Inspect(f, func(n ast.Node) bool {
		sw, ok := n.(*ast.SwitchStmt)
		if !ok {
			return true
		}
		var keep []ast.Stmt
		for _, st := range sw.Body.List {
			if p := usesPackage(st, drop); p != "" {
				cases[p]++
				continue
			}
			keep = append(keep, st)
		}
		sw.Body.List = keep
		return true
	})
	var missing []string
	for p := range drop {
		if !found[p] || cases[p] == 0 {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("%s: no import and case for DNS provider %v", name, missing)
	}
	// Comments would keep the removed lines' positions: the file has none
	// but its header, which stays first.
	var buf bytes.Buffer
	if err := format.Node(&buf, fset, f); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return buf.Bytes(), nil
}

// usesPackage returns the package of drop that the switch case st refers
// to (as pkg.Name), or "".
func usesPackage(st ast.Stmt, drop map[string]string) string {
	var pkg string
	ast.Inspect(st, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if id, ok := sel.X.(*ast.Ident); ok && drop[id.Name] != "" {
				pkg = id.Name
			}
		}
		return pkg == ""
	})
	return pkg
}

// traefikImageSpec is Traefik's image under the name the Traefik chart asks
// for (registry docker.io, repository traefik; RepoTag traefik:<version>
// for cluster.imageRepository as the chart's image.registry): Debian's CA
// certificates and the binary at /usr/local/bin/traefik, its entrypoint
// (the chart gives only arguments), running as the chart's numeric
// non-root user.
func traefikImageSpec(b *builder, bin string, ca []byte) (imageSpec, error) {
	certs, err := b.makeLayer([]layerFile{{path: caBundlePath, data: ca, mode: 0o644}})
	if err != nil {
		return imageSpec{}, err
	}
	l, err := b.makeLayer([]layerFile{{path: traefikBin, src: bin, mode: 0o755}})
	if err != nil {
		return imageSpec{}, err
	}
	return imageSpec{
		name: traefikImage, repoTag: "traefik:" + traefikVersion, file: "traefik.tar",
		component: "traefik", version: traefikVersion, layers: []layer{certs, l},
		entrypoint: []string{"/" + traefikBin},
		user:       traefikUser,
	}, nil
}
