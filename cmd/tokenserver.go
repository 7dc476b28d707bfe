package cmd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/bootctl/boot/internal/tokenserver"
)

type tokenServerOptions struct {
	listen         string
	users          string
	key            string
	issuer         string
	service        string
	ttl            time.Duration
	cacheSize      int
	cacheTTL       time.Duration
	reloadInterval time.Duration
}

func newRegistryTokenServerCmd(g *globals) *cobra.Command {
	o := &tokenServerOptions{}
	c := &cobra.Command{
		Use:   "token-server",
		Short: "Serve registry tokens: users with roles, short-lived ES256 JWTs",
		Long: `token-server is the registry's token service (the Docker registry token
authentication protocol): clients (docker login, containerd, skopeo, crane)
that the registry answers with "401, Bearer realm=..." ask it for a token:

  GET  /token?service=S&scope=repository:NAME:pull,push   (HTTP Basic credentials)
  POST /token   grant_type=password, username, password, service, scope (OAuth2 form)

It checks the password against the users file, grants the intersection of
the requested actions and the user's role, and answers with a JWT signed
ES256 that is valid for --ttl. Without credentials the token grants nothing.
A wrong user name or password is answered 401, without saying which.
GET /healthz answers "ok".

Users file (--users): one user a line, blank lines and # comments ignored,

  name:role:bcrypt-hash

with role one of
  admin   pull, push, delete, and the catalog (registry:catalog:*)
  push    pull, push
  pull    pull
  delete  pull, delete, and the catalog: the pruner's identity (never push)

and a bcrypt hash as "htpasswd -nbB" or Helm's htpasswd function print it
(the part after "name:"). The file is re-read every --reload-interval and on
SIGHUP; a change replaces the users and forgets every cached verification, a
file that fails to parse is logged and the previous users stay.

bcrypt runs once per credential: a successful verification is remembered
(at most --cache-size of them, each for --cache-ttl) under an HMAC-SHA256 of
the user name and password with a key drawn at start; the password is never
kept.

Signing key (--key): PEM "EC PRIVATE KEY" or "PRIVATE KEY", curve P-256. The
token header's kid is the key's JWK thumbprint, the one the registry
computes for the certificate in its auth.token.rootcertbundle, so the
registry needs (its config.yml):

  auth:
    token:
      realm: https://<registry host>/token     # where clients reach this server
      service: <--service>
      issuer: <--issuer>
      rootcertbundle: <a certificate of the key's public key>
      # or jwks: <a JWKS with the public key under the same kid>
      signingalgorithms: [ES256]

"boot registry token-server keygen" writes a key, a self-signed certificate
and a JWKS.

Passwords, hashes and tokens are never logged. SIGTERM or SIGINT stops the
server gracefully.`,
		Example: `  # a new signing key, its certificate and JWKS in ./token
  boot registry token-server keygen --dir token --issuer boot-token-server

  # one admin (htpasswd -nbB prints "admin:<hash>")
  echo "admin:admin:$(htpasswd -nbB admin secret | cut -d: -f2)" > users

  boot registry token-server --listen :5001 --users users --key token/key.pem \
    --issuer boot-token-server --service registry.example.com --ttl 5m`,
		Args: usage(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			return runTokenServer(c.Context(), c, g, o)
		},
	}
	f := c.Flags()
	f.StringVar(&o.listen, "listen", ":5001", "address to serve HTTP on, host:port")
	f.StringVar(&o.users, "users", "", "the users file, lines name:role:bcrypt-hash (required)")
	f.StringVar(&o.key, "key", "", "the signing key, PEM, ECDSA P-256 (required)")
	f.StringVar(&o.issuer, "issuer", "", "the tokens' issuer (iss): the registry's auth.token.issuer (required)")
	f.StringVar(&o.service, "service", "", "the registry's service name (aud): its auth.token.service (required)")
	f.DurationVar(&o.ttl, "ttl", tokenserver.DefaultTTL, "how long a token is valid (at least 1m)")
	f.IntVar(&o.cacheSize, "cache-size", tokenserver.DefaultCache.Size, "how many verified credentials are remembered")
	f.DurationVar(&o.cacheTTL, "cache-ttl", tokenserver.DefaultCache.TTL, "how long a verified credential is remembered")
	f.DurationVar(&o.reloadInterval, "reload-interval", 10*time.Second, "how often the users file is checked for changes (SIGHUP checks at once)")
	c.AddCommand(newTokenServerKeygenCmd())
	return c
}

