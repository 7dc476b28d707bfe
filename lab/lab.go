// Package lab brings up boot's test lab on one machine: four Debian hosts
// (cp1, w1, w2, w3) as privileged systemd containers on a bridge network the
// lab creates, an image registry on that network serving an offline bundle's
// images, and a ready inventory for boot (strict host-key checking against the
// lab's own known_hosts file).
//
//	l, err := lab.Up(ctx, lab.Options{Dir: ".lab", Bundle: "dist/bundle", Log: os.Stderr})
//	// l.Inventory is ".lab/inventory.yaml"
//	err = lab.Down(ctx, lab.Options{Dir: ".lab", Log: os.Stderr})
//
// It needs root, Docker and debootstrap (on Debian it installs docker.io and
// debootstrap with apt-get when they are missing; it starts dockerd itself
// when none answers, and stops it again at Down). The host image is made once with
// debootstrap from the machine's own Debian mirror and cached by a hash of its
// inputs in Options.CacheDir.
//
// On machines whose capability bounding set is smaller than the kernel's
// capability list (some VMs), Docker's privileged containers fail with "unable
// to apply caps", and so does any container that asks for a missing
// capability. Only there, the lab runs its hosts through runc-capwrap (see
// lab/runc-capwrap), places the same program in every host at
// /usr/local/sbin/runc-capwrap, and sets packages.runtimeBinary to it in the
// inventory, so that pods asking for such a capability work too. (containerd's
// privileged containers get the capabilities containerd holds, so they work
// either way.)
//
// The lab also runs its outside world on this machine, at the bridge's
// gateway address (Lab.Gateway), real implementations only: moto_server
// (the Route53 API on port 5005, hosted zone LabZone; moto 5.2.1 with its
// server extra must be installed), CoreDNS from the bundle (port 53, UDP
// and TCP: LabZone read from moto every 2 s, every other name refused,
// nothing forwarded) and Pebble (ACME on port 14000, management on 15000,
// TLS by the lab CA; it resolves names only through that CoreDNS and
// validates HTTP-01 on port 80). The Lab's ACMEDirectory, ACMECA, ACMERoot,
// Route53Endpoint, Route53ZoneID and DNSServer say where they answer. They
// run detached, their PIDs and start times in the state; Down stops only
// those processes.
//
// With a bundle, the lab also serves a package mirror on the gateway (port
// 8443, TLS by the lab CA): Docker's apt repository, pkgs.k8s.io's and
// get.helm.sh's Helm archive, laid out as upstream's and built from the
// bundle's binaries, the apt repositories signed by a key made at every
// start (Lab.DockerMirror, KubernetesMirror, HelmMirror, MirrorKey).
//
// The lab needs three helper programs from this module, built static:
// lab/runc-capwrap (only on such machines), lab/lab-registry (the
// distribution registry with its filesystem driver) and lab/lab-mirror (a
// static HTTPS file server), and Pebble from the module proxy.
// Options.ToolsDir names the folder holding them (default: the folder of
// the running executable); make build puts them in bin/:
//
//	CGO_ENABLED=0 go build -o bin/ ./lab/runc-capwrap ./lab/lab-registry ./lab/lab-mirror
//	CGO_ENABLED=0 GOBIN=$PWD/bin go install github.com/letsencrypt/pebble/v2/cmd/pebble@v2.10.3
//
// The lab contacts only addresses on the bridge network it created, after it
// exists, with a timeout on every probe.
package lab

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Names of what the lab creates in Docker. Every object carries labelKey.
const (
	labelKey      = "boot.lab"
	networkName   = "boot-lab"
	bridgeName    = "boot-lab0"
	containerPfx  = "boot-lab-"
	registryName  = "boot-lab-registry"
	registryPort  = 5000
	registryVol   = "boot-lab-registry-data"
	networkMTU    = 1400
	stateFile     = "state.json"
	inventoryFile = "inventory.yaml"
	// onlineInventoryFile is the online inventory (see writeInventory).
	onlineInventoryFile = "inventory-online.yaml"
	knownHosts          = "known_hosts"
	keyFile             = "id_ed25519"
	// HostWrapperPath is where runc-capwrap is in every host when the machine needs it.
	HostWrapperPath = "/usr/local/sbin/runc-capwrap"
	wrapperTool     = "runc-capwrap"
	registryTool    = "lab-registry"
)

