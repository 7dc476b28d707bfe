package pruner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/sync/errgroup"
)

// ErrTagDeleteUnsupported is returned by DeleteTag when the registry cannot
// delete a tag on its own (distribution before v3 answers 405/UNSUPPORTED).
var ErrTagDeleteUnsupported = errors.New("registry does not support deleting a tag by name")

// Client talks to one registry over the distribution HTTP API. It lists
// repositories and tags, reads creation times, and deletes tags.
type Client struct {
	url      string
	registry name.Registry
	puller   *remote.Puller
	pusher   *remote.Pusher
	parallel int

	mu      sync.Mutex
	created map[string]time.Time // manifest or config digest -> created
}

// ClientOption configures a Client.
type ClientOption func(*clientConfig)

type clientConfig struct {
	transport http.RoundTripper
	parallel  int
	tokenURL  *url.URL
}

// WithTransport sets the HTTP transport (default http.DefaultTransport).
func WithTransport(t http.RoundTripper) ClientOption {
	return func(c *clientConfig) { c.transport = t }
}

// WithParallel bounds concurrent requests while reading tags (default 8).
func WithParallel(n int) ClientOption {
	return func(c *clientConfig) { c.parallel = n }
}

// WithTokenURL sends the registry's token requests to u instead of the realm
// its 401 challenge names. A registry with token auth announces its public
// realm (https://registry.example.com/token), which a pod reaching the
// registry through its cluster Service may not resolve or trust; u is the
// token service's own address, e.g. its Service inside the cluster:
// http://<release>-token.<ns>.svc:5001/token.
//
// Every request whose URL path is u's path and whose host is not the
// registry's own goes to u's scheme and host instead, with its path, query
// and headers unchanged, the Authorization header (the credentials) too:
// u must be trusted with them. A realm on the registry's own host is left
// alone. NewClient refuses u unless it is http or https with a host and a
// path, and without user info, query or fragment. A nil u (the default)
// leaves token requests going to the realm.
func WithTokenURL(u *url.URL) ClientOption {
	return func(c *clientConfig) {
		c.tokenURL = nil
		if u != nil {
			cp := *u
			c.tokenURL = &cp
		}
	}
}

// NewClient returns a client for the registry at registryURL
// (http://host:port or https://host[:port]). An empty username means
// anonymous access. The password is held only for basic auth and never
// appears in errors.
func NewClient(registryURL, username, password string, opts ...ClientOption) (*Client, error) {
	cfg := clientConfig{transport: http.DefaultTransport, parallel: 8}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.parallel < 1 {
		cfg.parallel = 1
	}
	u, err := url.Parse(registryURL)
	if err != nil {
		return nil, fmt.Errorf("registry URL %q: %v", registryURL, err)
	}
	if u.User != nil {
		return nil, errors.New("registry URL must not carry credentials; use the username and password settings")
	}
	if u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, fmt.Errorf("registry URL %q: want scheme://host[:port]", registryURL)
	}
	var nopts []name.Option
	switch u.Scheme {
	case "http":
		nopts = append(nopts, name.Insecure)
	case "https":
	default:
		return nil, fmt.Errorf("registry URL %q: scheme must be http or https", registryURL)
	}
	reg, err := name.NewRegistry(u.Host, nopts...)
	if err != nil {
		return nil, fmt.Errorf("registry URL %q: %v", registryURL, err)
	}
	rt := cfg.transport
	if cfg.tokenURL != nil {
		if err := checkTokenURL(cfg.tokenURL); err != nil {
			return nil, err
		}
		rt = TokenRedirect(rt, reg.RegistryStr(), cfg.tokenURL)
	}
	auth := authn.Anonymous
	if username != "" {
		auth = &authn.Basic{Username: username, Password: password}
	}
	ropts := []remote.Option{remote.WithAuth(auth), remote.WithTransport(rt), remote.WithUserAgent("boot-pruner")}
	puller, err := remote.NewPuller(ropts...)
	if err != nil {
		return nil, err
	}
	pusher, err := remote.NewPusher(ropts...)
	if err != nil {
		return nil, err
	}
	return &Client{
		url:      u.Scheme + "://" + u.Host,
		registry: reg,
		puller:   puller,
		pusher:   pusher,
		parallel: cfg.parallel,
		created:  map[string]time.Time{},
	}, nil
}

