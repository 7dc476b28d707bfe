package lab

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// Report is what `lab status` shows.
type Report struct {
	Up        bool           `json:"up"`
	Dir       string         `json:"dir"`
	Daemon    string         `json:"daemon"` // "started by the lab (pid N)", "machine's own", "not answering"
	Network   string         `json:"network,omitempty"`
	Subnet    string         `json:"subnet,omitempty"`
	CapWrap   bool           `json:"capWrap"`
	Hosts     []HostStatus   `json:"hosts,omitempty"`
	Registry  RegistryStatus `json:"registry"`
	Inventory string         `json:"inventory,omitempty"`
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
	return s, nil
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
	fmt.Fprintf(w, "%-6s %-14s %-14s %-9s %s\n", "HOST", "ROLE", "ADDRESS", "STATE", "SSH")
	for _, h := range s.Hosts {
		ssh := "no"
		if h.SSH {
			ssh = "yes"
		}
		fmt.Fprintf(w, "%-6s %-14s %-14s %-9s %s\n", h.Name, h.Role, h.Address, h.State, ssh)
	}
	r := s.Registry
	fmt.Fprintf(w, "registry: https://%s (%s", r.Address, r.State)
	if r.Answering {
		fmt.Fprintf(w, ", %d repositories: %s", len(r.Repositories), strings.Join(r.Repositories, " "))
	} else if r.Error != "" {
		fmt.Fprintf(w, ", not answering: %s", r.Error)
	}
	fmt.Fprintln(w, ")")
	fmt.Fprintf(w, "inventory: %s\n", s.Inventory)
}