// Options configure Up, Down and Status. Down and Status need only Dir and Log.
type Options struct {
	// Dir is the lab folder: state, SSH key, known_hosts, registry certificates,
	// inventory.yaml, and the data of a dockerd the lab started. Required.
	Dir string
	// Bundle is an offline bundle folder (see package bundle) whose images the
	// lab registry serves. Empty: the registry starts empty and the inventory
	// names no bundle.
	Bundle string
	// CacheDir keeps the host image tarball between labs. Default
	// $XDG_CACHE_HOME/boot/lab (~/.cache/boot/lab).
	CacheDir string
	// ToolsDir holds the runc-capwrap, lab-registry, lab-mirror and pebble programs.
	// Default: the folder of the running executable.
	ToolsDir string
	// Mirror is the Debian mirror for debootstrap. Default: the one apt uses.
	Mirror string
	// Debian is the Debian release of hosts by name (cp1, w1, w2, w3), one
	// of DebianReleases; a host not named runs DefaultDebian. See ParseDebian.
	Debian map[string]string
	// KubernetesVersion goes into the inventory when there is no bundle
	// (with a bundle, the bundle's version is used). Default v1.37.2.
	KubernetesVersion string
	// Log receives progress lines. Nil: discarded.
	Log io.Writer
}

// Host is one lab host.
type Host struct {
	Name      string `json:"name"`
	Role      string `json:"role"`
	Address   string `json:"address"`
	Container string `json:"container"`
	// Debian is the host's Debian release (codename), Image its image.
	Debian string `json:"debian,omitempty"`
	Image  string `json:"image,omitempty"`
}

// Timing is how long one stage of Up took.
type Timing struct {
	Stage    string        `json:"stage"`
	Duration time.Duration `json:"duration"`
}

// Lab is a running lab.
type Lab struct {
	Dir        string `json:"dir"`
	Network    string `json:"network"`
	Subnet     string `json:"subnet"`
	Gateway    string `json:"gateway"`
	Image      string `json:"image"`
	Hosts      []Host `json:"hosts"`
	Registry   string `json:"registry"` // host:port on the lab network (HTTPS, lab CA)
	RegistryCA string `json:"registryCA"`
	// Images are the repository:tag names pushed to the registry.
	Images []string `json:"images,omitempty"`
	// CapWrap is true when the machine needs runc-capwrap.
	CapWrap bool `json:"capWrap"`
	// DaemonPID is the dockerd the lab started (0: it used a running one).
	DaemonPID int `json:"daemonPID,omitempty"`
	// DaemonConfig is set when the lab changed Docker's daemon.json; Down restores it.
	DaemonConfig *fileBackup `json:"daemonConfig,omitempty"`
	// The outside world (see startOutside). ACMEDirectory is Pebble's ACME
	// directory URL; ACMECA the PEM file of the lab CA that signed Pebble's
	// TLS certificate (the same CA as the registry's); ACMERoot Pebble's
	// issuing root (PEM), new at every start of Pebble.
	ACMEDirectory string `json:"acmeDirectory,omitempty"`
	ACMECA        string `json:"acmeCA,omitempty"`
	ACMERoot      string `json:"acmeRoot,omitempty"`
	// Route53Endpoint is moto's URL (SigV4, any key: LabAWSKey);
	// Route53ZoneID the hosted zone LabZone there.
	Route53Endpoint string `json:"route53Endpoint,omitempty"`
	Route53ZoneID   string `json:"route53ZoneID,omitempty"`
	// DNSServer is CoreDNS (host:port, UDP and TCP) serving LabZone.
	DNSServer string `json:"dnsServer,omitempty"`
	// The package mirror (see startMirror), HTTPS by the lab CA, laid out
	// as upstream's: DockerMirror stands for https://download.docker.com
	// (Debian's repository at DockerMirror/linux/debian; empty when the
	// bundle lacks Docker's binaries), KubernetesMirror for
	// https://pkgs.k8s.io, HelmMirror for https://get.helm.sh. MirrorKey is
	// the ASCII-armored public key that signs its apt repositories (apt's
	// signed-by), new at every start of the lab.
	DockerMirror     string `json:"dockerMirror,omitempty"`
	KubernetesMirror string `json:"kubernetesMirror,omitempty"`
	HelmMirror       string `json:"helmMirror,omitempty"`
	MirrorKey        string `json:"mirrorKey,omitempty"`
	// Proxy is the forward proxy on the gateway (tinyproxy), for the hosts
	// to reach the mirror and the registry through (see startProxy).
	Proxy string `json:"proxy,omitempty"`
	// Services are the programs the lab runs on this machine: moto, CoreDNS, Pebble, the mirror.
	Services  []Service `json:"services,omitempty"`
	Inventory string    `json:"inventory"`
	// OnlineInventory is the inventory of the online path through the
	// lab's mirrors, when the lab serves them.
	OnlineInventory string   `json:"onlineInventory,omitempty"`
	KnownHosts      string   `json:"knownHosts"`
	KeyPath         string   `json:"keyPath"`
	Timings         []Timing `json:"timings"`
}

