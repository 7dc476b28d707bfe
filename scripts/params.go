package scripts

import (
	"fmt"
	"net/netip"
	"regexp"
	"time"

	"github.com/bootctl/boot/inventory"
)

var (
	aptPackageRe = regexp.MustCompile(`^[a-z0-9][a-z0-9.+-]+$`)
	imageTagRe   = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
)

// DefaultImageRepository is where Kubernetes' images come from when a
// parameter set names no image repository.
const DefaultImageRepository = "registry.k8s.io"

// defaultReadyTimeout bounds the wait for containerd's CRI runtime.
const defaultReadyTimeout = 2 * time.Minute

// readyTemplate is crictl info's go-template that prints the RuntimeReady
// condition's status.
const readyTemplate = `{{range .status.conditions}}{{if eq .type "RuntimeReady"}}{{.status}}{{end}}{{end}}`

// The checks of values an inventory gives are the inventory package's
// (its Validate uses the same ones); named puts the parameter's name in
// front of their errors.

// checkDNSName accepts a DNS name of lower-case labels (a node name).
func checkDNSName(field, s string) error { return named(field, inventory.CheckNodeName(s)) }

func checkIP(field, s string) error {
	if _, err := netip.ParseAddr(s); err != nil {
		return fmt.Errorf("%s is not an IP address", field)
	}
	return nil
}

// checkHost accepts an IP address or a DNS name.
func checkHost(field, s string) error { return named(field, inventory.CheckHost(s)) }

// checkHostPort accepts host:port with an IP (IPv6 in brackets) or DNS name.
func checkHostPort(field, s string) error { return named(field, inventory.CheckHostPort(s)) }

func checkCIDR(field, s string) error {
	p, err := netip.ParsePrefix(s)
	if err != nil || p.Masked() != p {
		return fmt.Errorf("%s is not a network in CIDR notation (like 10.244.0.0/16)", field)
	}
	return nil
}

// checkAbsPath accepts a clean absolute path; any other character but a
// control character is allowed (scripts quote it).
func checkAbsPath(field, s string) error { return named(field, inventory.CheckHostPath(s)) }

func checkKubeVersion(field, s string) error {
	return named(field, inventory.CheckKubernetesVersion(s))
}

// named puts field in front of a check's error.
func named(field string, err error) error {
	if err != nil {
		return fmt.Errorf("%s %w", field, err)
	}
	return nil
}

// sandboxImage checks an image repository (empty: DefaultImageRepository)
// and pause tag and returns the pause image reference.
func sandboxImage(repository, tag string) (string, error) {
	if repository == "" {
		repository = DefaultImageRepository
	}
	if err := named("ImageRepository", inventory.CheckImageRepository(repository)); err != nil {
		return "", err
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
	HostsDir      string // RegistryHostsDir
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
	return runtimeConfig{HostsDir: RegistryHostsDir, SandboxImage: img, RuntimeBinary: runtimeBinary, ReadyTemplate: readyTemplate, ReadySeconds: secs}, nil
}
