//go:build lab

// The lab test brings the real lab up from nothing and takes it down again.
// It needs root, docker.io and debootstrap, and takes a few minutes:
//
//	BOOT_BUNDLE_DIR=$PWD/dist/bundle go test -tags lab -run TestLab -v -timeout 30m ./lab/
//
// Without BOOT_BUNDLE_DIR the bundle checks (registry contents, containerd
// pulling an image) are skipped, and fail when CI is set.
package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/bootctl/boot/bundle"
	"github.com/bootctl/boot/internal/testenv"
	"github.com/bootctl/boot/inventory"
)

// buildTools builds runc-capwrap, lab-registry and lab-mirror static into a
// temporary folder, and installs Pebble there.
func buildTools(t *testing.T) string {
	dir := t.TempDir()
	start := time.Now()
	cmd := exec.Command("go", "build", "-o", dir+"/", "./runc-capwrap", "./lab-registry", "./lab-mirror")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOPROXY=https://proxy.golang.org")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build lab tools: %v\n%s", err, out)
	}
	t.Logf("timing: tools %s", time.Since(start).Round(time.Millisecond))
	buildPebble(t, dir)
	return dir
}

// machineState is what must be the same before Up and after Down.
type machineState struct {
	daemonJSON      string
	dockerConfDir   []string
	dockerAnswering bool
	links           string
	procs           []string
}

// labPrograms are the programs the lab runs on the machine itself.
var labPrograms = map[string]bool{
	"dockerd": true, "containerd": true, "containerd-shim": true, "containerd-shim-runc-v2": true,
	"docker-proxy": true, "lab-registry": true, "runc": true, "runc-capwrap": true,
	"pebble": true, "coredns": true, "moto_server": true, "lab-mirror": true, "tinyproxy": true,
}

