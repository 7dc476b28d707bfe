package nodes

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/bootctl/boot/internal/boundedfile"
)

// HostKeyError says why a host key was refused and how to trust it if the
// operator decides it is genuine.
type HostKeyError struct {
	// Host is the address as checked: host or [host]:port.
	Host string
	// KeyType and Fingerprint (SHA256:...) describe the key the host presented.
	KeyType     string
	Fingerprint string
	// Changed: known_hosts holds other keys for this host (see Known).
	Changed bool
	// Known lists the conflicting known_hosts entries as "file:line fingerprint".
	Known []string
	// Pinned is the fingerprint of the pinned key the host did not present.
	Pinned string
	// KnownHostsPath is the file consulted, and Line the exact line that
	// would trust the presented key there.
	KnownHostsPath string
	Line           string
}

func (e *HostKeyError) Error() string {
	presented := e.KeyType + " " + e.Fingerprint
	switch {
	case e.Pinned != "":
		return fmt.Sprintf("host key of %s is %s, not the pinned key %s; refusing to connect (update the pinned key if the host was reinstalled)",
			e.Host, presented, e.Pinned)
	case e.Changed:
		return fmt.Sprintf("HOST KEY OF %s HAS CHANGED: it presented %s but the known key is %s; this may be a man-in-the-middle attack, refusing to connect. "+
			"If the host was reinstalled, remove the old entry and add this line to %s:\n%s",
			e.Host, presented, strings.Join(e.Known, ", "), e.KnownHostsPath, e.Line)
	default:
		return fmt.Sprintf("host key of %s is unknown (%s) and the host-key policy is strict; if this is the right host, add this line to %s (or use accept-new):\n%s",
			e.Host, presented, e.KnownHostsPath, e.Line)
	}
}

// Is makes errors.Is(err, ErrHostKey) true.
func (e *HostKeyError) Is(target error) bool { return target == ErrHostKey }

// hostKeys is how a host's key is checked: the callback, and the host-key
// algorithms to offer (those of the keys already known, so a host with
// several keys presents one that can be checked).
type hostKeys struct {
	callback   ssh.HostKeyCallback
	algorithms []string
}

// hostKeyCheck reads what c trusts (the pinned key, or the known_hosts
// entries for c's address) and builds the host-key check. A known_hosts
// file that cannot be used is a *configError.
func hostKeyCheck(c *Config, log *slog.Logger) (hostKeys, error) {
	if c.PinnedHostKey != "" {
		pinned, err := parsePinned(c.PinnedHostKey)
		if err != nil {
			return hostKeys{}, &configError{err}
		}
		cb := func(hostname string, _ net.Addr, key ssh.PublicKey) error {
			if bytes.Equal(key.Marshal(), pinned.Marshal()) {
				return nil
			}
			return &HostKeyError{
				Host:        knownhosts.Normalize(hostname),
				KeyType:     key.Type(),
				Fingerprint: ssh.FingerprintSHA256(key),
				Pinned:      pinned.Type() + " " + ssh.FingerprintSHA256(pinned),
			}
		}
		return hostKeys{cb, algorithmsFor([]string{pinned.Type()})}, nil
	}
	path := c.KnownHostsPath
	known, err := knownKeys(path, c.addr())
	if err != nil {
		return hostKeys{}, err
	}
	var types []string
	for _, k := range known {
		types = append(types, k.Key.Type())
	}
	cb := func(hostname string, _ net.Addr, key ssh.PublicKey) error {
		err := checkKnown(path, hostname, key)
		var ke *HostKeyError
		if !errors.As(err, &ke) || ke.Changed || c.HostKeyPolicy != AcceptNew {
			return err
		}
		return acceptNew(path, hostname, key, log)
	}
	return hostKeys{cb, algorithmsFor(types)}, nil
}

// algorithmsFor lists the host-key algorithms that can present keys of the
// given types; nil (all algorithms) when no type is known.
func algorithmsFor(types []string) []string {
	var algos []string
	seen := map[string]bool{}
	for _, t := range types {
		names := []string{t}
		if t == ssh.KeyAlgoRSA {
			names = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
		}
		for _, n := range names {
			if !seen[n] {
				seen[n] = true
				algos = append(algos, n)
			}
		}
	}
	return algos
}

// probeKey is a key no host has, used to list the known keys of a host.
var probeKey = func() ssh.PublicKey {
	k, err := ssh.NewPublicKey(ed25519.PublicKey(make([]byte, ed25519.PublicKeySize)))
	if err != nil {
		panic(err)
	}
	return k
}()

// probeAddr stands in for the remote address; knownhosts checks the host name.
var probeAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}

// knownKeys returns the entries of path for hostname (host:port). A missing
// file holds no entries; one that is not a regular file of bounded size, or
// does not parse, is a *configError.
func knownKeys(path, hostname string) ([]knownhosts.KnownKey, error) {
	f, _, err := boundedfile.Open(path, "known hosts", maxKnownHostsFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, &configError{err}
	}
	f.Close()
	cb, err := knownhosts.New(path)
	if err != nil {
		return nil, &configError{fmt.Errorf("reading known hosts: %w", err)}
	}
	var ke *knownhosts.KeyError
	if err := cb(hostname, probeAddr, probeKey); errors.As(err, &ke) {
		return ke.Want, nil
	} else if err != nil {
		return nil, &configError{fmt.Errorf("reading known hosts %s: %w", path, err)}
	}
	return nil, nil
}

// checkKnown checks key against path: nil when known, a *HostKeyError when
// unknown or changed.
func checkKnown(path, hostname string, key ssh.PublicKey) error {
	known, err := knownKeys(path, hostname)
	if err != nil {
		return err
	}
	for _, k := range known {
		if bytes.Equal(k.Key.Marshal(), key.Marshal()) {
			return nil
		}
	}
	host := knownhosts.Normalize(hostname)
	e := &HostKeyError{
		Host:           host,
		KeyType:        key.Type(),
		Fingerprint:    ssh.FingerprintSHA256(key),
		KnownHostsPath: path,
		Line:           knownhosts.Line([]string{host}, key),
	}
	for _, k := range known {
		e.Changed = true
		e.Known = append(e.Known, fmt.Sprintf("%s:%d %s %s", k.Filename, k.Line, k.Key.Type(), ssh.FingerprintSHA256(k.Key)))
	}
	return e
}

// acceptNew records key for hostname in path, under an exclusive lock on
// the file so concurrent connections (and processes) neither lose nor
// duplicate entries. The file is checked again under the lock.
func acceptNew(path, hostname string, key ssh.PublicKey, log *slog.Logger) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("recording host key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("recording host key: %w", err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("locking %s: %w", path, err)
	}
	defer func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }()

	err = checkKnown(path, hostname, key)
	var ke *HostKeyError
	if !errors.As(err, &ke) || ke.Changed {
		return err // known by now, changed, or unreadable
	}
	line := ke.Line + "\n"
	// Start on a fresh line if the file does not end with one.
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			line = "\n" + line
		}
	}
	if _, err := f.WriteString(line); err != nil {
		return fmt.Errorf("recording host key in %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("recording host key in %s: %w", path, err)
	}
	log.Info("recorded new host key", "host", ke.Host, "key", ke.KeyType+" "+ke.Fingerprint, "file", path)
	return nil
}
