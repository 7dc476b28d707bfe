package inventory

import (
	"errors"
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The rules below are those of the renderers (package scripts) for the
// values an inventory gives them: the renderers call these functions on
// their parameters and Validate calls them on the inventory's fields, so
// that whatever `boot validate` accepts every renderer accepts: one rule,
// one place. Their errors say what is wrong without naming a field or
// quoting the value; the caller names the field.

var (
	lowerLabelRe = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	// imageRepoRe is a lower-case registry host, an optional port and
	// optional path components, as image references spell them.
	imageRepoRe    = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[0-9]{1,5})?(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
	packageVersion = regexp.MustCompile(`^[0-9][0-9A-Za-z.+~:-]*$`)
	imageTagRe     = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	imageDigestRe  = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)
)

// CheckText refuses invalid UTF-8 and control characters (newlines, tabs,
// carriage returns, C1 controls).
func CheckText(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("is not valid UTF-8")
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return errors.New("holds a control character (newline, tab, ...)")
	}
	return nil
}

// CheckHostPath checks a path on the hosts: clean, absolute, CheckText
// (scripts quote every other character).
func CheckHostPath(s string) error {
	if err := CheckText(s); err != nil {
		return err
	}
	if !path.IsAbs(s) || path.Clean(s) != s {
		return errors.New("is not a clean absolute path")
	}
	return nil
}

// CheckImageRepository checks an image repository as the runtime scripts'
// sandbox image, kubeadm's imageRepository and flannel's images use it: a
// lower-case registry host, an optional :port and optional /path components
// (registry.example.com/k8s); no scheme, tag or digest.
func CheckImageRepository(s string) error {
	if !imageRepoRe.MatchString(s) {
		return errors.New("is not an image repository like registry.example.com/k8s")
	}
	return nil
}

// PinnedImage is an image reference pinned by digest, as
// ParsePinnedImage reads repository[:tag]@sha256:<64 hex>.
type PinnedImage struct {
	Repository string // CheckImageRepository's form, e.g. registry.example.com/bootctl/boot
	Tag        string // optional and informational: the digest is what is pulled
	Digest     string // sha256:<64 lower-case hex>
}

// ParsePinnedImage reads repository[:tag]@sha256:<64 hex>: the repository
// as CheckImageRepository takes it, an optional tag and a sha256 digest. A
// reference without a digest is refused: a tag can be moved to another
// image by whoever can push to its repository.
func ParsePinnedImage(s string) (PinnedImage, error) {
	name, digest, ok := strings.Cut(s, "@")
	if !ok {
		return PinnedImage{}, errors.New("is not pinned by a digest (a tag can be moved to another image)")
	}
	if !imageDigestRe.MatchString(digest) {
		return PinnedImage{}, errors.New("has a digest that is not sha256: and 64 lower-case hex digits")
	}
	p := PinnedImage{Repository: name, Digest: digest}
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		p.Repository, p.Tag = name[:i], name[i+1:]
		if !imageTagRe.MatchString(p.Tag) {
			return PinnedImage{}, errors.New("has a tag that is not letters, digits, '_', '.' and '-' (at most 128)")
		}
	}
	if err := CheckImageRepository(p.Repository); err != nil {
		return PinnedImage{}, err
	}
	return p, nil
}

// Host is the registry host the image is pulled from, without a port:
// the repository's first component when it names a host (it has a '.' or
// a ':' or is localhost), else docker.io.
func (p PinnedImage) Host() string {
	first, _, ok := strings.Cut(p.Repository, "/")
	if !ok || (!strings.ContainsAny(first, ".:") && first != "localhost") {
		return "docker.io"
	}
	host, _, _ := strings.Cut(first, ":")
	return host
}

// CheckPackageVersion checks a Debian package version (an upstream one such
// as 28.1.1, or an exact apt version such as 5:28.1.1-1~debian.12~bookworm):
// a digit first, then letters, digits and . + ~ : - only.
func CheckPackageVersion(s string) error {
	if !packageVersion.MatchString(s) {
		return errors.New("is not a package version")
	}
	return nil
}

// CheckKubernetesVersion checks the form vMAJOR.MINOR.PATCH (which releases
// boot supports is Validate's concern).
func CheckKubernetesVersion(s string) error {
	if !kubeVersionRe.MatchString(s) {
		return errors.New("is not a version vMAJOR.MINOR.PATCH")
	}
	return nil
}

// HelmVersion returns the Helm release s names, given with or without the
// leading v (3.22.0 or v3.22.0), as vMAJOR.MINOR.PATCH, the form of Helm's
// release archives' names.
func HelmVersion(s string) (string, error) {
	v := "v" + strings.TrimPrefix(s, "v")
	if !kubeVersionRe.MatchString(v) {
		return "", errors.New("is not a Helm release MAJOR.MINOR.PATCH")
	}
	return v, nil
}

// CheckNodeName checks a DNS name of lower-case labels, as Kubernetes names
// nodes and kubeadm takes names.
func CheckNodeName(s string) error {
	if s == "" {
		return errors.New("is empty")
	}
	if len(s) > 253 {
		return errors.New("is longer than 253 characters")
	}
	for l := range strings.SplitSeq(s, ".") {
		if !lowerLabelRe.MatchString(l) {
			return errors.New("is not a DNS name of lower-case letters, digits, '-' and '.'")
		}
	}
	return nil
}

// CheckHost checks a name kubeadm puts in the API server's certificate or
// reaches it at: an IP address or CheckNodeName.
func CheckHost(s string) error {
	if _, err := netip.ParseAddr(s); err == nil {
		return nil
	}
	return CheckNodeName(s)
}

// CheckHostPort checks host:port of the API server: an IP (IPv6 in
// brackets) or lower-case DNS name, and a port 1-65535.
func CheckHostPort(s string) error {
	ap, err := netip.ParseAddrPort(s)
	if err == nil && ap.Port() != 0 {
		return nil
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return errors.New("is not host:port")
	}
	if n, err := strconv.Atoi(s[i+1:]); err != nil || strconv.Itoa(n) != s[i+1:] || n < 1 || n > 65535 {
		return errors.New("port is not a port number 1-65535")
	}
	if err := CheckNodeName(s[:i]); err != nil {
		return fmt.Errorf("host %w", err)
	}
	return nil
}
