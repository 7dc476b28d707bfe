package lab

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseDebian(t *testing.T) {
	for _, c := range []struct {
		spec string
		want map[string]string
	}{
		{"", nil},
		{"w3=trixie", map[string]string{"w3": "trixie"}},
		{" w2=trixie, w3=trixie ", map[string]string{"w2": "trixie", "w3": "trixie"}},
		{"cp1=bookworm,w1=trixie", map[string]string{"cp1": "bookworm", "w1": "trixie"}},
		{"trixie", map[string]string{"cp1": "trixie", "w1": "trixie", "w2": "trixie", "w3": "trixie"}},
	} {
		got, err := ParseDebian(c.spec)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseDebian(%q) = %v, %v; want %v", c.spec, got, err, c.want)
		}
	}
	// Each error names the bad value.
	for spec, want := range map[string]string{
		"w9=trixie":            `host "w9": the lab has no such host (its hosts: cp1, w1, w2, w3)`,
		"w3=sid":               `host w3: unknown Debian release "sid" (the lab builds bookworm, trixie)`,
		"sid":                  `unknown Debian release "sid" (the lab builds bookworm, trixie; or give host=codename)`,
		"w3":                   `unknown Debian release "w3"`,
		"w3=trixie,w3=trixie":  "host w3 given twice",
		"w3=trixie,w2":         `"w2": want host=codename`,
		"w3=":                  `"w3=": want host=codename`,
		"=trixie":              `"=trixie": want host=codename`,
		"w1=trixie,W2=trixie":  `host "W2": the lab has no such host`,
		"w2=bookworm,w3=Trixy": `host w3: unknown Debian release "Trixy"`,
	} {
		got, err := ParseDebian(spec)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseDebian(%q) = %v, %v; want an error with %q", spec, got, err, want)
		}
	}
}

func TestOptionsDebian(t *testing.T) {
	o := Options{Dir: t.TempDir(), CacheDir: t.TempDir(), ToolsDir: t.TempDir(), Debian: map[string]string{"w3": "trixie"}}
	if err := o.complete(); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"cp1": "bookworm", "w1": "bookworm", "w2": "bookworm", "w3": "trixie"}
	if !reflect.DeepEqual(o.Debian, want) {
		t.Errorf("Debian = %v, want %v", o.Debian, want)
	}
	if got := hostReleases(o.Debian); !reflect.DeepEqual(got, []string{"bookworm", "trixie"}) {
		t.Errorf("releases = %v", got)
	}
	// The lab's own containers run DefaultDebian's image: it is built even when no host runs it.
	all := map[string]string{"cp1": "trixie", "w1": "trixie", "w2": "trixie", "w3": "trixie"}
	if got := hostReleases(all); !reflect.DeepEqual(got, []string{"bookworm", "trixie"}) {
		t.Errorf("releases of an all-trixie lab = %v", got)
	}
	o = Options{Dir: t.TempDir(), Debian: map[string]string{"w9": "trixie"}}
	if err := o.complete(); err == nil || !strings.Contains(err.Error(), `Options.Debian: host "w9"`) {
		t.Errorf("complete with host w9: %v", err)
	}
	o = Options{Dir: t.TempDir()}
	if err := o.complete(); err != nil || o.Debian["w1"] != DefaultDebian || len(o.Debian) != len(hostLayout) {
		t.Errorf("complete without Debian: %v, %v", o.Debian, err)
	}
}

func TestImageKey(t *testing.T) {
	keys := map[string]string{}
	for _, codename := range DebianReleases {
		for _, mirror := range []string{"http://a.invalid/debian", "http://b.invalid/debian"} {
			k := imageKey(codename, mirror)
			if prev, dup := keys[k]; dup {
				t.Errorf("%s from %s has the key of %s", codename, mirror, prev)
			}
			keys[k] = codename + " " + mirror
			if k != imageKey(codename, mirror) {
				t.Errorf("the key of %s from %s changes", codename, mirror)
			}
		}
	}
}

func TestCustomizeRootfs(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"etc/systemd/system", "etc/ssh", "var/lib/dbus", "etc/apt/sources.list.d"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"etc/ssh/ssh_host_ed25519_key", "etc/ssh/ssh_host_ed25519_key.pub", "etc/machine-id", "var/lib/dbus/machine-id",
		"etc/apt/sources.list", "etc/apt/sources.list.d/debian.sources"} {
		if err := os.WriteFile(filepath.Join(root, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := customizeRootfs(root); err != nil {
		t.Fatal(err)
	}
	unitDir := filepath.Join(root, "etc/systemd/system")
	// trixie's own first-boot key generator is masked: boot-lab-hostkeys alone makes the keys.
	for _, u := range []string{"sshd-keygen.service", "getty@.service"} {
		if target, err := os.Readlink(filepath.Join(unitDir, u)); err != nil || target != "/dev/null" {
			t.Errorf("%s: %q, %v; want masked", u, target, err)
		}
	}
	if _, err := os.Stat(filepath.Join(unitDir, "ssh.service.wants", "boot-lab-hostkeys.service")); err != nil {
		t.Error(err)
	}
	if keys, _ := filepath.Glob(filepath.Join(root, "etc/ssh/ssh_host_*")); len(keys) != 0 {
		t.Errorf("host keys left in the image: %v", keys)
	}
	if id, err := os.ReadFile(filepath.Join(root, "etc/machine-id")); err != nil || len(id) != 0 {
		t.Errorf("machine-id %q, %v; want empty", id, err)
	}
	// No Debian mirror for apt: the hosts reach only the lab.
	if list, err := os.ReadFile(filepath.Join(root, "etc/apt/sources.list")); err != nil || strings.Contains(string(list), "deb ") {
		t.Errorf("sources.list %q, %v; want no source", list, err)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/apt/sources.list.d/debian.sources")); !os.IsNotExist(err) {
		t.Errorf("debian.sources left: %v", err)
	}
}

func TestStatusShowsDebian(t *testing.T) {
	r := &Report{Dir: "/lab", Network: networkName, Hosts: []HostStatus{
		{Host: Host{Name: "w2", Role: "worker", Address: "172.29.40.12", Debian: "bookworm"}, State: "running", SSH: true},
		{Host: Host{Name: "w3", Role: "worker", Address: "172.29.40.13", Debian: "trixie"}, State: "running", SSH: true},
		{Host: Host{Name: "w1", Role: "worker", Address: "172.29.40.11"}, State: "exited"},
	}}
	var out bytes.Buffer
	r.Print(&out)
	for _, want := range []string{"DEBIAN", "172.29.40.12   running   yes  bookworm\n", "172.29.40.13   running   yes  trixie\n", "172.29.40.11   exited    no   -\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}
}
