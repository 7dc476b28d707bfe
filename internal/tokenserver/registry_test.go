package tokenserver

// The real registry: distribution v3.1.2 in process, configured with
// auth.token pointing at a token service on a loopback port, driven by
// go-containerregistry, which does the token dance itself.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/bcrypt"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"sigs.k8s.io/yaml"

	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	_ "github.com/distribution/distribution/v3/registry/auth/token"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
)

var quietRegistry sync.Once

// startRegistry runs distribution's App on a loopback port with the auth
// section authYAML(host:port) returns (YAML, indented under "auth:") and
// returns its host:port. With a token service, that port serves its /token
// too, as the chart's Ingress does: go-containerregistry refuses a realm on a
// private address unless it is the registry's own host:port.
func startRegistry(t testing.TB, ts *Handler, authYAML func(host string) string) string {
	t.Helper()
	// The registry logs every request and every 401 through logrus;
	// BOOT_TEST_REGISTRY_LOGS=1 shows them.
	quietRegistry.Do(func() {
		if os.Getenv("BOOT_TEST_REGISTRY_LOGS") == "" {
			logrus.SetLevel(logrus.FatalLevel)
		}
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfgYAML := fmt.Sprintf(`version: 0.1
log:
  accesslog:
    disabled: true
storage:
  inmemory: {}
  delete:
    enabled: true
http:
  addr: %s
  host: http://%s
  secret: a-test-http-secret
auth:
%s`, l.Addr(), l.Addr(), authYAML(l.Addr().String()))
	cfg, err := configuration.Parse(strings.NewReader(cfgYAML))
	if err != nil {
		t.Fatalf("registry config: %v\n%s", err, cfgYAML)
	}
	app := handlers.NewApp(context.Background(), cfg)
	mux := http.NewServeMux()
	mux.Handle("/", app)
	if ts != nil {
		mux.Handle("/token", ts)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = app.Shutdown()
	})
	return l.Addr().String()
}

// tokenAuthYAML is the registry's auth.token section for s, with the key
// given as keyOpt (rootcertbundle or jwks) and the realm on the registry's
// own host.
func tokenAuthYAML(s *tokenService, keyOpt string) func(host string) string {
	path := s.CertPath
	if keyOpt == "jwks" {
		path = s.JWKSPath
	}
	return func(host string) string {
		return fmt.Sprintf(`  token:
    realm: http://%s/token
    service: %s
    issuer: %s
    %s: %s
    signingalgorithms: [ES256]
`, host, s.Service, s.Issuer, keyOpt, path)
	}
}

// wantRefused asserts err is the registry's (or the token service's)
// refusal: HTTP 401 or 403 with code UNAUTHORIZED or DENIED.
func wantRefused(t *testing.T, what string, err error) {
	t.Helper()
	var terr *transport.Error
	if !errors.As(err, &terr) {
		t.Errorf("%s: got %v, want a refusal", what, err)
		return
	}
	if terr.StatusCode != http.StatusUnauthorized && terr.StatusCode != http.StatusForbidden {
		t.Errorf("%s: status %d, want 401 or 403: %v", what, terr.StatusCode, err)
	}
	for _, d := range terr.Errors {
		if d.Code == transport.UnauthorizedErrorCode || d.Code == transport.DeniedErrorCode {
			return
		}
	}
	t.Errorf("%s: codes %v, want UNAUTHORIZED or DENIED", what, terr.Errors)
}

func TestRegistryRoles(t *testing.T) {
	for _, keyOpt := range []string{"rootcertbundle", "jwks"} {
		t.Run(keyOpt, func(t *testing.T) { testRegistryRoles(t, keyOpt) })
	}
}

func testRegistryRoles(t *testing.T, keyOpt string) {
	s := startTokenService(t, bcrypt.MinCost)
	host := startRegistry(t, s.Handler, tokenAuthYAML(s, keyOpt))
	as := func(user, password string) remote.Option {
		return remote.WithAuth(&authn.Basic{Username: user, Password: password})
	}
	admin, pusher, puller, pruner := as("alice", "alice-Secret-1"), as("pusher", "pusher-Secret-2"), as("puller", "puller-Secret-3"), as("pruner", "pruner-Secret-4")
	ref := func(s string) name.Reference {
		r, err := name.ParseReference(host+"/"+s, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	reg, err := name.NewRegistry(host, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	dgst, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}

	// The admin pushes; the pull user pulls it, byte for byte.
	if err := remote.Write(ref("team/app:v1"), img, admin); err != nil {
		t.Fatalf("admin push: %v", err)
	}
	pulled, err := remote.Image(ref("team/app:v1"), puller)
	if err != nil {
		t.Fatalf("pull user pull: %v", err)
	}
	if d, err := pulled.Digest(); err != nil || d != dgst {
		t.Fatalf("pulled %v %v, pushed %v", d, err, dgst)
	}
	layers, err := pulled.Layers()
	if err != nil || len(layers) != 2 {
		t.Fatalf("layers: %v %d", err, len(layers))
	}
	rc, err := layers[0].Compressed()
	if err != nil {
		t.Fatalf("pull user blob: %v", err)
	}
	rc.Close()

	// The pull user may not push, not even a tag to an existing image.
	other, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	wantRefused(t, "pull user push", remote.Write(ref("team/app:v2"), other, puller))
	wantRefused(t, "pull user tag", remote.Tag(ref("team/app:v1").Context().Tag("latest"), img, puller))
	// Anonymous: nothing (GET: a HEAD answer has no error body).
	_, err = remote.Get(ref("team/app:v1"))
	wantRefused(t, "anonymous pull", err)

	// The push user pushes but may not delete.
	if err := remote.Write(ref("team/app:v2"), other, pusher); err != nil {
		t.Fatalf("push user push: %v", err)
	}
	wantRefused(t, "push user delete", remote.Delete(ref("team/app@"+dgst.String()), pusher))

	// Wrong password: refused by the token service.
	_, err = remote.Head(ref("team/app:v1"), as("alice", "wrong"))
	wantRefused(t, "wrong password", err)
	_, err = remote.Head(ref("team/app:v1"), as("nobody", "alice-Secret-1"))
	wantRefused(t, "unknown user", err)

	// The catalog: the admin and the pruner, not the push user.
	if repos, err := remote.Catalog(context.Background(), reg, admin); err != nil || !slices.Equal(repos, []string{"team/app"}) {
		t.Errorf("admin catalog: %v %v", repos, err)
	}
	_, err = remote.Catalog(context.Background(), reg, pusher)
	wantRefused(t, "push user catalog", err)

	// The pruner: catalog, tags, manifests, delete; never push.
	if repos, err := remote.Catalog(context.Background(), reg, pruner); err != nil || len(repos) != 1 {
		t.Errorf("pruner catalog: %v %v", repos, err)
	}
	if tags, err := remote.List(ref("team/app").Context(), pruner); err != nil || !slices.Equal(tags, []string{"v1", "v2"}) {
		t.Errorf("pruner tags: %v %v", tags, err)
	}
	wantRefused(t, "pruner push", remote.Write(ref("team/app:v3"), other, pruner))
	otherDigest, err := other.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Delete(ref("team/app@"+otherDigest.String()), pruner); err != nil {
		t.Errorf("pruner delete: %v", err)
	}

	// The admin deletes; the image is gone.
	if err := remote.Delete(ref("team/app@"+dgst.String()), admin); err != nil {
		t.Fatalf("admin delete: %v", err)
	}
	_, err = remote.Head(ref("team/app:v1"), puller)
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.StatusCode != http.StatusNotFound {
		t.Errorf("pull after delete: %v, want 404", err)
	}
}

// TestRegistryChallengeNamesTheTokenService: the registry's 401 sends
// clients to the token service with the service and scope to ask for.
func TestRegistryChallengeNamesTheTokenService(t *testing.T) {
	s := startTokenService(t, bcrypt.MinCost)
	host := startRegistry(t, s.Handler, tokenAuthYAML(s, "rootcertbundle"))
	resp, err := http.Get("http://" + host + "/v2/team/app/manifests/v1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := fmt.Sprintf(`Bearer realm="http://%s/token",service="%s",scope="repository:team/app:pull"`, host, s.Service)
	if got := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != http.StatusUnauthorized || got != want {
		t.Errorf("%d %q, want 401 %q", resp.StatusCode, got, want)
	}
}

// writeHtpasswd writes an htpasswd file for user at bcrypt cost and returns
// its path.
func writeHtpasswd(t testing.TB, user, password string, cost int) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(path, []byte(user+":"+string(h)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// pushTestImage pushes a small image as v1 and returns its digest.
func pushTestImage(t testing.TB, host string, auth authn.Authenticator) v1.Hash {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host+"/bench/app:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(auth)); err != nil {
		t.Fatalf("push: %v", err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestHelmGeneratedKey: a token Secret made with Helm's own functions (for
// the chart installed with plain helm, without boot, which makes the Secret
// with GenerateKey) works too: the signing key (genPrivateKey "ecdsa"), its
// certificate (genSelfSignedCertWithKey) and the users file's hash
// (htpasswd); the token server signs with the key, the registry trusts the
// certificate as its rootcertbundle.
func TestHelmGeneratedKey(t *testing.T) {
	tmpl := `{{- $key := genPrivateKey "ecdsa" -}}
{{- $cert := genSelfSignedCertWithKey "boot-token-server" nil nil 3650 $key -}}
key: {{ $key | b64enc }}
cert: {{ $cert.Cert | b64enc }}
users: {{ printf "helm-admin:admin:%s\n" (htpasswd "helm-admin" "helm-Secret-6" | trimPrefix "helm-admin:") | b64enc }}
`
	ch := &chart.Chart{
		Metadata:  &chart.Metadata{APIVersion: "v2", Name: "keys", Version: "0.1.0"},
		Templates: []*chart.File{{Name: "templates/keys.yaml", Data: []byte(tmpl)}},
	}
	out, err := engine.Render(ch, chartutil.Values{"Values": map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	var rendered struct{ Key, Cert, Users []byte }
	if err := yaml.Unmarshal([]byte(out["keys/templates/keys.yaml"]), &rendered); err != nil {
		t.Fatal(err)
	}
	s := startTokenService(t, bcrypt.MinCost)
	dir := t.TempDir()
	keyPath, certPath, usersPath := filepath.Join(dir, "key.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "users")
	for p, data := range map[string][]byte{keyPath: rendered.Key, certPath: rendered.Cert, usersPath: rendered.Users} {
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	signer, err := LoadSigner(keyPath)
	if err != nil {
		t.Fatalf("Helm's key: %v", err)
	}
	users, err := LoadUsers(usersPath, DefaultCache)
	if err != nil {
		t.Fatalf("Helm's users file: %v", err)
	}
	s.Handler.cfg.Signer, s.Handler.cfg.Users = signer, users
	s.CertPath = certPath
	host := startRegistry(t, s.Handler, tokenAuthYAML(s, "rootcertbundle"))
	if d := pushTestImage(t, host, &authn.Basic{Username: "helm-admin", Password: "helm-Secret-6"}); d.Hex == "" {
		t.Fatal("no digest")
	}
}
