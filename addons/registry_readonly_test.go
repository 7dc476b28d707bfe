package addons

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/distribution/distribution/v3/configuration"
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	"github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	appsv1 "k8s.io/api/apps/v1"
)

// startRegistry runs the real distribution registry handler with config.yml and env,
// as the registry pod would, and returns its URL.
func startRegistry(t *testing.T, config []byte, env map[string]string) string {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	cfg, err := configuration.Parse(bytes.NewReader(config))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	app := handlers.NewApp(ctx, cfg)
	srv := httptest.NewServer(app)
	t.Cleanup(func() {
		srv.Close()
		_ = app.Shutdown()
		cancel()
	})
	return srv.URL
}

func status(t *testing.T, method, url, user, password string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// TestRegistryRunsRenderedChart runs the real registry with the config and the
// environment the chart renders, resolved against generated credentials: auth
// accepts exactly the admin password, and the read-only switch the gc job flips
// really stops writes.
func TestRegistryRunsRenderedChart(t *testing.T) {
	creds, err := NewRegistryCredentials("admin", "")
	if err != nil {
		t.Fatal(err)
	}
	// Metrics off: every handlers.NewApp with Prometheus on registers the same global
	// collectors, and a second one in one process panics.
	values := withValues(map[string]any{"cache": "none", "metrics": map[string]any{"enabled": false}})
	config, env := chartRegistry(t, values, creds)

	// The pod's mounts, moved into a temporary folder with distribution's env overrides.
	dir := t.TempDir()
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(creds.Htpasswd()), 0o600); err != nil {
		t.Fatal(err)
	}
	env["REGISTRY_AUTH_HTPASSWD_PATH"] = htpasswd
	env["REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY"] = filepath.Join(dir, "data")

	t.Run("read-write", func(t *testing.T) {
		url := startRegistry(t, config, env)
		if got := status(t, "GET", url+"/v2/", "", ""); got != http.StatusUnauthorized {
			t.Errorf("anonymous GET /v2/ = %d, want 401", got)
		}
		if got := status(t, "GET", url+"/v2/", "admin", creds.Password()+"x"); got != http.StatusUnauthorized {
			t.Errorf("wrong password GET /v2/ = %d, want 401", got)
		}
		if got := status(t, "GET", url+"/v2/", "admin", creds.Password()); got != http.StatusOK {
			t.Errorf("admin GET /v2/ = %d, want 200", got)
		}
		if got := status(t, "POST", url+"/v2/app/blobs/uploads/", "admin", creds.Password()); got != http.StatusAccepted {
			t.Errorf("upload start = %d, want 202", got)
		}
		// Relative URLs: an upload started through the Service (or any
		// other address) goes on there, not at https://<host>.
		if loc := uploadLocation(t, url, creds.Password()); !strings.HasPrefix(loc, "/v2/app/blobs/uploads/") {
			t.Errorf("upload Location %q, want a relative /v2/... path", loc)
		}
	})

	t.Run("absolute URLs with http.host", func(t *testing.T) {
		abs := withValues(map[string]any{"cache": "none", "metrics": map[string]any{"enabled": false}, "relativeURLs": false})
		config, err := RenderRegistryConfig(abs)
		if err != nil {
			t.Fatal(err)
		}
		url := startRegistry(t, config, env)
		if loc := uploadLocation(t, url, creds.Password()); !strings.HasPrefix(loc, "https://registry.example.com/v2/app/blobs/uploads/") {
			t.Errorf("upload Location %q, want one at https://registry.example.com", loc)
		}
	})

	t.Run("read-only", func(t *testing.T) {
		ro := map[string]string{}
		for k, v := range env {
			ro[k] = v
		}
		ro[RegistryReadOnlyEnv] = RegistryReadOnlyOn // what `boot registry gc` patches in
		url := startRegistry(t, config, ro)
		if got := status(t, "GET", url+"/v2/", "admin", creds.Password()); got != http.StatusOK {
			t.Errorf("admin GET /v2/ = %d, want 200", got)
		}
		if got := status(t, "POST", url+"/v2/app/blobs/uploads/", "admin", creds.Password()); got != http.StatusMethodNotAllowed {
			t.Errorf("upload start in read-only mode = %d, want 405", got)
		}
	})

	t.Run("env reaches config", func(t *testing.T) {
		for k, v := range env {
			t.Setenv(k, v)
		}
		cfg, err := configuration.Parse(bytes.NewReader(config))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.HTTP.Secret != creds.HTTPSecret() {
			t.Error("http.secret from REGISTRY_HTTP_SECRET does not reach the config")
		}
		if ro, ok := cfg.Storage["maintenance"]["readonly"].(map[any]any); !ok || ro["enabled"] != false {
			t.Errorf("readonly = %#v", cfg.Storage["maintenance"]["readonly"])
		}
		// The tempting per-field override is ignored: documented in README.md.
		t.Setenv(RegistryReadOnlyEnv, RegistryReadOnlyOff)
		t.Setenv(RegistryReadOnlyEnv+"_ENABLED", "true")
		cfg, err = configuration.Parse(bytes.NewReader(config))
		if err != nil {
			t.Fatal(err)
		}
		if ro := cfg.Storage["maintenance"]["readonly"].(map[any]any); ro["enabled"] != false {
			t.Errorf("REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED took effect: %#v; update README.md", ro)
		}
	})
}

func TestRegistryRedisPasswordEnv(t *testing.T) {
	creds, err := NewRegistryCredentials("admin", "")
	if err != nil {
		t.Fatal(err)
	}
	out, err := RenderRegistry(RenderOptions{Values: requiredValues()})
	if err != nil {
		t.Fatal(err)
	}
	d := get[*appsv1.Deployment](t, decodeManifests(t, out), "Deployment/registry")
	for k, v := range containerEnv(t, d.Spec.Template.Spec.Containers[0], creds) {
		t.Setenv(k, v)
	}
	config, err := RenderRegistryConfig(requiredValues())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := configuration.Parse(bytes.NewReader(config))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Redis.Options.Password != creds.RedisPassword() || !strings.HasSuffix(cfg.Redis.Options.Addrs[0], ":6379") {
		t.Error("the Redis password from REGISTRY_REDIS_PASSWORD does not reach redis.password")
	}
}

// uploadLocation starts a blob upload and returns the Location it answers.
func uploadLocation(t *testing.T, url, password string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/v2/app/blobs/uploads/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("admin", password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp.Header.Get("Location")
}