func (o *tokenServerOptions) validate() error {
	var missing []string
	for _, f := range []struct{ name, value string }{{"--users", o.users}, {"--key", o.key}, {"--issuer", o.issuer}, {"--service", o.service}} {
		if f.value == "" {
			missing = append(missing, f.name)
		}
	}
	switch {
	case len(missing) > 0:
		return fmt.Errorf("%s required", strings.Join(missing, ", "))
	case o.ttl < time.Minute:
		return fmt.Errorf("--ttl %s: expected at least 1m (the registry allows 60 s of clock skew)", o.ttl)
	case o.cacheSize <= 0:
		return fmt.Errorf("--cache-size %d: expected 1 or more", o.cacheSize)
	case o.cacheTTL <= 0:
		return fmt.Errorf("--cache-ttl %s: expected a positive duration such as 10m", o.cacheTTL)
	case o.reloadInterval <= 0:
		return fmt.Errorf("--reload-interval %s: expected a positive duration such as 10s", o.reloadInterval)
	}
	if _, _, err := net.SplitHostPort(o.listen); err != nil {
		return fmt.Errorf("--listen %q: expected host:port such as :5001", o.listen)
	}
	return nil
}

func runTokenServer(ctx context.Context, c *cobra.Command, g *globals, o *tokenServerOptions) error {
	if err := o.validate(); err != nil {
		return withExit(ExitInvalid, err)
	}
	log, closeLog, err := g.newLogger()
	if err != nil {
		return err
	}
	defer func() { _ = closeLog() }()
	users, err := tokenserver.LoadUsers(o.users, tokenserver.CacheOptions{Size: o.cacheSize, TTL: o.cacheTTL})
	if err != nil {
		return withExit(ExitInvalid, fmt.Errorf("--users: %w", err))
	}
	signer, err := tokenserver.LoadSigner(o.key)
	if err != nil {
		return withExit(ExitInvalid, fmt.Errorf("--key: %w", err))
	}
	h, err := tokenserver.NewHandler(tokenserver.Config{
		Users: users, Signer: signer, Issuer: o.issuer, Service: o.service, TTL: o.ttl, Log: log,
	})
	if err != nil {
		return withExit(ExitInvalid, err)
	}
	l, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go users.Watch(wctx, o.reloadInterval, hup, log)

	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	log.Info("token server listening", "addr", l.Addr().String(), "users", users.Len(), "kid", signer.KeyID(), "issuer", o.issuer, "service", o.service, "ttl", o.ttl)
	fmt.Fprintf(c.OutOrStdout(), "token server listening on %s\n", l.Addr())
	select {
	case err := <-served:
		return fmt.Errorf("serve %s: %w", l.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", l.Addr(), err)
	}
	log.Info("token server stopped")
	return nil
}

func newTokenServerKeygenCmd() *cobra.Command {
	var dir, issuer string
	var validity time.Duration
	c := &cobra.Command{
		Use:   "keygen",
		Short: "Write a new token signing key, its certificate and JWKS",
		Long: `keygen writes, in --dir (created 0700 if missing; existing files are never
overwritten):

  key.pem    the private key, PEM "EC PRIVATE KEY", P-256 (0600): token-server --key
  cert.pem   a self-signed certificate of its public key, CN --issuer:
             the registry's auth.token.rootcertbundle
  jwks.json  the public key as a JWKS under the tokens' kid:
             the registry's auth.token.jwks (either this or the certificate)`,
		Example: `  boot registry token-server keygen --dir token --issuer boot-token-server`,
		Args:    usage(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			if dir == "" || issuer == "" {
				return withExit(ExitInvalid, errors.New("--dir and --issuer required"))
			}
			if validity <= 0 {
				return withExit(ExitInvalid, fmt.Errorf("--validity %s: expected a positive duration", validity))
			}
			files, err := tokenserver.GenerateKey(issuer, validity)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return withExit(ExitInvalid, fmt.Errorf("--dir: %w", err))
			}
			outputs := []struct {
				name string
				data []byte
				mode os.FileMode
			}{{"key.pem", files.Key, 0o600}, {"cert.pem", files.Cert, 0o644}, {"jwks.json", files.JWKS, 0o644}}
			for _, f := range outputs {
				if _, err := os.Lstat(filepath.Join(dir, f.name)); err == nil {
					return withExit(ExitInvalid, fmt.Errorf("%s exists; keygen never overwrites a key (nothing was written)", filepath.Join(dir, f.name)))
				}
			}
			for _, f := range outputs {
				if err := writeNewFile(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
					return withExit(ExitInvalid, err)
				}
				fmt.Fprintln(c.OutOrStdout(), filepath.Join(dir, f.name))
			}
			return nil
		},
	}
	c.Flags().StringVar(&dir, "dir", "", "directory to write key.pem, cert.pem and jwks.json in (required)")
	c.Flags().StringVar(&issuer, "issuer", "", "the certificate's subject CN, by convention the token server's --issuer (required)")
	c.Flags().DurationVar(&validity, "validity", 10*365*24*time.Hour, "how long the certificate is valid")
	return c
}

// writeNewFile creates path with data; an existing file is an error.
func writeNewFile(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}
