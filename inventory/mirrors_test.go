package inventory

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMirrorRules checks the rules of packages.mirrors, cluster.registryMirrors
// and the proxies, each with the exact report.
func TestMirrorRules(t *testing.T) {
	isolate(t)
	key, err := filepath.Abs("testdata/mirror-key.asc")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	signature := filepath.Join(dir, "signature.asc")
	writeFile(t, signature, "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n"+base64.StdEncoding.EncodeToString([]byte{0x88, 0x5e, 0x04, 0x00})+"\n-----END PGP PUBLIC KEY BLOCK-----\n")
	private := filepath.Join(dir, "private.asc")
	writeFile(t, private, "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlFgEaxag\n-----END PGP PRIVATE KEY BLOCK-----\n")
	const regMirrors = "  serviceCIDR: 10.96.0.0/12\n"
	for _, tc := range []struct {
		name string
		add  string // appended to base
		edit []string
		want []string
	}{
		{name: "every kind set and good", add: "packages:\n  mirrors:\n    docker:\n      url: https://mirror.example.com/docker\n      keyFile: " + key +
			"\n    kubernetes:\n      url: http://mirror.example.com/k8s\n    helm:\n      url: https://mirror.example.com/helm\n" +
			"proxy:\n  httpProxy: http://proxy.example.com:3128\n  noProxy: [.corp.example.com, 10.0.0.0/8, 192.0.2.7, db1]\n"},
		{name: "mirror without url", add: "packages:\n  mirrors:\n    docker:\n      caFile: ca.pem\n",
			want: []string{`inv.yaml:24: packages.mirrors.docker.url: is missing (the mirror's base URL, e.g. https://mirror.example.com/docker)`}},
		{name: "mirror url not http", add: "packages:\n  mirrors:\n    kubernetes:\n      url: ftp://mirror.example.com/k8s\n",
			want: []string{`inv.yaml:25: packages.mirrors.kubernetes.url: "ftp://mirror.example.com/k8s" is not an http(s):// base URL (http(s)://host[:port][/path], without user, query or fragment)`}},
		{name: "mirror url with credentials", add: "packages:\n  mirrors:\n    kubernetes:\n      url: https://user:pw@mirror.example.com/k8s\n",
			want: []string{`inv.yaml:25: packages.mirrors.kubernetes.url: "https://user:pw@mirror.example.com/k8s" is not an http(s):// base URL (http(s)://host[:port][/path], without user, query or fragment)`}},
		{name: "helm over http", add: "packages:\n  mirrors:\n    helm:\n      url: http://mirror.example.com/helm\n",
			want: []string{`inv.yaml:25: packages.mirrors.helm.url: "http://mirror.example.com/helm" is plain http: the archive and the sha256 it is checked against would come the same unauthenticated way (an https:// URL)`}},
		{name: "helm key", add: "packages:\n  mirrors:\n    helm:\n      url: https://mirror.example.com/helm\n      keyFile: " + key + "\n",
			want: []string{`inv.yaml:26: packages.mirrors.helm.keyFile: is set but helm's archive is checked by its sha256, not signed (no keyFile for the helm mirror)`}},
		{name: "CA for an http mirror", add: "packages:\n  mirrors:\n    docker:\n      url: http://mirror.example.com/docker\n      caFile: /etc/ssl/ca.pem\n",
			want: []string{`inv.yaml:26: packages.mirrors.docker.caFile: is set but the mirror's URL is not https (a CA only for an https:// mirror)`}},
		{name: "key is a signature", add: "packages:\n  mirrors:\n    docker:\n      url: https://mirror.example.com/docker\n      keyFile: " + signature + "\n",
			want: []string{`inv.yaml:26: packages.mirrors.docker.keyFile: ` + signature + ` does not start with a public key packet (is it a private key or a signature?) (an ASCII-armored OpenPGP public key (gpg --armor --export))`}},
		{name: "key is private", add: "packages:\n  mirrors:\n    docker:\n      url: https://mirror.example.com/docker\n      keyFile: " + private + "\n",
			want: []string{`inv.yaml:26: packages.mirrors.docker.keyFile: ` + private + ` is not an ASCII-armored OpenPGP public key block (an ASCII-armored OpenPGP public key (gpg --armor --export))`}},
		{name: "mirrors with a bundle", add: "packages:\n  source: bundle\n  bundle: /srv/bundle\n  mirrors:\n    docker:\n      url: https://mirror.example.com/docker\n",
			edit: []string{regMirrors, regMirrors + "  imageRepository: registry.example.com:5000/k8s\n"},
			want: []string{`inv.yaml:27: packages.mirrors.docker: is set but packages.source is bundle (package mirrors only with packages.source: online (a bundle brings its own packages))`}},
		{name: "registry mirror", edit: []string{regMirrors, regMirrors + "  registryMirrors:\n    - registry: Registry.K8s.io\n      endpoints: []\n    - registry: docker.io\n      endpoints: [https://m.example.com/v2/docker.io, mirror.example.com]\n    - registry: docker.io\n      endpoints: [http://m.example.com:5000]\n"},
			want: []string{
				`inv.yaml:10: cluster.registryMirrors[0].registry: "Registry.K8s.io" is not a registry host (host or host:port in lower case, e.g. registry.k8s.io)`,
				`inv.yaml:11: cluster.registryMirrors[0].endpoints: is empty (at least one http(s)://host[:port][/path])`,
				`inv.yaml:13: cluster.registryMirrors[1].endpoints[1]: "mirror.example.com" is not an http(s):// URL (http(s)://host[:port][/path], without user, query or fragment)`,
				`inv.yaml:14: cluster.registryMirrors[2].registry: "docker.io" is also cluster.registryMirrors[1] (one entry per registry, with several endpoints)`,
			}},
		{name: "proxy", add: "proxy:\n  httpProxy: http://proxy.example.com\n  httpsProxy: http://u:p@proxy.example.com:3128\n  noProxy: [\"a b\", 10.0.0.1/8]\n",
			want: []string{
				`inv.yaml:23: proxy.httpProxy: "http://proxy.example.com" has no port (http://host:port (or https://host:port))`,
				`inv.yaml:24: proxy.httpsProxy: "http://u:p@proxy.example.com:3128" holds credentials, which would be written in clear into unit and apt files (a proxy that needs them is not supported) (http://host:port (or https://host:port))`,
				`inv.yaml:25: proxy.noProxy[0]: "a b" is not a host name, .domain, IP address or CIDR (a host name, a .domain suffix, an IP address or a CIDR)`,
				`inv.yaml:25: proxy.noProxy[1]: "10.0.0.1/8" is not a host name, .domain, IP address or CIDR (a host name, a .domain suffix, an IP address or a CIDR)`,
			}},
		{name: "host proxy names none", edit: []string{"    address: 192.0.2.11\n", "    address: 192.0.2.11\n    proxy: {noProxy: [db1]}\n"},
			want: []string{`inv.yaml:18: hosts[1].proxy: names no proxy (httpProxy and/or httpsProxy, e.g. http://proxy.example.com:3128)`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := base + tc.add
			if tc.edit != nil {
				text = edit(t, base, tc.edit...) + tc.add
			}
			got := problems(t, text)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestMirrorFilesResolved: the mirrors' caFile and keyFile are resolved
// beside the inventory, like every path.
func TestMirrorFilesResolved(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	data, err := os.ReadFile("testdata/mirror-key.asc")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "key.asc"), string(data))
	path := filepath.Join(dir, "inv.yaml")
	writeFile(t, path, base+"packages:\n  mirrors:\n    kubernetes:\n      url: https://mirror.example.com/k8s\n      keyFile: key.asc\n")
	inv, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := inv.Packages.Mirrors.Kubernetes.KeyFile; got != filepath.Join(dir, "key.asc") {
		t.Errorf("keyFile = %q, want it beside the inventory", got)
	}
}

// TestRegistryMirrorWarning: a mirror of a registry no image comes from is
// valid but draws a warning naming the registries in use.
func TestRegistryMirrorWarning(t *testing.T) {
	isolate(t)
	inv := mustLoad(t, edit(t, pinnedBase, "  serviceCIDR: 10.96.0.0/12\n", "  serviceCIDR: 10.96.0.0/12\n"+
		"  registryMirrors:\n    - registry: quay.io\n      endpoints: [https://m.example.com]\n    - registry: gcr.io\n      endpoints: [https://m.example.com]\n")+
		"addons:\n  ingress:\n    controller: traefik\n")
	got := inv.Warnings()
	want := `inv.yaml:12: cluster.registryMirrors[1].registry: "gcr.io" is a registry no image of the cluster comes from (they come from registry.k8s.io, docker.io, ghcr.io, quay.io, mirror.example.com) (a mirror for one of those, or none)`
	if len(got) != 1 || got[0].String() != want {
		t.Errorf("warnings = %v, want [%s]", got, want)
	}
}
