package scripts

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// TestRegistryHostsParse reads every hosts.toml host prep writes as TOML,
// the way containerd reads it: the upstream server, each mirror in order
// with pull and resolve, the CA beside the file when one is given, and
// override_path exactly for endpoints with a path.
func TestRegistryHostsParse(t *testing.T) {
	script, err := HostPrep(HostPrepParams{Hostname: "w1", Address: "10.0.0.11", RegistryMirrors: []RegistryMirror{
		{Registry: "registry.k8s.io", Endpoints: []string{"https://m.example.com:5000/v2/registry.k8s.io/", "https://cache.example.com"}, CA: testCA},
		{Registry: "docker.io", Endpoints: []string{"http://10.0.0.5:5000"}},
		{Registry: "registry.example.com:5000", Endpoints: []string{"https://[fd00::5]:5000"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	files := regexp.MustCompile(`(?s)put_content "\$hosts_dir/"'([^']+)'/hosts.toml 0644 <<'BOOT_EOF' \|\| true\n(.*?)\nBOOT_EOF\n`).FindAllStringSubmatch(script, -1)
	type host struct {
		Capabilities []string `toml:"capabilities"`
		CA           string   `toml:"ca"`
		OverridePath bool     `toml:"override_path"`
	}
	want := map[string]struct {
		server string
		hosts  map[string]host
		order  []string
	}{
		"registry.k8s.io": {"https://registry.k8s.io", map[string]host{
			"https://m.example.com:5000/v2/registry.k8s.io": {[]string{"pull", "resolve"}, "/etc/containerd/certs.d/registry.k8s.io/boot-ca.crt", true},
			"https://cache.example.com":                     {[]string{"pull", "resolve"}, "/etc/containerd/certs.d/registry.k8s.io/boot-ca.crt", false},
		}, []string{"https://m.example.com:5000/v2/registry.k8s.io", "https://cache.example.com"}},
		"docker.io": {"https://registry-1.docker.io", map[string]host{
			"http://10.0.0.5:5000": {[]string{"pull", "resolve"}, "", false},
		}, []string{"http://10.0.0.5:5000"}},
		"registry.example.com:5000": {"https://registry.example.com:5000", map[string]host{
			"https://[fd00::5]:5000": {[]string{"pull", "resolve"}, "", false},
		}, []string{"https://[fd00::5]:5000"}},
	}
	if len(files) != len(want) {
		t.Fatalf("host prep writes %d hosts.toml files, want %d:\n%s", len(files), len(want), script)
	}
	for _, f := range files {
		w, ok := want[f[1]]
		if !ok {
			t.Errorf("hosts.toml for unexpected registry %q", f[1])
			continue
		}
		var got struct {
			Server string          `toml:"server"`
			Host   map[string]host `toml:"host"`
		}
		md, err := toml.Decode(f[2], &got)
		if err != nil {
			t.Errorf("%s/hosts.toml does not parse: %v\n%s", f[1], err, f[2])
			continue
		}
		if got.Server != w.server {
			t.Errorf("%s: server = %q, want %q", f[1], got.Server, w.server)
		}
		for name, h := range w.hosts {
			g := got.Host[name]
			if strings.Join(g.Capabilities, ",") != strings.Join(h.Capabilities, ",") || g.CA != h.CA || g.OverridePath != h.OverridePath {
				t.Errorf("%s: host %s = %+v, want %+v", f[1], name, g, h)
			}
		}
		// containerd tries the hosts in the file's order.
		var order []string
		for _, k := range md.Keys() {
			if len(k) == 2 && k[0] == "host" {
				order = append(order, k[1])
			}
		}
		if strings.Join(order, " ") != strings.Join(w.order, " ") {
			t.Errorf("%s: hosts in order %v, want %v", f[1], order, w.order)
		}
	}
}

// TestAccessParamsRefused: values that could break out of the files or
// here-documents they are written into are refused, naming the field.
func TestAccessParamsRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    HostPrepParams
		want string
	}{
		{"proxy with a quote", HostPrepParams{Proxy: &Proxy{HTTP: `http://p"x:3128`}}, "Proxy.HTTP"},
		{"proxy without any", HostPrepParams{Proxy: &Proxy{NoProxy: []string{"a"}}}, "Proxy names no proxy"},
		{"no-proxy with a comma", HostPrepParams{Proxy: &Proxy{HTTP: "http://p:3128", NoProxy: []string{"a,b"}}}, "Proxy.NoProxy[0]"},
		{"registry with a slash", HostPrepParams{RegistryMirrors: []RegistryMirror{{Registry: "a/b", Endpoints: []string{"https://m"}}}}, "RegistryMirrors[0].Registry"},
		{"endpoint with a quote", HostPrepParams{RegistryMirrors: []RegistryMirror{{Registry: "quay.io", Endpoints: []string{`https://m/"x`}}}}, "RegistryMirrors[0].Endpoints[0]"},
		{"CA not a certificate", HostPrepParams{RegistryMirrors: []RegistryMirror{{Registry: "quay.io", Endpoints: []string{"https://m"}, CA: "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----"}}}, "RegistryMirrors[0].CA"},
		{"a registry twice", HostPrepParams{RegistryMirrors: []RegistryMirror{{Registry: "quay.io", Endpoints: []string{"https://m"}}, {Registry: "quay.io", Endpoints: []string{"https://n"}}}}, "RegistryMirrors[1].Registry"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.p.Hostname, tc.p.Address = "w1", "10.0.0.11"
			_, err := HostPrep(tc.p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one naming %s", err, tc.want)
			}
		})
	}
}

// TestCAWrittenCanonical: only a CA file's certificate blocks reach the
// script, re-encoded: text around them (a line that would end the
// here-document and run a command) and CRLF line endings are left out.
func TestCAWrittenCanonical(t *testing.T) {
	hostile := "hostile-preamble\r\n" + strings.ReplaceAll(testCA, "\n", "\r\n") + "\r\nBOOT_EOF\nrm -rf /\n"
	script, err := HostPrep(HostPrepParams{Hostname: "w1", Address: "10.0.0.11",
		RegistryMirrors: []RegistryMirror{{Registry: "quay.io", Endpoints: []string{"https://m"}, CA: hostile}}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(script, "rm -rf /\n") || strings.Contains(script, "\r") || strings.Contains(script, "hostile-preamble") {
		t.Errorf("the script carries text from around the CA's blocks:\n%s", script)
	}
	if !strings.Contains(script, "<<'BOOT_EOF' || true\n"+testCA+"\nBOOT_EOF\n") {
		t.Errorf("the script does not write the CA block as is:\n%s", script)
	}
	key, err := KubeOnline(KubeOnlineParams{KubernetesVersion: "v1.37.2", Repository: Mirror{URL: "https://m", Key: strings.ReplaceAll(testKey, "\n", "\r\n") + "\r\n"}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(key, "\r") || !strings.Contains(key, "\n"+testKey+"\nBOOT_EOF\n") {
		t.Errorf("the key is not written with Unix line endings:\n%s", key)
	}
}

// TestDockerDaemonJSON: docker.io's mirrors without a path become Docker's
// registry-mirrors (the plain-http one also an insecure registry), in JSON
// Docker reads; a mirror with a path or of another registry does not.
func TestDockerDaemonJSON(t *testing.T) {
	script, err := HostPrep(HostPrepParams{Hostname: "w1", Address: "10.0.0.11", RegistryMirrors: []RegistryMirror{
		{Registry: "docker.io", Endpoints: []string{"https://hub-cache.example.com", "https://m.example.com/v2/docker.io", "http://10.0.0.5:5000"}, CA: testCA},
		{Registry: "quay.io", Endpoints: []string{"https://quay-cache.example.com"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`put_content "\$docker_json" 0644 <<'BOOT_EOF'; then\n(.*)\nBOOT_EOF`).FindStringSubmatch(script)
	if m == nil {
		t.Fatalf("no daemon.json in:\n%s", script)
	}
	var cfg struct {
		Mirrors  []string `json:"registry-mirrors"`
		Insecure []string `json:"insecure-registries"`
	}
	if err := json.Unmarshal([]byte(m[1]), &cfg); err != nil {
		t.Fatalf("daemon.json %s: %v", m[1], err)
	}
	if strings.Join(cfg.Mirrors, " ") != "https://hub-cache.example.com http://10.0.0.5:5000" || strings.Join(cfg.Insecure, " ") != "10.0.0.5:5000" {
		t.Errorf("daemon.json = %+v", cfg)
	}
	for _, host := range []string{"hub-cache.example.com", "10.0.0.5:5000"} {
		if !strings.Contains(script, "put_content /etc/docker/certs.d/'"+host+"'/ca.crt 0644 <<'BOOT_EOF' || true\n# Written by boot: the CA of a docker.io mirror.\n"+testCA+"\nBOOT_EOF") {
			t.Errorf("no CA for %s in /etc/docker/certs.d", host)
		}
	}
}
