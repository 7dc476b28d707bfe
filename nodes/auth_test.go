package nodes

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bootctl/boot/internal/sshtest"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

func TestKeyAuth(t *testing.T) {
	key := sshtest.NewKey(t, "")
	_, cfg := rootServer(t, key)
	h := mustDial(t, cfg)
	if got := mustRun(t, h, "echo hello; id -un"); got != "hello\nroot\n" {
		t.Fatalf("output %q", got)
	}
	// The same connection serves further commands.
	if got := mustRun(t, h, "printf '%s' \"$1\"x"); got != "x" {
		t.Fatalf("output %q", got)
	}
}

func TestEncryptedKey(t *testing.T) {
	const passphrase = "correct horse battery staple"
	key := sshtest.NewKey(t, passphrase)
	_, cfg := rootServer(t, key)

	t.Run("passphrase from env", func(t *testing.T) {
		t.Setenv("BOOT_TEST_PASSPHRASE", passphrase)
		c := cfg
		c.KeyPassphrase = EnvSecret("BOOT_TEST_PASSPHRASE")
		h := mustDial(t, c)
		if got := mustRun(t, h, "id -u"); got != "0\n" {
			t.Fatalf("id -u: %q", got)
		}
	})
	t.Run("wrong passphrase", func(t *testing.T) {
		t.Setenv("BOOT_TEST_PASSPHRASE", "not it")
		// A fresh copy of the file: the parsed key is cached per file.
		c := cfg
		c.KeyPath = copyFile(t, key.Path)
		c.KeyPassphrase = EnvSecret("BOOT_TEST_PASSPHRASE")
		_, err := Dial(testCtx(t), c, fastRetry)
		if !errors.Is(err, ErrAuth) {
			t.Fatalf("want ErrAuth, got %v", err)
		}
		if strings.Contains(err.Error(), "not it") {
			t.Fatalf("error reveals the passphrase: %v", err)
		}
	})
	t.Run("no passphrase configured", func(t *testing.T) {
		c := cfg
		c.KeyPath = copyFile(t, key.Path)
		_, err := Dial(testCtx(t), c, fastRetry)
		if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "encrypted") {
			t.Fatalf("want ErrAuth about an encrypted key, got %v", err)
		}
	})
	t.Run("env not set", func(t *testing.T) {
		c := cfg
		c.KeyPath = copyFile(t, key.Path)
		c.KeyPassphrase = EnvSecret("BOOT_TEST_UNSET_PASSPHRASE")
		_, err := Dial(testCtx(t), c, fastRetry)
		if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "BOOT_TEST_UNSET_PASSPHRASE") {
			t.Fatalf("want ErrAuth naming the variable, got %v", err)
		}
	})
}

func copyFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), filepath.Base(path))
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestAgentAuth(t *testing.T) {
	key := sshtest.NewKey(t, "")
	s, cfg := rootServer(t, key)

	// A real agent protocol server: x/crypto's keyring on a unix socket.
	keyring := agent.NewKeyring()
	priv := loadRawKey(t, key.Path)
	if err := keyring.Add(agent.AddedKey{PrivateKey: priv}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _ = agent.ServeAgent(keyring, c) }()
		}
	}()
	t.Setenv("SSH_AUTH_SOCK", sock)

	c := cfg
	c.KeyPath = ""
	c.Agent = true
	h := mustDial(t, c)
	if got := mustRun(t, h, "id -un"); got != "root\n" {
		t.Fatalf("output %q", got)
	}
	if !strings.Contains(s.Log(), "Accepted publickey for root") {
		t.Fatalf("sshd did not log a public-key login:\n%s", s.Log())
	}

	// An agent without the key is an authentication failure, not retried.
	if err := keyring.RemoveAll(); err != nil {
		t.Fatal(err)
	}
	log, buf := testLogger()
	_, err = Dial(testCtx(t), c, WithLogger(log), fastRetry)
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("want ErrAuth, got %v", err)
	}
	if strings.Contains(buf.String(), "retrying") {
		t.Fatalf("auth failure was retried:\n%s", buf)
	}
}

func loadRawKey(t *testing.T, path string) any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.ParseRawPrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestPasswordAuth(t *testing.T) {
	sshtest.RequireUser(t, sshtest.PasswordUser)
	s := sshtest.Start(t, sshtest.Options{Password: true})
	cfg := Config{
		Name:           "pw",
		Address:        s.Address,
		Port:           s.Port,
		User:           sshtest.PasswordUser,
		Password:       EnvSecret("BOOT_TEST_PASSWORD"),
		KnownHostsPath: knownHosts(t, s.KnownHostsLine()),
	}
	t.Setenv("BOOT_TEST_PASSWORD", sshtest.PasswordUserPassword)
	h := mustDial(t, cfg)
	if got := mustRun(t, h, "id -un"); got != sshtest.PasswordUser+"\n" {
		t.Fatalf("output %q", got)
	}
	if h.IsRoot() {
		t.Fatal("IsRoot for a non-root user")
	}

	t.Setenv("BOOT_TEST_PASSWORD", "wrong-password")
	log, buf := testLogger()
	_, err := Dial(testCtx(t), cfg, WithLogger(log), fastRetry)
	if !errors.Is(err, ErrAuth) || errors.Is(err, ErrUnreachable) {
		t.Fatalf("want ErrAuth only, got %v", err)
	}
	if strings.Contains(buf.String(), "retrying") {
		t.Fatalf("auth failure was retried:\n%s", buf)
	}
}

func TestConfigValidation(t *testing.T) {
	_, err := Dial(testCtx(t), Config{Address: "", Port: 70000, HostKeyPolicy: "trust-all", PinnedHostKey: "nonsense"})
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("want ErrConfig, got %v", err)
	}
	for _, want := range []string{"address is empty", "port 70000", `"trust-all"`, "pinned host key", "no authentication method"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}
