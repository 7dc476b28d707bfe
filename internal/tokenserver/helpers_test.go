package tokenserver

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/bootctl/boot/internal/testenv"
)

// testUser is one user of a test's users file.
type testUser struct {
	name, role, password string
}

var testUsers = []testUser{
	{"alice", "admin", "alice-Secret-1"},
	{"pusher", "push", "pusher-Secret-2"},
	{"puller", "pull", "puller-Secret-3"},
	{"pruner", "delete", "pruner-Secret-4"},
}

// usersFile writes users with bcrypt hashes of the given cost and returns
// the path and the file's content (the hashes, which logs must not show).
func usersFile(t testing.TB, dir string, cost int, users []testUser) (string, string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("# name:role:bcrypt-hash\n\n")
	for _, u := range users {
		h, err := bcrypt.GenerateFromPassword([]byte(u.password), cost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:%s:%s\n", u.name, u.role, h)
	}
	path := filepath.Join(dir, "users")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, b.String()
}

// tokenService is a token server on a loopback port with its key files.
type tokenService struct {
	URL      string // its own loopback server
	Handler  *Handler
	Users    *Users
	Signer   *Signer
	Log      *testenv.Buffer
	Hashes   string // the users file's content
	CertPath string
	JWKSPath string
	Issuer   string
	Service  string
}

const (
	testIssuer  = "boot-token-server"
	testService = "registry.test"
)

func startTokenService(t testing.TB, cost int) *tokenService {
	t.Helper()
	dir := t.TempDir()
	usersPath, hashes := usersFile(t, dir, cost, testUsers)
	users, err := LoadUsers(usersPath, DefaultCache)
	if err != nil {
		t.Fatal(err)
	}
	files, err := GenerateKey(testIssuer, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(dir, "key.pem")
	certPath := filepath.Join(dir, "cert.pem")
	jwksPath := filepath.Join(dir, "jwks.json")
	for p, data := range map[string][]byte{keyPath: files.Key, certPath: files.Cert, jwksPath: files.JWKS} {
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	signer, err := LoadSigner(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	logBuf := &testenv.Buffer{}
	h, err := NewHandler(Config{
		Users: users, Signer: signer, Issuer: testIssuer, Service: testService, TTL: DefaultTTL,
		Log: slog.New(slog.NewJSONHandler(logBuf, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &tokenService{
		URL: srv.URL, Handler: h, Users: users, Signer: signer, Log: logBuf, Hashes: hashes,
		CertPath: certPath, JWKSPath: jwksPath, Issuer: testIssuer, Service: testService,
	}
}

// getToken asks GET /token; user "" is anonymous. It returns the status,
// the decoded body and the raw body.
func (s *tokenService) getToken(t testing.TB, user, password string, scopes ...string) (int, map[string]any, string) {
	t.Helper()
	q := url.Values{"service": {s.Service}, "scope": scopes}
	if user != "" {
		q.Set("account", user)
	}
	req, err := http.NewRequest(http.MethodGet, s.URL+"/token?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	return do(t, req)
}

// postToken asks POST /token with the OAuth2 password grant.
func (s *tokenService) postToken(t testing.TB, form url.Values) (int, map[string]any, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, req)
}

func do(t testing.TB, req *http.Request) (int, map[string]any, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("%s %s: %d, body not JSON: %q", req.Method, req.URL.Path, resp.StatusCode, raw)
	}
	return resp.StatusCode, body, string(raw)
}

// payload decodes a token's claims without verifying them (the registry
// tests verify).
func payload(t testing.TB, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c
}
