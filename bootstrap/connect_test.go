package bootstrap

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/bootctl/boot/inventory"
	"github.com/bootctl/boot/nodes"
)

// nodeConfig builds host and bastion settings the same way: every login
// field reaches nodes.Config, and each secret reads its own variable.
func TestNodeConfig(t *testing.T) {
	t.Setenv("SSH_AUTH_SOCK", "/nonexistent/agent.sock")
	for env, v := range map[string]string{"H_PASS": "h-pass", "H_PHRASE": "h-phrase", "H_SUDO": "h-sudo", "B_PASS": "b-pass", "B_PHRASE": "b-phrase"} {
		t.Setenv(env, v)
	}
	r := inventory.ResolvedSSH{
		Host: "cp1", Address: "10.0.0.10", Port: 2222, User: "admin",
		KeyPath: "/keys/host", KeyPassphraseEnv: "H_PHRASE", Agent: true, PasswordEnv: "H_PASS",
		HostKey: "ssh-ed25519 AAAAhost", KnownHosts: "/kh/host", HostKeyPolicy: "accept-new",
		ConnectTimeout: 7 * time.Second, SudoPasswordEnv: "H_SUDO",
		Bastion: &inventory.ResolvedBastion{
			Address: "10.0.0.1", Port: 22, User: "jump",
			KeyPath: "/keys/bastion", KeyPassphraseEnv: "B_PHRASE", Agent: false, PasswordEnv: "B_PASS",
			HostKey: "ssh-ed25519 AAAAbastion", KnownHosts: "/kh/bastion", HostKeyPolicy: "strict",
		},
	}
	got := nodeConfig(r)
	want := nodes.Config{
		Name: "cp1", Address: "10.0.0.10", Port: 2222, User: "admin",
		KeyPath: "/keys/host", Agent: true, KnownHostsPath: "/kh/host",
		HostKeyPolicy: "accept-new", PinnedHostKey: "ssh-ed25519 AAAAhost", ConnectTimeout: 7 * time.Second,
		Bastion: &nodes.Config{
			Name: "cp1 via bastion 10.0.0.1", Address: "10.0.0.1", Port: 22, User: "jump",
			KeyPath: "/keys/bastion", KnownHostsPath: "/kh/bastion",
			HostKeyPolicy: "strict", PinnedHostKey: "ssh-ed25519 AAAAbastion",
		},
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreTypes(nodes.Secret(nil))); diff != "" {
		t.Errorf("nodeConfig (-want +got):\n%s", diff)
	}
	for name, tc := range map[string]struct {
		s    nodes.Secret
		want string
	}{
		"host password": {got.Password, "h-pass"}, "host passphrase": {got.KeyPassphrase, "h-phrase"},
		"sudo password":    {got.SudoPassword, "h-sudo"},
		"bastion password": {got.Bastion.Password, "b-pass"}, "bastion passphrase": {got.Bastion.KeyPassphrase, "b-phrase"},
	} {
		if tc.s == nil {
			t.Errorf("%s: not set", name)
			continue
		}
		if v, err := tc.s(); err != nil || string(v) != tc.want {
			t.Errorf("%s = %q, %v; want %q", name, v, err, tc.want)
		}
	}
	if got.Bastion.SudoPassword != nil || got.Bastion.ConnectTimeout != 0 {
		t.Error("the bastion got the host's sudo password or connect timeout")
	}

	// No sudo for root, no agent without $SSH_AUTH_SOCK, no secrets unset.
	t.Setenv("SSH_AUTH_SOCK", "")
	plain := nodeConfig(inventory.ResolvedSSH{Host: "w1", Address: "10.0.0.11", Port: 22, User: "root", Agent: true, SudoPasswordEnv: "H_SUDO"})
	if plain.Agent || plain.SudoPassword != nil || plain.Password != nil || plain.KeyPassphrase != nil || plain.Bastion != nil {
		t.Errorf("plain root host: %+v", plain)
	}
}
