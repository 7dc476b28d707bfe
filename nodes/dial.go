package nodes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/bootctl/boot/internal/boundedfile"
)

// Retry bounds connection attempts. Only network failures (ErrUnreachable)
// are retried; host-key and authentication failures never are.
type Retry struct {
	Attempts int           // total attempts, at least 1; default 4
	Initial  time.Duration // first delay; default 500ms, doubled each time
	Max      time.Duration // delay cap; default 8s
}

// DefaultRetry is used when no WithRetry option is given.
var DefaultRetry = Retry{Attempts: 4, Initial: 500 * time.Millisecond, Max: 8 * time.Second}

// delay is the wait before attempt n+1 (n >= 1): exponential with jitter.
func (r Retry) delay(n int) time.Duration {
	d := r.Initial << (n - 1)
	if d > r.Max || d <= 0 {
		d = r.Max
	}
	// Up to 20% jitter so many hosts do not retry in lockstep.
	return d - time.Duration(rand.Int64N(int64(d)/5+1))
}

// Option tunes Dial and Connect.
type Option func(*options)

type options struct {
	log       *slog.Logger
	output    io.Writer
	retry     Retry
	keepAlive time.Duration
	sessions  int
}

// WithLogger sends the package's logs to l (default: discarded).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithOutput streams every command's output, line by line and prefixed
// "[name] ", to w unless a Run call says otherwise (see Stream).
func WithOutput(w io.Writer) Option { return func(o *options) { o.output = w } }

// WithRetry sets how connecting retries network failures.
func WithRetry(r Retry) Option { return func(o *options) { o.retry = r } }

// WithKeepAlive sets the keep-alive interval that detects dead connections
// (default 15s; 0 disables).
func WithKeepAlive(d time.Duration) Option { return func(o *options) { o.keepAlive = d } }

// WithMaxSessions bounds concurrent sessions per connection (default 8,
// below OpenSSH's default MaxSessions of 10).
func WithMaxSessions(n int) Option { return func(o *options) { o.sessions = n } }

func buildOptions(opts []Option) options {
	o := options{retry: DefaultRetry, keepAlive: 15 * time.Second, sessions: 8}
	for _, f := range opts {
		f(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if o.retry.Attempts < 1 {
		o.retry.Attempts = 1
	}
	if o.retry.Initial <= 0 {
		o.retry.Initial = DefaultRetry.Initial
	}
	if o.retry.Max <= 0 {
		o.retry.Max = DefaultRetry.Max
	}
	if o.sessions < 1 {
		o.sessions = 1
	}
	return o
}

func joinHostPort(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// Dial connects to one host, retrying network failures, and returns the
// Host that keeps the connection.
func Dial(ctx context.Context, cfg Config, opts ...Option) (*Host, error) {
	o := buildOptions(opts)
	return dial(ctx, cfg, o)
}

func dial(ctx context.Context, cfg Config, o options) (*Host, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, &Error{Host: cfg.Name, Op: "connect", Kind: ErrConfig, Err: err}
	}
	h := &Host{
		cfg:      cfg,
		log:      o.log.With("host", cfg.Name),
		output:   o.output,
		retry:    o.retry,
		keep:     o.keepAlive,
		sessions: make(chan struct{}, o.sessions),
	}
	c, err := h.connect(ctx)
	if err != nil {
		return nil, err
	}
	h.conn = c
	return h, nil
}

// connect dials with retries for network failures only.
func (h *Host) connect(ctx context.Context) (*conn, error) {
	for attempt := 1; ; attempt++ {
		start := time.Now()
		c, err := dialOnce(ctx, &h.cfg, h.log)
		if err == nil {
			h.log.Debug("connected", "addr", h.cfg.addr(), "user", h.cfg.User, "attempt", attempt, "took", time.Since(start))
			c.startKeepAlive(h.keep, h.log)
			return c, nil
		}
		op := "connect " + h.cfg.User + "@" + h.cfg.addr()
		e := &Error{Host: h.cfg.Name, Op: op, Kind: classify(err), Err: err}
		if e.Kind != ErrUnreachable || attempt >= h.retry.Attempts || ctx.Err() != nil {
			if attempt > 1 {
				e.Op = fmt.Sprintf("%s (after %d attempts)", op, attempt)
			}
			h.log.Warn("connect failed", "error", e.Err, "attempt", attempt)
			return nil, e
		}
		d := h.retry.delay(attempt)
		h.log.Info("connect failed, retrying", "error", err, "attempt", attempt, "in", d)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, &Error{Host: h.cfg.Name, Op: op, Kind: ErrUnreachable, Err: fmt.Errorf("%w (last error: %v)", ctx.Err(), err)}
		case <-t.C:
		}
	}
}

// conn is one SSH connection, possibly through a bastion.
type conn struct {
	client  *ssh.Client
	bastion *ssh.Client
	done    chan struct{} // closed when the connection ends
}

func (c *conn) close() error {
	err := c.client.Close()
	if c.bastion != nil {
		c.bastion.Close()
	}
	return err
}

// dead reports whether the connection has ended.
func (c *conn) dead() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// startKeepAlive closes the connection when the peer stops answering.
func (c *conn) startKeepAlive(every time.Duration, log *slog.Logger) {
	if every <= 0 {
		return
	}
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-c.done:
				return
			case <-t.C:
			}
			answered := make(chan error, 1)
			go func() {
				_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
				answered <- err
			}()
			select {
			case err := <-answered:
				if err == nil {
					continue
				}
			case <-time.After(every):
			case <-c.done:
				return
			}
			log.Warn("connection lost (keep-alive unanswered)")
			c.close()
			return
		}
	}()
}