// labProcesses lists the command lines of running processes of a lab
// program, mentioning the lab's folders, or in another PID namespace (what
// runs inside containers: the hosts' systemd, sshd, ...).
func labProcesses(labDir string) []string {
	ourNS, _ := os.Readlink("/proc/self/ns/pid")
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		cmdline, err := os.ReadFile(p)
		if err != nil || len(cmdline) == 0 || p == "/proc/1/cmdline" {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		s := strings.TrimSpace(strings.Join(args, " "))
		prog := ""
		if f := strings.Fields(args[0]); len(f) > 0 {
			prog = filepath.Base(f[0])
		}
		// A script's name follows its interpreter (moto_server).
		if len(args) > 1 && labPrograms[filepath.Base(args[1])] {
			prog = filepath.Base(args[1])
		}
		ns, _ := os.Readlink(filepath.Join(filepath.Dir(p), "ns", "pid"))
		if labPrograms[prog] || ns != ourNS || strings.Contains(s, runDir) || labDir != "" && strings.Contains(s, labDir) {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

func snapshot(t *testing.T, labDir string) machineState {
	s := machineState{procs: labProcesses(labDir)}
	if b, err := os.ReadFile(daemonJSONPath); err == nil {
		s.daemonJSON = string(b)
	} else if !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Dir(daemonJSONPath))
	for _, e := range entries {
		s.dockerConfDir = append(s.dockerConfDir, e.Name())
	}
	d, err := newDockerCLI()
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.serverVersion(context.Background())
	s.dockerAnswering = err == nil
	out, err := exec.Command("ip", "-o", "link", "show").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		// veth names change; only lasting interfaces matter.
		if f := strings.Fields(line); len(f) > 1 && !strings.HasPrefix(f[1], "veth") {
			s.links += f[1] + " "
		}
	}
	return s
}

func sshClient(t *testing.T, l *Lab, address, knownHostsFile string) (*ssh.Client, error) {
	key, err := os.ReadFile(l.KeyPath)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	hostKeys, err := knownhosts.New(knownHostsFile)
	if err != nil {
		t.Fatal(err)
	}
	return ssh.Dial("tcp", net.JoinHostPort(address, "22"), &ssh.ClientConfig{
		User:            "root",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: hostKeys,
		Timeout:         10 * time.Second,
	})
}

// run runs a shell command on a host and returns its combined output.
func run(c *ssh.Client, command string, stdin []byte) (string, error) {
	s, err := c.NewSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	if stdin != nil {
		s.Stdin = bytes.NewReader(stdin)
	}
	out, err := s.CombinedOutput(command)
	return strings.TrimSpace(string(out)), err
}

func TestLab(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Need(t, "the lab test needs root")
	}
	for _, tool := range []string{"docker", "dockerd", "debootstrap", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Need(t, "the lab test needs %s (apt-get install docker.io debootstrap): %v", tool, err)
		}
	}
	bundleDir := os.Getenv("BOOT_BUNDLE_DIR")
	if bundleDir == "" && os.Getenv("CI") != "" {
		t.Fatal("BOOT_BUNDLE_DIR is not set: CI must run the lab test with a bundle")
	}
	tools := buildTools(t)
	dir := t.TempDir()
	before := snapshot(t, dir)
	log := newTestLog(t)
	opts := Options{Dir: dir, Bundle: bundleDir, ToolsDir: tools, Log: log}
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	downDone := false
	t.Cleanup(func() {
		if !downDone {
			if err := Down(context.Background(), opts); err != nil {
				t.Errorf("cleanup: lab down: %v", err)
			}
		}
	})

	l, err := Up(ctx, opts)
	if err != nil {
		t.Fatalf("lab up: %v", err)
	}
	for _, tm := range l.Timings {
		t.Logf("timing: %s %s", tm.Stage, tm.Duration)
	}
	missing, err := missingCaps()
	if err != nil {
		t.Fatal(err)
	}
	if l.CapWrap != (len(missing) > 0) {
		t.Errorf("CapWrap = %v with missing capabilities %v", l.CapWrap, missing)
	}

	t.Run("inventory", func(t *testing.T) { checkInventory(t, l, bundleDir) })
	t.Run("no secrets in the log", func(t *testing.T) { checkNoSecrets(t, l, log.String()) })

	clients := map[string]*ssh.Client{}
	for _, h := range l.Hosts {
		c, err := sshClient(t, l, h.Address, l.KnownHosts)
		if err != nil {
			t.Fatalf("ssh %s (%s) with the lab's known_hosts: %v", h.Name, h.Address, err)
		}
		defer c.Close()
		clients[h.Name] = c
	}
	t.Run("strict host keys", func(t *testing.T) { checkStrict(t, l) })
	t.Run("hosts", func(t *testing.T) { checkHosts(t, l, clients) })
	t.Run("network", func(t *testing.T) { checkNetwork(t, l, clients) })
	t.Run("registry", func(t *testing.T) { checkRegistry(t, l, clients) })
	t.Run("dns stays in the lab", func(t *testing.T) {
		d, err := newDockerCLI()
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range append([]string{registryName}, containerName("cp1"), containerName("w3")) {
			out, err := d.run(ctx, "inspect", "--format", "{{json .HostConfig.Dns}}", c)
			if err != nil || out != `["`+l.Gateway+`"]` {
				t.Errorf("%s: DNS upstream %s, %v; want only the lab gateway %s", c, out, err, l.Gateway)
			}
		}
	})
	t.Run("outside world", func(t *testing.T) { checkOutside(t, ctx, l, clients) })
	t.Run("status", func(t *testing.T) {
		s, err := Status(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		s.Print(&buf)
		t.Log("\n" + buf.String())
		if !s.Up {
			t.Errorf("status: lab not up")
		}
	})
	t.Run("containerd from the bundle", func(t *testing.T) {
		if bundleDir == "" {
			testenv.Need(t, "BOOT_BUNDLE_DIR not set")
		}
		checkContainerd(t, l, bundleDir, clients["w1"])
	})

	// The process check below can see the lab's processes.
	if running := labProcesses(dir); len(running) <= len(before.procs)+len(l.Hosts) {
		t.Errorf("with the lab up, the process check sees only %q", running)
	}
	for _, c := range clients {
		c.Close()
	}
	start := time.Now()
	downDone = true
	if err := Down(ctx, opts); err != nil {
		t.Fatalf("lab down: %v", err)
	}
	t.Logf("timing: down %s", time.Since(start).Round(time.Millisecond))
	checkGone(t, l, before)
}

