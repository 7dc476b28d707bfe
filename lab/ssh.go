package lab

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// ensureKey makes the lab's ed25519 key at path (0600, public key beside it
// as path.pub) unless it exists, and returns the public key in
// authorized_keys format.
func ensureKey(path string) ([]byte, error) {
	if data, err := os.ReadFile(path); err == nil {
		signer, err := ssh.ParsePrivateKey(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return ssh.MarshalAuthorizedKey(signer.PublicKey()), nil
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "boot lab")
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	line := ssh.MarshalAuthorizedKey(sshPub)
	return line, writeFileAtomic(path+".pub", line, 0o644)
}

// knownHostsLines turns a host's public host keys (the text of its
// ssh_host_*_key.pub files) into known_hosts lines for address.
func knownHostsLines(address, pubKeys string) ([]string, error) {
	var lines []string
	rest := []byte(pubKeys)
	for len(bytes.TrimSpace(rest)) > 0 {
		key, _, _, next, err := ssh.ParseAuthorizedKey(rest)
		if err != nil {
			return nil, fmt.Errorf("host keys: %w", err)
		}
		lines = append(lines, knownhosts.Line([]string{address}, key))
		rest = next
	}
	if len(lines) == 0 {
		return nil, errors.New("host has no SSH host keys")
	}
	return lines, nil
}

// sshConfig is a client configuration for root with the lab key, verifying
// host keys strictly against the lab's known_hosts file.
func sshConfig(keyPath, knownHostsPath string) (*ssh.ClientConfig, error) {
	data, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	hostKeys, err := knownhosts.New(knownHostsPath)
	if err != nil {
		return nil, err
	}
	return &ssh.ClientConfig{
		User:            "root",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: hostKeys,
		Timeout:         10 * time.Second,
	}, nil
}

// checkSSH logs in to address:22 as root and runs `true`, retrying for a
// while: sshd may still be starting.
func checkSSH(ctx context.Context, address, keyPath, knownHostsPath string) error {
	cfg, err := sshConfig(keyPath, knownHostsPath)
	if err != nil {
		return err
	}
	addr := net.JoinHostPort(address, "22")
	deadline := time.Now().Add(60 * time.Second)
	for {
		err = sshRun(ctx, addr, cfg, "true")
		if err == nil {
			return nil
		}
		var keyErr *knownhosts.KeyError
		if errors.As(err, &keyErr) || strings.Contains(err.Error(), "unable to authenticate") || time.Now().After(deadline) {
			return fmt.Errorf("ssh root@%s: %w", address, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// sshRun runs one command over a new SSH connection.
func sshRun(ctx context.Context, addr string, cfg *ssh.ClientConfig, command string) error {
	dialer := net.Dialer{Timeout: cfg.Timeout}
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if err != nil {
		conn.Close()
		return err
	}
	client := ssh.NewClient(c, chans, reqs)
	defer client.Close()
	s, err := client.NewSession()
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Run(command)
}
