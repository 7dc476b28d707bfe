package addons

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry"
	appsv1 "k8s.io/api/apps/v1"
)

// TestRegistryDebugListener builds the registry the way `registry serve` does
// (registry.NewRegistry, once per process: its health checks are global) from the
// rendered config and env, and asks the debug listener's mux (what the registry
// serves on http.debug.addr) the path of the chart's probes.
func TestRegistryDebugListener(t *testing.T) {
	creds, err := NewRegistryCredentials("admin", "")
	if err != nil {
		t.Fatal(err)
	}
	values := withValues(map[string]any{"redis": map[string]any{"enabled": false}, "metrics": map[string]any{"enabled": false}})
	out, err := RenderRegistry(RenderOptions{Values: values})
	if err != nil {
		t.Fatal(err)
	}
	d := get[*appsv1.Deployment](t, decodeManifests(t, out), "Deployment/registry")
	config, err := RenderRegistryConfig(values)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(creds.Htpasswd()), 0o600); err != nil {
		t.Fatal(err)
	}
	env := containerEnv(t, d.Spec.Template.Spec.Containers[0], creds)
	env["REGISTRY_AUTH_HTPASSWD_PATH"] = htpasswd
	env["REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY"] = dir
	for k, v := range env {
		t.Setenv(k, v)
	}
	cfg, err := configuration.Parse(strings.NewReader(string(config)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reg, err := registry.NewRegistry(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Shutdown(context.Background()) })

	// The debug listener serves http.DefaultServeMux (registry's configureDebugServer).
	debug := httptest.NewServer(http.DefaultServeMux)
	defer debug.Close()
	probe := d.Spec.Template.Spec.Containers[0].ReadinessProbe.HTTPGet
	resp, err := http.Get(debug.URL + probe.Path)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "{}" {
		t.Errorf("GET %s on the debug listener = %d %q, want 200 {}", probe.Path, resp.StatusCode, body)
	}
}