// dialOnce makes one connection attempt, through the bastion if there is
// one. Credentials are loaded (and a passphrase asked for) and the trusted
// host keys read before any connection is opened, so a prompt does not hold
// one open and a local file that cannot be used contacts nothing.
func dialOnce(ctx context.Context, cfg *Config, log *slog.Logger) (*conn, error) {
	auth, closeAuth, err := authMethods(cfg)
	if err != nil {
		return nil, &authError{err}
	}
	defer closeAuth()
	keys, err := hostKeyCheck(cfg, log)
	if err != nil {
		return nil, err
	}
	if cfg.Bastion == nil {
		raw, err := dialTCP(ctx, cfg)
		if err != nil {
			return nil, err
		}
		client, err := handshake(ctx, raw, cfg, auth, keys)
		if err != nil {
			return nil, err
		}
		return newConn(client, nil), nil
	}
	bauth, closeBAuth, err := authMethods(cfg.Bastion)
	if err != nil {
		return nil, fmt.Errorf("bastion %s: %w", cfg.Bastion.addr(), &authError{err})
	}
	defer closeBAuth()
	bkeys, err := hostKeyCheck(cfg.Bastion, log)
	if err != nil {
		return nil, fmt.Errorf("bastion %s: %w", cfg.Bastion.addr(), err)
	}
	braw, err := dialTCP(ctx, cfg.Bastion)
	if err != nil {
		return nil, fmt.Errorf("bastion %s: %w", cfg.Bastion.addr(), err)
	}
	bastion, err := handshake(ctx, braw, cfg.Bastion, bauth, bkeys)
	if err != nil {
		return nil, fmt.Errorf("bastion %s: %w", cfg.Bastion.addr(), err)
	}
	dctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	raw, err := bastion.DialContext(dctx, "tcp", cfg.addr())
	cancel()
	if err != nil {
		bastion.Close()
		return nil, &netError{fmt.Errorf("via bastion %s: %w", cfg.Bastion.addr(), err)}
	}
	client, err := handshake(ctx, raw, cfg, auth, keys)
	if err != nil {
		bastion.Close()
		return nil, fmt.Errorf("via bastion %s: %w", cfg.Bastion.addr(), err)
	}
	return newConn(client, bastion), nil
}

func newConn(client *ssh.Client, bastion *ssh.Client) *conn {
	c := &conn{client: client, bastion: bastion, done: make(chan struct{})}
	go func() {
		_ = client.Wait()
		if bastion != nil {
			bastion.Close()
		}
		close(c.done)
	}()
	return c
}

// netError marks a failure as a network one for classify.
type netError struct{ err error }

func (e *netError) Error() string { return e.err.Error() }
func (e *netError) Unwrap() error { return e.err }

// configError marks a local file that cannot be used (a key or known_hosts
// file missing, unreadable or malformed) for classify: nothing was contacted.
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

// authError marks a failure to load credentials (or a refusal) for classify.
type authError struct{ err error }

func (e *authError) Error() string { return e.err.Error() }
func (e *authError) Unwrap() error { return e.err }

func dialTCP(ctx context.Context, cfg *Config) (net.Conn, error) {
	d := net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	c, err := d.DialContext(ctx, "tcp", cfg.addr())
	if err != nil {
		return nil, &netError{err}
	}
	return c, nil
}

// handshake runs the SSH handshake and authentication over raw, bounded by
// cfg.ConnectTimeout and ctx.
func handshake(ctx context.Context, raw net.Conn, cfg *Config, auth []ssh.AuthMethod, keys hostKeys) (*ssh.Client, error) {
	sc := &ssh.ClientConfig{
		User:              cfg.User,
		Auth:              auth,
		HostKeyCallback:   keys.callback,
		HostKeyAlgorithms: keys.algorithms,
		Timeout:           cfg.ConnectTimeout,
	}
	// Bound the handshake: a deadline where the conn supports it, and
	// closing it on timeout or cancellation in any case.
	_ = raw.SetDeadline(time.Now().Add(cfg.ConnectTimeout))
	stop := make(chan struct{})
	timedOut := make(chan struct{})
	go func() {
		t := time.NewTimer(cfg.ConnectTimeout)
		defer t.Stop()
		select {
		case <-stop:
			return
		case <-ctx.Done():
		case <-t.C:
		}
		close(timedOut)
		raw.Close()
	}()
	c, chans, reqs, err := ssh.NewClientConn(raw, cfg.addr(), sc)
	close(stop)
	if err != nil {
		select {
		case <-timedOut:
			if ctx.Err() != nil {
				return nil, &netError{fmt.Errorf("ssh handshake: %w", ctx.Err())}
			}
			return nil, &netError{fmt.Errorf("ssh handshake timed out after %s", cfg.ConnectTimeout)}
		default:
		}
		return nil, err
	}
	_ = raw.SetDeadline(time.Time{})
	return ssh.NewClient(c, chans, reqs), nil
}

