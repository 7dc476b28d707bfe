package inventory

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/bootctl/boot/internal/boundedfile"
)

// registryDocker is Docker Hub as image references name it.
const registryDocker = "docker.io"

// OnlineRegistries are the upstream registries the cluster pulls from
// online: Kubernetes' (kubeadm's default image repository, ingress-nginx),
// Docker Hub (the registry add-on's images and Traefik's), GitHub's
// (flannel's) and Quay (cert-manager's). A registry mirror for any other
// registry (or cluster.imageRepository's) is a warning: nothing would use it.
var OnlineRegistries = []string{"registry.k8s.io", registryDocker, "ghcr.io", "quay.io"}

// maxKeyFile bounds an OpenPGP public key file.
const maxKeyFile = 1 << 20

// fieldMirrors are the package mirrors (nil when not set) and their fields.
func (p Packages) fieldMirrors() []fieldMirror {
	return []fieldMirror{
		{"packages.mirrors.docker", p.Mirrors.Docker, true},
		{"packages.mirrors.kubernetes", p.Mirrors.Kubernetes, true},
		{"packages.mirrors.helm", p.Mirrors.Helm, false},
	}
}

// fieldMirror is a package mirror and the field that holds it; signed says
// whether a signing key applies (an apt repository).
type fieldMirror struct {
	field  string
	mirror *PackageMirror
	signed bool
}

// mirrors checks packages.mirrors, cluster.registryMirrors and the proxies.
func (c *checker) mirrors() {
	online := c.inv.Packages.Source == SourceOnline
	for _, m := range c.inv.Packages.fieldMirrors() {
		if m.mirror == nil {
			continue
		}
		if !online {
			c.add(m.field, "is set but packages.source is "+c.inv.Packages.Source, "package mirrors only with packages.source: "+SourceOnline+" (a bundle brings its own packages)")
			continue
		}
		c.packageMirror(m)
	}
	seen := map[string]int{}
	for i, rm := range c.inv.Cluster.RegistryMirrors {
		c.registryMirror(i, rm, seen)
	}
	if c.inv.Proxy != nil {
		c.proxy("proxy", *c.inv.Proxy)
	}
	for i, h := range c.inv.Hosts {
		if h.Proxy != nil {
			c.proxy(hostField(i, "proxy"), *h.Proxy)
		}
	}
}

func (c *checker) packageMirror(m fieldMirror) {
	u, err := ParseMirrorURL(m.mirror.URL)
	switch {
	case m.mirror.URL == "":
		c.add(m.field+".url", "is missing", "the mirror's base URL, e.g. https://mirror.example.com/docker")
		return
	case err != nil:
		c.add(m.field+".url", quote(m.mirror.URL)+" "+err.Error(), "http(s)://host[:port][/path], without user, query or fragment")
		return
	case !m.signed && u.Scheme != "https":
		c.add(m.field+".url", quote(m.mirror.URL)+" is plain http: the archive and the sha256 it is checked against would come the same unauthenticated way",
			"an https:// URL")
	}
	if m.mirror.CAFile != "" {
		if u.Scheme != "https" {
			c.add(m.field+".caFile", "is set but the mirror's URL is not https", "a CA only for an https:// mirror")
		} else if msg := checkCAFile(m.mirror.CAFile); msg != "" {
			c.add(m.field+".caFile", msg, "a PEM file of CA certificates")
		}
	}
	if m.mirror.KeyFile != "" {
		if !m.signed {
			c.add(m.field+".keyFile", "is set but helm's archive is checked by its sha256, not signed", "no keyFile for the helm mirror")
		} else if msg := checkPublicKeyFile(m.mirror.KeyFile); msg != "" {
			c.add(m.field+".keyFile", msg, "an ASCII-armored OpenPGP public key (gpg --armor --export)")
		}
	}
}

