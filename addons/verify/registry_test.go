package verify

import (
	"context"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/distribution/distribution/v3/configuration"
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	"github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/bootctl/boot/addons"
	"github.com/bootctl/boot/internal/run"
)

// startRegistry serves the distribution registry on loopback (plain HTTP),
// its storage in a temporary folder, deletes enabled and, when creds is
// set, htpasswd authentication; it returns the registry's host:port.
func startRegistry(t *testing.T, creds *addons.RegistryCredentials) string {
	t.Helper()
	dir := t.TempDir()
	cfg := &configuration.Configuration{Version: "0.1"}
	cfg.Storage = configuration.Storage{
		"filesystem": configuration.Parameters{"rootdirectory": dir},
		"delete":     configuration.Parameters{"enabled": true},
	}
	cfg.HTTP.Secret = "verify-test"
	if creds != nil {
		htpasswd := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(creds.Htpasswd()), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg.Auth = configuration.Auth{"htpasswd": configuration.Parameters{"realm": "boot", "path": htpasswd}}
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	srv := httptest.NewServer(handlers.NewApp(ctx, cfg))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestPushPull(t *testing.T) {
	creds, err := addons.NewRegistryCredentials("admin", "")
	if err != nil {
		t.Fatal(err)
	}
	opts := []name.Option{name.StrictValidation, name.Insecure}
	tr := Transport(nil, false, "", nil)

	t.Run("a registry that asks for the credentials", func(t *testing.T) {
		registry := startRegistry(t, creds)
		var evs []run.Event
		c := collect(&evs)
		c.pushPull(context.Background(), registry, opts, tr, creds)
		want := []struct {
			check   string
			message string
		}{
			{"auth", "refused without credentials"},
			{"push", "pushed " + registry + "/boot-verify/probe:"},
			{"pull", "pulled it back whole, digest sha256:"},
		}
		if len(evs) != len(want) || len(c.failed) != 0 {
			t.Fatalf("events %+v, failed %q; want %d ok events", evs, c.failed, len(want))
		}
		for i, w := range want {
			if e := evs[i]; e.Phase != Phase || e.Host != w.check || e.Status != run.OK || !strings.HasPrefix(e.Message, w.message) {
				t.Errorf("event %d: %+v, want %s ok %q...", i, e, w.check, w.message)
			}
		}
		if !strings.Contains(evs[1].Message, " as admin (") {
			t.Errorf("the push does not say as whom: %q", evs[1].Message)
		}
		// The probe was deleted again.
		digest := strings.TrimPrefix(evs[2].Message, "pulled it back whole, digest ")
		ref, err := name.NewDigest(registry+"/boot-verify/probe@"+digest, opts...)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := remote.Head(ref, remote.WithTransport(tr), remote.WithAuth(&authn.Basic{Username: creds.Username(), Password: creds.Password()})); err == nil || !strings.Contains(err.Error(), "404") {
			t.Errorf("HEAD of the probe after verify: %v, want 404 (deleted)", err)
		}
	})

	t.Run("an open registry", func(t *testing.T) {
		registry := startRegistry(t, nil)
		var evs []run.Event
		c := collect(&evs)
		c.pushPull(context.Background(), registry, opts, tr, creds)
		if len(evs) == 0 || evs[0].Host != "auth" || evs[0].Status != run.Failed || evs[0].Message != "the registry answered without credentials" && !strings.Contains(evs[0].Message, "want 401 Unauthorized") {
			t.Errorf("events %+v, want a failed auth check first", evs)
		}
		if len(c.failed) == 0 || c.failed[0] != "auth" {
			t.Errorf("failed %q, want auth", c.failed)
		}
	})

	t.Run("no registry", func(t *testing.T) {
		var evs []run.Event
		c := collect(&evs)
		c.pushPull(context.Background(), closedPort(t), opts, tr, creds)
		if strings.Join(c.failed, ",") != "auth,push" || len(evs) != 2 || !strings.Contains(evs[1].Message, "connection refused") {
			t.Errorf("events %+v, failed %q; want auth and push failed, connection refused", evs, c.failed)
		}
	})
}
