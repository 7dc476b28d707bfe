package scripts

import (
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"strings"
	"time"
)

var (
	dnsLabelRe   = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	kubeVerRe    = regexp.MustCompile(`^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$`)
	aptVersionRe = regexp.MustCompile(`^[0-9A-Za-z.+~:-]+$`)
	aptPackageRe = regexp.MustCompile(`^[a-z0-9][a-z0-9.+-]+$`)
	imageTagRe   = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	imageRepoRe  = regexp.MustCompile(`^[a-z0-9]([a-z0-9.:_/-]*[a-z0-9])?$`)
)

// DefaultImageRepository is where Kubernetes' images come from when a
// parameter set names no image repository.
const DefaultImageRepository = "registry.k8s.io"

// defaultReadyTimeout bounds the wait for containerd's CRI runtime.
const defaultReadyTimeout = 2 * time.Minute

// readyTemplate is crictl info's go-template that prints the RuntimeReady
// condition's status.
const readyTemplate = `{{range .status.conditions}}{{if eq .type "RuntimeReady"}}{{.status}}{{end}}{{end}}`

// checkDNSName accepts a DNS name of lower-case labels (a node name).
func checkDNSName(field, s string) error {
	if s == "" {
		return fmt.Errorf("%s is empty", field)
	}
	if len(s) > 253 {
		return fmt.Errorf("%s is longer than 253 characters", field)
	}
	for _, l := range strings.Split(s, ".") {
		if !dnsLabelRe.MatchString(l) {
			return fmt.Errorf("%s is not a DNS name of lower-case letters, digits, '-' and '.'", field)
		}
	}
	return nil
}

func checkIP(field, s string) error {
	if _, err := netip.ParseAddr(s); err != nil {
		return fmt.Errorf("%s is not an IP address", field)
	}
	return nil
}

// checkHost accepts an IP address or a DNS name.
func checkHost(field, s string) error {
	if _, err := netip.ParseAddr(s); err == nil {
		return nil
	}
	return checkDNSName(field, s)
}

// checkHostPort accepts host:port with an IP (IPv6 in brackets) or DNS name.
func checkHostPort(field, s string) error {
	ap, err := netip.ParseAddrPort(s)
	if err == nil && ap.Port() != 0 {
		return nil
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return fmt.Errorf("%s is not host:port", field)
	}
	if err := checkPort(field+" port", s[i+1:]); err != nil {
		return err
	}
	return checkDNSName(field+" host", s[:i])
}

func checkPort(field, s string) error {
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil || fmt.Sprint(n) != s || n < 1 || n > 65535 {
		return fmt.Errorf("%s is not a port number 1-65535", field)
	}
	return nil
}

func checkCIDR(field, s string) error {
	p, err := netip.ParsePrefix(s)
	if err != nil || p.Masked() != p {
		return fmt.Errorf("%s is not a network in CIDR notation (like 10.244.0.0/16)", field)
	}
	return nil
}

// checkAbsPath accepts a clean absolute path; any other character but a
// control character is allowed (scripts quote it).
func checkAbsPath(field, s string) error {
	if err := checkText(field, s); err != nil {
		return err
	}
	if !path.IsAbs(s) || path.Clean(s) != s {
		return fmt.Errorf("%s is not a clean absolute path", field)
	}
	return nil
}

func checkKubeVersion(field, s string) error {
	if !kubeVerRe.MatchString(s) {
		return fmt.Errorf("%s is not a Kubernetes version vMAJOR.MINOR.PATCH", field)
	}
	return nil
}

// sandboxImage checks an image repository (empty: DefaultImageRepository)
// and pause tag and returns the pause image reference.
func sandboxImage(repository, tag string) (string, error) {
	if repository == "" {
		repository = DefaultImageRepository
	}
	if !imageRepoRe.MatchString(repository) {
		return "", fmt.Errorf("%s is not an image repository like registry.example.com/k8s", "ImageRepository")
	}
	if !imageTagRe.MatchString(tag) {
		return "", fmt.Errorf("%s is not an image tag like 3.10.2", "PauseTag")
	}
	return repository + "/pause:" + tag, nil
}

func readySeconds(d time.Duration) (int, error) {
	if d == 0 {
		d = defaultReadyTimeout
	}
	if d < time.Second {
		return 0, fmt.Errorf("%s is shorter than a second", "ReadyTimeout")
	}
	return int(d / time.Second), nil
}

// runtimeConfig is what the containerd configuration and the readiness wait
// of both runtime scripts are rendered from.
type runtimeConfig struct {
	SandboxImage  string
	RuntimeBinary string
	ReadyTemplate string
	ReadySeconds  int
}

func newRuntimeConfig(imageRepository, pauseTag, runtimeBinary string, ready time.Duration) (runtimeConfig, error) {
	img, err := sandboxImage(imageRepository, pauseTag)
	if err != nil {
		return runtimeConfig{}, err
	}
	if runtimeBinary != "" {
		if err := checkAbsPath("RuntimeBinary", runtimeBinary); err != nil {
			return runtimeConfig{}, err
		}
	}
	secs, err := readySeconds(ready)
	if err != nil {
		return runtimeConfig{}, err
	}
	return runtimeConfig{SandboxImage: img, RuntimeBinary: runtimeBinary, ReadyTemplate: readyTemplate, ReadySeconds: secs}, nil
}