func (c *checker) registryMirror(i int, rm RegistryMirror, seen map[string]int) {
	f := fmt.Sprintf("cluster.registryMirrors[%d]", i)
	switch {
	case rm.Registry == "":
		c.add(f+".registry", "is missing", "the upstream registry as images name it, e.g. registry.k8s.io or docker.io")
	case CheckRegistryHost(rm.Registry) != nil:
		c.add(f+".registry", quote(rm.Registry)+" is not a registry host", "host or host:port in lower case, e.g. registry.k8s.io")
	default:
		if j, dup := seen[rm.Registry]; dup {
			c.add(f+".registry", fmt.Sprintf("%s is also cluster.registryMirrors[%d]", quote(rm.Registry), j), "one entry per registry, with several endpoints")
		}
		seen[rm.Registry] = i
	}
	if len(rm.Endpoints) == 0 {
		c.add(f+".endpoints", "is empty", "at least one http(s)://host[:port][/path]")
	}
	for j, e := range rm.Endpoints {
		if _, err := RegistryEndpoint(e); err != nil {
			c.add(fmt.Sprintf("%s.endpoints[%d]", f, j), quote(e)+" "+err.Error(), "http(s)://host[:port][/path], without user, query or fragment")
		}
	}
	if rm.CAFile != "" {
		if msg := checkCAFile(rm.CAFile); msg != "" {
			c.add(f+".caFile", msg, "a PEM file of CA certificates")
		}
	}
}

// ParseMirrorURL parses a package mirror's base URL: http(s), a host, no
// user, query or fragment, and nothing a shell or apt line would read
// otherwise (quotes, spaces, $, backquotes, control characters).
func ParseMirrorURL(s string) (*url.URL, error) {
	u, ok := httpURL(s)
	if !ok {
		return nil, fmt.Errorf("is not an http(s):// base URL")
	}
	if CheckText(s) != nil || strings.ContainsAny(s, "\"'\\ `$") {
		return nil, fmt.Errorf("has quotes, spaces, $, backquotes or control characters")
	}
	return u, nil
}

// RegistryEndpoint parses a registry mirror's endpoint: an http(s) URL with
// a host, no user, query or fragment, and a path without a final slash.
func RegistryEndpoint(s string) (*url.URL, error) {
	u, ok := httpURL(s)
	if !ok {
		return nil, fmt.Errorf("is not an http(s):// URL")
	}
	if err := CheckText(u.Path); err != nil || strings.ContainsAny(u.Path, "\"'\\ ") {
		return nil, fmt.Errorf("has a path with quotes, spaces or control characters")
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}

// httpURL parses an http or https URL with a host and no user, query,
// fragment or opaque part.
func httpURL(s string) (*url.URL, bool) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return nil, false
	}
	return u, true
}

// CheckRegistryHost checks a registry as image references name it: host or
// host:port (docker.io for Docker Hub).
func CheckRegistryHost(s string) error {
	if CheckHost(s) != nil && CheckHostPort(s) != nil {
		return errors.New("is not a registry host")
	}
	return nil
}

func (c *checker) proxy(field string, p Proxy) {
	if p.HTTPProxy == "" && p.HTTPSProxy == "" {
		c.add(field, "names no proxy", "httpProxy and/or httpsProxy, e.g. http://proxy.example.com:3128")
	}
	for _, u := range []struct{ name, value string }{{"httpProxy", p.HTTPProxy}, {"httpsProxy", p.HTTPSProxy}} {
		if u.value == "" {
			continue
		}
		if err := CheckProxyURL(u.value); err != nil {
			c.add(field+"."+u.name, quote(u.value)+" "+err.Error(), "http://host:port (or https://host:port)")
		}
	}
	for i, n := range p.NoProxy {
		if err := CheckNoProxy(n); err != nil {
			c.add(fmt.Sprintf("%s.noProxy[%d]", field, i), quote(n)+" "+err.Error(), "a host name, a .domain suffix, an IP address or a CIDR")
		}
	}
}

// CheckProxyURL checks a proxy's URL: http or https, a host, an explicit
// port (curl would otherwise assume 1080), no credentials (they would sit
// in clear in unit files) and no path.
func CheckProxyURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("is not an http(s):// URL")
	case u.User != nil:
		return fmt.Errorf("holds credentials, which would be written in clear into unit and apt files (a proxy that needs them is not supported)")
	case u.Port() == "":
		return fmt.Errorf("has no port")
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("has a path, query or fragment")
	}
	if err := CheckHost(u.Hostname()); err != nil {
		return fmt.Errorf("host %w", err)
	}
	if n, err := strconv.Atoi(u.Port()); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port is not a port number 1-65535")
	}
	return nil
}

