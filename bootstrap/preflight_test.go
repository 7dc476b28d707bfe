package bootstrap

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bootctl/boot/internal/run"
	"github.com/bootctl/boot/inventory"
	"github.com/bootctl/boot/nodes"
)

func goodFacts(name string) *nodes.Facts {
	return &nodes.Facts{
		Hostname: name, MachineID: "id-" + name, OSID: "debian", OSVersionID: "12",
		Arch: "x86_64", Kernel: "6.1.0", CgroupVersion: 2, Systemd: true, SudoWorks: true,
	}
}

func TestPreflight(t *testing.T) {
	yes := true
	for _, tc := range []struct {
		name    string
		mutate  func(inv *inventory.Inventory, f map[string]*nodes.Facts)
		fails   string // fragment of a failed check on the named host, "" = passes
		host    string
		warning string
	}{
		{name: "healthy cluster"},
		{name: "unsupported OS", host: "w1", fails: "unsupported OS centos 7",
			mutate: func(_ *inventory.Inventory, f map[string]*nodes.Facts) {
				f["w1"].OSID, f["w1"].OSVersionID = "centos", "7"
			}},
		{name: "old Ubuntu", host: "cp1", fails: "unsupported OS ubuntu 20.04",
			mutate: func(_ *inventory.Inventory, f map[string]*nodes.Facts) {
				f["cp1"].OSID, f["cp1"].OSVersionID = "ubuntu", "20.04"
			}},
		{name: "arm64 online is fine", mutate: func(_ *inventory.Inventory, f map[string]*nodes.Facts) { f["w1"].Arch = "aarch64" }},
		{name: "arm64 from the amd64 bundle", host: "w1", fails: "unsupported architecture arm64",
			mutate: func(inv *inventory.Inventory, f map[string]*nodes.Facts) {
				inv.Packages.Source = inventory.SourceBundle
				f["w1"].Arch = "aarch64"
			}},
		{name: "no systemd", host: "w1", fails: "systemd is not PID 1",
			mutate: func(_ *inventory.Inventory, f map[string]*nodes.Facts) { f["w1"].Systemd = false }},
		{name: "no sudo", host: "w1", fails: "cannot run commands as root: sudo: a password is required",
			mutate: func(_ *inventory.Inventory, f map[string]*nodes.Facts) {
				f["w1"].SudoWorks, f["w1"].SudoError = false, "sudo: a password is required"
			}},
		{name: "clock behind", host: "cp1", fails: "clock is -2m0s off",
			mutate: func(_ *inventory.Inventory, f map[string]*nodes.Facts) { f["cp1"].ClockSkew = -2 * time.Minute }},
		{name: "small skew is fine", mutate: func(_ *inventory.Inventory, f map[string]*nodes.Facts) { f["cp1"].ClockSkew = 3 * time.Second }},
		{name: "API port taken", host: "cp1", fails: "TCP port 6443 is in use",
			mutate: func(_ *inventory.Inventory, f map[string]*nodes.Facts) { f["cp1"].ListeningPorts = []int{22, 6443} }},
		{name: "etcd port taken", host: "cp1", fails: "TCP port 2379 is in use",
			mutate: func(_ *inventory.Inventory, f map[string]*nodes.Facts) { f["cp1"].ListeningPorts = []int{2379} }},
		{name: "6443 on a worker is fine", mutate: func(_ *inventory.Inventory, f map[string]*nodes.Facts) { f["w1"].ListeningPorts = []int{6443} }},
		{name: "kubelet port on a worker", host: "w1", fails: "TCP port 10250 is in use",
			mutate: func(_ *inventory.Inventory, f map[string]*nodes.Facts) { f["w1"].ListeningPorts = []int{10250} }},
		{name: "http port on an ingress host", host: "w1", fails: "TCP port 80 is in use",
			mutate: func(inv *inventory.Inventory, f map[string]*nodes.Facts) {
				inv.Hosts[1].Ingress = &yes
				f["w1"].ListeningPorts = []int{80}
			}},
		{name: "existing node skips port checks", host: "cp1", warning: "already a Kubernetes node",
			mutate: func(_ *inventory.Inventory, f map[string]*nodes.Facts) {
				f["cp1"].KubeletConf = true
				f["cp1"].ListeningPorts = []int{6443, 2379, 10250}
			}},
		{name: "swap is a warning", host: "w1", warning: "swap is on",
			mutate: func(_ *inventory.Inventory, f map[string]*nodes.Facts) { f["w1"].Swap = true }},
		{name: "cgroup v1 is a warning", host: "w1", warning: "cgroup v1",
			mutate: func(_ *inventory.Inventory, f map[string]*nodes.Facts) { f["w1"].CgroupVersion = 1 }},
		{name: "cloned hostname", host: "w1", fails: `same hostname "cp1" as cp1`,
			mutate: func(_ *inventory.Inventory, f map[string]*nodes.Facts) { f["w1"].Hostname = "cp1" }},
		{name: "cloned machine-id", host: "w1", fails: `same machine-id "id-cp1" as cp1`,
			mutate: func(_ *inventory.Inventory, f map[string]*nodes.Facts) { f["w1"].MachineID = "id-cp1" }},
		{name: "empty machine-id", host: "w1", fails: "no machine-id",
			mutate: func(_ *inventory.Inventory, f map[string]*nodes.Facts) { f["w1"].MachineID = "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv := &inventory.Inventory{
				Cluster: inventory.Cluster{APIServerPort: 6443},
				Hosts: []inventory.Host{
					{Name: "cp1", Role: inventory.RoleControlPlane},
					{Name: "w1", Role: inventory.RoleWorker},
				},
				Packages: inventory.Packages{Source: inventory.SourceOnline},
				Addons:   inventory.Addons{IngressMode: "hostNetwork"},
			}
			facts := map[string]*nodes.Facts{"cp1": goodFacts("cp1"), "w1": goodFacts("w1")}
			if tc.mutate != nil {
				tc.mutate(inv, facts)
			}
			r := &recorder{}
			c := &Cluster{Inventory: inv, Report: r.report}
			for _, h := range inv.Hosts {
				c.Hosts = append(c.Hosts, &Host{Spec: h, Facts: facts[h.Name]})
			}
			changes, err := Preflight{}.Plan(context.Background(), c)
			if len(changes) != 0 {
				t.Errorf("preflight planned changes: %v", changes)
			}
			found := func(status run.Status, fragment string) bool {
				for _, e := range r.events {
					if e.Host == tc.host && e.Status == status && strings.Contains(e.Message, fragment) {
						return true
					}
				}
				return false
			}
			switch {
			case tc.fails != "":
				if !errors.Is(err, ErrPreflight) || !strings.Contains(err.Error(), tc.host) {
					t.Errorf("err = %v, want ErrPreflight naming %s", err, tc.host)
				}
				if !found(run.Failed, tc.fails) {
					t.Errorf("no failed check %q on %s in %+v", tc.fails, tc.host, r.events)
				}
			case err != nil:
				t.Errorf("unexpected failure: %v (%+v)", err, r.events)
			}
			if tc.warning != "" && !found(run.Warning, tc.warning) {
				t.Errorf("no warning %q on %s in %+v", tc.warning, tc.host, r.events)
			}
		})
	}
}
