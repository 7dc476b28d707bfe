package pruner_test

// Token auth: the registry's 401 names its public realm, which the
// in-cluster pruner can neither resolve nor trust; WithTokenURL (boot prune
// --token-url) sends the token requests to the token service's own address.
// The registry is the real one in process with the chart's config and
// auth.token; the token service is internal/tokenserver's handler.

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	"golang.org/x/crypto/bcrypt"

	"github.com/bootctl/boot/cmd"
	"github.com/bootctl/boot/internal/tokenserver"
	"github.com/bootctl/boot/pruner"

	_ "github.com/distribution/distribution/v3/registry/auth/token"
)

const (
	tokenIssuer  = "boot-token-server"
	tokenService = "registry.test"
)

// The token service's users: the pruner's maintenance identity and a
// pull-only user.
var (
	prunerUser = tokenUser{"pruner", tokenserver.RoleDelete, "pruner-Secret-1"}
	pullerUser = tokenUser{"puller", tokenserver.RolePull, "puller-Secret-2"}
)

type tokenUser struct {
	name     string
	role     tokenserver.Role
	password string
}

// tokenServer is the token service on an httptest server (127.0.0.1). It
// records the path and the basic-auth user of every request it gets.
type tokenServer struct {
	URL      string // http://127.0.0.1:port
	CertPath string // the registry's auth.token.rootcertbundle
	handler  http.Handler

	mu       sync.Mutex
	requests []string // "path user"; user "" without basic auth
}