func checkInventory(t *testing.T, l *Lab, bundleDir string) {
	inv, err := inventory.Load(l.Inventory)
	if err != nil {
		t.Fatalf("the lab's inventory does not load: %v", err)
	}
	if len(inv.Hosts) != 4 || inv.Hosts[0].Name != "cp1" || inv.Hosts[0].Role != inventory.RoleControlPlane {
		t.Errorf("hosts = %+v", inv.Hosts)
	}
	for i, h := range inv.Hosts {
		if h.Address != l.Hosts[i].Address {
			t.Errorf("host %s address %s, lab says %s", h.Name, h.Address, l.Hosts[i].Address)
		}
	}
	if inv.SSH.HostKeyPolicy != inventory.HostKeyStrict || inv.SSH.KnownHosts != l.KnownHosts || inv.SSH.KeyPath != l.KeyPath {
		t.Errorf("ssh = %+v", inv.SSH)
	}
	if inv.Cluster.ImageRepository != l.Registry {
		t.Errorf("imageRepository = %q, want %q", inv.Cluster.ImageRepository, l.Registry)
	}
	wantRuntime := ""
	if l.CapWrap {
		wantRuntime = HostWrapperPath
	}
	if inv.Packages.RuntimeBinary != wantRuntime {
		t.Errorf("packages.runtimeBinary = %q, want %q", inv.Packages.RuntimeBinary, wantRuntime)
	}
	if bundleDir != "" && (inv.Packages.Source != inventory.SourceBundle || inv.Packages.Bundle != bundleDir) {
		t.Errorf("packages = %+v, want the bundle %s", inv.Packages, bundleDir)
	}
	info, err := os.Stat(l.KeyPath)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("lab key %s: %v, mode %v; want 0600", l.KeyPath, err, info.Mode())
	}
}

// checkNoSecrets: the private keys the lab made never reach its log.
func checkNoSecrets(t *testing.T, l *Lab, log string) {
	for _, f := range []string{l.KeyPath, filepath.Join(l.Dir, "registry", "tls.key")} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			if len(line) > 16 && !strings.HasPrefix(line, "-----") && strings.Contains(log, line) {
				t.Errorf("the lab's log contains a line of %s", f)
			}
		}
	}
}

