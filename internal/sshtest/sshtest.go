// Package sshtest starts SSH servers for tests: a real OpenSSH sshd (Start)
// bound to a chosen 127.0.0.x address and a random port, with its own host
// key, sshd_config and authorized_keys, and an in-process server (StartFake)
// for faults that a real sshd cannot be made to show on demand.
//
// Tests that use Start need root, /usr/sbin/sshd and, for the non-root test
// users, nodes/testdata/ci-setup.sh run once on the machine. Require and
// RequireUser check this: when the environment variable CI is set a missing
// prerequisite fails the test, otherwise the test is skipped.
package sshtest

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/bootctl/boot/internal/testenv"
)

// The users nodes/testdata/ci-setup.sh creates, and their test-only passwords.
const (
	// PasswordUser logs in with PasswordUserPassword.
	PasswordUser         = "boottest"
	PasswordUserPassword = "boot-Test-pw-7Qx2"
	// SudoUser has passwordless sudo.
	SudoUser = "bootsudo"
	// SudoPasswordUser has sudo that asks for SudoPasswordUserPassword.
	SudoPasswordUser         = "bootsudopw"
	SudoPasswordUserPassword = "boot-Sudo-pw-3Kd8"
)

// SSHD is the OpenSSH server binary Start runs.
const SSHD = "/usr/sbin/sshd"

// Require checks that a real sshd can be started: running as root with
// /usr/sbin/sshd installed.
func Require(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Need(t, "starting sshd for other users needs root")
	}
	if _, err := os.Stat(SSHD); err != nil {
		testenv.Need(t, "%s not found (apt-get install -y openssh-server)", SSHD)
	}
}

// RequireUser checks that a test user made by nodes/testdata/ci-setup.sh exists.
func RequireUser(t testing.TB, name string) {
	t.Helper()
	Require(t)
	if _, err := user.Lookup(name); err != nil {
		testenv.Need(t, "user %s does not exist (run nodes/testdata/ci-setup.sh as root)", name)
	}
	if _, err := os.Stat("/usr/bin/sudo"); err != nil {
		testenv.Need(t, "sudo not installed (apt-get install -y sudo)")
	}
}

// Key is a generated ed25519 key pair written to a file.
type Key struct {
	Signer ssh.Signer
	Public ssh.PublicKey
	// Path is the OpenSSH private key file (mode 0600), encrypted when a
	// passphrase was given.
	Path string
}

// AuthorizedLine is the key in authorized_keys format, without a newline.
func (k *Key) AuthorizedLine() string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k.Public)))
}

// NewKey generates an ed25519 key and writes it to a new file in a
// temporary directory, encrypted with passphrase unless it is empty.
func NewKey(t testing.TB, passphrase string) *Key {
	t.Helper()
	k, err := newKey(t.TempDir(), "id_ed25519", passphrase)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newKey(dir, name, passphrase string) (*Key, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	var block *pem.Block
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(priv, "boot-test")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "boot-test", []byte(passphrase))
	}
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	return &Key{Signer: signer, Public: signer.PublicKey(), Path: path}, nil
}

// Options configure a real sshd.
type Options struct {
	// Address is the loopback address to listen on; default 127.0.0.1.
	Address string
	// AuthorizedKeys maps a user name to the keys that may log in as it.
	AuthorizedKeys map[string][]ssh.PublicKey
	// Password enables password authentication (checked against /etc/shadow).
	Password bool
	// TCPForwarding allows direct-tcpip channels, as a bastion needs.
	TCPForwarding bool
	// HostKey reuses a host key from an earlier server; default a new one.
	HostKey *Key
	// Extra sshd_config lines. They come first, so they override the
	// defaults (sshd keeps the first value of a keyword); no Match blocks.
	Extra []string
}

// Server is a running sshd, stopped when the test ends.
type Server struct {
	Address string // the IP it listens on
	Port    int
	// HostKey is the server's host key.
	HostKey *Key
	// Dir holds its sshd_config, host key, authorized keys, pid file and log.
	Dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Address, strconv.Itoa(s.Port)) }

// KnownHostsLine is the known_hosts line (without newline) that trusts this
// server's host key at its address and port.
func (s *Server) KnownHostsLine() string {
	return knownhosts.Line([]string{knownhosts.Normalize(s.Addr())}, s.HostKey.Public)
}

