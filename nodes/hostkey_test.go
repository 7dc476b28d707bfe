package nodes

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bootctl/boot/internal/sshtest"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

func TestHostKeyStrictUnknownRefused(t *testing.T) {
	key := sshtest.NewKey(t, "")
	s, cfg := rootServer(t, key)
	other := sshtest.NewKey(t, "")
	// known_hosts knows another host only.
	cfg.KnownHostsPath = knownHosts(t, knownhosts.Line([]string{"[127.0.0.1]:1"}, other.Public))
	before := readFile(t, cfg.KnownHostsPath)

	log, buf := testLogger()
	_, err := Dial(testCtx(t), cfg, WithLogger(log), fastRetry)
	if !errors.Is(err, ErrHostKey) {
		t.Fatalf("want ErrHostKey, got %v", err)
	}
	var hk *HostKeyError
	if !errors.As(err, &hk) || hk.Changed {
		t.Fatalf("want an unknown-key HostKeyError, got %#v", hk)
	}
	msg := err.Error()
	for _, want := range []string{ssh.FingerprintSHA256(s.HostKey.Public), s.KnownHostsLine(), cfg.KnownHostsPath, "strict"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(buf.String(), "retrying") {
		t.Fatalf("host-key failure was retried:\n%s", buf)
	}
	if after := readFile(t, cfg.KnownHostsPath); after != before {
		t.Fatalf("strict policy changed known_hosts:\n%s", after)
	}

	// A missing known_hosts file is the same as an empty one, and stays missing.
	cfg.KnownHostsPath = filepath.Join(t.TempDir(), "none", "known_hosts")
	if _, err := Dial(testCtx(t), cfg); !errors.Is(err, ErrHostKey) {
		t.Fatalf("want ErrHostKey, got %v", err)
	}
	if _, err := os.Stat(cfg.KnownHostsPath); !os.IsNotExist(err) {
		t.Fatalf("strict policy created %s", cfg.KnownHostsPath)
	}
}

func TestHostKeyAcceptNewRecords(t *testing.T) {
	key := sshtest.NewKey(t, "")
	s, cfg := rootServer(t, key)
	cfg.KnownHostsPath = filepath.Join(t.TempDir(), "ssh", "known_hosts")
	cfg.HostKeyPolicy = AcceptNew

	// Many connections at once record the key exactly once.
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := Dial(testCtx(t), cfg)
			if err == nil {
				h.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got, want := readFile(t, cfg.KnownHostsPath), s.KnownHostsLine()+"\n"; got != want {
		t.Fatalf("known_hosts:\n%q\nwant\n%q", got, want)
	}
	if st, err := os.Stat(cfg.KnownHostsPath); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("known_hosts mode: %v %v", st.Mode(), err)
	}
	// Now strict accepts it too.
	cfg.HostKeyPolicy = Strict
	h := mustDial(t, cfg)
	mustRun(t, h, "true")
}

func TestHostKeyChangedRefused(t *testing.T) {
	key := sshtest.NewKey(t, "")
	s, cfg := rootServer(t, key)
	old := sshtest.NewKey(t, "")
	oldLine := knownhosts.Line([]string{knownhosts.Normalize(s.Addr())}, old.Public)
	for _, policy := range []HostKeyPolicy{Strict, AcceptNew} {
		t.Run(string(policy), func(t *testing.T) {
			c := cfg
			c.HostKeyPolicy = policy
			c.KnownHostsPath = knownHosts(t, "# managed by hand", oldLine)
			before := readFile(t, c.KnownHostsPath)
			_, err := Dial(testCtx(t), c, fastRetry)
			var hk *HostKeyError
			if !errors.Is(err, ErrHostKey) || !errors.As(err, &hk) || !hk.Changed {
				t.Fatalf("want a changed-key HostKeyError, got %v", err)
			}
			msg := err.Error()
			for _, want := range []string{"CHANGED", ssh.FingerprintSHA256(s.HostKey.Public), ssh.FingerprintSHA256(old.Public), c.KnownHostsPath + ":2", s.KnownHostsLine()} {
				if !strings.Contains(msg, want) {
					t.Errorf("error lacks %q:\n%s", want, msg)
				}
			}
			if after := readFile(t, c.KnownHostsPath); after != before {
				t.Fatalf("known_hosts was modified:\n%s", after)
			}
		})
	}
}

func TestPinnedHostKey(t *testing.T) {
	key := sshtest.NewKey(t, "")
	s, cfg := rootServer(t, key)
	// known_hosts is not consulted: even an empty, strict one.
	cfg.KnownHostsPath = knownHosts(t)
	cfg.PinnedHostKey = s.HostKey.AuthorizedLine()
	h := mustDial(t, cfg)
	mustRun(t, h, "true")
	if got := readFile(t, cfg.KnownHostsPath); got != "" {
		t.Fatalf("known_hosts written: %q", got)
	}

	other := sshtest.NewKey(t, "")
	cfg.PinnedHostKey = other.AuthorizedLine()
	cfg.HostKeyPolicy = AcceptNew
	_, err := Dial(testCtx(t), cfg, fastRetry)
	if !errors.Is(err, ErrHostKey) || !strings.Contains(err.Error(), ssh.FingerprintSHA256(other.Public)) ||
		!strings.Contains(err.Error(), ssh.FingerprintSHA256(s.HostKey.Public)) {
		t.Fatalf("want ErrHostKey naming both keys, got %v", err)
	}
	if got := readFile(t, cfg.KnownHostsPath); got != "" {
		t.Fatalf("known_hosts written: %q", got)
	}
}

func TestBastion(t *testing.T) {
	sshtest.RequireUser(t, sshtest.SudoUser)
	bastionKey := sshtest.NewKey(t, "")
	targetKey := sshtest.NewKey(t, "")
	bastion := sshtest.Start(t, sshtest.Options{
		Address:        "127.0.0.2",
		AuthorizedKeys: map[string][]ssh.PublicKey{"root": {bastionKey.Public}},
		TCPForwarding:  true,
		Extra:          []string{"LogLevel DEBUG1"},
	})
	target := sshtest.Start(t, sshtest.Options{
		Address:        "127.0.0.3",
		AuthorizedKeys: map[string][]ssh.PublicKey{sshtest.SudoUser: {targetKey.Public}},
	})
	cfg := Config{
		Name:           "behind",
		Address:        target.Address,
		Port:           target.Port,
		User:           sshtest.SudoUser,
		KeyPath:        targetKey.Path,
		KnownHostsPath: knownHosts(t, target.KnownHostsLine()),
		Bastion: &Config{
			Address:       bastion.Address,
			Port:          bastion.Port,
			User:          "root",
			KeyPath:       bastionKey.Path,
			PinnedHostKey: bastion.HostKey.AuthorizedLine(),
		},
	}
	h := mustDial(t, cfg)
	if got := mustRun(t, h, "id -un"); got != sshtest.SudoUser+"\n" {
		t.Fatalf("output %q", got)
	}
	if want := "target " + target.Address; !strings.Contains(bastion.Log(), want) {
		t.Fatalf("bastion log shows no forwarding to the target (%q):\n%s", want, bastion.Log())
	}

	// Each hop checks its own host key: a wrong bastion key stops at the bastion.
	bad := cfg
	b := *cfg.Bastion
	b.PinnedHostKey = targetKey.AuthorizedLine()
	bad.Bastion = &b
	_, err := Dial(testCtx(t), bad, fastRetry)
	if !errors.Is(err, ErrHostKey) || !strings.Contains(err.Error(), "bastion") {
		t.Fatalf("want a bastion ErrHostKey, got %v", err)
	}
	// And the target's: unknown to its known_hosts.
	bad = cfg
	bad.KnownHostsPath = knownHosts(t)
	_, err = Dial(testCtx(t), bad, fastRetry)
	if !errors.Is(err, ErrHostKey) || !strings.Contains(err.Error(), knownhosts.Normalize(target.Addr())) {
		t.Fatalf("want the target's ErrHostKey, got %v", err)
	}
	// The bastion's own credentials: a wrong key there is ErrAuth.
	bad = cfg
	b = *cfg.Bastion
	b.KeyPath = targetKey.Path
	bad.Bastion = &b
	if _, err = Dial(testCtx(t), bad, fastRetry); !errors.Is(err, ErrAuth) {
		t.Fatalf("want ErrAuth at the bastion, got %v", err)
	}
}