// checkStrict proves the host keys are checked: a known_hosts that gives cp1's
// address another host's keys is refused.
func checkStrict(t *testing.T, l *Lab) {
	data, err := os.ReadFile(l.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	cp1, w1 := l.Hosts[0].Address, l.Hosts[1].Address
	var swapped []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if strings.HasPrefix(line, w1+" ") {
			swapped = append(swapped, cp1+strings.TrimPrefix(line, w1))
		}
	}
	wrong := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(wrong, []byte(strings.Join(swapped, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := sshClient(t, l, cp1, wrong)
	if err == nil {
		c.Close()
		t.Fatal("ssh to cp1 succeeded with w1's host keys in known_hosts")
	}
	var keyErr *knownhosts.KeyError
	if !errors.As(err, &keyErr) || len(keyErr.Want) == 0 {
		t.Fatalf("ssh to cp1 with w1's keys: %v; want a host key mismatch", err)
	}
}

func checkHosts(t *testing.T, l *Lab, clients map[string]*ssh.Client) {
	machineIDs := map[string]string{}
	for _, h := range l.Hosts {
		c := clients[h.Name]
		name, err := run(c, "hostname", nil)
		if err != nil || name != h.Name {
			t.Errorf("%s: hostname = %q, %v", h.Name, name, err)
		}
		id, err := run(c, "cat /etc/machine-id", nil)
		if err != nil || len(id) != 32 {
			t.Errorf("%s: machine-id %q, %v", h.Name, id, err)
		}
		if other, dup := machineIDs[id]; dup {
			t.Errorf("%s and %s share machine-id %s", h.Name, other, id)
		}
		machineIDs[id] = h.Name
		state, _ := run(c, "systemctl is-system-running", nil)
		if state != "running" && state != "degraded" {
			t.Errorf("%s: systemd is %q", h.Name, state)
		}
		if state == "degraded" {
			failed, _ := run(c, "systemctl --failed --no-legend --plain", nil)
			t.Logf("%s: systemd degraded, failed units: %s", h.Name, failed)
		}
		if out, err := run(c, "cat /etc/resolv.conf", nil); err != nil || !strings.Contains(out, "127.0.0.11") {
			t.Errorf("%s: resolv.conf %q, %v; want Docker's embedded DNS", h.Name, out, err)
		}
		mtu, err := run(c, "cat /sys/class/net/eth0/mtu", nil)
		if err != nil || mtu != fmt.Sprint(networkMTU) {
			t.Errorf("%s: eth0 mtu %q, %v", h.Name, mtu, err)
		}
		fs, err := run(c, "stat -f -c %T /var", nil)
		if err != nil || fs == "overlayfs" {
			t.Errorf("%s: /var is %q (%v); it must be a volume, not overlayfs", h.Name, fs, err)
		}
		if l.CapWrap {
			if out, err := run(c, "test -x "+HostWrapperPath, nil); err != nil {
				t.Errorf("%s: %s missing: %v %s", h.Name, HostWrapperPath, err, out)
			}
		}
	}
	keys, err := os.ReadFile(l.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(keys)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || seen[f[2]] {
			t.Errorf("known_hosts line %q: malformed or a key shared between hosts", line)
		}
		seen[f[2]] = true
	}
}

// checkOutside: the lab's services run as recorded; a record written to
// moto through the Route53 API resolves on a host (Docker's embedded DNS
// forwards to the lab's CoreDNS), a name outside the zone does not, and
// Pebble's directory answers from a host over TLS checked with the lab CA.
func checkOutside(t *testing.T, ctx context.Context, l *Lab, clients map[string]*ssh.Client) {
	var names []string
	for _, s := range l.Services {
		names = append(names, s.Name)
		if !s.running() {
			t.Errorf("%s (pid %d) not running", s.Name, s.PID)
		}
	}
	want := []string{"moto", "pebble"}
	if l.DNSServer != "" { // with a bundle: CoreDNS, the package mirror and the proxy to it
		want = []string{"moto", "coredns", "pebble", "mirror", "proxy"}
	}
	if !slices.Equal(names, want) {
		t.Errorf("services %q, want %q", names, want)
	}
	if l.DNSServer == "" {
		testenv.Need(t, "no CoreDNS without a bundle")
	}
	c := clients["w1"]
	name := "probe." + LabZone
	if out, err := run(c, "getent hosts "+name, nil); err == nil {
		t.Fatalf("w1 resolves %s before it is written: %q", name, out)
	}
	start := time.Now()
	_, err := route53Client(l.Route53Endpoint).ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{
		HostedZoneId: aws.String(l.Route53ZoneID),
		ChangeBatch: &types.ChangeBatch{Changes: []types.Change{{Action: types.ChangeActionUpsert, ResourceRecordSet: &types.ResourceRecordSet{
			Name: aws.String(name + "."), Type: types.RRTypeA, TTL: aws.Int64(5),
			ResourceRecords: []types.ResourceRecord{{Value: aws.String("192.0.2.7")}},
		}}}},
	})
	if err != nil {
		t.Fatalf("upsert %s: %v", name, err)
	}
	out, err := run(c, "for i in $(seq 50); do getent hosts "+name+" && exit 0; sleep 0.2; done; exit 1", nil)
	if err != nil || !strings.HasPrefix(out, "192.0.2.7") {
		t.Errorf("w1: %s: %q, %v; want 192.0.2.7", name, out, err)
	}
	t.Logf("timing: w1 resolves %s %s after the UPSERT", name, time.Since(start).Round(time.Millisecond))
	if out, err := run(c, "getent hosts "+PebbleHost, nil); err != nil || !strings.HasPrefix(out, l.Gateway+" ") {
		t.Errorf("w1: %s: %q, %v; want %s", PebbleHost, out, err, l.Gateway)
	}
	if out, err := run(c, "getent hosts outside-the-lab.invalid", nil); err == nil {
		t.Errorf("w1 resolved outside-the-lab.invalid (%q): a name outside the lab zone was answered", out)
	}
	ca, err := os.ReadFile(l.ACMECA)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := run(c, "cat > /tmp/lab-ca.pem", ca); err != nil {
		t.Fatal(err)
	}
	cmd := fmt.Sprintf("curl -sS --max-time 5 --cacert /tmp/lab-ca.pem --resolve %s:%s:%s https://%s:%s/dir",
		PebbleHost, acmePort(l), l.Gateway, PebbleHost, acmePort(l))
	if out, err := run(c, cmd, nil); err != nil || !strings.Contains(out, "newOrder") {
		t.Errorf("w1: Pebble's directory by name: %q, %v", out, err)
	}
}

// acmePort is the port of the lab's ACME directory URL.
func acmePort(l *Lab) string {
	u, err := url.Parse(l.ACMEDirectory)
	if err != nil {
		return ""
	}
	return u.Port()
}

// checkNetwork has every host reach every other one by name and address:
// ICMP and a TCP connection to sshd.
func checkNetwork(t *testing.T, l *Lab, clients map[string]*ssh.Client) {
	var wg sync.WaitGroup
	for _, h := range l.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, o := range l.Hosts {
				if o.Name == h.Name {
					continue
				}
				cmd := fmt.Sprintf("getent hosts %s && ping -c1 -W2 %s && timeout 3 bash -c '</dev/tcp/%s/22'", o.Name, o.Address, o.Name)
				if out, err := run(clients[h.Name], cmd, nil); err != nil {
					t.Errorf("%s cannot reach %s (%s): %v\n%s", h.Name, o.Name, o.Address, err, out)
				}
			}
		}()
	}
	wg.Wait()
}

