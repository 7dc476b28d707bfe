package cmd

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/bootctl/boot/internal/sshtest"
	"github.com/bootctl/boot/internal/testenv"
)

// `boot tunnel --local ADDR` forwards ADDR through a real sshd on the
// control plane to the API server's address as the control plane reaches
// it (here an echo server on privateAddress:apiServerPort), says so in one
// event, and stops forwarding and returns when its context ends.
func TestTunnelCommandForwardsUntilInterrupted(t *testing.T) {
	key := sshtest.NewKey(t, "")
	s := sshtest.Start(t, sshtest.Options{Address: "127.0.0.2", TCPForwarding: true,
		AuthorizedKeys: map[string][]ssh.PublicKey{"root": {key.Public}}})
	api, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	go func() {
		for {
			c, err := api.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	// A local port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	local := ln.Addr().String()
	ln.Close()

	dir := t.TempDir()
	known := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(known, []byte(s.KnownHostsLine()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	invPath := filepath.Join(dir, "inventory.yaml")
	text := fmt.Sprintf(`apiVersion: boot/v1alpha1
kind: Cluster
metadata:
  name: lab
cluster:
  apiServerPort: %d
ssh:
  keyPath: %s
  knownHosts: %s
  agent: false
hosts:
  - {name: cp1, address: 127.0.0.2, privateAddress: 127.0.0.1, role: control-plane, ssh: {port: %d}}
  - {name: w1, address: 127.0.0.3, role: worker}
registry:
  host: registry.example.com
  issuer: selfsigned
`, api.Addr().(*net.TCPAddr).Port, key.Path, known, s.Port)
	if err := os.WriteFile(invPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}

	var stdout, stderr testenv.Buffer
	root, _ := newRootCmd(&stdout, &stderr)
	root.SetArgs([]string{"tunnel", "-i", invPath, "-o", "json", "--local", local})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()

	for !strings.Contains(stdout.String(), "\n") {
		select {
		case err := <-done:
			t.Fatalf("boot tunnel returned before forwarding: %v; stderr %s", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	var ev jsonEvent
	if err := json.Unmarshal([]byte(stdout.String()), &ev); err != nil {
		t.Fatalf("event %q: %v", stdout.String(), err)
	}
	if ev.Phase != "tunnel" || ev.Host != "cp1" || ev.Status != "ok" ||
		!strings.Contains(ev.Message, local) || !strings.Contains(ev.Message, api.Addr().String()) {
		t.Errorf("event %+v: want tunnel ok on cp1 naming %s and %s", ev, local, api.Addr())
	}

	c, err := net.DialTimeout("tcp", local, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != "ping\n" {
		t.Errorf("through the tunnel: read %q, %v", line, err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("boot tunnel after interrupt: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("boot tunnel did not return after its context ended")
	}
	if c, err := net.DialTimeout("tcp", local, time.Second); err == nil {
		c.Close()
		t.Error("still forwarding after boot tunnel returned")
	}
}