// checkTokenURL accepts http(s)://host[:port]/path and nothing more. Errors
// never quote user info, which may hold a password.
func checkTokenURL(u *url.URL) error {
	switch {
	case u.User != nil:
		return errors.New("token URL must not carry credentials; the registry's username and password are sent")
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("token URL %q: scheme must be http or https", u.String())
	case u.Hostname() == "":
		return fmt.Errorf("token URL %q: no host; want %s://host[:port]/path", u.String(), u.Scheme)
	case u.Path == "" || u.Path == "/":
		return fmt.Errorf("token URL %q: no path; want the token service's path too, e.g. %s://%s/token", u.String(), u.Scheme, u.Host)
	case u.RawQuery != "" || u.ForceQuery:
		return fmt.Errorf("token URL %q: must not have a query (the token request brings its own)", u.String())
	case u.Fragment != "":
		return fmt.Errorf("token URL %q: must not have a fragment", u.String())
	}
	return nil
}

// TokenRedirect wraps next so that token requests (to's path, on a host
// other than registry, the registry's host[:port] as request URLs name it)
// go to the scheme and host of to; everything else passes through
// unchanged. See WithTokenURL.
func TokenRedirect(next http.RoundTripper, registry string, to *url.URL) http.RoundTripper {
	return &tokenRedirect{next: next, registry: registry, to: to}
}

type tokenRedirect struct {
	next     http.RoundTripper
	registry string // the registry's host[:port], as request URLs name it
	to       *url.URL
}

func (t *tokenRedirect) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path != t.to.Path || r.URL.Host == t.registry {
		return t.next.RoundTrip(r)
	}
	out := r.Clone(r.Context())
	out.URL.Scheme, out.URL.Host = t.to.Scheme, t.to.Host
	out.Host = t.to.Host
	return t.next.RoundTrip(out)
}

// String names the registry (never the credentials).
func (c *Client) String() string { return c.url }

// Repositories lists every repository in the registry's catalog.
func (c *Client) Repositories(ctx context.Context) ([]string, error) {
	repos, err := c.puller.Catalog(ctx, c.registry)
	if err != nil {
		return nil, fmt.Errorf("list repositories of %s: %w", c.url, err)
	}
	sort.Strings(repos)
	return repos, nil
}

