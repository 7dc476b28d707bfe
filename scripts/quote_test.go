package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// hostileValues are strings a careless template would let the shell, TOML
// or YAML interpret. pwnMarker is created if any command substitution ran.
func hostileValues(pwn string) []string {
	return []string{
		"", "plain", "two words", "  lead and trail  ", "it's", `"double"`, `back\slash\`, `\'`,
		"$(touch " + pwn + ")", "`touch " + pwn + "`", "${HOME}", "$HOME", "a;touch " + pwn, "a|b&c", "*", "?[a]",
		"!event", "~root", "#comment", "key: value # c", "- item", "{a: b}", "'; touch " + pwn + "; '",
		"ünïcødé ✓", "%s%d", "BOOT_EOF",
	}
}

// TestScriptParametersResistHostileValues renders scripts with hostile
// values in the fields that accept free text and runs their parameter block
// in bash: each variable must hold exactly the value, and nothing may run.
func TestScriptParametersResistHostileValues(t *testing.T) {
	shellcheck, _ := exec.LookPath("shellcheck")
	dir := t.TempDir()
	pwn := filepath.Join(dir, "pwned")
	for _, v := range hostileValues(pwn) {
		staging := "/srv/" + v + "/x"
		if checkAbsPath("StagingDir", staging) != nil {
			continue // not a clean path (e.g. "/srv//x"): refused, tested elsewhere
		}
		for name, render := range map[string]func() (string, error){
			"runtime-bundle": func() (string, error) {
				return RuntimeBundle(RuntimeBundleParams{StagingDir: staging, PauseTag: "3.10.2", RuntimeBinary: staging})
			},
			"kube-bundle": func() (string, error) { return KubeBundle(KubeBundleParams{StagingDir: staging}) },
		} {
			s, err := render()
			if err != nil {
				t.Fatalf("%s with %q: %v", name, v, err)
			}
			params := parameterBlock(t, s)
			out, err := exec.Command("bash", "-c", "set -euo pipefail\n"+params+"\nprintf %s \"$staging\"").CombinedOutput()
			if err != nil {
				t.Fatalf("%s parameters with %q: %v\n%s", name, v, err, out)
			}
			if string(out) != staging {
				t.Errorf("%s: staging is %q, want %q", name, out, staging)
			}
			// SC2016 and SC1003 (info) note that $ and \ in single
			// quotes stay literal: exactly what a quoted hostile value
			// must do. One script per value is enough (CPU is scarce).
			if shellcheck != "" && name == "runtime-bundle" {
				f := filepath.Join(dir, name+".sh")
				if err := os.WriteFile(f, []byte(s), 0o644); err != nil {
					t.Fatal(err)
				}
				if out, err := exec.Command(shellcheck, "--shell=bash", "--exclude=SC2016,SC1003", f).CombinedOutput(); err != nil {
					t.Errorf("shellcheck %s with %q: %v\n%s", name, v, err, out)
				}
			}
		}
	}
	if _, err := os.Stat(pwn); err == nil {
		t.Fatal("a hostile parameter ran a command")
	}
}

// parameterBlock returns the lines after "# Parameters." up to the next
// blank line: the only lines templates put values into (besides heredocs).
func parameterBlock(t *testing.T, script string) string {
	t.Helper()
	_, rest, ok := strings.Cut(script, "\n# Parameters.\n")
	if !ok {
		t.Fatal("script has no parameter block")
	}
	block, _, _ := strings.Cut(rest, "\n\n")
	return block
}

func TestTOMLQuoteRoundTrip(t *testing.T) {
	for _, v := range hostileValues("/nonexistent") {
		var doc struct {
			K string `toml:"k"`
		}
		if _, err := toml.Decode("k = "+tomlQuote(v)+"\n", &doc); err != nil || doc.K != v {
			t.Errorf("TOML %q: read back %q, %v", v, doc.K, err)
		}
	}
}

