package lab

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
)

// Report is what `lab status` shows.
type Report struct {
	Up       bool           `json:"up"`
	Dir      string         `json:"dir"`
	Daemon   string         `json:"daemon"` // "started by the lab (pid N)", "machine's own", "not answering"
	Network  string         `json:"network,omitempty"`
	Subnet   string         `json:"subnet,omitempty"`
	CapWrap  bool           `json:"capWrap"`
	Hosts    []HostStatus   `json:"hosts,omitempty"`
	Registry RegistryStatus `json:"registry"`
	// Services are the lab's programs on this machine (moto, CoreDNS, Pebble).
	Services  []ServiceStatus `json:"services,omitempty"`
	Outside   Outside         `json:"outside"`
	Inventory string          `json:"inventory,omitempty"`
}

// Outside is where the lab's outside world answers (see Lab).
type Outside struct {
	ACMEDirectory   string `json:"acmeDirectory,omitempty"`
	ACMECA          string `json:"acmeCA,omitempty"`
	ACMERoot        string `json:"acmeRoot,omitempty"`
	Route53Endpoint string `json:"route53Endpoint,omitempty"`
	Route53ZoneID   string `json:"route53ZoneID,omitempty"`
	DNSServer       string `json:"dnsServer,omitempty"`
	// The package mirror.
	DockerMirror     string `json:"dockerMirror,omitempty"`
	KubernetesMirror string `json:"kubernetesMirror,omitempty"`
	HelmMirror       string `json:"helmMirror,omitempty"`
	MirrorKey        string `json:"mirrorKey,omitempty"`
	// Proxy is the forward proxy to the mirror and the registry.
	Proxy string `json:"proxy,omitempty"`
}

// ServiceStatus is one service's state.
type ServiceStatus struct {
	Service
	Running   bool   `json:"running"`   // its process is the one the lab started
	Answering bool   `json:"answering"` // it answered a request
	Error     string `json:"error,omitempty"`
}

// HostStatus is one host's state.
type HostStatus struct {
	Host
	State string `json:"state"` // the container's state: running, exited, missing
	SSH   bool   `json:"ssh"`   // sshd accepts TCP connections
}

// RegistryStatus is the lab registry's state.
type RegistryStatus struct {
	Address      string   `json:"address,omitempty"`
	State        string   `json:"state,omitempty"`
	Answering    bool     `json:"answering"`
	Repositories []string `json:"repositories,omitempty"`
	Error        string   `json:"error,omitempty"`
}

// Status reports the lab's hosts, addresses and registry. Probes go only to
// the lab network's addresses, and only when that network exists.
func Status(ctx context.Context, opts Options) (*Report, error) {
	if err := opts.complete(); err != nil {
		return nil, err
	}
	l, err := loadState(opts.Dir)
	if err != nil {
		return nil, err
	}
	s := &Report{Dir: opts.Dir}
	if l == nil {
		s.Daemon = "-"
		return s, nil
	}
	d, err := newDockerCLI()
	if err != nil {
		return nil, err
	}
	s.Network, s.Subnet, s.CapWrap, s.Inventory = l.Network, l.Subnet, l.CapWrap, l.Inventory
	if _, err := d.serverVersion(ctx); err != nil {
		s.Daemon = "not answering"
		return s, nil
	}
	s.Daemon = "the machine's own"
	if l.DaemonPID != 0 {
		s.Daemon = fmt.Sprintf("started by the lab (pid %d)", l.DaemonPID)
	}
	netUp := l.Subnet != "" && d.exists(ctx, "network", networkName)
	s.Up = netUp
	for _, h := range l.Hosts {
		hs := HostStatus{Host: h, State: containerState(ctx, d, h.Container)}
		if netUp && hs.State == "running" {
			hs.SSH = tcpReachable(ctx, hostPort(h.Address, 22))
		}
		s.Up = s.Up && hs.State == "running" && hs.SSH
		s.Hosts = append(s.Hosts, hs)
	}
	s.Up = s.Up && len(s.Hosts) == len(hostLayout)
	s.Registry = RegistryStatus{Address: l.Registry, State: containerState(ctx, d, registryName)}
	if netUp && s.Registry.State == "running" {
		client, err := registryClient(l.RegistryCA)
		if err == nil {
			err = pingRegistry(ctx, client, l.Registry)
		}
		if err == nil {
			s.Registry.Answering = true
			s.Registry.Repositories, err = catalog(ctx, client, l.Registry)
		}
		if err != nil {
			s.Registry.Error = err.Error()
		}
	}
	s.Up = s.Up && s.Registry.Answering
	s.Outside = Outside{ACMEDirectory: l.ACMEDirectory, ACMECA: l.ACMECA, ACMERoot: l.ACMERoot,
		Route53Endpoint: l.Route53Endpoint, Route53ZoneID: l.Route53ZoneID, DNSServer: l.DNSServer,
		DockerMirror: l.DockerMirror, KubernetesMirror: l.KubernetesMirror, HelmMirror: l.HelmMirror, MirrorKey: l.MirrorKey, Proxy: l.Proxy}
	for _, svc := range l.Services {
		ss := ServiceStatus{Service: svc, Running: svc.running()}
		if netUp && ss.Running {
			if err := l.probeService(ctx, svc.Name); err != nil {
				ss.Error = err.Error()
			} else {
				ss.Answering = true
			}
		}
		s.Up = s.Up && ss.Answering
		s.Services = append(s.Services, ss)
	}
	return s, nil
}

