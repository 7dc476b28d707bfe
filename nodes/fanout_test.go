package nodes

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bootctl/boot/internal/sshtest"
	"golang.org/x/crypto/ssh"
)

func TestConnectAndForEachReportEveryHost(t *testing.T) {
	key := sshtest.NewKey(t, "")
	var cfgs []Config
	for i := range 5 {
		f := sshtest.StartFake(t, sshtest.FakeOptions{AuthorizedKeys: []ssh.PublicKey{key.Public}, Handler: sshtest.Echo})
		cfgs = append(cfgs, fakeConfig(t, f, key, fmt.Sprintf("h%d", i)))
	}
	// One host is down, one has an unknown host key.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfgs[1].Port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cfgs[3].KnownHostsPath = knownHosts(t)

	hosts, errs := Connect(testCtx(t), cfgs, 2, fastRetry)
	if len(hosts) != 5 || len(errs) != 5 {
		t.Fatalf("got %d hosts, %d errors", len(hosts), len(errs))
	}
	for i := range cfgs {
		switch i {
		case 1:
			if hosts[i] != nil || !errors.Is(errs[i], ErrUnreachable) || !strings.Contains(errs[i].Error(), "h1") {
				t.Errorf("h1: want ErrUnreachable naming it, got %v", errs[i])
			}
		case 3:
			if hosts[i] != nil || !errors.Is(errs[i], ErrHostKey) {
				t.Errorf("h3: want ErrHostKey, got %v", errs[i])
			}
		default:
			if hosts[i] == nil || errs[i] != nil || hosts[i].Name() != cfgs[i].Name {
				t.Errorf("h%d: %v", i, errs[i])
			}
		}
	}
	var up []*Host
	for _, h := range hosts {
		if h != nil {
			t.Cleanup(func() { h.Close() })
			up = append(up, h)
		}
	}

	// ForEach: every host's outcome, in order, bounded parallelism.
	var running, peak atomic.Int32
	results := ForEach(testCtx(t), up, 2, func(ctx context.Context, h *Host) error {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
		switch h.Name() {
		case "h2":
			return errors.New("h2 failed")
		case "h4":
			panic("h4 exploded")
		}
		_, err := h.Run(ctx, "x")
		return err
	})
	if len(results) != 3 {
		t.Fatalf("%d results", len(results))
	}
	if results[0].Host != up[0] || results[0].Err != nil || results[0].Duration <= 0 {
		t.Errorf("h0: %+v", results[0])
	}
	if results[1].Err == nil || results[1].Err.Error() != "h2 failed" {
		t.Errorf("h2: %v", results[1].Err)
	}
	if results[2].Err == nil || !strings.Contains(results[2].Err.Error(), "h4 exploded") {
		t.Errorf("h4: %v", results[2].Err)
	}
	if p := peak.Load(); p != 2 {
		t.Errorf("peak concurrency %d, want 2", p)
	}
	if err := Errors(results); err == nil || !strings.Contains(err.Error(), "h2 failed") || !strings.Contains(err.Error(), "h4 exploded") {
		t.Errorf("Errors: %v", err)
	}

	// A cancelled context still yields one result per host.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	results = ForEach(ctx, up, 1, func(context.Context, *Host) error { return nil })
	for _, r := range results {
		if !errors.Is(r.Err, context.Canceled) {
			t.Errorf("%s: want context.Canceled, got %v", r.Host.Name(), r.Err)
		}
	}
}

func TestConcurrentSessionsOnOneHost(t *testing.T) {
	key := sshtest.NewKey(t, "")
	_, cfg := rootServer(t, key)
	h := mustDial(t, cfg, WithMaxSessions(4))
	hosts := make([]*Host, 20)
	for i := range hosts {
		hosts[i] = h
	}
	var i atomic.Int32
	results := ForEach(testCtx(t), hosts, 0, func(ctx context.Context, h *Host) error {
		n := i.Add(1)
		out, err := h.Run(ctx, fmt.Sprintf("echo %d", n))
		if err == nil && out.Stdout != fmt.Sprintf("%d\n", n) {
			err = fmt.Errorf("output %q for %d", out.Stdout, n)
		}
		return err
	})
	if err := Errors(results); err != nil {
		t.Fatal(err)
	}
}