// hostLayout is the lab's fixed set of hosts and their last address octet.
var hostLayout = []struct {
	name, role string
	octet      int
}{
	{"cp1", "control-plane", 10},
	{"w1", "worker", 11},
	{"w2", "worker", 12},
	{"w3", "worker", 13},
}

const registryOctet = 2

func logger(w io.Writer) func(string, ...any) {
	if w == nil {
		w = io.Discard
	}
	var mu sync.Mutex
	return func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, "lab: "+format+"\n", args...)
	}
}

func (o *Options) complete() error {
	if o.Dir == "" {
		return errors.New("lab: no lab folder given")
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return err
	}
	o.Dir = dir
	if o.Bundle != "" {
		if o.Bundle, err = filepath.Abs(o.Bundle); err != nil {
			return err
		}
	}
	if o.CacheDir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return fmt.Errorf("lab: no cache folder: %w", err)
		}
		o.CacheDir = filepath.Join(base, "boot", "lab")
	}
	if o.ToolsDir == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("lab: %w", err)
		}
		o.ToolsDir = filepath.Dir(exe)
	}
	if o.KubernetesVersion == "" {
		o.KubernetesVersion = "v1.37.2"
	}
	if err := checkDebian(o.Debian); err != nil {
		return fmt.Errorf("lab: Options.Debian: %w", err)
	}
	debian := map[string]string{}
	for _, h := range hostLayout {
		debian[h.name] = DefaultDebian
		if c := o.Debian[h.name]; c != "" {
			debian[h.name] = c
		}
	}
	o.Debian = debian
	return nil
}

// loadState reads the lab folder's state; (nil, nil) when there is none.
func loadState(dir string) (*Lab, error) {
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var l Lab
	if err := json.Unmarshal(data, &l); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, stateFile), err)
	}
	return &l, nil
}

// save writes the state, so that Down can undo a half-finished Up.
func (l *Lab) save() error {
	data, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(l.Dir, stateFile), append(data, '\n'), 0o600)
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// registryClient is an HTTPS client that trusts only the lab CA.
func registryClient(caFile string) (*http.Client, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no certificate", caFile)
	}
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		TLSHandshakeTimeout: 5 * time.Second,
		MaxIdleConnsPerHost: 8,
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Minute}, nil
}

// pingRegistry asks the registry's /v2/ endpoint once, with a short timeout.
func pingRegistry(ctx context.Context, client *http.Client, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("registry %s: /v2/ answered %s", addr, resp.Status)
	}
	return nil
}

// catalog lists the registry's repositories.
func catalog(ctx context.Context, client *http.Client, addr string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/v2/_catalog?n=1000", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("registry %s: catalog answered %s", addr, resp.Status)
	}
	var c struct {
		Repositories []string `json:"repositories"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		return nil, err
	}
	return c.Repositories, nil
}

// tcpReachable dials addr once with a timeout.
func tcpReachable(ctx context.Context, addr string) bool {
	d := net.Dialer{Timeout: 2 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func hostPort(host string, port int) string {
	return net.JoinHostPort(host, fmt.Sprint(port))
}

func containerName(host string) string { return containerPfx + host }

func volumeName(host string) string { return containerPfx + host + "-var" }
