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
// root module at v1.21.1, stamped with that version, and that it runs as
// uid 1000 (it prints its help). It returns the build's -ldflags.
func certManagerRuns(t *testing.T, root, cmd string) string {
	t.Helper()
	bin := filepath.Join(root, "app/cmd", cmd, cmd)
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if want := certManagerModule + "/" + cmd + "-binary"; info.Path != want {
		t.Errorf("/app/cmd/%s/%s is %s, want %s", cmd, cmd, info.Path, want)
	}
	if !slices.ContainsFunc(info.Deps, func(d *debug.Module) bool {
		return d.Path == certManagerModule && d.Version == certManagerVersion && d.Replace == nil
	}) {
		t.Errorf("/app/cmd/%s/%s was not built against %s %s", cmd, cmd, certManagerModule, certManagerVersion)
	}
	var ldflags string
	for _, s := range info.Settings {
		if s.Key == "-ldflags" {
			ldflags = s.Value
		}
	}
	if !strings.Contains(ldflags, certManagerModule+"/pkg/util.AppVersion="+certManagerVersion) {
		t.Errorf("/app/cmd/%s/%s: -ldflags %q lack the version stamp", cmd, cmd, ldflags)
	}
	out, err := exec.Command("chroot", "--userspec=1000:1000", root, "/app/cmd/"+cmd+"/"+cmd, "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Usage:") {
		t.Errorf("%s --help as 1000:1000: %v\n%s", cmd, err, out)
	}
	return ldflags
}