// Log returns what sshd wrote to its log so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "sshd.log"))
	return string(b)
}

// Stop ends sshd and waits for it. Sessions already open keep running until
// their clients close them, as with any sshd.
func (s *Server) Stop() {
	if s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(os.Interrupt)
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	}
}

// Start runs /usr/sbin/sshd in the foreground on opts.Address and a free
// port, waits until it answers with an SSH banner, and stops it and removes
// its files when the test ends. It calls Require first.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	Require(t)
	if opts.Address == "" {
		opts.Address = "127.0.0.1"
	}
	if ip := net.ParseIP(opts.Address); ip == nil || !ip.IsLoopback() {
		t.Fatalf("sshtest: %q is not a loopback address", opts.Address)
	}
	// sshd needs its privilege separation directory.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	// Not t.TempDir: the directory must be readable by the test users sshd
	// switches to (it reads authorized_keys as them).
	dir, err := os.MkdirTemp("", "sshtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	hostKey := opts.HostKey
	if hostKey == nil {
		if hostKey, err = newKey(dir, "ssh_host_ed25519_key", ""); err != nil {
			t.Fatal(err)
		}
	} else {
		// sshd reads the host key from its own directory.
		b, err := os.ReadFile(hostKey.Path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "ssh_host_ed25519_key"), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	akDir := filepath.Join(dir, "authorized_keys")
	if err := os.Mkdir(akDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for u, keys := range opts.AuthorizedKeys {
		var b strings.Builder
		for _, k := range keys {
			b.Write(ssh.MarshalAuthorizedKey(k))
		}
		if err := os.WriteFile(filepath.Join(akDir, u), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort(opts.Address)
		if err != nil {
			t.Fatal(err)
		}
		s := &Server{Address: opts.Address, Port: port, HostKey: hostKey, Dir: dir, done: make(chan struct{})}
		if err := s.writeConfig(opts); err != nil {
			t.Fatal(err)
		}
		if lastErr = s.run(); lastErr == nil {
			t.Cleanup(func() {
				s.Stop()
				if t.Failed() {
					t.Logf("sshd %s log:\n%s", s.Addr(), s.Log())
				}
			})
			return s
		}
	}
	t.Fatalf("sshtest: sshd did not start: %v", lastErr)
	return nil
}

func (s *Server) writeConfig(opts Options) error {
	yesNo := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	lines := append([]string{}, opts.Extra...)
	lines = append(lines,
		"ListenAddress "+s.Addr(),
		"HostKey "+filepath.Join(s.Dir, "ssh_host_ed25519_key"),
		"PidFile "+filepath.Join(s.Dir, "sshd.pid"),
		"AuthorizedKeysFile "+filepath.Join(s.Dir, "authorized_keys", "%u"),
		"UsePAM no",
		"StrictModes no",
		"PermitRootLogin yes",
		"PubkeyAuthentication yes",
		"PasswordAuthentication "+yesNo(opts.Password),
		"KbdInteractiveAuthentication no",
		"AllowTcpForwarding "+yesNo(opts.TCPForwarding),
		"AllowAgentForwarding no",
		"X11Forwarding no",
		"PrintMotd no",
		"PrintLastLog no",
		"UseDNS no",
		"MaxStartups 200",
		"MaxSessions 64",
		"LogLevel VERBOSE",
	)
	return os.WriteFile(filepath.Join(s.Dir, "sshd_config"), []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

// run starts sshd and waits for its banner; an error means it did not come
// up (for instance the port was taken in the meantime).
func (s *Server) run() error {
	logf, err := os.OpenFile(filepath.Join(s.Dir, "sshd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	s.cmd = exec.Command(SSHD, "-D", "-e", "-f", filepath.Join(s.Dir, "sshd_config"))
	s.cmd.Stdout = logf
	s.cmd.Stderr = logf
	if err := s.cmd.Start(); err != nil {
		return err
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("sshd exited: %s", s.Log())
		default:
		}
		if banner(s.Addr()) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.Stop()
	return fmt.Errorf("sshd on %s gave no banner within 10s: %s", s.Addr(), s.Log())
}

// banner reports whether addr answers with an SSH identification string.
func banner(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "SSH-2.0-")
}

// freePort asks the kernel for a free TCP port on addr.
func freePort(addr string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