// checkRegistry has every host reach the registry over HTTPS, trusting the lab CA
// through the system store, and checks the bundle's images are listed.
func checkRegistry(t *testing.T, l *Lab, clients map[string]*ssh.Client) {
	for _, h := range l.Hosts {
		out, err := run(clients[h.Name], "curl -fsS --max-time 5 https://"+l.Registry+"/v2/_catalog", nil)
		if err != nil {
			t.Errorf("%s: registry: %v\n%s", h.Name, err, out)
			continue
		}
		for _, img := range l.Images {
			repo, _, _ := strings.Cut(img, ":")
			if !strings.Contains(out, `"`+repo+`"`) {
				t.Errorf("%s: registry catalog %s lacks %s", h.Name, out, repo)
			}
		}
	}
}

// checkContainerd installs containerd, its shim, ctr and runc from the bundle on
// one host by hand, pulls the bundle's pause image from the lab registry by
// name, and runs it privileged (through runc-capwrap when the machine needs it).
func checkContainerd(t *testing.T, l *Lab, bundleDir string, c *ssh.Client) {
	b, err := bundle.Open(bundleDir)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for _, f := range []string{"containerd", "containerd-shim-runc-v2", "ctr", "runc"} {
		data, err := os.ReadFile(b.Path("bin/" + f))
		if err != nil {
			t.Fatal(err)
		}
		if out, err := run(c, "cat > /usr/local/bin/"+f+" && chmod 755 /usr/local/bin/"+f, data); err != nil {
			t.Fatalf("upload %s: %v %s", f, err, out)
		}
	}
	t.Logf("timing: upload containerd %s", time.Since(start).Round(time.Millisecond))
	if out, err := run(c, "mkdir -p /etc/containerd && cat > /etc/containerd/config.toml", []byte("version = 3\n")); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	if out, err := run(c, "systemd-run --unit lab-test-containerd /usr/local/bin/containerd --config /etc/containerd/config.toml", nil); err != nil {
		t.Fatalf("start containerd: %v %s", err, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := run(c, "ctr version", nil)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			logs, _ := run(c, "journalctl -u lab-test-containerd --no-pager | tail -20", nil)
			t.Fatalf("containerd not answering: %v %s\n%s", err, out, logs)
		}
		time.Sleep(300 * time.Millisecond)
	}
	var pause string
	for _, img := range b.Manifest.Images {
		if strings.HasPrefix(img.RepoTag, "pause:") {
			pause = l.Registry + "/" + img.RepoTag
		}
	}
	if pause == "" {
		t.Fatal("the bundle has no pause image")
	}
	// Every image, by the name kubeadm (imageRepository = the lab registry)
	// and the CNI manifests ask for.
	start = time.Now()
	for _, img := range b.Manifest.Images {
		ref := l.Registry + "/" + img.RepoTag
		if out, err := run(c, "ctr -n k8s.io images pull "+ref, nil); err != nil {
			t.Fatalf("pull %s: %v\n%s", ref, err, out)
		}
		out, err := run(c, "ctr -n k8s.io images ls name=="+ref, nil)
		if err != nil || !strings.Contains(out, img.Digest) {
			t.Errorf("%s: digest %s not in\n%s (%v)", ref, img.Digest, out, err)
		}
	}
	t.Logf("timing: pull %d images %s", len(b.Manifest.Images), time.Since(start).Round(time.Millisecond))
	// containerd gives a privileged container the capabilities it holds
	// itself, so privileged pods work as they are; a container that asks
	// for a capability outside the bounding set fails unless runc-capwrap
	// runs it (what packages.runtimeBinary is for).
	out, err := run(c, "ctr -n k8s.io run --rm --privileged "+pause+" privileged /pause -v", nil)
	if err != nil || !strings.Contains(out, "pause") {
		t.Errorf("privileged pause container: %v\n%s", err, out)
	}
	out, err = run(c, "ctr -n k8s.io run --rm --cap-add CAP_SYS_RESOURCE "+pause+" sysresource /pause -v", nil)
	if l.CapWrap {
		if err == nil || !strings.Contains(out, capsProblem) {
			t.Errorf("a container asking for CAP_SYS_RESOURCE without runc-capwrap: %v %s; want %q", err, out, capsProblem)
		}
		out, err = run(c, "ctr -n k8s.io run --rm --cap-add CAP_SYS_RESOURCE --runc-binary "+HostWrapperPath+" "+pause+" wrapped /pause -v", nil)
	}
	if err != nil || !strings.Contains(out, "pause") {
		t.Errorf("container asking for CAP_SYS_RESOURCE: %v\n%s", err, out)
	}
}