func startTokenServer(t testing.TB, users ...tokenUser) *tokenServer {
	t.Helper()
	dir := t.TempDir()
	var lines strings.Builder
	for _, u := range users {
		h, err := bcrypt.GenerateFromPassword([]byte(u.password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&lines, "%s:%s:%s\n", u.name, u.role, h)
	}
	files, err := tokenserver.GenerateKey(tokenIssuer, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	usersPath, keyPath, certPath := filepath.Join(dir, "users"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "cert.pem")
	for p, data := range map[string][]byte{usersPath: []byte(lines.String()), keyPath: files.Key, certPath: files.Cert} {
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	signer, err := tokenserver.LoadSigner(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := tokenserver.LoadUsers(usersPath, tokenserver.DefaultCache)
	if err != nil {
		t.Fatal(err)
	}
	h, err := tokenserver.NewHandler(tokenserver.Config{
		Users: loaded, Signer: signer, Issuer: tokenIssuer, Service: tokenService,
		TTL: tokenserver.DefaultTTL, Log: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := &tokenServer{CertPath: certPath}
	ts.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, _, _ := r.BasicAuth()
		ts.mu.Lock()
		ts.requests = append(ts.requests, r.URL.Path+" "+user)
		ts.mu.Unlock()
		h.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(ts.handler)
	t.Cleanup(srv.Close)
	ts.URL = srv.URL
	return ts
}

// seen returns the requests so far and forgets them.
func (ts *tokenServer) seen() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	r := ts.requests
	ts.requests = nil
	return r
}

// startTokenRegistry runs the registry in process on a loopback port with
// the chart's config, storage at root (where a registryStack pushed), and
// auth.token trusting ts's key, its realm realm(host:port). With
// serveToken the registry's port also serves ts at /token, as the chart's
// Ingress does on the public host. It returns http://host:port.
func startTokenRegistry(t testing.TB, root string, ts *tokenServer, realm func(host string) string, serveToken bool) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := l.Addr().String()
	cfg, err := configuration.Parse(bytes.NewReader(chartConfig(t, "")))
	if err != nil {
		t.Fatalf("parse the chart's config.yml: %v", err)
	}
	cfg.HTTP.Secret = "a-test-http-secret"
	cfg.HTTP.Host = "http://" + host
	cfg.HTTP.Debug.Prometheus.Enabled = false // registered once per process; see parseConfig
	cfg.Storage["filesystem"]["rootdirectory"] = root
	cfg.Auth = configuration.Auth{"token": configuration.Parameters{
		"realm":             realm(host),
		"service":           tokenService,
		"issuer":            tokenIssuer,
		"rootcertbundle":    ts.CertPath,
		"signingalgorithms": []any{"ES256"},
	}}
	app := handlers.NewApp(context.Background(), cfg)
	mux := http.NewServeMux()
	mux.Handle("/", app)
	if serveToken {
		mux.Handle("/token", ts.handler)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = app.Shutdown()
	})
	return "http://" + host
}

func mustParseURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestTokenURL: behind a realm on a closed port (the public host the pod
// cannot reach), the delete user plans and prunes only with WithTokenURL,
// whose requests carry its credentials to the token service; the pull user
// reads but its deletes are refused and reported as failed; `boot prune
// --token-url` does the same.
func TestTokenURL(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ts := startTokenServer(t, prunerUser, pullerUser)
	// Images are pushed through an anonymous registry on the same storage;
	// it also shows what is left, without tokens.
	seed := startRegistryWith(t, nil, registryAuth{httpSecret: "a-test-http-secret"}, registryOptions{anonymous: true})
	old := time.Now().Add(-48 * time.Hour)
	for _, tag := range []string{"1.0.0", "PR-1", "PR-2"} {
		seed.mustPush(ctx, t, "app/web:"+tag, newImage(t, old, randomLayer(t)))
	}
	realm := fmt.Sprintf("https://localhost:%d/token", freePort(t))
	regURL := startTokenRegistry(t, seed.Root, ts, func(string) string { return realm }, false)
	tokenURL := mustParseURL(t, ts.URL+"/token")
	anon, err := pruner.NewClient(seed.URL, "", "")
	if err != nil {
		t.Fatal(err)
	}
	rules := mustRules(t, "rules: [{match: ['^PR-'], keepLatest: 0}]")
	client := func(u tokenUser, opts ...pruner.ClientOption) *pruner.Client {
		t.Helper()
		c, err := pruner.NewClient(regURL, u.name, u.password, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	// Without the option the client asks the realm, a closed port.
	_, err = pruner.NewPlan(ctx, client(prunerUser), rules, pruner.PlanOptions{})
	if err == nil || !strings.Contains(err.Error(), strings.TrimSuffix(strings.TrimPrefix(realm, "https://"), "/token")) {
		t.Fatalf("plan without WithTokenURL: %v, want an error reaching the realm %s", err, realm)
	}
	if got := ts.seen(); len(got) != 0 {
		t.Fatalf("the token service was asked without WithTokenURL: %q", got)
	}

	pruneClient := client(prunerUser, pruner.WithTokenURL(tokenURL))
	plan, err := pruner.NewPlan(ctx, pruneClient, rules, pruner.PlanOptions{})
	if err != nil {
		t.Fatalf("plan with WithTokenURL: %v", err)
	}
	var planned []string
	for _, d := range plan.Deletions() {
		planned = append(planned, d.Repository+":"+d.Name)
	}
	if want := []string{"app/web:PR-1", "app/web:PR-2"}; !slices.Equal(planned, want) {
		t.Fatalf("planned %q, want %q", planned, want)
	}

	// The pull user reads tags and manifests, may not list the catalog,
	// and its deletes are refused.
	puller := client(pullerUser, pruner.WithTokenURL(tokenURL))
	if tags, err := puller.Tags(ctx, "app/web"); err != nil || len(tags) != 3 {
		t.Errorf("pull user tags: %v %v", tags, err)
	}
	if _, err := puller.Repositories(ctx); err == nil || !strings.Contains(err.Error(), "UNAUTHORIZED") {
		t.Errorf("pull user catalog: %v, want UNAUTHORIZED", err)
	}
	res, err := pruner.Execute(ctx, puller, plan, pruner.ExecuteOptions{})
	if err == nil || res == nil || res.Count(pruner.Failed) != 2 {
		t.Fatalf("pull user prune: %+v %v, want 2 failed", res, err)
	}
	for _, o := range res.Outcomes {
		if !strings.Contains(o.Detail, "UNAUTHORIZED") {
			t.Errorf("pull user delete of %s: %q, want the registry's refusal", o.Tag, o.Detail)
		}
	}
	if got, want := listAll(ctx, t, anon), []string{"app/web:1.0.0", "app/web:PR-1", "app/web:PR-2"}; !slices.Equal(got, want) {
		t.Fatalf("after the pull user's prune %q, want %q", got, want)
	}

	// The delete user prunes.
	res, err = pruner.Execute(ctx, pruneClient, plan, pruner.ExecuteOptions{})
	if err != nil || res.Count(pruner.Deleted) != 2 {
		t.Fatalf("prune: %+v %v, want 2 deleted", res, err)
	}
	if got, want := listAll(ctx, t, anon), []string{"app/web:1.0.0"}; !slices.Equal(got, want) {
		t.Fatalf("after prune %q, want %q", got, want)
	}
	// Every token request reached the token service with its credentials.
	got := ts.seen()
	if len(got) == 0 {
		t.Fatal("the token service saw no request")
	}
	for _, r := range got {
		if r != "/token pruner" && r != "/token puller" {
			t.Errorf("token service request %q, want /token with the pruner's or the puller's basic auth", r)
		}
	}

	t.Run("boot prune --token-url", func(t *testing.T) {
		seed.mustPush(ctx, t, "app/web:PR-3", newImage(t, old, randomLayer(t)))
		rulesFile := filepath.Join(t.TempDir(), "rules.yaml")
		if err := os.WriteFile(rulesFile, []byte("rules: [{match: ['^PR-'], keepLatest: 0}]\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("BOOT_REGISTRY_USERNAME", prunerUser.name)
		t.Setenv("BOOT_REGISTRY_PASSWORD", prunerUser.password)
		boot := func(args ...string) (int, string, string) {
			var stdout, stderr bytes.Buffer
			code := cmd.Execute(append([]string{"prune", "--registry", regURL, "--rules", rulesFile}, args...), &stdout, &stderr)
			return code, stdout.String(), stderr.String()
		}
		if code, out, errOut := boot(); code != 3 || !strings.Contains(errOut, "localhost") {
			t.Errorf("without --token-url: exit %d\n%s\n%s\nwant 3 (unreachable) naming the realm", code, out, errOut)
		}
		for _, bad := range []struct{ url, want string }{
			{"http://token:hunter2@127.0.0.1:1/token", "must not carry credentials"},
			{"http://127.0.0.1:1", "no path"},
			{"http://127.0.0.1:bad/token", "--token-url: invalid port"},
		} {
			code, _, errOut := boot("--token-url", bad.url)
			if code != 2 || !strings.Contains(errOut, bad.want) || strings.Contains(errOut, "hunter2") {
				t.Errorf("--token-url %s: exit %d, stderr %q; want 2 and %q", bad.url, code, errOut, bad.want)
			}
		}
		code, out, errOut := boot("--token-url", tokenURL.String())
		if code != 0 || !strings.Contains(out, "1 deleted") || !strings.Contains(out, "delete  PR-3") {
			t.Fatalf("with --token-url: exit %d\n%s\n%s", code, out, errOut)
		}
		if got, want := listAll(ctx, t, anon), []string{"app/web:1.0.0"}; !slices.Equal(got, want) {
			t.Errorf("after boot prune %q, want %q", got, want)
		}
	})
}

// TestTokenURLLeavesTheRegistrysOwnRealm: a realm on the registry's own
// host:port is not redirected, even though its path is the token URL's
// (which here is a closed port).
func TestTokenURLLeavesTheRegistrysOwnRealm(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ts := startTokenServer(t, prunerUser)
	seed := startRegistryWith(t, nil, registryAuth{httpSecret: "a-test-http-secret"}, registryOptions{anonymous: true})
	seed.mustPush(ctx, t, "app/web:1.0.0", newImage(t, time.Now(), randomLayer(t)))
	regURL := startTokenRegistry(t, seed.Root, ts, func(host string) string { return "http://" + host + "/token" }, true)
	closed := mustParseURL(t, fmt.Sprintf("http://127.0.0.1:%d/token", freePort(t)))
	c, err := pruner.NewClient(regURL, prunerUser.name, prunerUser.password, pruner.WithTokenURL(closed))
	if err != nil {
		t.Fatal(err)
	}
	if repos, err := c.Repositories(ctx); err != nil || !slices.Equal(repos, []string{"app/web"}) {
		t.Fatalf("repositories: %q %v", repos, err)
	}
	if got := ts.seen(); len(got) == 0 {
		t.Error("the registry's own /token saw no request")
	}
}

// TestTokenURLRefused: NewClient takes only http(s)://host[:port]/path, and
// never quotes a password.
func TestTokenURLRefused(t *testing.T) {
	for _, c := range []struct{ url, want string }{
		{"ftp://127.0.0.1:1/token", "scheme must be http or https"},
		{"/token", "scheme must be http or https"},
		{"http:///token", "no host"},
		{"http://:5001/token", "no host"},
		{"http://127.0.0.1:1", "no path"},
		{"http://127.0.0.1:1/", "no path"},
		{"http://u:hunter2@127.0.0.1:1/token", "must not carry credentials"},
		{"http://127.0.0.1:1/token?service=x", "must not have a query"},
		{"http://127.0.0.1:1/token?", "must not have a query"},
		{"http://127.0.0.1:1/token#top", "must not have a fragment"},
	} {
		_, err := pruner.NewClient("http://127.0.0.1:1", "", "", pruner.WithTokenURL(mustParseURL(t, c.url)))
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("token URL %s: %v, want %q", c.url, err, c.want)
		}
	}
	for _, ok := range []string{"http://127.0.0.1:5001/token", "https://127.0.0.1:1/auth/token"} {
		if _, err := pruner.NewClient("http://127.0.0.1:1", "", "", pruner.WithTokenURL(mustParseURL(t, ok))); err != nil {
			t.Errorf("token URL %s: %v", ok, err)
		}
	}
	if _, err := pruner.NewClient("http://127.0.0.1:1", "", "", pruner.WithTokenURL(nil)); err != nil {
		t.Errorf("nil token URL: %v", err)
	}
}