// probeService asks one of the lab's services for what it serves, once.
func (l *Lab) probeService(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	switch name {
	case "moto":
		_, err := route53Client(l.Route53Endpoint).GetHostedZone(ctx, &route53.GetHostedZoneInput{Id: aws.String(l.Route53ZoneID)},
			func(o *route53.Options) { o.RetryMaxAttempts = 1 })
		return err
	case "coredns":
		return checkZoneServed(ctx, l.DNSServer)
	case "pebble":
		client, err := registryClient(l.ACMECA)
		if err != nil {
			return err
		}
		return checkACMEDirectory(ctx, client, l.ACMEDirectory)
	case "mirror":
		client, err := registryClient(l.RegistryCA)
		if err != nil {
			return err
		}
		_, err = httpGet(ctx, client, l.KubernetesMirror+"/")
		return err
	case "proxy":
		return l.checkProxy(ctx, l.Proxy)
	}
	return fmt.Errorf("no probe for %s", name)
}

func containerState(ctx context.Context, d *dockerCLI, name string) string {
	out, err := d.run(ctx, "inspect", "--format", "{{.State.Status}}", name)
	if err != nil {
		return "missing"
	}
	return out
}

// Print writes the status for people.
func (s *Report) Print(w io.Writer) {
	if s.Network == "" {
		fmt.Fprintf(w, "no lab in %s\n", s.Dir)
		return
	}
	state := "DOWN or incomplete"
	if s.Up {
		state = "up"
	}
	fmt.Fprintf(w, "lab %s: %s\n", s.Dir, state)
	fmt.Fprintf(w, "docker daemon: %s\n", s.Daemon)
	fmt.Fprintf(w, "network: %s %s\n", s.Network, s.Subnet)
	if s.CapWrap {
		fmt.Fprintf(w, "runtime: runc-capwrap (this machine's capability bounding set is incomplete)\n")
	}
	fmt.Fprintf(w, "%-6s %-14s %-14s %-9s %-4s %s\n", "HOST", "ROLE", "ADDRESS", "STATE", "SSH", "DEBIAN")
	for _, h := range s.Hosts {
		ssh := "no"
		if h.SSH {
			ssh = "yes"
		}
		debian := h.Debian
		if debian == "" { // a lab made before hosts recorded their release
			debian = "-"
		}
		fmt.Fprintf(w, "%-6s %-14s %-14s %-9s %-4s %s\n", h.Name, h.Role, h.Address, h.State, ssh, debian)
	}
	r := s.Registry
	fmt.Fprintf(w, "registry: https://%s (%s", r.Address, r.State)
	if r.Answering {
		fmt.Fprintf(w, ", %d repositories: %s", len(r.Repositories), strings.Join(r.Repositories, " "))
	} else if r.Error != "" {
		fmt.Fprintf(w, ", not answering: %s", r.Error)
	}
	fmt.Fprintln(w, ")")
	for _, svc := range s.Services {
		state := "not running"
		switch {
		case svc.Answering:
			state = "answering"
		case svc.Running && svc.Error != "":
			state = "not answering: " + svc.Error
		case svc.Running:
			state = "running"
		}
		fmt.Fprintf(w, "%-8s %s (pid %d, %s; log %s)\n", svc.Name+":", svc.Address, svc.PID, state, svc.Log)
	}
	o := s.Outside
	if o.Route53ZoneID != "" {
		fmt.Fprintf(w, "route53: zone %s is %s at %s (any SigV4 key)\n", LabZone, o.Route53ZoneID, o.Route53Endpoint)
	}
	if o.ACMEDirectory != "" {
		fmt.Fprintf(w, "acme: %s (TLS CA %s), issuing root %s\n", o.ACMEDirectory, o.ACMECA, o.ACMERoot)
	}
	if o.KubernetesMirror != "" {
		docker := o.DockerMirror
		if docker == "" {
			docker = "none (the bundle lacks Docker's binaries)"
		}
		fmt.Fprintf(w, "mirror: docker %s, kubernetes %s, helm %s; apt key %s\n", docker, o.KubernetesMirror, o.HelmMirror, o.MirrorKey)
	}
	if o.Proxy != "" {
		fmt.Fprintf(w, "proxy: %s (to the mirror and the registry)\n", o.Proxy)
	}
	fmt.Fprintf(w, "inventory: %s\n", s.Inventory)
}