// CheckNoProxy checks one no-proxy entry: an IP address, a CIDR, a DNS
// name or a .domain suffix.
func CheckNoProxy(s string) error {
	if _, err := netip.ParseAddr(s); err == nil {
		return nil
	}
	if p, err := netip.ParsePrefix(s); err == nil && p.Masked() == p {
		return nil
	}
	if CheckNodeName(strings.TrimPrefix(s, ".")) != nil {
		return fmt.Errorf("is not a host name, .domain, IP address or CIDR")
	}
	return nil
}

// checkPublicKeyFile reads an ASCII-armored OpenPGP public key and says
// what is wrong with it, or "": apt takes an armored key as a .asc keyring.
func checkPublicKeyFile(p string) string {
	data, err := boundedfile.Read(p, "OpenPGP key", maxKeyFile)
	if err != nil {
		return "cannot be read: " + err.Error()
	}
	const begin, end = "-----BEGIN PGP PUBLIC KEY BLOCK-----", "-----END PGP PUBLIC KEY BLOCK-----"
	s := bufio.NewScanner(bytes.NewReader(data))
	state, body := 0, ""
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if CheckText(line) != nil {
			return p + " holds control characters"
		}
		switch {
		case state == 0 && line == begin:
			state = 1
		case state == 1 && line == "": // end of the armor headers
			state = 2
		case state == 1 && strings.Contains(line, ": "): // an armor header
		case (state == 1 || state == 2) && line == end:
			state = 3
		case state == 1 || state == 2:
			state = 2
			if !strings.HasPrefix(line, "=") { // the checksum line
				body += line
			}
		}
	}
	if state != 3 {
		return p + " is not an ASCII-armored OpenPGP public key block"
	}
	raw, err := base64.StdEncoding.DecodeString(body)
	if err != nil || len(raw) == 0 {
		return p + ": the key block is not base64"
	}
	// The first packet must be a public key (tag 6), in the old or the new
	// packet format.
	b := raw[0]
	tag := -1
	switch {
	case b&0xc0 == 0xc0:
		tag = int(b & 0x3f)
	case b&0x80 != 0:
		tag = int(b&0x3c) >> 2
	}
	if tag != 6 {
		return p + " does not start with a public key packet (is it a private key or a signature?)"
	}
	return ""
}

// usedRegistries are the registries the cluster pulls images from: with a
// bundle, cluster.imageRepository's alone; online, that (registry.k8s.io
// by default) and the upstream registries of the CNI and the add-ons; and
// the maintenance image's.
func (inv Inventory) usedRegistries() []string {
	var out []string
	add := func(r string) {
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	if r := inv.Cluster.ImageRepository; r != "" {
		add(registryOf(r))
	}
	if inv.Packages.Source != SourceBundle {
		for _, r := range OnlineRegistries {
			add(r)
		}
	}
	if img, err := ParsePinnedImage(inv.Registry.Maintenance.Image); err == nil {
		add(registryOf(img.Repository))
	}
	return out
}

// registryOf is the registry (host[:port]) a repository is pulled from:
// its first component when that names a host (it has a '.' or a ':' or is
// localhost; a repository of one component is a host), else docker.io.
func registryOf(repo string) string {
	first, _, ok := strings.Cut(repo, "/")
	if ok && !strings.ContainsAny(first, ".:") && first != "localhost" {
		return registryDocker
	}
	return first
}

// mirrorWarnings are the registry mirrors of registries nothing pulls from.
func (inv Inventory) mirrorWarnings() []Problem {
	var out []Problem
	used := inv.usedRegistries()
	for i, rm := range inv.Cluster.RegistryMirrors {
		if rm.Registry == "" || slices.Contains(used, rm.Registry) {
			continue
		}
		out = append(out, inv.problem(fmt.Sprintf("cluster.registryMirrors[%d].registry", i),
			quote(rm.Registry)+" is a registry no image of the cluster comes from (they come from "+strings.Join(used, ", ")+")",
			"a mirror for one of those, or none"))
	}
	return out
}
