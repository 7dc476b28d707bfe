package bundle

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/modfile"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"

	"github.com/bootctl/boot/internal/testenv"
)

// The stub of Traefik's dynamic/ext compiles as Traefik uses it: both
// types embedded in a struct, adding no fields.
func TestTraefikExtStub(t *testing.T) {
	dir := t.TempDir()
	ext := filepath.Join(dir, "ext")
	if err := writeTraefikExt(context.Background(), ext); err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile(filepath.Join(ext, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if got := modfile.ModulePath(gomod); got != traefikExtModule {
		t.Errorf("stub module %q, want %s", got, traefikExtModule)
	}
	use := filepath.Join(dir, "use")
	if err := os.MkdirAll(use, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"go.mod": "module example.com/use\n\ngo 1.22\n\nrequire " + traefikExtModule + " " + localModuleVersion +
			"\n\nreplace " + traefikExtModule + " => ../ext\n",
		"main.go": `package main

import (
	"fmt"
	"unsafe"

	"` + traefikExtModule + `"
)

type config struct {
	ext.HTTP ` + "`yaml:\",inline\"`" + `
	Routers  map[string]*router
}

type router struct {
	ext.Router ` + "`yaml:\",inline\"`" + `
	Rule string
}

func main() {
	c := config{Routers: map[string]*router{"r": {Rule: "Host(x)"}}}
	d := c
	d.HTTP = c.HTTP
	fmt.Println(unsafe.Sizeof(ext.HTTP{}), unsafe.Sizeof(ext.Router{}), d.Routers["r"].Rule)
}
`,
	}
	for n, data := range files {
		if err := os.WriteFile(filepath.Join(use, n), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", "run", ".")
	cmd.Dir = use
	cmd.Env = append(goEnv(false), "GOPROXY=off")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go run with the stub: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "0 0 Host(x)" {
		t.Errorf("program using the stub printed %q, want the sizes 0 0 and the rule", got)
	}
}

// proxyTest skips the test under -short, as it downloads what from the
// module proxy, and returns a context that ends after d or with the test.
func proxyTest(t *testing.T, what string, d time.Duration) context.Context {
	t.Helper()
	if testing.Short() {
		t.Skip("downloads " + what + " from the module proxy")
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// moduleDir returns the folder of module@version in the module cache,
// downloading it from the module proxy if needed.
func moduleDir(t *testing.T, ctx context.Context, module, version string) string {
	t.Helper()
	info, err := output(ctx, "", goEnv(false), "go", "mod", "download", "-json", module+"@"+version)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := jsonField(info, "Dir")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// providerList returns the provider packages a lego providers file imports
// and the names its switch accepts.
func providerList(t *testing.T, src []byte) (imports, names map[string]bool) {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), legoProvidersFile, src, 0)
	if err != nil {
		t.Fatal(err)
	}
	imports, names = map[string]bool{}, map[string]bool{}
	for _, is := range f.Imports {
		p, _ := strconv.Unquote(is.Path.Value)
		if rest, ok := strings.CutPrefix(p, legoModule+"/providers/dns/"); ok {
			imports[rest] = true
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		if cc, ok := n.(*ast.CaseClause); ok {
			for _, e := range cc.List {
				if lit, ok := e.(*ast.BasicLit); ok {
					s, _ := strconv.Unquote(lit.Value)
					names[s] = true
				}
			}
		}
		return true
	})
	return imports, names
}

// The generated module builds Traefik with the three sources: upstream's
// replace of go-http-auth gives way to the fork's folder, its other forks
// stay, and the go.mod is valid as Go reads it.
func TestTraefikModule(t *testing.T) {
	ctx := proxyTest(t, "Traefik's go.mod", 2*time.Minute)
	c := traefikComponent()
	up, err := upstreamGoMod(ctx, c.module, c.version)
	if err != nil {
		t.Fatal(err)
	}
	seed, err := generateModule("boot.bundle/"+c.name, c.module, c.version, up, c.local, c.pins, c.sources, []string{c.bins[0].pkg})
	if err != nil {
		t.Fatal(err)
	}
	f, err := modfile.Parse("go.mod", seed, nil)
	if err != nil {
		t.Fatalf("generated go.mod: %v\n%s", err, seed)
	}
	required := map[string]bool{}
	for _, r := range f.Require {
		required[r.Mod.Path] = true
	}
	replaced := map[string]string{}
	for _, r := range f.Replace {
		replaced[r.Old.Path] = strings.TrimSpace(r.New.Path + " " + r.New.Version)
	}
	want := map[string]string{
		traefikExtModule:         "./traefik-dynamic-ext",
		legoModule:               "./lego",
		httpAuthModule:           "./go-http-auth",
		"github.com/gorilla/mux": "github.com/containous/mux v0.0.0-20250523120546-41b6ec3aed59",
	}
	for p, w := range want {
		if replaced[p] != w {
			t.Errorf("replace %s => %q, want %q", p, replaced[p], w)
		}
		if strings.HasPrefix(w, "./") && !required[p] {
			t.Errorf("source %s not required", p)
		}
	}
	if len(replaced) != len(want) {
		t.Errorf("replaces %v, want %v", replaced, want)
	}
}

// The lego copy is lego at the version Traefik asks, from the module cache,
// with the dropped providers gone from its list and nothing else changed.
func TestCopyTrimmedLego(t *testing.T) {
	ctx := proxyTest(t, "lego", 5*time.Minute)
	dst := filepath.Join(t.TempDir(), "lego")
	if err := copyTrimmedLego(ctx, dst); err != nil {
		t.Fatal(err)
	}
	// The original: lego at the version Traefik's go.mod requires.
	gomod, err := upstreamGoMod(ctx, traefikModule, traefikVersion)
	if err != nil {
		t.Fatal(err)
	}
	var version string
	for _, l := range strings.Split(string(gomod), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == legoModule {
			version = f[1]
		}
	}
	if version == "" {
		t.Fatalf("%s@%s requires no %s", traefikModule, traefikVersion, legoModule)
	}
	orig := moduleDir(t, ctx, legoModule, version)

	// Every file but the list is a byte-equal, writable copy.
	var origFiles, copied []string
	walk := func(root string, into *[]string) {
		err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			*into = append(*into, filepath.ToSlash(rel))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	walk(orig, &origFiles)
	walk(dst, &copied)
	sort.Strings(origFiles)
	sort.Strings(copied)
	if strings.Join(origFiles, "\n") != strings.Join(copied, "\n") {
		t.Fatalf("copy holds %d files, lego %d", len(copied), len(origFiles))
	}
	for _, rel := range []string{"go.mod", "go.sum", "providers/dns/route53/route53.go", "challenge/dns01/dns_challenge.go"} {
		a, err := os.ReadFile(filepath.Join(orig, rel))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dst, rel))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s changed in the copy", rel)
		}
	}
	if fi, err := os.Stat(filepath.Join(dst, "go.mod")); err != nil || fi.Mode().Perm()&0o200 == 0 {
		t.Errorf("copied go.mod not writable: %v %v", fi.Mode(), err)
	}

	before, err := os.ReadFile(filepath.Join(orig, legoProvidersFile))
	if err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(filepath.Join(dst, legoProvidersFile))
	if err != nil {
		t.Fatal(err)
	}
	if formatted, err := format.Source(after); err != nil || !bytes.Equal(formatted, after) {
		t.Errorf("trimmed list is not gofmt'ed Go: %v", err)
	}
	if !bytes.HasPrefix(after, []byte("// Code generated")) {
		t.Error("trimmed list lost its generated-code header")
	}
	impBefore, namesBefore := providerList(t, before)
	impAfter, namesAfter := providerList(t, after)
	for p := range legoDropped {
		if !impBefore[p] || !namesBefore[p] {
			t.Errorf("lego %s lists no provider %s", version, p)
		}
		if impAfter[p] || namesAfter[p] {
			t.Errorf("provider %s still in the trimmed list", p)
		}
		delete(impBefore, p)
		delete(namesBefore, p)
	}
	delete(namesBefore, "fastdns") // edgedns's other name
	if len(impAfter) != len(impBefore) || len(namesAfter) != len(namesBefore) {
		t.Errorf("trimmed list: %d imports, %d names; want %d and %d", len(impAfter), len(namesAfter), len(impBefore), len(namesBefore))
	}
	for _, keep := range []string{"route53", "exec", "manual", "cloudflare", "rfc2136"} {
		if !namesAfter[keep] {
			t.Errorf("provider %s missing from the trimmed list", keep)
		}
	}
}

// Each -X of the build names a string variable of Traefik's source: the
// linker ignores a -X whose variable does not exist.
func TestTraefikVersionStamps(t *testing.T) {
	ctx := proxyTest(t, "Traefik", 5*time.Minute)
	checkVersionStamps(t, moduleDir(t, ctx, traefikModule, traefikVersion), traefikModule, traefikComponent().ldflags, traefikVersion)
}

// checkVersionStamps checks that each -X of ldflags names a string
// variable of a package of module (its source in dir), and that a variable
// named Version is stamped version.
func checkVersionStamps(t *testing.T, dir, module string, ldflags []string, version string) {
	t.Helper()
	stamps := 0
	for i, f := range ldflags {
		if f != "-X" || i+1 == len(ldflags) {
			continue
		}
		sym, value, _ := strings.Cut(ldflags[i+1], "=")
		pkg, v := sym[:strings.LastIndex(sym, ".")], sym[strings.LastIndex(sym, ".")+1:]
		rel, ok := strings.CutPrefix(pkg, module+"/")
		if !ok {
			t.Errorf("-X %s: not a package of %s", sym, module)
			continue
		}
		found := false
		entries, err := os.ReadDir(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(dir, filepath.FromSlash(rel), e.Name()), nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(f, func(n ast.Node) bool {
				if vs, ok := n.(*ast.ValueSpec); ok {
					for j, id := range vs.Names {
						if j >= len(vs.Values) {
							break
						}
						if lit, ok := vs.Values[j].(*ast.BasicLit); ok && id.Name == v && lit.Kind == token.STRING {
							found = true
						}
					}
				}
				return !found
			})
		}
		if !found {
			t.Errorf("-X %s: %s has no string variable %s", sym, pkg, v)
		}
		if v == "Version" && value != version {
			t.Errorf("-X %s=%s, want %s", sym, value, version)
		}
		stamps++
	}
	if stamps == 0 {
		t.Error("the build stamps no version")
	}
}

func TestTrimProvidersRefuses(t *testing.T) {
	src := `package dns

import (
	"github.com/go-acme/lego/v5/providers/dns/a"
	b "github.com/go-acme/lego/v5/providers/dns/b"
)

func byName(n string) (any, error) {
	switch n {
	case "a":
		return a.NewDNSProvider()
	case "b":
		return b.NewDNSProvider()
	}
	return nil, nil
}
`
	for _, c := range []struct {
		drop map[string]string
		want string
	}{
		{map[string]string{"c": "example.com/sdk"}, "no import and case for DNS provider [c]"},
		{map[string]string{"b": "example.com/sdk"}, "is renamed"},
	} {
		_, err := trimProviders("list.go", []byte(src), c.drop)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "list.go") {
			t.Errorf("drop %v: error %v, want one naming list.go and %q", c.drop, err, c.want)
		}
	}
	out, err := trimProviders("list.go", []byte(src), map[string]string{"a": "example.com/sdk"})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte(`providers/dns/a"`)) || bytes.Contains(out, []byte(`case "a"`)) || !bytes.Contains(out, []byte(`case "b"`)) {
		t.Errorf("dropping a gave:\n%s", out)
	}
}

// The fork Traefik replaces go-http-auth with is named as the module it
// replaces and has what Traefik calls (CheckSecret is not in the original).
func TestCopyHTTPAuthFork(t *testing.T) {
	ctx := proxyTest(t, "go-http-auth", 2*time.Minute)
	dst := t.TempDir()
	if err := copyHTTPAuthFork(ctx, dst); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(dst, "basic.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(src, []byte("\nfunc CheckSecret(password, secret string) bool {")) {
		t.Error("the fork has no CheckSecret")
	}
}

// The image runs as the chart asks and has the name the chart gives it
// when cluster.imageRepository replaces its registry.
func TestTraefikImage(t *testing.T) {
	b := &builder{cache: t.TempDir(), log: io.Discard}
	bin := filepath.Join(t.TempDir(), "traefik")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	spec, err := traefikImageSpec(b, bin, []byte("certificates\n"))
	if err != nil {
		t.Fatal(err)
	}
	if spec.component != "traefik" || spec.version != traefikVersion || spec.name != "docker.io/library/traefik:"+traefikVersion {
		t.Errorf("spec %+v", spec)
	}
	archive, _, err := b.buildImage(spec)
	if err != nil {
		t.Fatal(err)
	}
	cf, found := imageContents(t, archiveImage(t, archive, spec.name))
	if cf.Config.User != "65532:65532" || strings.Join(cf.Config.Entrypoint, " ") != "/usr/local/bin/traefik" {
		t.Errorf("config: user %q entrypoint %q", cf.Config.User, cf.Config.Entrypoint)
	}
	if found["usr/local/bin/traefik"] != 0o755 || found["etc/ssl/certs/ca-certificates.crt"] != 0o644 {
		t.Errorf("image files: %v", found)
	}

	// The chart, packed from upstream's release archive, with only the
	// registry and tag set, runs this image as this user.
	const repo = "172.29.40.2:5000"
	ch := loadUpstreamChart(t, loadTestUpstream(t), "traefik", "41.3.0")
	_, imageTag, _ := strings.Cut(spec.repoTag, ":")
	vals, err := chartutil.ToRenderValues(ch, map[string]any{"image": map[string]any{"registry": repo, "tag": imageTag}},
		chartutil.ReleaseOptions{Name: "traefik", Namespace: "traefik", IsInstall: true}, chartutil.DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	rendered, err := engine.Render(ch, vals)
	if err != nil {
		t.Fatal(err)
	}
	var dep appsv1.Deployment
	for n, doc := range rendered {
		if strings.HasSuffix(n, "templates/deployment.yaml") {
			if err := yaml.Unmarshal([]byte(doc), &dep); err != nil {
				t.Fatal(err)
			}
		}
	}
	pod := dep.Spec.Template.Spec
	if len(pod.Containers) == 0 {
		t.Fatalf("chart rendered no Deployment: %v", keys(rendered))
	}
	if got, want := pod.Containers[0].Image, repo+"/"+spec.repoTag; got != want {
		t.Errorf("chart runs image %s, the bundle serves %s", got, want)
	}
	if len(pod.Containers[0].Command) != 0 {
		t.Errorf("chart sets command %q: the image's entrypoint is not used", pod.Containers[0].Command)
	}
	sc := pod.SecurityContext
	if sc == nil || sc.RunAsUser == nil || sc.RunAsGroup == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot ||
		strconv.FormatInt(*sc.RunAsUser, 10)+":"+strconv.FormatInt(*sc.RunAsGroup, 10) != cf.Config.User {
		got, _ := json.Marshal(sc)
		t.Errorf("chart's pod security context %s, image user %s", got, cf.Config.User)
	}
}

// traefikRuns checks the traefik binary unpacked at root (a bundle image's
// file system): built from the module proxy's Traefik with the trimmed lego
// and the go-http-auth fork, stamped with its version, offering the
// ingress-nginx provider, and serving, chrooted as the chart's user, its
// ping endpoint on a loopback port with the phoning home turned off. It
// returns what traefik version printed.
func traefikRuns(t *testing.T, root string) string {
	t.Helper()
	info, err := buildinfo.ReadFile(filepath.Join(root, traefikBin))
	if err != nil {
		t.Fatal(err)
	}
	deps := map[string]*debug.Module{}
	for _, d := range append(info.Deps, &info.Main) { // go build names the tool's module as main
		deps[d.Path] = d
	}
	if d := deps[traefikModule]; d == nil || d.Version != traefikVersion || d.Replace != nil {
		t.Errorf("/%s was not built from %s %s", traefikBin, traefikModule, traefikVersion)
	}
	for _, p := range []string{legoModule, httpAuthModule, traefikExtModule} {
		if d := deps[p]; d == nil || d.Replace == nil || !strings.HasPrefix(d.Replace.Path, "./") {
			t.Errorf("/%s: %s is not the generated module's source folder: %+v", traefikBin, p, d)
		}
	}
	user := "--userspec=" + traefikUser
	version, err := exec.Command("chroot", user, root, "/"+traefikBin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("traefik version: %v\n%s", err, version)
	}
	help, _ := exec.Command("chroot", user, root, "/"+traefikBin, "--help").CombinedOutput()
	if !bytes.Contains(help, []byte("--providers.kubernetesingressnginx.ingressclass")) {
		t.Errorf("traefik --help lists no kubernetesingressnginx provider:\n%s", help)
	}

	addr := testenv.ClosedAddr(t)
	cmd := exec.Command("chroot", user, root, "/"+traefikBin,
		"--global.checkNewVersion=false", "--global.sendAnonymousUsage=false",
		"--entryPoints.ping.address="+addr, "--ping.entryPoint=ping")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/ping")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || string(body) != "OK" {
				t.Errorf("traefik /ping: %s %q", resp.Status, body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("traefik answered no /ping on %s within 30s: %v\n%s", addr, err, logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	return string(version)
}

// keys lists a map's keys, for messages.
func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
