//go:build linux

package bundle

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/modfile"
)

// writeFiles writes files (slash path -> content) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// fakeCLIModule is a module laid out as docker/cli's: no go.mod, its
// requirements in vendor.mod and vendor.sum, a vendor folder, and a command
// printing a version variable stamped at build time.
var fakeCLIModule = map[string]string{
	"vendor.mod":         "module example.com/fakecli\n\ngo 1.24\n",
	"vendor.sum":         "example.com/dep v1.0.0/go.mod h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
	"vendor/modules.txt": "# example.com/dep v1.0.0\n",
	"version/version.go": "package version\n\nvar Version = \"unknown-version\"\n",
	"cmd/fake/main.go":   "package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.com/fakecli/version\"\n)\n\nfunc main() { fmt.Println(\"fake version\", version.Version) }\n",
}

func TestUseVendorMod(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, fakeCLIModule)
	if err := useVendorMod(dir); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"go.mod": fakeCLIModule["vendor.mod"], "go.sum": fakeCLIModule["vendor.sum"], "cmd/fake/main.go": fakeCLIModule["cmd/fake/main.go"]} {
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	for _, gone := range []string{"vendor.mod", "vendor.sum", "vendor"} {
		if _, err := os.Stat(filepath.Join(dir, gone)); !os.IsNotExist(err) {
			t.Errorf("%s is still there (%v)", gone, err)
		}
	}

	// A module with go.mod beside vendor.mod, or without vendor.mod, is refused.
	both := t.TempDir()
	writeFiles(t, both, map[string]string{"vendor.mod": "module a\n", "go.mod": "module a\n"})
	if err := useVendorMod(both); err == nil || !strings.Contains(err.Error(), "go.mod") {
		t.Errorf("go.mod beside vendor.mod: error %v", err)
	}
	none := t.TempDir()
	writeFiles(t, none, map[string]string{"main.go": "package main\n"})
	if err := useVendorMod(none); err == nil || !strings.Contains(err.Error(), "vendor.mod") {
		t.Errorf("no vendor.mod: error %v", err)
	}
}

