package scripts

import (
	"encoding/pem"
	"fmt"
	"strings"

	"github.com/bootctl/boot/inventory"
)

// Proxy is the forward proxy a host's tools and daemons use.
type Proxy struct {
	// HTTP is the proxy for http:// URLs, HTTPS for https:// ones
	// (inventory.CheckProxyURL); either may be empty.
	HTTP, HTTPS string
	// NoProxy is every destination reached directly, complete: the
	// cluster's own ranges and addresses included (inventory.CheckNoProxy).
	NoProxy []string
}

// check checks the proxy's fields.
func (p *Proxy) check() error {
	if p == nil {
		return nil
	}
	if p.HTTP == "" && p.HTTPS == "" {
		return fmt.Errorf("%s names no proxy", "Proxy")
	}
	for _, u := range []struct{ field, value string }{{"Proxy.HTTP", p.HTTP}, {"Proxy.HTTPS", p.HTTPS}} {
		if u.value != "" {
			if err := named(u.field, inventory.CheckProxyURL(u.value)); err != nil {
				return err
			}
		}
	}
	for i, n := range p.NoProxy {
		if err := named(fmt.Sprintf("Proxy.NoProxy[%d]", i), inventory.CheckNoProxy(n)); err != nil {
			return err
		}
	}
	return nil
}

// NoProxyList is NoProxy as the environment variables carry it.
func (p *Proxy) NoProxyList() string { return strings.Join(p.NoProxy, ",") }

// DirectHosts are the NoProxy entries apt can be told to reach directly:
// host names and IPv4 addresses (apt matches neither suffixes nor ranges,
// and its configuration keys cannot hold an IPv6 address's colons).
func (p *Proxy) DirectHosts() []string {
	var out []string
	for _, n := range p.NoProxy {
		if !strings.HasPrefix(n, ".") && !strings.ContainsAny(n, "/:") {
			out = append(out, n)
		}
	}
	return out
}

// Mirror is the download site a script fetches from: upstream's, or a
// mirror with upstream's layout below its URL.
type Mirror struct {
	// URL is the base URL, without a final slash.
	URL string
	// CA is a PEM bundle of the CAs that sign the site's TLS certificate,
	// when the system roots do not; empty: the system roots.
	CA string
	// Key is the ASCII-armored OpenPGP key that signs the repository;
	// empty: the key the site serves.
	Key string
}

// mirrorFiles are the files a mirror's CA is written to on a host.
type mirrorFiles struct {
	Mirror
	Name string // file name part: docker, kubernetes, helm
	Host string // the URL's host name, for apt's per-host settings
	Apt  bool   // apt fetches from it too (an apt repository)
}

// Curl says whether the script downloads from the site with curl: helm's
// archive, or an apt repository's key unless the inventory gives it.
func (m mirrorFiles) Curl() bool { return !m.Apt || m.Key == "" }

// aptKey is an apt repository's signing key: the mirror's own (Mirror.Key)
// or the one downloaded from KeyURL (a shell word of the template's), kept
// as Keyring.
type aptKey struct {
	Mirror          mirrorFiles
	Keyring, KeyURL string
}

// Upstream download sites the mirrors replace.
const (
	dockerDownloads     = "https://download.docker.com"
	kubernetesDownloads = "https://pkgs.k8s.io"
	helmDownloads       = "https://get.helm.sh"
)

// onlineSource checks what an online script fetches through: the proxy,
// and the download site or its mirror (resolveMirror).
func onlineSource(field, name, upstream string, m Mirror, signed bool, proxy *Proxy) (mirrorFiles, error) {
	if err := proxy.check(); err != nil {
		return mirrorFiles{}, err
	}
	return resolveMirror(field, name, upstream, m, signed)
}

// resolveMirror checks m (its URL defaulting to upstream) and names its
// files.
func resolveMirror(field, name, upstream string, m Mirror, signed bool) (mirrorFiles, error) {
	if m.URL == "" {
		m.URL = upstream
	}
	m.URL = strings.TrimSuffix(m.URL, "/")
	u, err := inventory.ParseMirrorURL(m.URL)
	if err != nil {
		return mirrorFiles{}, named(field+".URL", err)
	}
	if m.CA != "" {
		if u.Scheme != "https" {
			return mirrorFiles{}, fmt.Errorf("%s.CA is set for a plain http URL", field)
		}
		if m.CA, err = canonicalPEM(m.CA, "CERTIFICATE"); err != nil {
			return mirrorFiles{}, named(field+".CA", err)
		}
	}
	if m.Key != "" {
		if !signed {
			return mirrorFiles{}, fmt.Errorf("%s.Key is set for a download that is not signed", field)
		}
		if m.Key, err = canonicalArmor(m.Key); err != nil {
			return mirrorFiles{}, named(field+".Key", err)
		}
	}
	if strings.Contains(u.Hostname(), ":") && m.CA != "" {
		return mirrorFiles{}, fmt.Errorf("%s.CA is set for an IPv6 address, which apt's per-host settings cannot name", field)
	}
	return mirrorFiles{Mirror: m, Name: name, Host: u.Hostname(), Apt: signed}, nil
}

