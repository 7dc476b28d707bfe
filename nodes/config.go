package nodes

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/term"
)

// HostKeyPolicy says what to do with a host key that known_hosts does not hold.
type HostKeyPolicy string

const (
	// Strict refuses unknown and changed keys.
	Strict HostKeyPolicy = "strict"
	// AcceptNew records unknown keys in the known_hosts file and still
	// refuses changed ones.
	AcceptNew HostKeyPolicy = "accept-new"
)

// Defaults applied by Dial and Connect to empty fields.
const (
	DefaultPort           = 22
	DefaultUser           = "root"
	DefaultConnectTimeout = 10 * time.Second
)

// Secret yields a secret (password, passphrase) when it is needed. It is a
// function so a Config can be printed or logged without revealing it.
type Secret func() ([]byte, error)

// EnvSecret reads the secret from the environment variable name. An unset
// or empty variable is an error naming the variable (never its value).
func EnvSecret(name string) Secret {
	return func() ([]byte, error) {
		v, ok := os.LookupEnv(name)
		if !ok || v == "" {
			return nil, fmt.Errorf("environment variable %s is not set", name)
		}
		return []byte(v), nil
	}
}

// promptMu serialises terminal prompts of concurrent connections.
var promptMu sync.Mutex

// PromptSecret asks for the secret on the terminal (without echo) the first
// time it is needed and remembers the answer. It fails when standard input
// is not a terminal.
func PromptSecret(label string) Secret {
	var (
		mu     sync.Mutex
		cached []byte
	)
	return func() ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		if cached != nil {
			return cached, nil
		}
		fd := int(os.Stdin.Fd())
		if !term.IsTerminal(fd) {
			return nil, fmt.Errorf("%s needed but standard input is not a terminal", label)
		}
		promptMu.Lock()
		defer promptMu.Unlock()
		fmt.Fprintf(os.Stderr, "%s: ", label)
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", label, err)
		}
		cached = b
		return cached, nil
	}
}

// EnvOrPrompt reads the secret from the environment variable name when it
// is set, and otherwise asks on the terminal (see PromptSecret).
func EnvOrPrompt(name, label string) Secret {
	prompt := PromptSecret(label)
	return func() ([]byte, error) {
		if v := os.Getenv(name); name != "" && v != "" {
			return []byte(v), nil
		}
		b, err := prompt()
		if err != nil && name != "" {
			return nil, fmt.Errorf("%w (or set %s)", err, name)
		}
		return b, err
	}
}

// Config is how to reach one host over SSH.
type Config struct {
	// Name identifies the host in output ("[name] ..."), logs and errors.
	// Default: Address.
	Name    string
	Address string // IP or DNS name
	Port    int    // default 22
	User    string // default root

	// KeyPath is a private key file (OpenSSH, PEM or PKCS#8). When it is
	// encrypted, KeyPassphrase supplies the passphrase.
	KeyPath       string
	KeyPassphrase Secret
	// Agent uses the ssh-agent at $SSH_AUTH_SOCK.
	Agent bool
	// Password enables password authentication.
	Password Secret

	// KnownHostsPath is the known_hosts file; default ~/.ssh/known_hosts.
	KnownHostsPath string
	// HostKeyPolicy is Strict (default) or AcceptNew.
	HostKeyPolicy HostKeyPolicy
	// PinnedHostKey, in authorized_keys format, is the only key accepted
	// when set; known_hosts is then not consulted.
	PinnedHostKey string

	// Bastion is one jump host reached first; its empty KnownHostsPath,
	// HostKeyPolicy and ConnectTimeout are taken from this Config.
	Bastion *Config

	// SudoPassword is fed to sudo on standard input when User is not root;
	// nil means passwordless sudo (sudo -n).
	SudoPassword Secret

	// ConnectTimeout bounds one connection attempt (TCP + SSH handshake).
	ConnectTimeout time.Duration
}

// addr is host:port.
func (c *Config) addr() string {
	return joinHostPort(c.Address, c.Port)
}

// withDefaults returns c with empty fields defaulted.
func (c Config) withDefaults() Config {
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.User == "" {
		c.User = DefaultUser
	}
	if c.Name == "" {
		c.Name = c.Address
	}
	if c.HostKeyPolicy == "" {
		c.HostKeyPolicy = Strict
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.KnownHostsPath == "" {
		if home, err := os.UserHomeDir(); err == nil {
			c.KnownHostsPath = filepath.Join(home, ".ssh", "known_hosts")
		}
	}
	if c.Bastion != nil {
		b := *c.Bastion
		if b.KnownHostsPath == "" {
			b.KnownHostsPath = c.KnownHostsPath
		}
		if b.HostKeyPolicy == "" {
			b.HostKeyPolicy = c.HostKeyPolicy
		}
		if b.ConnectTimeout == 0 {
			b.ConnectTimeout = c.ConnectTimeout
		}
		if b.Name == "" {
			b.Name = "bastion " + b.Address
		}
		b = b.withDefaults()
		c.Bastion = &b
	}
	return c
}

// validate reports every problem of a defaulted Config at once.
func (c *Config) validate() error {
	var errs []error
	if c.Address == "" {
		errs = append(errs, errors.New("address is empty"))
	}
	if c.Port < 1 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("port %d is out of range (1-65535)", c.Port))
	}
	switch c.HostKeyPolicy {
	case Strict, AcceptNew:
	default:
		errs = append(errs, fmt.Errorf("host-key policy %q is unknown (strict or accept-new)", c.HostKeyPolicy))
	}
	if c.PinnedHostKey != "" {
		if _, err := parsePinned(c.PinnedHostKey); err != nil {
			errs = append(errs, err)
		}
	} else if c.KnownHostsPath == "" {
		errs = append(errs, errors.New("no known_hosts file (no home directory) and no pinned host key"))
	}
	if c.KeyPath == "" && !c.Agent && c.Password == nil {
		errs = append(errs, errors.New("no authentication method: set a key path, the agent or a password"))
	}
	if c.Bastion != nil {
		if c.Bastion.Bastion != nil {
			errs = append(errs, errors.New("bastion: only one bastion hop is supported"))
		}
		if err := c.Bastion.validate(); err != nil {
			errs = append(errs, fmt.Errorf("bastion: %w", err))
		}
	}
	return errors.Join(errs...)
}

// parsePinned parses a pinned host key in authorized_keys format.
func parsePinned(s string) (ssh.PublicKey, error) {
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(strings.TrimSpace(s)))
	if err != nil {
		return nil, fmt.Errorf("pinned host key: %v (want authorized_keys format, e.g. \"ssh-ed25519 AAAA...\")", err)
	}
	return k, nil
}