// A component built from a vendor.mod module: the generated module takes
// its go version from vendor.mod, requires the module only as the source
// that replaces it, and builds the command with its version stamped
// (offline: the fake module has no dependencies).
func TestVendorModModuleBuilds(t *testing.T) {
	const mod, version = "example.com/fakecli", "v29.8.1+incompatible"
	gen := t.TempDir()
	src := filepath.Join(gen, "src", "cli")
	writeFiles(t, src, fakeCLIModule)
	if err := useVendorMod(src); err != nil {
		t.Fatal(err)
	}
	sources := []localModule{{path: mod, dir: "src/cli"}}
	gomod, err := generateModule("boot.bundle/fakecli", mod, version, []byte(fakeCLIModule["vendor.mod"]), "", nil, sources, []string{mod + "/cmd/fake"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\ngo 1.24\n", "require " + mod + " " + localModuleVersion + "\n", "replace " + mod + " => ./src/cli\n", "tool " + mod + "/cmd/fake\n"} {
		if !strings.Contains(string(gomod), want) {
			t.Errorf("generated go.mod lacks %q:\n%s", want, gomod)
		}
	}
	f, err := modfile.Parse("go.mod", gomod, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range f.Require {
		if r.Mod.Path == mod && r.Mod.Version != localModuleVersion {
			t.Errorf("generated go.mod requires %s at %s, want only %s:\n%s", mod, r.Mod.Version, localModuleVersion, gomod)
		}
	}
	if err := os.WriteFile(filepath.Join(gen, "go.mod"), gomod, 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-X "+mod+"/version.Version=29.8.1", "-o", out+string(filepath.Separator), mod+"/cmd/fake")
	cmd.Dir = gen
	cmd.Env = append(goEnv(false), "GOPROXY=off", "GOFLAGS=-mod=mod")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	got, err := exec.Command(filepath.Join(out, "fake")).Output()
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "fake version 29.8.1\n" {
		t.Errorf("built command printed %q", got)
	}
}

func TestDockerComponents(t *testing.T) {
	cs := dockerComponents()
	bins := map[string]goComponent{}
	for _, c := range cs {
		if c.cgo {
			t.Errorf("%s needs cgo; Docker's static build does not", c.name)
		}
		for _, tag := range []string{"netgo", "osusergo", "static_build"} {
			if !slices.Contains(c.tags, tag) {
				t.Errorf("%s lacks build tag %s", c.name, tag)
			}
		}
		if !slices.Contains(c.ldflags, c.module+"/"+map[string]string{mobyModule: "dockerversion", dockerCLIModule: "cli/version"}[c.module]+".Version="+dockerVersion) {
			t.Errorf("%s: ldflags %q do not stamp version %s", c.name, c.ldflags, dockerVersion)
		}
		for _, b := range c.bins {
			if b.dest != "bin" {
				t.Errorf("%s goes to %q, want bin", b.name, b.dest)
			}
			bins[b.name] = c
		}
	}
	for name, module := range map[string]string{"dockerd": mobyModule, "docker-proxy": mobyModule, "docker": dockerCLIModule} {
		if bins[name].module != module {
			t.Errorf("%s is built from %q, want %s", name, bins[name].module, module)
		}
	}
	cli := bins["docker"]
	if cli.modFile != "vendor.mod" || len(cli.sources) != 1 || cli.sources[0].path != dockerCLIModule || cli.version != "v"+dockerVersion+"+incompatible" {
		t.Errorf("docker CLI component: %+v", cli)
	}
	if mobyC := bins["dockerd"]; mobyC.modFile != "" || len(mobyC.sources) != 0 {
		t.Errorf("moby component: %+v", mobyC)
	}
}

// Each -X of the Docker builds names a string variable of the source.
func TestDockerVersionStamps(t *testing.T) {
	ctx := proxyTest(t, "Moby and the docker CLI", 5*time.Minute)
	for _, c := range dockerComponents() {
		checkVersionStamps(t, moduleDir(t, ctx, c.module, c.version), c.module, c.ldflags, dockerVersion)
	}
}

// The docker CLI's module copied as its source: vendor.mod is its go.mod.
func TestDockerCLISource(t *testing.T) {
	ctx := proxyTest(t, "the docker CLI", 5*time.Minute)
	var cli goComponent
	for _, c := range dockerComponents() {
		if c.module == dockerCLIModule {
			cli = c
		}
	}
	dst := filepath.Join(t.TempDir(), "cli")
	if err := cli.sources[0].fill(ctx, dst); err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile(filepath.Join(dst, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(gomod), "module "+dockerCLIModule+"\n") {
		t.Errorf("go.mod starts %q", gomod[:min(len(gomod), 80)])
	}
	up, err := cli.upstreamMod(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(up) != string(gomod) {
		t.Error("the component's requirements are not the source's go.mod")
	}
	if _, err := os.Stat(filepath.Join(dst, "cmd", "docker")); err != nil {
		t.Error(err)
	}
}

// The built bundle holds Docker Engine: dockerd, docker-proxy, the docker
// CLI and docker-init, static, printing Docker's version (tini's for
// docker-init), and its units.
func TestBundleDocker(t *testing.T) {
	b := builtBundle(t)
	listed := map[string]File{}
	for _, f := range b.Manifest.Files {
		listed[f.Path] = f
	}
	for path, component := range map[string]string{
		"bin/dockerd": "moby", "bin/docker-proxy": "moby", "bin/docker": "docker-cli", "bin/docker-init": tiniPackage,
		"systemd/docker.service": "moby", "systemd/docker.socket": "moby",
	} {
		if f, ok := listed[path]; !ok || f.Component != component {
			t.Errorf("manifest lists %s as %+v, want component %s", path, f, component)
		}
	}
	for _, bin := range []string{"dockerd", "docker-proxy", "docker", "docker-init"} {
		f, err := elf.Open(b.Path("bin/" + bin))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("bin/%s is dynamically linked", bin)
			}
		}
		f.Close()
	}
	for bin, want := range map[string]string{
		"dockerd":     "Docker version " + dockerVersion + ",",
		"docker":      "Docker version " + dockerVersion + ",",
		"docker-init": "tini version ",
	} {
		if got := run(t, b.Path("bin/"+bin), "--version"); !strings.HasPrefix(got, want) {
			t.Errorf("%s --version printed %q, want it to start with %q", bin, got, want)
		}
	}
	unit, err := os.ReadFile(b.Path("systemd/docker.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{" -H fd:// ", " --containerd=/run/containerd/containerd.sock", "Requires=containerd.service docker.socket\n"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("docker.service lacks %q", want)
		}
	}
}
