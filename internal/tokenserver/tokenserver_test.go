package tokenserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/registry/auth"
	"github.com/distribution/distribution/v3/registry/auth/token"
	"golang.org/x/crypto/bcrypt"

	"github.com/bootctl/boot/internal/testenv"
)

func TestParseUsersErrorsNameTheLine(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	h := string(hash)
	for _, c := range []struct{ file, want string }{
		{"a:admin:" + h + "\nb:push\n", "users:2: expected name:role:bcrypt-hash"},
		{"a:root:" + h + "\n", `users:1: user "a": role "root": expected one of [admin push pull delete]`},
		{"a::" + h + "\n", `users:1: user "a": role "": expected one of`},
		{"# c\n:pull:" + h + "\n", "users:2: the user name must be non-empty"},
		{"a:pull:plaintext-password\n", `users:1: user "a": the password is not a bcrypt hash`},
		{"a:pull:" + h + "\na:push:" + h + "\n", `users:2: user "a" is listed twice`},
		{"# nobody\n", "users: no users"},
	} {
		_, err := ParseUsers("users", []byte(c.file))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.file, err, c.want)
		}
		if err != nil && (strings.Contains(err.Error(), h) || strings.Contains(err.Error(), "plaintext-password")) {
			t.Errorf("error quotes a secret: %v", err)
		}
	}
	got, err := ParseUsers("users", []byte("  # admins\n\nroot:admin:"+h+"\r\nci:push:"+h+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["root"].role != RoleAdmin || got["ci"].role != RolePush {
		t.Errorf("parsed %v", got)
	}
}

func TestParseScopes(t *testing.T) {
	got, err := ParseScopes([]string{
		"repository:library/alpine:pull,push",
		"repository:127.0.0.1:5000/app:pull registry:catalog:*",
		"repository(plugin):vendor/p:pull,pull",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []ResourceActions{
		{Type: "repository", Name: "library/alpine", Actions: []string{"pull", "push"}},
		{Type: "repository", Name: "127.0.0.1:5000/app", Actions: []string{"pull"}},
		{Type: "registry", Name: "catalog", Actions: []string{"*"}},
		{Type: "repository", Class: "plugin", Name: "vendor/p", Actions: []string{"pull"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	for _, bad := range []string{"repository", "repository:pull", ":a:pull", "repository::pull", "repository(x:a:pull"} {
		if _, err := ParseScopes([]string{bad}); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestGrantIsTheIntersection(t *testing.T) {
	req, err := ParseScopes([]string{"repository:app:pull,push,delete,*", "registry:catalog:*", "repository:app:pull", "other:x:pull"})
	if err != nil {
		t.Fatal(err)
	}
	for role, want := range map[Role]string{
		RoleAdmin:  "repository:app:pull,push,delete,* registry:catalog:*",
		RolePush:   "repository:app:pull,push",
		RolePull:   "repository:app:pull",
		RoleDelete: "repository:app:pull,delete registry:catalog:*",
	} {
		if got := accessLog(Grant(role, req)); got != want {
			t.Errorf("%s: got %q, want %q", role, got, want)
		}
	}
	if g := Grant(RoleAdmin, nil); g == nil || len(g) != 0 {
		t.Errorf("no scope: got %#v, want an empty list (the access claim is [])", g)
	}
}

// TestKeyIDIsDistributionsThumbprint: the registry finds the key of a
// rootcertbundle certificate by token.GetJWKThumbprint; KeyID must agree,
// also for a key whose coordinate has a leading zero byte.
func TestKeyIDIsDistributionsThumbprint(t *testing.T) {
	short := 0
	for i := 0; i < 2000 && short < 2; i++ {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := KeyID(&k.PublicKey), token.GetJWKThumbprint(&k.PublicKey); got != want {
			t.Fatalf("KeyID %s, distribution %s", got, want)
		}
		if x, y := coordinates(&k.PublicKey); x[0] == 0 || y[0] == 0 {
			short++
		}
	}
	if short == 0 {
		t.Fatal("no key with a short coordinate among 2000")
	}
}

func TestLoadSigner(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	files, err := GenerateKey("i", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s, err := LoadSigner(write("key.pem", string(files.Key)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(files.JWKS), `"kid": "`+s.KeyID()+`"`) {
		t.Errorf("JWKS %s lacks kid %s", files.JWKS, s.KeyID())
	}
	for name, c := range map[string]struct{ data, want string }{
		"empty.pem": {"", "empty.pem: no PEM block"},
		"cert.pem":  {string(files.Cert), `cert.pem: PEM block "CERTIFICATE"`},
		"junk.pem":  {"-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n", "junk.pem:"},
	} {
		_, err := LoadSigner(write(name, c.data))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", name, err, c.want)
		}
	}
	if _, err := LoadSigner(filepath.Join(dir, "missing.pem")); err == nil || !strings.Contains(err.Error(), "missing.pem") {
		t.Errorf("missing file: %v", err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewSigner(p384); err == nil || !strings.Contains(err.Error(), "P-256") {
		t.Errorf("P-384 key: %v", err)
	}
}

// TestDistributionVerifiesTokens runs distribution's own token access
// controller, configured with the certificate and with the JWKS, on tokens
// of each role.
func TestDistributionVerifiesTokens(t *testing.T) {
	s := startTokenService(t, bcrypt.MinCost)
	for _, keyOpt := range []string{"rootcertbundle", "jwks"} {
		path := s.CertPath
		if keyOpt == "jwks" {
			path = s.JWKSPath
		}
		ac, err := auth.GetAccessController("token", map[string]any{
			"realm": s.URL + "/token", "service": s.Service, "issuer": s.Issuer, keyOpt: path,
			"signingalgorithms": []any{"ES256"},
		})
		if err != nil {
			t.Fatal(err)
		}
		push := auth.Access{Resource: auth.Resource{Type: "repository", Name: "app"}, Action: "push"}
		for _, c := range []struct {
			user, password string
			ok             bool
		}{{"pusher", "pusher-Secret-2", true}, {"alice", "alice-Secret-1", true}, {"puller", "puller-Secret-3", false}, {"", "", false}} {
			status, body, _ := s.getToken(t, c.user, c.password, "repository:app:pull,push")
			if status != http.StatusOK {
				t.Fatalf("%s: token status %d", c.user, status)
			}
			req, _ := http.NewRequest(http.MethodPut, "http://127.0.0.1:1/v2/app/manifests/v1", nil)
			req.Header.Set("Authorization", "Bearer "+body["token"].(string))
			_, err := ac.Authorized(req, push)
			if c.ok && err != nil {
				t.Errorf("%s (%s): push refused: %v", c.user, keyOpt, err)
			}
			if !c.ok && (err == nil || err.Error() != token.ErrInsufficientScope.Error()) {
				t.Errorf("%s (%s): got %v, want insufficient scope", c.user, keyOpt, err)
			}
		}
	}
}

func TestGetToken(t *testing.T) {
	s := startTokenService(t, bcrypt.MinCost)
	start := time.Now().Unix()
	status, body, _ := s.getToken(t, "alice", "alice-Secret-1", "repository:app:pull,push,delete", "registry:catalog:*")
	if status != http.StatusOK {
		t.Fatalf("status %d %v", status, body)
	}
	if body["token"] != body["access_token"] || body["expires_in"] != float64(300) {
		t.Errorf("body %v", body)
	}
	if _, err := time.Parse(time.RFC3339, body["issued_at"].(string)); err != nil {
		t.Errorf("issued_at: %v", err)
	}
	c := payload(t, body["token"].(string))
	if c["iss"] != testIssuer || c["sub"] != "alice" || c["aud"] != testService || c["jti"] == "" {
		t.Errorf("claims %v", c)
	}
	if exp, iat := int64(c["exp"].(float64)), int64(c["iat"].(float64)); iat < start-1 || exp != iat+300 || c["nbf"] != c["iat"] {
		t.Errorf("times %v", c)
	}
	want := []any{
		map[string]any{"type": "repository", "name": "app", "actions": []any{"pull", "push", "delete"}},
		map[string]any{"type": "registry", "name": "catalog", "actions": []any{"*"}},
	}
	if !reflect.DeepEqual(c["access"], want) {
		t.Errorf("access %v", c["access"])
	}
	header, _ := base64.RawURLEncoding.DecodeString(strings.Split(body["token"].(string), ".")[0])
	if want := `{"alg":"ES256","kid":"` + s.Signer.KeyID() + `","typ":"JWT"}`; string(header) != want {
		t.Errorf("header %s, want %s", header, want)
	}

	// docker login asks with no scope.
	if status, body, _ := s.getToken(t, "puller", "puller-Secret-3"); status != http.StatusOK || !reflect.DeepEqual(payload(t, body["token"].(string))["access"], []any{}) {
		t.Errorf("login without scope: %d %v", status, body)
	}
	// Anonymous: a token that grants nothing.
	status, body, _ = s.getToken(t, "", "", "repository:app:pull")
	if c := payload(t, body["token"].(string)); status != http.StatusOK || c["sub"] != "" || !reflect.DeepEqual(c["access"], []any{}) {
		t.Errorf("anonymous: %d %v", status, c)
	}

	// Wrong password and unknown user: the same answer.
	st1, _, raw1 := s.getToken(t, "alice", "wrong", "repository:app:pull")
	st2, _, raw2 := s.getToken(t, "mallory", "alice-Secret-1", "repository:app:pull")
	if st1 != http.StatusUnauthorized || st2 != http.StatusUnauthorized || raw1 != raw2 {
		t.Errorf("wrong password %d %s; unknown user %d %s", st1, raw1, st2, raw2)
	}

	q := url.Values{"service": {testService}, "account": {"puller"}}
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/token?"+q.Encode(), nil)
	req.SetBasicAuth("alice", "alice-Secret-1")
	if status, _, raw := do(t, req); status != http.StatusBadRequest || !strings.Contains(raw, "account does not match") {
		t.Errorf("account mismatch: %d %s", status, raw)
	}
	req, _ = http.NewRequest(http.MethodGet, s.URL+"/token?service=other", nil)
	if status, _, raw := do(t, req); status != http.StatusBadRequest || !strings.Contains(raw, `service \"other\"`) {
		t.Errorf("other service: %d %s", status, raw)
	}
	req, _ = http.NewRequest(http.MethodGet, s.URL+"/token?scope=repository:app", nil)
	if status, _, raw := do(t, req); status != http.StatusBadRequest || !strings.Contains(raw, "invalid_scope") {
		t.Errorf("bad scope: %d %s", status, raw)
	}
}

func TestPostToken(t *testing.T) {
	s := startTokenService(t, bcrypt.MinCost)
	form := url.Values{
		"grant_type": {"password"}, "username": {"pusher"}, "password": {"pusher-Secret-2"},
		"service": {testService}, "client_id": {"containerd-client"}, "access_type": {"offline"},
		"scope": {"repository:app:pull,push,delete repository:lib:pull"},
	}
	status, body, raw := s.postToken(t, form)
	if status != http.StatusOK || body["scope"] != "repository:app:pull,push repository:lib:pull" || body["expires_in"] != float64(300) {
		t.Fatalf("%d %s", status, raw)
	}
	if _, ok := body["refresh_token"]; ok {
		t.Errorf("a refresh token was issued: %s", raw)
	}
	if c := payload(t, body["access_token"].(string)); c["sub"] != "pusher" {
		t.Errorf("claims %v", c)
	}
	form.Set("password", "wrong")
	if status, _, raw := s.postToken(t, form); status != http.StatusUnauthorized || !strings.Contains(raw, "invalid_grant") {
		t.Errorf("wrong password: %d %s", status, raw)
	}
	form.Set("grant_type", "refresh_token")
	if status, _, raw := s.postToken(t, form); status != http.StatusBadRequest || !strings.Contains(raw, "unsupported_grant_type") {
		t.Errorf("refresh_token grant: %d %s", status, raw)
	}
	form.Del("grant_type")
	if status, _, _ := s.postToken(t, form); status != http.StatusBadRequest {
		t.Errorf("no grant_type: %d", status)
	}
}

// TestNoSecretsInLogs logs a failed and a successful login of every kind
// and looks for the passwords, the hashes, the Basic header and the tokens.
func TestNoSecretsInLogs(t *testing.T) {
	s := startTokenService(t, bcrypt.MinCost)
	secrets := []string{"alice-Secret-1", "not-the-Secret", base64.StdEncoding.EncodeToString([]byte("alice:alice-Secret-1"))}
	for _, line := range strings.Split(strings.TrimSpace(s.Hashes), "\n") {
		if f := strings.SplitN(line, ":", 3); len(f) == 3 {
			secrets = append(secrets, f[2])
		}
	}
	if st, _, _ := s.getToken(t, "alice", "not-the-Secret", "repository:app:pull"); st != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", st)
	}
	_, body, _ := s.getToken(t, "alice", "alice-Secret-1", "repository:app:pull")
	secrets = append(secrets, body["token"].(string), strings.Split(body["token"].(string), ".")[2])
	_, body, _ = s.postToken(t, url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alice-Secret-1"}, "scope": {"repository:app:push"}})
	secrets = append(secrets, body["access_token"].(string))
	s.postToken(t, url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"not-the-Secret"}})

	logs := s.Log.String()
	for _, want := range []string{`"msg":"token refused: invalid user name or password","user":"alice"`, `"msg":"token issued","user":"alice","role":"admin"`, `"access":"repository:app:pull"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
	for _, secret := range secrets {
		if strings.Contains(logs, secret) {
			t.Errorf("log shows a secret %.12q...:\n%s", secret, logs)
		}
	}
}

// TestCacheSkipsBcrypt: at the chart's cost (10) the first token request
// runs bcrypt, the second is served from the cache; a changed users file
// forgets the verification, and the old password stops working.
func TestCacheSkipsBcrypt(t *testing.T) {
	s := startTokenService(t, bcrypt.DefaultCost)
	timed := func(user, password string) (int, time.Duration) {
		start := time.Now()
		st, _, _ := s.getToken(t, user, password, "repository:app:pull")
		return st, time.Since(start)
	}
	st1, first := timed("puller", "puller-Secret-3")
	st2, second := timed("puller", "puller-Secret-3")
	t.Logf("first token request %v (bcrypt), second %v (cached)", first, second)
	if st1 != http.StatusOK || st2 != http.StatusOK {
		t.Fatalf("status %d, %d", st1, st2)
	}
	if second*5 > first {
		t.Errorf("second request %v is not much faster than the first %v", second, first)
	}
	if n := s.Users.cache.len(); n != 1 {
		t.Errorf("cache holds %d verifications, want 1", n)
	}
	// A wrong password is never cached.
	if st, _ := timed("puller", "wrong"); st != http.StatusUnauthorized {
		t.Errorf("wrong password: %d", st)
	}
	// An unknown user costs a bcrypt check too: timing tells no names.
	if st, unknown := timed("nobody", "puller-Secret-3"); st != http.StatusUnauthorized || unknown*3 < first {
		t.Errorf("unknown user: %d in %v, bcrypt took %v", st, unknown, first)
	}
	if n := s.Users.cache.len(); n != 1 {
		t.Errorf("cache holds %d verifications after a failure, want 1", n)
	}

	changed := append([]testUser(nil), testUsers...)
	changed[2].password = "puller-New-5"
	path := s.Users.path
	usersFile(t, filepath.Dir(path), bcrypt.MinCost, changed)
	if ok, err := s.Users.Reload(); !ok || err != nil {
		t.Fatalf("reload: %v %v", ok, err)
	}
	if n := s.Users.cache.len(); n != 0 {
		t.Errorf("cache holds %d verifications after reload", n)
	}
	if st, _ := timed("puller", "puller-Secret-3"); st != http.StatusUnauthorized {
		t.Errorf("old password after reload: %d", st)
	}
	if st, _ := timed("puller", "puller-New-5"); st != http.StatusOK {
		t.Errorf("new password after reload: %d", st)
	}
	if ok, err := s.Users.Reload(); ok || err != nil {
		t.Errorf("reload of an unchanged file: %v %v", ok, err)
	}
}

func TestCacheBounds(t *testing.T) {
	c, err := newVerifyCache(2, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	c.now = func() time.Time { return now }
	a, b, d := c.key("a", "1"), c.key("b", "1"), c.key("a:b", "")
	if a == c.key("a", "2") || d == c.key("a", "b:") {
		t.Fatal("keys collide")
	}
	c.add(a, 0)
	c.add(b, 0)
	c.add(d, 0)
	if c.len() != 2 || c.hit(a) || !c.hit(b) || !c.hit(d) {
		t.Errorf("size bound: len %d, a %v b %v d %v", c.len(), c.hit(a), c.hit(b), c.hit(d))
	}
	now = now.Add(61 * time.Second)
	if c.hit(b) || c.len() != 1 {
		t.Errorf("an expired verification is a hit, or stays (len %d)", c.len())
	}
	gen := c.generation()
	c.clear()
	c.add(a, gen)
	if c.hit(a) {
		t.Error("a verification from before clear was added")
	}
	other, err := newVerifyCache(2, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if other.key("a", "1") == a {
		t.Error("two processes share a cache key")
	}
}

// TestWatchReloads: the users file is re-read on the signal channel and on
// the interval, a broken file keeps the old users and is logged.
func TestWatchReloads(t *testing.T) {
	dir := t.TempDir()
	path, _ := usersFile(t, dir, bcrypt.MinCost, testUsers[:1])
	u, err := LoadUsers(path, DefaultCache)
	if err != nil {
		t.Fatal(err)
	}
	logBuf := &testenv.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	hup := make(chan os.Signal, 1)
	go func() {
		u.Watch(ctx, time.Hour, hup, slog.New(slog.NewTextHandler(logBuf, nil)))
		close(done)
	}()
	defer func() { cancel(); <-done }()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !cond(); {
			if time.Now().After(deadline) {
				t.Fatalf("%s; log:\n%s", what, logBuf.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	usersFile(t, dir, bcrypt.MinCost, testUsers)
	hup <- os.Interrupt
	waitFor("SIGHUP did not reload", func() bool { return u.Len() == len(testUsers) })
	if err := os.WriteFile(path, []byte("broken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hup <- os.Interrupt
	waitFor("a broken file was not logged", func() bool { return strings.Contains(logBuf.String(), "users file not reloaded") })
	if u.Len() != len(testUsers) {
		t.Errorf("a broken file changed the users: %d", u.Len())
	}
	if _, err := u.Authenticate("pusher", "pusher-Secret-2"); err != nil {
		t.Errorf("after a broken reload: %v", err)
	}
}
