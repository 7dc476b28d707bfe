package inventory

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestEnvOverrides(t *testing.T) {
	cases := []struct {
		name  string
		env   map[string]string
		check func(t *testing.T, inv *Inventory)
	}{
		{"kubernetes version", map[string]string{"BOOT_CLUSTER_KUBERNETESVERSION": "v1.36.4"}, func(t *testing.T, inv *Inventory) {
			if inv.Cluster.KubernetesVersion != "v1.36.4" {
				t.Errorf("kubernetesVersion = %q", inv.Cluster.KubernetesVersion)
			}
		}},
		{"registry host", map[string]string{"BOOT_REGISTRY_HOST": "reg.example.net"}, func(t *testing.T, inv *Inventory) {
			if inv.Registry.Host != "reg.example.net" {
				t.Errorf("registry.host = %q", inv.Registry.Host)
			}
		}},
		{"ssh user, port, agent and timeout", map[string]string{
			"BOOT_SSH_USER": "debian", "BOOT_SSH_PORT": "2222", "BOOT_SSH_AGENT": "false", "BOOT_SSH_CONNECTTIMEOUT": "1m30s",
		}, func(t *testing.T, inv *Inventory) {
			s := inv.SSH
			if s.User != "debian" || s.Port != 2222 || *s.Agent || s.ConnectTimeout != 90*time.Second {
				t.Errorf("ssh = %+v", s)
			}
			if r := inv.SSHFor(inv.Hosts[0]); r.User != "debian" || r.Port != 2222 || r.Agent || !r.NeedsSudo() {
				t.Errorf("resolved = %+v", r)
			}
		}},
		{"a field absent from the file", map[string]string{"BOOT_DNS_TTL": "60", "BOOT_REGISTRY_PRUNER_ENABLED": "false"}, func(t *testing.T, inv *Inventory) {
			if inv.DNS.TTL != 60 || *inv.Registry.Pruner.Enabled {
				t.Errorf("dns.ttl = %d, pruner.enabled = %v", inv.DNS.TTL, *inv.Registry.Pruner.Enabled)
			}
		}},
		{"a section absent from the file", map[string]string{"BOOT_SSH_BASTION_ADDRESS": "jump.example.com"}, func(t *testing.T, inv *Inventory) {
			b := inv.SSHFor(inv.Hosts[1]).Bastion
			if b == nil || b.Address != "jump.example.com" || b.Port != 22 || b.User != "root" || b.Addr() != "jump.example.com:22" {
				t.Errorf("bastion = %+v", b)
			}
		}},
		{"an empty variable is ignored", map[string]string{"BOOT_SSH_USER": ""}, func(t *testing.T, inv *Inventory) {
			if inv.SSH.User != "root" {
				t.Errorf("ssh.user = %q", inv.SSH.User)
			}
		}},
		{"lists are not overridable", map[string]string{"BOOT_HOSTS": "[]", "BOOT_HOSTS_0_NAME": "x", "BOOT_DNS_ADDRESSES": "192.0.2.99"}, func(t *testing.T, inv *Inventory) {
			if len(inv.Hosts) != 2 || inv.Hosts[0].Name != "cp1" || len(inv.DNS.Addresses) != 0 {
				t.Errorf("hosts = %+v, dns.addresses = %v", inv.Hosts, inv.DNS.Addresses)
			}
		}},
		{"apiVersion and kind are not overridable", map[string]string{"BOOT_APIVERSION": "x", "BOOT_KIND": "y"}, func(t *testing.T, inv *Inventory) {
			if inv.APIVersion != APIVersion || inv.Kind != Kind {
				t.Errorf("apiVersion = %q, kind = %q", inv.APIVersion, inv.Kind)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			isolate(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			tc.check(t, mustLoad(t, base))
		})
	}
}

// TestEnvProblems checks that a problem with a value from the environment
// names the variable instead of a line.
func TestEnvProblems(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"not a number", map[string]string{"BOOT_SSH_PORT": "twenty"},
			[]string{`env BOOT_SSH_PORT: ssh.port: "twenty" is not a whole number`}},
		{"not a boolean", map[string]string{"BOOT_REGISTRY_REDIS_ENABLED": "maybe"},
			[]string{`env BOOT_REGISTRY_REDIS_ENABLED: registry.redis.enabled: "maybe" is not true or false`}},
		{"not a duration", map[string]string{"BOOT_SSH_CONNECTTIMEOUT": "10"},
			[]string{`env BOOT_SSH_CONNECTTIMEOUT: ssh.connectTimeout: "10" is not a duration such as 10s or 1m30s`}},
		{"out of range", map[string]string{"BOOT_SSH_PORT": "70000"},
			[]string{`env BOOT_SSH_PORT: ssh.port: is 70000 (a port, 1-65535)`}},
		{"invalid value", map[string]string{"BOOT_REGISTRY_HOST": "not a host"},
			[]string{`env BOOT_REGISTRY_HOST: registry.host: "not a host" is not a DNS name (a fully qualified DNS name, e.g. registry.example.com)`}},
		{"a defaulted field derived from an env value", map[string]string{"BOOT_SSH_BASTION_PORT": "0"},
			[]string{`env BOOT_SSH_BASTION_PORT: ssh.bastion.address: is missing (an IP address or a DNS name)`}},
		{"a secret is not echoed", map[string]string{"BOOT_SSH_PASSWORDENV": "hunter2 canary"},
			[]string{`env BOOT_SSH_PASSWORDENV: ssh.passwordEnv: is not a valid environment variable name (the NAME of an environment variable: letters, digits and _, not starting with a digit)`}},
		{"file and env problems together", map[string]string{"BOOT_SSH_PORT": "x", "BOOT_CLUSTER_CNI": "calico"},
			[]string{
				`inv.yaml:11: ssh.user: "bad user" is not a user name (a login name: letters, digits, _ . -)`,
				`env BOOT_SSH_PORT: ssh.port: "x" is not a whole number`,
				`env BOOT_CLUSTER_CNI: cluster.cni: unknown CNI "calico" (flannel)`,
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			isolate(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			text := base
			if strings.HasPrefix(tc.name, "file and env") {
				text = edit(t, base, "  user: root\n", "  port: 1\n  user: bad user\n", "  port: 22\n", "")
			}
			got := problems(t, text)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if strings.Contains(strings.Join(got, "\n"), "hunter2") {
				t.Error("the report shows a secret value")
			}
		})
	}
}

func TestEnvVars(t *testing.T) {
	vars := EnvVars()
	seen := map[string]string{}
	for _, v := range vars {
		if other, dup := seen[v.Name]; dup {
			t.Errorf("%s overrides both %s and %s", v.Name, other, v.Field)
		}
		seen[v.Name] = v.Field
		if want := "BOOT_" + strings.ToUpper(strings.ReplaceAll(v.Field, ".", "_")); v.Name != want {
			t.Errorf("%s: name %s, want %s", v.Field, v.Name, want)
		}
		if strings.ContainsAny(v.Field, "[]") {
			t.Errorf("%s is inside a list", v.Field)
		}
	}
	for _, name := range []string{"BOOT_CLUSTER_KUBERNETESVERSION", "BOOT_REGISTRY_HOST", "BOOT_SSH_USER",
		"BOOT_SSH_SUDO_PASSWORDENV", "BOOT_SSH_BASTION_HOSTKEY", "BOOT_REGISTRY_STORAGE_S3_BUCKET", "BOOT_ADDONS_CERTMANAGER_VERSION"} {
		if _, ok := seen[name]; !ok {
			t.Errorf("%s is not an override", name)
		}
	}
	for _, name := range []string{"BOOT_APIVERSION", "BOOT_KIND", "BOOT_HOSTS", "BOOT_DNS_ADDRESSES", "BOOT_REGISTRY_PRUNER_RULES", "BOOT_INVENTORY"} {
		if _, ok := seen[name]; ok {
			t.Errorf("%s must not be an override", name)
		}
	}
}
