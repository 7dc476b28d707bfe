package tokenserver

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// Config is the token service's setup.
type Config struct {
	Users  *Users
	Signer *Signer
	// Issuer is the tokens' iss: the registry's auth.token.issuer.
	Issuer string
	// Service is the tokens' aud: the registry's auth.token.service. A
	// request naming another service is refused.
	Service string
	// TTL is how long a token is valid.
	TTL time.Duration
	// Log gets one line per token issued or refused, with the user name,
	// never a password, hash or token.
	Log *slog.Logger
}

// DefaultTTL is a token's default lifetime.
const DefaultTTL = 5 * time.Minute

// maxForm bounds a POST /token body.
const maxForm = 64 << 10

// Handler serves GET and POST /token and GET /healthz.
type Handler struct {
	cfg Config
	now func() time.Time
}

// NewHandler checks cfg and returns the token service.
func NewHandler(cfg Config) (*Handler, error) {
	switch {
	case cfg.Users == nil || cfg.Signer == nil || cfg.Log == nil:
		return nil, errors.New("token server: users, signer and log are required")
	case cfg.Issuer == "":
		return nil, errors.New("token server: the issuer is empty")
	case cfg.Service == "":
		return nil, errors.New("token server: the service is empty")
	case cfg.TTL < time.Minute:
		return nil, fmt.Errorf("token server: TTL %s: expected at least 1m (the registry allows 60 s of clock skew)", cfg.TTL)
	}
	return &Handler{cfg: cfg, now: time.Now}, nil
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/healthz" && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	case r.URL.Path != "/token":
		http.NotFound(w, r)
	case r.Method == http.MethodGet:
		h.serveGet(w, r)
	case r.Method == http.MethodPost:
		h.servePost(w, r)
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// tokenResponse is the answer to GET /token ("token" is the specification's
// field, "access_token" the one OAuth2 clients read).
type tokenResponse struct {
	Token       string `json:"token"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
	IssuedAt    string `json:"issued_at"`
}

// oauthResponse is the answer to POST /token.
type oauthResponse struct {
	AccessToken string `json:"access_token"`
	Scope       string `json:"scope"`
	ExpiresIn   int    `json:"expires_in"`
	IssuedAt    string `json:"issued_at"`
}

// serveGet is the token specification's request: Basic credentials (or
// none: an anonymous token with no access), service, scope (repeatable) and
// account (the user name, when given it must match).
func (h *Handler) serveGet(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !h.checkService(w, r, q.Get("service")) {
		return
	}
	scopes, err := ParseScopes(q["scope"])
	if err != nil {
		h.badRequest(w, r, "invalid_scope", err.Error())
		return
	}
	name, password, hasAuth := r.BasicAuth()
	if account := q.Get("account"); hasAuth && account != "" && account != name {
		h.badRequest(w, r, "invalid_request", "account does not match the user name of the credentials")
		return
	}
	subject, granted, ok := h.authorize(w, r, name, password, hasAuth, scopes)
	if !ok {
		return
	}
	token, now, err := h.issue(subject, granted)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.writeJSON(w, tokenResponse{Token: token, AccessToken: token, ExpiresIn: int(h.cfg.TTL.Seconds()), IssuedAt: now.Format(time.RFC3339)})
}

// servePost is the OAuth2 password grant. No refresh tokens are issued, so
// grant_type=refresh_token is refused as unsupported (400): containerd then
// falls back to GET.
func (h *Handler) servePost(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		h.badRequest(w, r, "invalid_request", "the body is not a form")
		return
	}
	f := r.PostForm
	if !h.checkService(w, r, f.Get("service")) {
		return
	}
	switch gt := f.Get("grant_type"); gt {
	case "password":
	case "":
		h.badRequest(w, r, "invalid_request", "grant_type is missing")
		return
	default:
		h.badRequest(w, r, "unsupported_grant_type", fmt.Sprintf("grant_type %q is not supported (only password)", gt))
		return
	}
	scopes, err := ParseScopes(f["scope"])
	if err != nil {
		h.badRequest(w, r, "invalid_scope", err.Error())
		return
	}
	subject, granted, ok := h.authorize(w, r, f.Get("username"), f.Get("password"), true, scopes)
	if !ok {
		return
	}
	token, now, err := h.issue(subject, granted)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	scope := make([]string, len(granted))
	for i, g := range granted {
		scope[i] = g.String()
	}
	h.writeJSON(w, oauthResponse{AccessToken: token, Scope: strings.Join(scope, " "), ExpiresIn: int(h.cfg.TTL.Seconds()), IssuedAt: now.Format(time.RFC3339)})
}

func (h *Handler) checkService(w http.ResponseWriter, r *http.Request, service string) bool {
	if service != "" && service != h.cfg.Service {
		h.badRequest(w, r, "invalid_request", fmt.Sprintf("service %q is not %q", service, h.cfg.Service))
		return false
	}
	return true
}

// authorize authenticates the credentials, if any, and grants the role's
// share of scopes. On a wrong user name or password it answers 401 itself
// and says no more than that.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request, name, password string, hasAuth bool, scopes []ResourceActions) (subject string, granted []ResourceActions, ok bool) {
	if !hasAuth {
		h.cfg.Log.Info("anonymous token", "remote", r.RemoteAddr, "requested", len(scopes))
		return "", []ResourceActions{}, true
	}
	role, err := h.cfg.Users.Authenticate(name, password)
	if err != nil {
		h.cfg.Log.Warn("token refused: invalid user name or password", "user", name, "remote", r.RemoteAddr)
		w.Header().Set("WWW-Authenticate", `Basic realm="`+h.cfg.Service+`"`)
		h.writeError(w, http.StatusUnauthorized, "invalid_grant", ErrBadCredentials.Error())
		return "", nil, false
	}
	granted = Grant(role, scopes)
	h.cfg.Log.Info("token issued", "user", name, "role", role, "remote", r.RemoteAddr, "access", accessLog(granted))
	return name, granted, true
}

// claims is the token's payload, as the specification and distribution's
// token.ClaimSet define it.
type claims struct {
	Issuer     string            `json:"iss"`
	Subject    string            `json:"sub"`
	Audience   string            `json:"aud"`
	Expiration int64             `json:"exp"`
	NotBefore  int64             `json:"nbf"`
	IssuedAt   int64             `json:"iat"`
	JWTID      string            `json:"jti"`
	Access     []ResourceActions `json:"access"`
}

func (h *Handler) issue(subject string, access []ResourceActions) (string, time.Time, error) {
	now := h.now().UTC().Truncate(time.Second)
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return "", now, err
	}
	token, err := h.cfg.Signer.Sign(claims{
		Issuer:     h.cfg.Issuer,
		Subject:    subject,
		Audience:   h.cfg.Service,
		Expiration: now.Add(h.cfg.TTL).Unix(),
		NotBefore:  now.Unix(),
		IssuedAt:   now.Unix(),
		JWTID:      base64.RawURLEncoding.EncodeToString(id),
		Access:     access,
	})
	return token, now, err
}

// accessLog is the granted access as scope strings, for the log.
func accessLog(granted []ResourceActions) string {
	s := make([]string, len(granted))
	for i, g := range granted {
		s[i] = g.String()
	}
	return strings.Join(s, " ")
}

func (h *Handler) writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers with OAuth2's error and error_description; a 401 also
// carries the registry's errors list, which docker prints.
func (h *Handler) writeError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	body := map[string]any{"error": code, "error_description": message}
	if status == http.StatusUnauthorized {
		body["errors"] = []map[string]string{{"code": "UNAUTHORIZED", "message": message}}
	}
	_ = json.NewEncoder(w).Encode(body)
}

func (h *Handler) badRequest(w http.ResponseWriter, r *http.Request, code, message string) {
	h.cfg.Log.Warn("token request refused", "remote", r.RemoteAddr, "reason", message)
	h.writeError(w, http.StatusBadRequest, code, message)
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	h.cfg.Log.Error("token not issued", "remote", r.RemoteAddr, "err", err)
	h.writeError(w, http.StatusInternalServerError, "server_error", "the token could not be issued")
}
