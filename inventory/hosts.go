package inventory

import (
	"net"
	"strconv"
	"time"
)

// ControlPlane returns the control-plane host (a valid inventory has exactly
// one), or the zero Host when there is none.
func (inv Inventory) ControlPlane() Host {
	if cps := inv.hostsWithRole(RoleControlPlane); len(cps) > 0 {
		return cps[0]
	}
	return Host{}
}

// Workers returns the worker hosts in file order.
func (inv Inventory) Workers() []Host {
	return inv.hostsWithRole(RoleWorker)
}

// IngressHosts returns the hosts that run the ingress controller, in file
// order (after defaults: the workers, unless hosts say otherwise).
func (inv Inventory) IngressHosts() []Host {
	var out []Host
	for _, h := range inv.Hosts {
		if h.Ingress != nil && *h.Ingress {
			out = append(out, h)
		}
	}
	return out
}

// RecordAddresses returns the addresses the registry's DNS record points at:
// dns.addresses when set, else the ingress hosts' addresses.
func (inv Inventory) RecordAddresses() []string {
	if len(inv.DNS.Addresses) > 0 {
		return inv.DNS.Addresses
	}
	var out []string
	for _, h := range inv.IngressHosts() {
		out = append(out, h.Address)
	}
	return out
}

func (inv Inventory) hostsWithRole(role string) []Host {
	var out []Host
	for _, h := range inv.Hosts {
		if h.Role == role {
			out = append(out, h)
		}
	}
	return out
}

// ResolvedSSH is how to reach one host: the inventory's SSH defaults merged
// with the host's overrides. Secrets are never in it, only the names of the
// environment variables that hold them.
type ResolvedSSH struct {
	Host    string // the host's name, for messages
	Address string // IP or DNS name to dial
	Port    int
	User    string

	// Authentication, tried in this order by the nodes package.
	KeyPath          string // private key file (absolute); empty = none
	KeyPassphraseEnv string // env var with the key's passphrase; empty = unencrypted key or prompt
	Agent            bool   // use the agent at $SSH_AUTH_SOCK when that is set
	PasswordEnv      string // env var with the login password; empty = no password auth

	// Host-key checking: HostKey, when set, is the only key accepted
	// (authorized_keys format); otherwise KnownHosts under HostKeyPolicy.
	HostKey       string
	KnownHosts    string // known_hosts file (absolute)
	HostKeyPolicy string // HostKeyStrict or HostKeyAcceptNew

	ConnectTimeout time.Duration

	// SudoPasswordEnv names the env var with the sudo password; empty =
	// passwordless sudo. Only used when NeedsSudo.
	SudoPasswordEnv string

	// Bastion is the jump host to go through; nil = connect directly.
	Bastion *ResolvedBastion
}

// ResolvedBastion is how to reach the jump host. Its host key is checked
// like the host's: HostKey when pinned, else KnownHosts under HostKeyPolicy.
type ResolvedBastion struct {
	Address          string
	Port             int
	User             string
	KeyPath          string
	KeyPassphraseEnv string
	Agent            bool
	PasswordEnv      string
	HostKey          string
	KnownHosts       string
	HostKeyPolicy    string
}

// Addr is the host's "address:port" for dialing.
func (r ResolvedSSH) Addr() string {
	return net.JoinHostPort(r.Address, strconv.Itoa(r.Port))
}

// NeedsSudo reports whether commands must go through sudo to run as root.
func (r ResolvedSSH) NeedsSudo() bool {
	return r.User != "root"
}

// Addr is the bastion's "address:port" for dialing.
func (b ResolvedBastion) Addr() string {
	return net.JoinHostPort(b.Address, strconv.Itoa(b.Port))
}

// SSHFor returns the effective SSH settings for h, a host of this
// (defaulted) inventory.
func (inv Inventory) SSHFor(h Host) ResolvedSSH {
	s := inv.SSH
	r := ResolvedSSH{
		Host:             h.Name,
		Address:          h.Address,
		Port:             pick(h.SSH.Port, s.Port),
		User:             pick(h.SSH.User, s.User),
		KeyPath:          pick(h.SSH.KeyPath, s.KeyPath),
		KeyPassphraseEnv: pick(h.SSH.KeyPassphraseEnv, s.KeyPassphraseEnv),
		Agent:            s.Agent == nil || *s.Agent,
		PasswordEnv:      pick(h.SSH.PasswordEnv, s.PasswordEnv),
		HostKey:          h.HostKey,
		KnownHosts:       s.KnownHosts,
		HostKeyPolicy:    s.HostKeyPolicy,
		ConnectTimeout:   s.ConnectTimeout,
		SudoPasswordEnv:  pick(h.SSH.SudoPasswordEnv, s.Sudo.PasswordEnv),
	}
	if h.SSH.KeyPath != "" && h.SSH.KeyPassphraseEnv == "" {
		// A host's own key does not inherit the passphrase of the default key.
		r.KeyPassphraseEnv = ""
	}
	if b := s.Bastion; b != nil {
		r.Bastion = &ResolvedBastion{
			Address:          b.Address,
			Port:             b.Port,
			User:             b.User,
			KeyPath:          b.KeyPath,
			KeyPassphraseEnv: b.KeyPassphraseEnv,
			Agent:            b.Agent == nil || *b.Agent,
			PasswordEnv:      b.PasswordEnv,
			HostKey:          b.HostKey,
			KnownHosts:       s.KnownHosts,
			HostKeyPolicy:    s.HostKeyPolicy,
		}
	}
	return r
}

// pick returns override unless it is the zero value, else def.
func pick[T comparable](override, def T) T {
	var zero T
	if override != zero {
		return override
	}
	return def
}
