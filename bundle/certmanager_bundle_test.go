//go:build linux

package bundle

import (
	"debug/buildinfo"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
)

// testCertManagerBundle checks a built bundle's cert-manager images
// (`make bundle` builds with --upstream): each under the name its chart
// asks for, configured to run its command as 1000:1000, and the charts
// the release archives provide.
func testCertManagerBundle(t *testing.T, b *Bundle) {
	m := b.Manifest
	if len(m.BuiltWith.Archives) != len(upstreamArchives) {
		t.Fatalf("builtWith.archives %+v: the bundle was not built with --upstream (make bundle builds with it)", m.BuiltWith.Archives)
	}
	for i, a := range upstreamArchives {
		if got := m.BuiltWith.Archives[i]; got.File != a.file || got.SHA256 != a.sha256 || got.Tag != a.tag {
			t.Errorf("builtWith.archives[%d] %+v, want %s %s %s", i, got, a.file, a.sha256, a.tag)
		}
	}
	if !slices.ContainsFunc(m.BuiltWith.Modules, func(mod Module) bool {
		return mod.Component == "cert-manager" && mod.Path == certManagerModule && mod.Version == certManagerVersion &&
			mod.Pinned["github.com/Venafi/vcert/v5"] == "v5.13.9"
	}) {
		t.Errorf("builtWith.modules %+v lack %s %s with vcert pinned", m.BuiltWith.Modules, certManagerModule, certManagerVersion)
	}
	for _, cmd := range certManagerCommands {
		img := addonImage(t, m, "cert-manager-"+cmd)
		want := Image{Name: "quay.io/jetstack/cert-manager-" + cmd + ":v1.21.1", RepoTag: "jetstack/cert-manager-" + cmd + ":v1.21.1",
			Path: "images/cert-manager-" + cmd + ".tar", Digest: img.Digest, Component: "cert-manager-" + cmd, Version: certManagerVersion}
		if img != want {
			t.Errorf("image %+v, want %+v", img, want)
		}
		i, err := b.Image(img.Name)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := i.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if ep := []string{"/app/cmd/" + cmd + "/" + cmd}; cf.Config.User != "1000:1000" || !slices.Equal(cf.Config.Entrypoint, ep) || cf.Config.Cmd != nil {
			t.Errorf("%s: user %q entrypoint %q cmd %q, want 1000:1000 %q", img.Name, cf.Config.User, cf.Config.Entrypoint, cf.Config.Cmd, ep)
		}
	}
	for slot, want := range map[string]string{"certManager": "cert-manager v1.21.1", "ingressNginx": "ingress-nginx 4.15.1", "traefik": "traefik 41.3.0"} {
		if c, ok := m.Chart(slot); !ok || c.Name+" "+c.Version != want {
			t.Errorf("chart slot %s: %+v, want %s (the bundle holds %s)", slot, c, want, m.ChartsHeld())
		}
	}
}

// certManagerRuns checks, in the unpacked image root, that cert-manager's
// command cmd is the module built from the release archive against the
// root module at v1.21.1 and runs as uid 1000: it prints its help, and the
// long-running ones log the version and commit stamped into them as they
// start (here failing at once for want of a kubeconfig). It returns what
// says the version.
func certManagerRuns(t *testing.T, root, cmd string) string {
	t.Helper()
	bin := "/app/cmd/" + cmd + "/" + cmd
	info, err := buildinfo.ReadFile(filepath.Join(root, bin))
	if err != nil {
		t.Fatal(err)
	}
	if want := certManagerModule + "/" + cmd + "-binary"; info.Path != want {
		t.Errorf("%s is %s, want %s", bin, info.Path, want)
	}
	i := slices.IndexFunc(info.Deps, func(d *debug.Module) bool { return d.Path == certManagerModule })
	if i < 0 || info.Deps[i].Version != certManagerVersion || info.Deps[i].Replace != nil {
		t.Fatalf("%s was not built against %s %s: %v", bin, certManagerModule, certManagerVersion, info.Deps)
	}
	as1000 := func(args ...string) string {
		t.Helper()
		c := exec.Command("chroot", append([]string{"--userspec=1000:1000", root, bin}, args...)...)
		c.Env = []string{}
		out, err := c.CombinedOutput()
		if err != nil && args[0] == "--help" {
			t.Errorf("%s --help as 1000:1000: %v\n%s", bin, err, out)
		}
		return string(out)
	}
	if out := as1000("--help"); !strings.Contains(out, "Usage:") {
		t.Errorf("%s --help printed no usage:\n%s", bin, out)
	}
	if cmd == "acmesolver" || cmd == "startupapicheck" {
		return info.Deps[i].Path + " " + info.Deps[i].Version
	}
	out := as1000("--kubeconfig=/nonexistent")
	if !strings.Contains(out, `version="v1.21.1" git_commit="24e33194fb39488eff2bbf10c6dc640f407cad44"`) {
		t.Errorf("%s logged no version stamp as it started:\n%s", bin, out)
	}
	return out
}