// Tags lists a repository's tags with their digests and creation times.
// A tag that disappears while it is read is left out.
func (c *Client) Tags(ctx context.Context, repository string) ([]Tag, error) {
	repo, err := c.repo(repository)
	if err != nil {
		return nil, err
	}
	names, err := c.puller.List(ctx, repo)
	if err != nil {
		if isNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("list tags of %s: %w", repository, err)
	}
	tags := make([]Tag, len(names))
	found := make([]bool, len(names))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.parallel)
	for i, tag := range names {
		g.Go(func() error {
			desc, err := c.puller.Get(gctx, repo.Tag(tag))
			if err != nil {
				if isNotFound(err) {
					return nil
				}
				return fmt.Errorf("read %s:%s: %w", repository, tag, err)
			}
			created, err := c.createdOf(gctx, repo, desc.Digest.String(), desc.MediaType.IsIndex(), desc.Manifest)
			if err != nil {
				return fmt.Errorf("read %s:%s: %w", repository, tag, err)
			}
			tags[i] = Tag{Name: tag, Digest: desc.Digest.String(), Created: created}
			found[i] = true
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := tags[:0]
	for i, t := range tags {
		if found[i] {
			out = append(out, t)
		}
	}
	return out, nil
}

const createdAnnotation = "org.opencontainers.image.created"

// createdOf returns the creation time of a manifest: an image's config
// "created"; an index's created annotation, else its newest child.
// Unknown or unreadable times are zero, not errors; transport errors are.
func (c *Client) createdOf(ctx context.Context, repo name.Repository, dgst string, isIndex bool, manifest []byte) (time.Time, error) {
	if t, ok := c.cached(dgst); ok {
		return t, nil
	}
	var created time.Time
	if isIndex {
		idx, err := v1.ParseIndexManifest(bytes.NewReader(manifest))
		if err != nil {
			return time.Time{}, nil
		}
		if t, err := time.Parse(time.RFC3339, idx.Annotations[createdAnnotation]); err == nil {
			created = t
		} else {
			for _, child := range idx.Manifests {
				d, err := c.puller.Get(ctx, repo.Digest(child.Digest.String()))
				if err != nil {
					if isNotFound(err) {
						continue
					}
					return time.Time{}, err
				}
				t, err := c.createdOf(ctx, repo, child.Digest.String(), d.MediaType.IsIndex(), d.Manifest)
				if err != nil {
					return time.Time{}, err
				}
				if t.After(created) {
					created = t
				}
			}
		}
	} else {
		m, err := v1.ParseManifest(bytes.NewReader(manifest))
		if err != nil {
			return time.Time{}, nil
		}
		t, err := c.configCreated(ctx, repo, m.Config.Digest.String())
		if err != nil {
			return time.Time{}, err
		}
		created = t
	}
	c.store(dgst, created)
	return created, nil
}

// maxConfigSize bounds how much of a config blob is read for "created".
const maxConfigSize = 1 << 20

func (c *Client) configCreated(ctx context.Context, repo name.Repository, dgst string) (time.Time, error) {
	if t, ok := c.cached(dgst); ok {
		return t, nil
	}
	layer, err := c.puller.Layer(ctx, repo.Digest(dgst))
	if err != nil {
		return time.Time{}, err
	}
	rc, err := layer.Compressed()
	if err != nil {
		if isNotFound(err) {
			return time.Time{}, nil
		}
		return time.Time{}, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxConfigSize))
	if err != nil {
		return time.Time{}, err
	}
	var cfg struct {
		Created time.Time `json:"created"`
	}
	var created time.Time
	if json.Unmarshal(data, &cfg) == nil {
		created = cfg.Created
	}
	c.store(dgst, created)
	return created, nil
}

func (c *Client) cached(dgst string) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.created[dgst]
	return t, ok
}

func (c *Client) store(dgst string, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.created[dgst] = t
}

// DeleteTag removes one tag (DELETE /v2/<repo>/manifests/<tag>); the
// manifest and other tags on it stay. Registries that cannot do this return
// ErrTagDeleteUnsupported.
func (c *Client) DeleteTag(ctx context.Context, repository, tag string) error {
	repo, err := c.repo(repository)
	if err != nil {
		return err
	}
	err = c.pusher.Delete(ctx, repo.Tag(tag))
	if isUnsupported(err) {
		return fmt.Errorf("delete %s:%s: %w", repository, tag, ErrTagDeleteUnsupported)
	}
	if err != nil {
		return fmt.Errorf("delete %s:%s: %w", repository, tag, err)
	}
	return nil
}

// DeleteManifest removes a manifest by digest, and with it every tag on it.
func (c *Client) DeleteManifest(ctx context.Context, repository, dgst string) error {
	repo, err := c.repo(repository)
	if err != nil {
		return err
	}
	if err := c.pusher.Delete(ctx, repo.Digest(dgst)); err != nil {
		return fmt.Errorf("delete %s@%s: %w", repository, dgst, err)
	}
	return nil
}

func (c *Client) repo(repository string) (name.Repository, error) {
	if _, err := name.NewRepository(c.registry.Name()+"/"+repository, name.StrictValidation); err != nil {
		return name.Repository{}, fmt.Errorf("repository %q: %v", repository, err)
	}
	return c.registry.Repo(repository), nil
}

func isNotFound(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode == http.StatusNotFound
}

func isUnsupported(err error) bool {
	var te *transport.Error
	if !errors.As(err, &te) {
		return false
	}
	if te.StatusCode == http.StatusMethodNotAllowed {
		return true
	}
	for _, d := range te.Errors {
		if d.Code == transport.UnsupportedErrorCode {
			return true
		}
	}
	return false
}