// canonicalPEM is s's PEM blocks of the type, encoded afresh (whatever
// else the file held, and its line endings, left out), so that it can be
// written through a quoted here-document.
func canonicalPEM(s, typ string) (string, error) {
	rest := []byte(s)
	var out strings.Builder
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != typ {
			return "", fmt.Errorf("holds a PEM block of type %s", b.Type)
		}
		out.Write(pem.EncodeToMemory(&pem.Block{Type: b.Type, Bytes: b.Bytes}))
	}
	if out.Len() == 0 {
		return "", fmt.Errorf("holds no PEM %s block", typ)
	}
	return strings.TrimSuffix(out.String(), "\n"), nil
}

// canonicalArmor is s, an ASCII-armored public key block (the inventory
// checks its packets when it reads the file), with Unix line endings and
// without surrounding blank space.
func canonicalArmor(s string) (string, error) {
	t := strings.TrimSpace(strings.ReplaceAll(s, "\r\n", "\n"))
	if !strings.HasPrefix(t, "-----BEGIN PGP PUBLIC KEY BLOCK-----") || !strings.HasSuffix(t, "-----END PGP PUBLIC KEY BLOCK-----") {
		return "", fmt.Errorf("is not an ASCII-armored OpenPGP public key block")
	}
	return t, hereDocSafe(t)
}

// hereDocSafe refuses text that could end boot's here-documents early or
// holds control characters.
func hereDocSafe(s string) error {
	for _, line := range strings.Split(s, "\n") {
		if line == "BOOT_EOF" {
			return fmt.Errorf("holds a line that ends boot's here-documents")
		}
		if err := inventory.CheckText(line); err != nil {
			return err
		}
	}
	return nil
}

// RegistryMirror is one upstream registry's mirrors, written as containerd's
// hosts.toml.
type RegistryMirror struct {
	// Registry is host[:port] as images name it (docker.io for Docker Hub).
	Registry string
	// Endpoints are http(s) URLs (inventory.RegistryEndpoint); one with a
	// path is used as is (override_path).
	Endpoints []string
	// CA is a PEM bundle for the endpoints' TLS certificates, or empty.
	CA string
}

// registryHosts is a RegistryMirror as the hosts.toml template reads it.
type registryHosts struct {
	Registry string
	Server   string // the upstream registry's own URL
	Hosts    []registryHost
	CA       string
}

type registryHost struct {
	URL          string
	OverridePath bool
}

// resolveRegistryMirrors checks the mirrors and gives each its upstream
// server and hosts.
func resolveRegistryMirrors(ms []RegistryMirror) ([]registryHosts, error) {
	var out []registryHosts
	seen := map[string]bool{}
	for i, m := range ms {
		field := fmt.Sprintf("RegistryMirrors[%d]", i)
		if inventory.CheckRegistryHost(m.Registry) != nil {
			return nil, fmt.Errorf("%s.Registry is not host[:port]", field)
		}
		if seen[m.Registry] {
			return nil, fmt.Errorf("%s.Registry is listed twice", field)
		}
		seen[m.Registry] = true
		if len(m.Endpoints) == 0 {
			return nil, fmt.Errorf("%s.Endpoints is empty", field)
		}
		server := "https://" + m.Registry
		if m.Registry == "docker.io" {
			server = "https://registry-1.docker.io"
		}
		rh := registryHosts{Registry: m.Registry, Server: server}
		for j, e := range m.Endpoints {
			u, err := inventory.RegistryEndpoint(e)
			if err != nil {
				return nil, named(fmt.Sprintf("%s.Endpoints[%d]", field, j), err)
			}
			rh.Hosts = append(rh.Hosts, registryHost{URL: u.String(), OverridePath: u.Path != ""})
		}
		if m.CA != "" {
			ca, err := canonicalPEM(m.CA, "CERTIFICATE")
			if err != nil {
				return nil, named(field+".CA", err)
			}
			rh.CA = ca
		}
		out = append(out, rh)
	}
	return out, nil
}

// dockerMirror is a docker.io mirror as Docker's daemon takes it.
type dockerMirror struct {
	URL  string // scheme://host[:port], no path
	Host string // host[:port], the folder of /etc/docker/certs.d
	CA   string
	// Insecure: plain http, which Docker takes from a mirror only when its
	// host is also among its insecure-registries.
	Insecure bool
}

// dockerMirrors are docker.io's endpoints without a path: Docker's
// registry-mirrors takes only those (it asks them for /v2/... itself).
func dockerMirrors(ms []registryHosts) []dockerMirror {
	var out []dockerMirror
	for _, m := range ms {
		if m.Registry != "docker.io" {
			continue
		}
		for _, h := range m.Hosts {
			if !h.OverridePath {
				scheme, host, _ := strings.Cut(h.URL, "://")
				out = append(out, dockerMirror{URL: h.URL, Host: host, CA: m.CA, Insecure: scheme == "http"})
			}
		}
	}
	return out
}