// checkGone asserts that Down left nothing: no container, network, volume,
// image or process of the lab, and the machine's settings as before.
func checkGone(t *testing.T, l *Lab, before machineState) {
	after := snapshot(t, l.Dir)
	if after.daemonJSON != before.daemonJSON {
		t.Errorf("%s changed:\nbefore %q\nafter  %q", daemonJSONPath, before.daemonJSON, after.daemonJSON)
	}
	if !slices.Equal(after.dockerConfDir, before.dockerConfDir) {
		t.Errorf("%s changed: before %v, after %v", filepath.Dir(daemonJSONPath), before.dockerConfDir, after.dockerConfDir)
	}
	if after.dockerAnswering != before.dockerAnswering {
		t.Errorf("docker daemon answering: before %v, after %v", before.dockerAnswering, after.dockerAnswering)
	}
	if after.links != before.links {
		t.Errorf("network interfaces changed:\nbefore %s\nafter  %s", before.links, after.links)
	}
	if after.dockerAnswering {
		d, err := newDockerCLI()
		if err != nil {
			t.Fatal(err)
		}
		for _, kind := range []string{"container", "network", "volume", "image"} {
			names, err := d.listByLabel(context.Background(), kind)
			if err != nil || len(names) > 0 {
				t.Errorf("left %s: %v %v", kind, names, err)
			}
		}
	}
	if l.DaemonPID != 0 {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", l.DaemonPID)); err == nil {
			t.Errorf("dockerd pid %d still exists", l.DaemonPID)
		}
	}
	if !slices.Equal(after.procs, before.procs) {
		t.Errorf("processes changed:\nbefore %q\nafter  %q", before.procs, after.procs)
	}
	for _, p := range []string{runDir, filepath.Join(l.Dir, "docker"), l.Inventory, l.KeyPath, filepath.Join(l.Dir, stateFile)} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left behind", p)
		}
	}
}

