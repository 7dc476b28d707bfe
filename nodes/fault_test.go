package nodes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bootctl/boot/internal/sshtest"
	"golang.org/x/crypto/ssh"
)

// fakeConfig is a Config for an in-process server.
func fakeConfig(t *testing.T, f *sshtest.Fake, key *sshtest.Key, name string) Config {
	return Config{
		Name:           name,
		Address:        f.Address,
		Port:           f.Port,
		KeyPath:        key.Path,
		KnownHostsPath: knownHosts(t, f.KnownHostsLine()),
	}
}

func TestConnectRetriesNetworkErrors(t *testing.T) {
	key := sshtest.NewKey(t, "")
	// The first two connections are dropped before the handshake.
	f := sshtest.StartFake(t, sshtest.FakeOptions{AuthorizedKeys: []ssh.PublicKey{key.Public}, DropFirst: 2, Handler: sshtest.Echo})
	log, buf := testLogger()
	h := mustDial(t, fakeConfig(t, f, key, "flaky"), WithLogger(log), fastRetry)
	// Echo returns the command line as the server saw it (wrapped by Run).
	if got := mustRun(t, h, "hello"); !strings.HasSuffix(got, " 'hello'\n") {
		t.Fatalf("output %q", got)
	}
	if n := f.Accepted(); n != 3 {
		t.Fatalf("%d connections, want 3", n)
	}
	if n := strings.Count(buf.String(), "retrying"); n != 2 {
		t.Fatalf("%d retries logged, want 2:\n%s", n, buf)
	}

	// Nothing listening: bounded attempts, then ErrUnreachable.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cfg := fakeConfig(t, f, key, "down")
	cfg.Port = port
	start := time.Now()
	_, err = Dial(testCtx(t), cfg, fastRetry)
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "after 3 attempts") {
		t.Fatalf("want ErrUnreachable after 3 attempts, got %v", err)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("no backoff between attempts (%s)", d)
	}

	// The context bounds the retries too.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = Dial(ctx, cfg, WithRetry(Retry{Attempts: 100, Initial: 100 * time.Millisecond, Max: time.Second}))
	if !errors.Is(err, ErrUnreachable) || time.Since(start) > 3*time.Second {
		t.Fatalf("want ErrUnreachable soon after the context ended, got %v after %s", err, time.Since(start))
	}
}

func TestConnectDoesNotRetryAuthOrHostKey(t *testing.T) {
	key := sshtest.NewKey(t, "")
	other := sshtest.NewKey(t, "")
	f := sshtest.StartFake(t, sshtest.FakeOptions{AuthorizedKeys: []ssh.PublicKey{other.Public}})
	_, err := Dial(testCtx(t), fakeConfig(t, f, key, "denied"), fastRetry)
	if !errors.Is(err, ErrAuth) || f.Accepted() != 1 {
		t.Fatalf("want ErrAuth after 1 connection, got %v after %d", err, f.Accepted())
	}
	cfg := fakeConfig(t, f, other, "unknown")
	cfg.KnownHostsPath = knownHosts(t)
	_, err = Dial(testCtx(t), cfg, fastRetry)
	if !errors.Is(err, ErrHostKey) || f.Accepted() != 2 {
		t.Fatalf("want ErrHostKey after 1 more connection, got %v after %d", err, f.Accepted())
	}
}

func TestConnectionCutMidCommand(t *testing.T) {
	key := sshtest.NewKey(t, "")
	started := make(chan struct{}, 1)
	f := sshtest.StartFake(t, sshtest.FakeOptions{
		AuthorizedKeys: []ssh.PublicKey{key.Public},
		Handler: func(ctx context.Context, cmd string, _ io.Reader, stdout, _ io.Writer) int {
			if strings.Contains(cmd, "long") {
				fmt.Fprintln(stdout, "working")
				started <- struct{}{}
				<-ctx.Done()
				return 1
			}
			fmt.Fprintln(stdout, "ok")
			return 0
		},
	})
	h := mustDial(t, fakeConfig(t, f, key, "cut"), fastRetry)
	done := make(chan error, 1)
	var out Output
	go func() {
		var err error
		out, err = h.Run(testCtx(t), "long job")
		done <- err
	}()
	<-started
	if n := f.CutConnections(); n != 1 {
		t.Fatalf("cut %d connections", n)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "connection lost") {
			t.Fatalf("want ErrUnreachable (connection lost), got %v", err)
		}
		if out.Stdout != "working\n" {
			t.Fatalf("output before the cut lost: %q", out.Stdout)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not notice the cut connection")
	}
	// The command is not re-run, but the host reconnects for the next one.
	if got := mustRun(t, h, "next"); got != "ok\n" {
		t.Fatalf("after reconnect: %q", got)
	}
	if n := f.Accepted(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

// A host whose server went away (connection cut, nothing listening) fails
// each later command as unreachable, without a panic, and every failed
// attempt gives its session slot back: more attempts than the host has
// slots all fail the same way.
func TestCommandsAfterServerGone(t *testing.T) {
	key := sshtest.NewKey(t, "")
	f := sshtest.StartFake(t, sshtest.FakeOptions{AuthorizedKeys: []ssh.PublicKey{key.Public}})
	h := mustDial(t, fakeConfig(t, f, key, "gone"), fastRetry)
	if got := mustRun(t, h, "first"); got != "" {
		t.Fatalf("first command: %q", got)
	}
	f.Close()
	for i := range 2 * cap(h.sessions) {
		ctx, cancel := context.WithTimeout(testCtx(t), 10*time.Second)
		_, err := h.Run(ctx, "after")
		cancel()
		if !errors.Is(err, ErrUnreachable) {
			t.Fatalf("command %d after the server went away: %v, want ErrUnreachable", i+1, err)
		}
	}
}

func TestCancelStopsCommand(t *testing.T) {
	key := sshtest.NewKey(t, "")
	var stopped atomic.Bool
	f := sshtest.StartFake(t, sshtest.FakeOptions{
		AuthorizedKeys: []ssh.PublicKey{key.Public},
		Handler: func(ctx context.Context, _ string, _ io.Reader, _, _ io.Writer) int {
			<-ctx.Done()
			stopped.Store(true)
			return 143
		},
	})
	h := mustDial(t, fakeConfig(t, f, key, "cancel"))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	_, err := h.Run(ctx, "forever")
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !stopped.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the server never saw the command stopped")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
