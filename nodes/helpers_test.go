package nodes

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bootctl/boot/internal/sshtest"
	"github.com/bootctl/boot/internal/testenv"
	"golang.org/x/crypto/ssh"
)

// testLogger logs at debug level into a buffer the test can search.
func testLogger() (*slog.Logger, *testenv.Buffer) {
	buf := &testenv.Buffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// knownHosts writes a known_hosts file with the given lines and returns its path.
func knownHosts(t testing.TB, lines ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "known_hosts")
	content := ""
	if len(lines) > 0 {
		content = strings.Join(lines, "\n") + "\n"
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// fastRetry keeps retry tests short.
var fastRetry = WithRetry(Retry{Attempts: 3, Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond})

// mustDial dials cfg and closes the host when the test ends.
func mustDial(t testing.TB, cfg Config, opts ...Option) *Host {
	t.Helper()
	h, err := Dial(testCtx(t), cfg, opts...)
	if err != nil {
		t.Fatalf("Dial %s: %v", cfg.Name, err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// rootServer starts an sshd that lets key log in as root.
func rootServer(t testing.TB, key *sshtest.Key) (*sshtest.Server, Config) {
	t.Helper()
	s := sshtest.Start(t, sshtest.Options{AuthorizedKeys: map[string][]ssh.PublicKey{"root": {key.Public}}})
	return s, Config{
		Name:           "node1",
		Address:        s.Address,
		Port:           s.Port,
		User:           "root",
		KeyPath:        key.Path,
		KnownHostsPath: knownHosts(t, s.KnownHostsLine()),
	}
}

// mustRun runs cmd and returns its stdout.
func mustRun(t *testing.T, h *Host, cmd string, opts ...RunOption) string {
	t.Helper()
	out, err := h.Run(testCtx(t), cmd, opts...)
	if err != nil {
		t.Fatalf("Run %q: %v (stderr %q)", cmd, err, out.Stderr)
	}
	return out.Stdout
}