// classify maps a connection error to its failure class.
func classify(err error) error {
	var hk *HostKeyError
	var ce *configError
	var ae *authError
	var ne *netError
	switch {
	case errors.As(err, &hk):
		return ErrHostKey
	case errors.As(err, &ce):
		return ErrConfig
	case errors.As(err, &ae):
		return ErrAuth
	case errors.As(err, &ne):
		return ErrUnreachable
	case strings.Contains(err.Error(), "unable to authenticate"):
		return ErrAuth
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, os.ErrDeadlineExceeded):
		return ErrUnreachable
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return ErrUnreachable
	}
	return nil
}

// authMethods builds the client's credentials: key file and agent keys as
// one public-key method, then the password. The returned func releases the
// agent connection after the handshake.
func authMethods(cfg *Config) ([]ssh.AuthMethod, func(), error) {
	var signers []ssh.Signer
	closeAuth := func() {}
	if cfg.KeyPath != "" {
		s, err := loadKey(cfg.KeyPath, cfg.KeyPassphrase)
		if err != nil {
			return nil, nil, err
		}
		signers = append(signers, s)
	}
	var agentClient agent.ExtendedAgent
	if cfg.Agent {
		sock := os.Getenv("SSH_AUTH_SOCK")
		if sock == "" {
			return nil, nil, errors.New("ssh-agent requested but SSH_AUTH_SOCK is not set")
		}
		ac, err := net.DialTimeout("unix", sock, 5*time.Second)
		if err != nil {
			return nil, nil, fmt.Errorf("ssh-agent: %w", err)
		}
		closeAuth = func() { ac.Close() }
		agentClient = agent.NewClient(ac)
	}
	var methods []ssh.AuthMethod
	if len(signers) > 0 || agentClient != nil {
		methods = append(methods, ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
			all := signers
			if agentClient != nil {
				as, err := agentClient.Signers()
				if err != nil {
					return nil, fmt.Errorf("ssh-agent: %w", err)
				}
				all = append(append([]ssh.Signer(nil), signers...), as...)
			}
			return all, nil
		}))
	}
	if cfg.Password != nil {
		pw, err := cfg.Password()
		if err != nil {
			closeAuth()
			return nil, nil, fmt.Errorf("login password: %w", err)
		}
		methods = append(methods, ssh.Password(string(pw)))
	}
	return methods, closeAuth, nil
}

// keyCache keeps parsed keys by file, so an encrypted key is decrypted (and
// its passphrase asked for) once, not once per host.
var keyCache sync.Map // keyID -> ssh.Signer

type keyID struct {
	path  string
	size  int64
	mtime time.Time
}

// loadKey reads a private key file, asking for the passphrase only when
// the key is encrypted. A file that cannot be used is a *configError.
func loadKey(path string, passphrase Secret) (ssh.Signer, error) {
	f, st, err := boundedfile.Open(path, "private key", maxKeyFile)
	if err != nil {
		return nil, &configError{err}
	}
	defer f.Close()
	id := keyID{path, st.Size(), st.ModTime()}
	if s, ok := keyCache.Load(id); ok {
		return s.(ssh.Signer), nil
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile))
	if err != nil {
		return nil, &configError{fmt.Errorf("reading private key %s: %w", path, err)}
	}
	s, err := parseKey(path, b, passphrase)
	if err != nil {
		return nil, err
	}
	keyCache.Store(id, s)
	return s, nil
}

func parseKey(path string, b []byte, passphrase Secret) (ssh.Signer, error) {
	s, err := ssh.ParsePrivateKey(b)
	var missing *ssh.PassphraseMissingError
	if !errors.As(err, &missing) {
		if err != nil {
			return nil, &configError{fmt.Errorf("private key %s: %w", path, err)}
		}
		return s, nil
	}
	if passphrase == nil {
		return nil, fmt.Errorf("private key %s is encrypted and no passphrase is configured", path)
	}
	pp, err := passphrase()
	if err != nil {
		return nil, fmt.Errorf("passphrase for %s: %w", path, err)
	}
	s, err = ssh.ParsePrivateKeyWithPassphrase(b, pp)
	if err != nil {
		// x509.IncorrectPasswordError and friends never include the passphrase.
		return nil, fmt.Errorf("private key %s: %w", path, err)
	}
	return s, nil
}