// TestLabOnRunningDocker runs the lab on a dockerd that was already running,
// as on a workstation: the lab must leave that daemon running, and when the
// machine needs runc-capwrap, register it through daemon.json and restore
// that file at Down.
func TestLabOnRunningDocker(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Need(t, "the lab test needs root")
	}
	for _, tool := range []string{"docker", "dockerd", "debootstrap", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Need(t, "the lab test needs %s (apt-get install docker.io debootstrap): %v", tool, err)
		}
	}
	d, err := newDockerCLI()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.serverVersion(context.Background()); err == nil {
		t.Skip("a Docker daemon is already running; this test starts its own")
	}
	if _, err := os.Stat(daemonPIDPath); err == nil {
		t.Skipf("%s exists: another dockerd may own it", daemonPIDPath)
	}
	tools := buildTools(t)
	// The machine's "own" dockerd, started the way its service would start it
	// (default socket, pid file and configuration file), with its data in a
	// temporary folder and no changes to the host's network settings.
	data := t.TempDir()
	execRoot := "/run/boot-lab-test-docker"
	daemon := exec.Command("dockerd", "--data-root", data, "--exec-root", execRoot,
		"--bridge=none", "--iptables=false", "--ip-forward=false", "--ip-masq=false")
	logFile, err := os.Create(filepath.Join(t.TempDir(), "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	daemon.Stdout, daemon.Stderr = logFile, logFile
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	// dockerd 20.10 creates a trust key beside its configuration file.
	trustKey := filepath.Join(filepath.Dir(daemonJSONPath), "key.json")
	_, statErr := os.Stat(trustKey)
	t.Cleanup(func() {
		_ = daemon.Process.Signal(os.Interrupt)
		_ = daemon.Wait()
		os.RemoveAll(execRoot)
		if errors.Is(statErr, os.ErrNotExist) {
			os.Remove(trustKey)
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := d.serverVersion(context.Background()); err == nil {
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logFile.Name())
			t.Fatalf("test dockerd not answering:\n%s", log)
		}
		time.Sleep(300 * time.Millisecond)
	}

	dir := t.TempDir()
	before := snapshot(t, dir)
	opts := Options{Dir: dir, ToolsDir: tools, Log: newTestLog(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	downDone := false
	t.Cleanup(func() {
		if !downDone {
			if err := Down(context.Background(), opts); err != nil {
				t.Errorf("cleanup: lab down: %v", err)
			}
		}
	})
	l, err := Up(ctx, opts)
	if err != nil {
		t.Fatalf("lab up: %v", err)
	}
	if l.DaemonPID != 0 {
		t.Errorf("the lab started a dockerd (pid %d) although one was running", l.DaemonPID)
	}
	missing, err := missingCaps()
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) > 0 {
		if l.DaemonConfig == nil || !daemonHasRuntime(ctx, d, capWrapRuntime) {
			t.Errorf("capabilities %v missing, but the runtime is not registered through %s", missing, daemonJSONPath)
		}
	} else if l.DaemonConfig != nil {
		t.Errorf("%s changed on a machine that does not need runc-capwrap", daemonJSONPath)
	}
	for _, h := range l.Hosts {
		c, err := sshClient(t, l, h.Address, l.KnownHosts)
		if err != nil {
			t.Fatalf("ssh %s: %v", h.Name, err)
		}
		out, err := run(c, "hostname", nil)
		c.Close()
		if err != nil || out != h.Name {
			t.Errorf("%s: hostname %q, %v", h.Name, out, err)
		}
	}
	downDone = true
	if err := Down(ctx, opts); err != nil {
		t.Fatalf("lab down: %v", err)
	}
	if daemonHasRuntime(ctx, d, capWrapRuntime) {
		t.Errorf("runtime %s still registered after down", capWrapRuntime)
	}
	checkGone(t, l, before)
}
