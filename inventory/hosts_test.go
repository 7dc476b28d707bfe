package inventory

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestSSHFor(t *testing.T) {
	home := isolate(t)
	key := testHostKey(t)
	bastionKey := testHostKey(t)
	inv := mustLoad(t, edit(t, base,
		"  port: 22\n", "  port: 22\n  keyPath: /keys/default\n  keyPassphraseEnv: DEFAULT_PASS\n  passwordEnv: LOGIN_PW\n"+
			"  hostKeyPolicy: accept-new\n  connectTimeout: 3s\n  sudo:\n    passwordEnv: SUDO_PW\n"+
			"  bastion:\n    address: 192.0.2.1\n    user: jump\n    agent: false\n    passwordEnv: JUMP_PW\n    hostKey: "+bastionKey+"\n",
		"  user: root\n", "  user: ops\n",
		"    role: worker\n", "    role: worker\n    hostKey: "+key+"\n    ssh:\n      user: root\n      port: 2201\n      keyPath: /keys/w1\n      sudoPasswordEnv: W1_SUDO\n",
	))
	knownHosts := filepath.Join(home, ".ssh/known_hosts")
	bastion := &ResolvedBastion{Address: "192.0.2.1", Port: 22, User: "jump", KeyPath: "/keys/default",
		KeyPassphraseEnv: "DEFAULT_PASS", Agent: false, PasswordEnv: "JUMP_PW", HostKey: bastionKey,
		KnownHosts: knownHosts, HostKeyPolicy: HostKeyAcceptNew}

	cp := inv.SSHFor(inv.ControlPlane())
	want := ResolvedSSH{Host: "cp1", Address: "192.0.2.10", Port: 22, User: "ops", KeyPath: "/keys/default",
		KeyPassphraseEnv: "DEFAULT_PASS", Agent: true, PasswordEnv: "LOGIN_PW", KnownHosts: knownHosts,
		HostKeyPolicy: HostKeyAcceptNew, ConnectTimeout: 3 * time.Second, SudoPasswordEnv: "SUDO_PW", Bastion: bastion}
	if dump(cp) != dump(want) {
		t.Errorf("cp1:\n%s\nwant:\n%s", dump(cp), dump(want))
	}
	if cp.Addr() != "192.0.2.10:22" || !cp.NeedsSudo() {
		t.Errorf("cp1: addr %s, needs sudo %v", cp.Addr(), cp.NeedsSudo())
	}

	w1 := inv.SSHFor(inv.Workers()[0])
	// The host's own key does not inherit the default key's passphrase.
	want = ResolvedSSH{Host: "w1", Address: "192.0.2.11", Port: 2201, User: "root", KeyPath: "/keys/w1",
		Agent: true, PasswordEnv: "LOGIN_PW", HostKey: key, KnownHosts: knownHosts,
		HostKeyPolicy: HostKeyAcceptNew, ConnectTimeout: 3 * time.Second, SudoPasswordEnv: "W1_SUDO", Bastion: bastion}
	if dump(w1) != dump(want) {
		t.Errorf("w1:\n%s\nwant:\n%s", dump(w1), dump(want))
	}
	if w1.Addr() != "192.0.2.11:2201" || w1.NeedsSudo() {
		t.Errorf("w1: addr %s, needs sudo %v", w1.Addr(), w1.NeedsSudo())
	}
}

func TestHostHelpers(t *testing.T) {
	isolate(t)
	inv := mustLoad(t, edit(t, base, "registry:\n",
		"  - name: w2\n    address: \"2001:db8::2\"\n    role: worker\n    ingress: false\n  - name: w3\n    address: 192.0.2.13\n    role: worker\nregistry:\n"))
	if inv.ControlPlane().Name != "cp1" {
		t.Errorf("control plane = %q", inv.ControlPlane().Name)
	}
	if got := hostNames(inv.Workers()); !slices.Equal(got, []string{"w1", "w2", "w3"}) {
		t.Errorf("workers = %v", got)
	}
	if got := hostNames(inv.IngressHosts()); !slices.Equal(got, []string{"w1", "w3"}) {
		t.Errorf("ingress hosts = %v", got)
	}
	if got := inv.RecordAddresses(); !slices.Equal(got, []string{"192.0.2.11", "192.0.2.13"}) {
		t.Errorf("record addresses = %v", got)
	}
	if got := inv.SSHFor(inv.Hosts[2]).Addr(); got != "[2001:db8::2]:22" {
		t.Errorf("IPv6 addr = %q", got)
	}
	if (Inventory{}).ControlPlane().Name != "" {
		t.Error("an empty inventory has a control plane")
	}
}

// TestValidateWithoutFile checks Validate on an inventory built in code:
// problems have no line, and the report still names the field.
func TestValidateWithoutFile(t *testing.T) {
	isolate(t)
	inv := mustLoad(t, base)
	if err := inv.Validate(); err != nil {
		t.Fatalf("a loaded inventory does not validate again: %v", err)
	}
	built := *inv
	built.origins = nil
	built.Path = "built-in"
	built.Hosts = append(slices.Clone(built.Hosts), Host{Name: "w9", Address: "192.0.2.11", PrivateAddress: "192.0.2.11", Role: RoleWorker})
	var ie *Error
	if err := built.Validate(); !errors.As(err, &ie) {
		t.Fatalf("err = %v, want *Error", err)
	}
	want := `built-in: hosts[2].address: "192.0.2.11" is also the address of hosts[1] (unique addresses)`
	if got := ie.Error(); got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
}