func TestHostileValuesRefused(t *testing.T) {
	cases := []struct {
		name, field string
		err         func() error
	}{
		{"hostname with space", "Hostname", func() error {
			_, err := HostPrep(HostPrepParams{Hostname: "a b", Address: "10.0.0.1"})
			return err
		}},
		{"hostname with substitution", "Hostname", func() error {
			_, err := HostPrep(HostPrepParams{Hostname: "$(reboot)", Address: "10.0.0.1"})
			return err
		}},
		{"address not an IP", "Address", func() error {
			_, err := HostPrep(HostPrepParams{Hostname: "a", Address: "10.0.0.1; reboot"})
			return err
		}},
		{"package with option", "Packages[1]", func() error {
			_, err := HostPrep(HostPrepParams{Hostname: "a", Address: "10.0.0.1", Packages: []string{"curl", "--allow-unauthenticated"}})
			return err
		}},
		{"staging with newline", "StagingDir", func() error {
			_, err := RuntimeBundle(RuntimeBundleParams{StagingDir: "/a\nBOOT_EOF\nreboot", PauseTag: "3.10.2"})
			return err
		}},
		{"relative staging", "StagingDir", func() error {
			_, err := KubeBundle(KubeBundleParams{StagingDir: "bundle"})
			return err
		}},
		{"runtime binary with newline", "RuntimeBinary", func() error {
			_, err := RuntimeBundle(RuntimeBundleParams{StagingDir: "/a", PauseTag: "3.10.2", RuntimeBinary: "/x\n[plugins]"})
			return err
		}},
		{"image repository with quote", "ImageRepository", func() error {
			_, err := RuntimeBundle(RuntimeBundleParams{StagingDir: "/a", PauseTag: "3.10.2", ImageRepository: `r"x`})
			return err
		}},
		{"pause tag missing", "PauseTag", func() error {
			_, err := RuntimeBundle(RuntimeBundleParams{StagingDir: "/a"})
			return err
		}},
		{"unknown OS", "OSID", func() error {
			_, err := RuntimeOnline(RuntimeOnlineParams{OSID: "centos", Codename: "stream9", PauseTag: "3.10.2"})
			return err
		}},
		{"codename of the other OS", "Codename", func() error {
			_, err := RuntimeOnline(RuntimeOnlineParams{OSID: "debian", Codename: "noble", PauseTag: "3.10.2"})
			return err
		}},
		{"docker version with space", "DockerVersion", func() error {
			_, err := RuntimeOnline(RuntimeOnlineParams{OSID: "debian", Codename: "bookworm", PauseTag: "3.10.2", DockerVersion: "28 latest"})
			return err
		}},
		{"kubernetes version latest", "KubernetesVersion", func() error {
			_, err := KubeOnline(KubeOnlineParams{KubernetesVersion: "latest"})
			return err
		}},
		{"pod subnet not masked", "PodSubnet", func() error {
			_, err := KubeadmInit(KubeadmParams{KubernetesVersion: "v1.37.2", NodeName: "cp", AdvertiseAddress: "10.0.0.1", ControlPlaneEndpoint: "10.0.0.1:6443", PodSubnet: "10.244.1.0/16", ServiceSubnet: "10.96.0.0/12"})
			return err
		}},
		{"pod and service subnets overlap", "PodSubnet", func() error {
			_, err := KubeadmInit(KubeadmParams{KubernetesVersion: "v1.37.2", NodeName: "cp", AdvertiseAddress: "10.0.0.1", ControlPlaneEndpoint: "10.0.0.1:6443", PodSubnet: "10.0.0.0/8", ServiceSubnet: "10.96.0.0/12"})
			return err
		}},
		{"endpoint without port", "ControlPlaneEndpoint", func() error {
			_, err := KubeadmInit(KubeadmParams{KubernetesVersion: "v1.37.2", NodeName: "cp", AdvertiseAddress: "10.0.0.1", ControlPlaneEndpoint: "cp.example.com", PodSubnet: "10.244.0.0/16", ServiceSubnet: "10.96.0.0/12"})
			return err
		}},
		{"cert SAN with YAML", "CertSANs[1]", func() error {
			_, err := KubeadmInit(KubeadmParams{KubernetesVersion: "v1.37.2", NodeName: "cp", AdvertiseAddress: "10.0.0.1", ControlPlaneEndpoint: "10.0.0.1:6443", PodSubnet: "10.244.0.0/16", ServiceSubnet: "10.96.0.0/12", CertSANs: []string{"203.0.113.7", "a\n- b"}})
			return err
		}},
		{"preflight name with flag", "IgnorePreflightErrors[0]", func() error {
			_, err := KubeadmInit(KubeadmParams{KubernetesVersion: "v1.37.2", NodeName: "cp", AdvertiseAddress: "10.0.0.1", ControlPlaneEndpoint: "10.0.0.1:6443", PodSubnet: "10.244.0.0/16", ServiceSubnet: "10.96.0.0/12", IgnorePreflightErrors: []string{"all --v=9"}})
			return err
		}},
		{"eviction signal with YAML", "EvictionHard:", func() error {
			_, err := KubeadmInit(KubeadmParams{KubernetesVersion: "v1.37.2", NodeName: "cp", AdvertiseAddress: "10.0.0.1", ControlPlaneEndpoint: "10.0.0.1:6443", PodSubnet: "10.244.0.0/16", ServiceSubnet: "10.96.0.0/12", EvictionHard: map[string]string{"x\nfailSwapOn": "false"}})
			return err
		}},
		{"eviction threshold with YAML", "EvictionHard[imagefs.available]", func() error {
			_, err := KubeadmInit(KubeadmParams{KubernetesVersion: "v1.37.2", NodeName: "cp", AdvertiseAddress: "10.0.0.1", ControlPlaneEndpoint: "10.0.0.1:6443", PodSubnet: "10.244.0.0/16", ServiceSubnet: "10.96.0.0/12", EvictionHard: map[string]string{"imagefs.available": "1Gi\nfailSwapOn: false"}})
			return err
		}},
	}
	for _, c := range cases {
		err := c.err()
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.field+" ") || !strings.HasPrefix(err.Error(), "scripts.") {
			t.Errorf("%s: error %q does not name scripts.Function and %s", c.name, err, c.field)
		}
	}
}
