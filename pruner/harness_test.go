package pruner_test

// Test harness: a real redis-server and the real distribution v3 registry
// (in process, configured with the config.yml the chart renders).

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/distribution/distribution/v3/registry/storage"
	"github.com/distribution/distribution/v3/registry/storage/driver/factory"
	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/bcrypt"

	"github.com/bootctl/boot/addons"
	"github.com/bootctl/boot/internal/testenv"

	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
)

const redisServer = "/usr/bin/redis-server"

type redisInstance struct {
	Addr     string
	Password string
	Client   *redis.Client
}

// startRedis runs redis-server on 127.0.0.1, a free port, with a password and
// no persistence, in a temporary directory; it is stopped by PID in Cleanup.
// The configuration (and so the password) goes through stdin, not argv.
func startRedis(t testing.TB, password string) *redisInstance {
	t.Helper()
	testenv.File(t, redisServer, "redis-server")
	dir := t.TempDir()
	for attempt := 0; ; attempt++ {
		port := freePort(t)
		conf := fmt.Sprintf("bind 127.0.0.1\nport %d\nrequirepass %s\nsave \"\"\nappendonly no\ndir %s\nprotected-mode yes\n", port, password, dir)
		cmd := exec.Command(redisServer, "-")
		cmd.Stdin = strings.NewReader(conf)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatalf("start redis-server: %v", err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		stop := func() {
			_ = cmd.Process.Kill()
			<-done
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		client := redis.NewClient(&redis.Options{Addr: addr, Password: password, DialTimeout: time.Second})
		deadline := time.Now().Add(30 * time.Second) // generous: CI runs packages in parallel on 2 cores
		var err error
		for time.Now().Before(deadline) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err = client.Ping(ctx).Err()
			cancel()
			if err == nil {
				break
			}
			select {
			case <-done:
				err = fmt.Errorf("redis-server exited: %s", out.String())
				deadline = time.Time{}
			case <-time.After(50 * time.Millisecond):
			}
		}
		if err != nil {
			_ = client.Close()
			stop()
			if attempt < 3 {
				continue // the port was taken in between; try another
			}
			t.Fatalf("redis-server did not answer: %v", err)
		}
		t.Cleanup(func() { _ = client.Close(); stop() })
		return &redisInstance{Addr: addr, Password: password, Client: client}
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// chartConfig renders the registry config.yml with the chart, pointing it
// at an external Redis (or none).
func chartConfig(t testing.TB, redisAddr string) []byte {
	t.Helper()
	if redisAddr != "" {
		return renderConfig(t, map[string]any{"redis": map[string]any{"externalAddress": redisAddr}})
	}
	return renderConfig(t, map[string]any{"cache": "none"})
}

// renderConfig renders the chart's config.yml with values beside the
// required ones.
func renderConfig(t testing.TB, more map[string]any) []byte {
	t.Helper()
	values := map[string]any{
		"host":        "registry.example.test",
		"credentials": map[string]any{"existingSecret": "registry-credentials"},
	}
	maps.Copy(values, more)
	cfg, err := addons.RenderRegistryConfig(values)
	if err != nil {
		t.Fatalf("render the chart's registry config: %v", err)
	}
	return cfg
}

// registryStack is a running in-process registry: the chart's config with
// the overrides the chart itself uses (env), and a handler that can be
// swapped to "restart" the registry in another mode.
type registryStack struct {
	t        testing.TB
	URL      string // http://127.0.0.1:port
	Host     string // 127.0.0.1:port
	Root     string // filesystem storage root
	User     string
	Password string
	Redis    *redisInstance // nil without cache
	config   []byte
	env      map[string]string
	opts     registryOptions

	handler atomic.Pointer[http.Handler]
	app     atomic.Pointer[handlers.App]
	uploads uploadCounter
	// reject, when set, answers instead of the registry (fault injection).
	reject atomic.Pointer[func(*http.Request) int]
}

// uploadCounter counts finished blob uploads (the PUT that commits an
// upload, ?digest=...) per digest, and blob HEADs.
type uploadCounter struct {
	mu      sync.Mutex
	commits map[string]int
	heads   int
}

func (u *uploadCounter) committed(d string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.commits[d]
}

func (u *uploadCounter) reset() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.commits, u.heads = map[string]int{}, 0
}

var quietLogs sync.Once

// registryAuth is what the registry's credentials Secret holds.
type registryAuth struct {
	user, password, htpasswd, httpSecret string
}

// generatedAuth uses the credentials exactly as addons generates them
// (bcrypt at the default cost).
func generatedAuth(c *addons.RegistryCredentials) registryAuth {
	return registryAuth{c.Username(), c.Password(), c.Htpasswd(), c.HTTPSecret()}
}

// fastAuth is the same user and password with a bcrypt hash at the minimum
// cost. The registry verifies basic auth on every request, so at the default
// cost (~70 ms a check here) the hundreds of requests of the larger tests
// would cost minutes of shared CPU; TestGeneratedCredentials covers the
// generated hash.
func fastAuth(t testing.TB, c *addons.RegistryCredentials) registryAuth {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(c.Password()), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return registryAuth{c.Username(), c.Password(), c.Username() + ":" + string(hash), c.HTTPSecret()}
}

// registryOptions are the benchmarks' departures from the chart's config.
type registryOptions struct {
	// anonymous drops auth: the benchmarks measure the registry's storage
	// and cache paths and the pruner, not one bcrypt check per request.
	anonymous bool
	// inMemory uses distribution's inmemory storage driver instead of the
	// filesystem (a registry of 100,000 tags without a million files).
	inMemory bool
	// root, when set, is the filesystem root to share with another
	// registry (the same storage with and without a cache).
	root string
	// inMemoryCache gives the registry the chart's cache inmemory (no rdb).
	inMemoryCache bool
}

// startRegistry runs the registry in process with the chart-rendered config.
// Secrets reach it the way the chart passes them: REGISTRY_HTTP_SECRET and
// REGISTRY_REDIS_PASSWORD; the test also overrides the storage root, the
// htpasswd path and http.host (a loopback URL, so Location headers never
// point elsewhere) through distribution's env overrides.
func startRegistry(t testing.TB, rdb *redisInstance, auth registryAuth) *registryStack {
	t.Helper()
	return startRegistryWith(t, rdb, auth, registryOptions{})
}

func startRegistryWith(t testing.TB, rdb *redisInstance, auth registryAuth, opts registryOptions) *registryStack {
	t.Helper()
	// The registry logs every 404 (each HEAD before an upload) as an error;
	// BOOT_TEST_REGISTRY_LOGS=1 shows them.
	quietLogs.Do(func() {
		if os.Getenv("BOOT_TEST_REGISTRY_LOGS") == "" {
			logrus.SetLevel(logrus.FatalLevel)
		}
	})
	dir := t.TempDir()
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(auth.htpasswd+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &registryStack{
		t:        t,
		Host:     l.Addr().String(),
		URL:      "http://" + l.Addr().String(),
		Root:     filepath.Join(dir, "storage"),
		User:     auth.user,
		Password: auth.password,
		Redis:    rdb,
		opts:     opts,
	}
	if opts.root != "" {
		s.Root = opts.root
	}
	redisAddr := ""
	if rdb != nil {
		redisAddr = rdb.Addr
	}
	s.config = chartConfig(t, redisAddr)
	if opts.inMemoryCache {
		s.config = renderConfig(t, map[string]any{"cache": "inmemory"})
	}
	s.env = map[string]string{
		"REGISTRY_HTTP_SECRET":                      auth.httpSecret,
		"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": s.Root,
		"REGISTRY_AUTH_HTPASSWD_PATH":               htpasswd,
		"REGISTRY_HTTP_HOST":                        s.URL,
	}
	if rdb != nil {
		s.env["REGISTRY_REDIS_PASSWORD"] = rdb.Password
	}
	s.uploads.reset()
	s.setMode(false)
	srv := &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if app := s.app.Load(); app != nil {
			_ = app.Shutdown()
		}
	})
	return s
}

func (s *registryStack) serve(w http.ResponseWriter, r *http.Request) {
	if f := s.reject.Load(); f != nil {
		if code := (*f)(r); code != 0 {
			http.Error(w, http.StatusText(code), code)
			return
		}
	}
	if strings.Contains(r.URL.Path, "/blobs/") {
		s.uploads.mu.Lock()
		switch {
		case r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/"):
			s.uploads.commits[r.URL.Query().Get("digest")]++
		case r.Method == http.MethodHead:
			s.uploads.heads++
		}
		s.uploads.mu.Unlock()
	}
	(*s.handler.Load()).ServeHTTP(w, r)
}

// parseConfig parses the chart's config.yml with distribution's parser,
// which applies the REGISTRY_* environment overrides.
func (s *registryStack) parseConfig(readOnly bool) *configuration.Configuration {
	s.t.Helper()
	for k, v := range s.env {
		s.t.Setenv(k, v)
	}
	cfg, err := configuration.Parse(bytes.NewReader(s.config))
	if err != nil {
		s.t.Fatalf("parse the chart's config.yml: %v", err)
	}
	// The in-process App registers Prometheus collectors globally, once per
	// process; the debug listener that serves them is not run here anyway.
	cfg.HTTP.Debug.Prometheus.Enabled = false
	if s.opts.anonymous {
		cfg.Auth = nil
	}
	if s.opts.inMemory {
		delete(cfg.Storage, "filesystem")
		cfg.Storage["inmemory"] = configuration.Parameters{}
	}
	if readOnly {
		m := cfg.Storage["maintenance"]
		if m == nil {
			m = configuration.Parameters{}
		}
		m["readonly"] = map[any]any{"enabled": true}
		cfg.Storage["maintenance"] = m
	}
	return cfg
}

// setMode (re)starts the registry app, read-only or read-write, on the same
// listener: a new App with a new Redis pool, like a rolled Deployment.
func (s *registryStack) setMode(readOnly bool) {
	cfg := s.parseConfig(readOnly)
	app := handlers.NewApp(context.Background(), cfg)
	var h http.Handler = app
	s.handler.Store(&h)
	if old := s.app.Swap(app); old != nil {
		_ = old.Shutdown()
	}
}

// SetReadOnly implements pruner.Maintenance.
func (s *registryStack) SetReadOnly(_ context.Context, readOnly bool) error {
	s.setMode(readOnly)
	return nil
}

// GarbageCollect implements pruner.Maintenance the way `registry
// garbage-collect --delete-untagged config.yml` does: same storage, the
// registry's own mark-and-sweep.
func (s *registryStack) GarbageCollect(ctx context.Context) error {
	cfg := s.parseConfig(true)
	driver, err := factory.Create(ctx, cfg.Storage.Type(), cfg.Storage.Parameters())
	if err != nil {
		return err
	}
	reg, err := storage.NewRegistry(ctx, driver)
	if err != nil {
		return err
	}
	return storage.MarkAndSweep(ctx, driver, reg, storage.GCOpts{RemoveUntagged: true, Quiet: true})
}

// blobPath is where the filesystem driver keeps a blob's data.
func (s *registryStack) blobPath(d string) string {
	hex := strings.TrimPrefix(d, "sha256:")
	return filepath.Join(s.Root, "docker/registry/v2/blobs/sha256", hex[:2], hex, "data")
}
