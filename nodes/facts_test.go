package nodes

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/bootctl/boot/internal/sshtest"
)

func local(t *testing.T, name string, args ...string) string {
	t.Helper()
	b, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return strings.TrimSpace(string(b))
}

// The sshd runs on this machine, so its facts are this machine's.
func TestFactsMatchThisMachine(t *testing.T) {
	key := sshtest.NewKey(t, "")
	s, cfg := rootServer(t, key)
	h := mustDial(t, cfg)
	f, err := h.Facts(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	hostname, _ := os.Hostname()
	machineID, _ := os.ReadFile("/etc/machine-id")
	osRelease, _ := os.ReadFile("/etc/os-release")
	swaps, _ := os.ReadFile("/proc/swaps")
	cgroup := 1
	if local(t, "stat", "-fc", "%T", "/sys/fs/cgroup") == "cgroup2fs" {
		cgroup = 2
	}
	pid1, _ := os.ReadFile("/proc/1/comm")
	checks := []struct {
		what      string
		got, want any
	}{
		{"hostname", f.Hostname, hostname},
		{"machine-id", f.MachineID, strings.TrimSpace(string(machineID))},
		{"arch", f.Arch, local(t, "uname", "-m")},
		{"kernel", f.Kernel, local(t, "uname", "-r")},
		{"cgroup", f.CgroupVersion, cgroup},
		{"systemd", f.Systemd, strings.TrimSpace(string(pid1)) == "systemd"},
		{"swap", f.Swap, len(strings.Split(strings.TrimSpace(string(swaps)), "\n")) > 1},
		{"uid", f.UID, 0},
		{"sudo", f.SudoWorks, true},
		{"os id in os-release", strings.Contains(string(osRelease), "ID="+f.OSID), true},
		{"kubelet installed", f.KubeletVersion != "", commandExists("kubelet")},
		{"admin.conf", f.AdminConf, fileExists("/etc/kubernetes/admin.conf")},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
		}
	}
	if f.OSID == "" || f.GoArch() == "" || f.CPUs < 1 || f.MemoryBytes == 0 {
		t.Errorf("incomplete facts: %+v", f)
	}
	if !f.Listening(s.Port) {
		t.Errorf("the test sshd's port %d is not among the listening ports %v", s.Port, f.ListeningPorts)
	}
	if f.ClockSkew > 2*time.Second || f.ClockSkew < -2*time.Second {
		t.Errorf("clock skew %s against the same clock", f.ClockSkew)
	}
	// Gathered once.
	again, err := h.Facts(testCtx(t))
	if err != nil || again != f {
		t.Fatalf("facts not cached: %v", err)
	}
}

func commandExists(name string) bool { _, err := exec.LookPath(name); return err == nil }

func fileExists(path string) bool { _, err := os.Stat(path); return err == nil }

func TestFactsSudoForNonRoot(t *testing.T) {
	key := sshtest.NewKey(t, "")
	s := userServer(t, key, sshtest.SudoUser, sshtest.PasswordUser)
	ok, err := mustDial(t, userConfig(t, s, key, sshtest.SudoUser)).Facts(testCtx(t))
	if err != nil || !ok.SudoWorks || ok.UID == 0 {
		t.Fatalf("bootsudo: %v %+v", err, ok)
	}
	no, err := mustDial(t, userConfig(t, s, key, sshtest.PasswordUser)).Facts(testCtx(t))
	if err != nil || no.SudoWorks || no.SudoError == "" {
		t.Fatalf("boottest: %v sudo=%v %q", err, no.SudoWorks, no.SudoError)
	}
}

func TestParseFacts(t *testing.T) {
	out := `@@os-release
PRETTY_NAME="Ubuntu 24.04.1 LTS"
ID=ubuntu
VERSION_ID="24.04"
@@arch
aarch64
@@kernel
6.8.0-45-generic
@@hostname
cp1
@@machine-id
0123456789abcdef0123456789abcdef
@@cgroupfs
cgroup2fs
@@pid1
systemd
@@swaps
Filename				Type		Size		Used		Priority
/swap.img                               file		4194300		0		-2
@@kubelet
Kubernetes v1.37.2
@@kubeadm
v1.37.2
@@files
/etc/kubernetes/kubelet.conf
@@tcp
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 10 0
   1: 0100007F:2710 0100007F:0016 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 10 0
  sl  local_address                         remote_address                        st
   0: 00000000000000000000000000000000:192B 00000000000000000000000000000000:0000 0A 0
   1: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 0
@@cpus
4
@@meminfo
MemTotal:        8000000 kB
@@uid
1000
@@time
1700000000123456789
@@end
`
	f, err := parseFacts(out)
	if err != nil {
		t.Fatal(err)
	}
	if f.OSID != "ubuntu" || f.OSVersionID != "24.04" || f.OSPrettyName != "Ubuntu 24.04.1 LTS" ||
		f.Arch != "aarch64" || f.GoArch() != "arm64" || f.Kernel != "6.8.0-45-generic" || f.Hostname != "cp1" ||
		f.CgroupVersion != 2 || !f.Systemd || !f.Swap || f.SwapDevices[0] != "/swap.img" ||
		f.KubeletVersion != "v1.37.2" || f.KubeadmVersion != "v1.37.2" || f.AdminConf || !f.KubeletConf ||
		f.CPUs != 4 || f.MemoryBytes != 8000000*1024 || f.UID != 1000 || f.Time.UnixNano() != 1700000000123456789 {
		t.Fatalf("parsed %+v", f)
	}
	if got := f.ListeningPorts; len(got) != 2 || got[0] != 22 || got[1] != 6443 {
		t.Fatalf("listening ports %v, want [22 6443]", got)
	}
	if _, err := parseFacts("@@arch\nx86_64\n"); err == nil {
		t.Fatal("truncated output accepted")
	}
}

// TestParseFactsEscapesHostText: what a host says about itself reaches
// messages with terminal escapes, line breaks and bytes that are not UTF-8
// escaped, and readable text (any script) as it is.
func TestParseFactsEscapesHostText(t *testing.T) {
	out := "@@os-release\n" +
		"PRETTY_NAME=\"Débian\x1b]0;owned\x07 ✓\"\n" +
		"ID=deb\x1b[2Jian\n" +
		"VERSION_ID=\"12\r\u2028\u202e\"\n" +
		"@@arch\nx86_64\n" +
		"@@kernel\n6.1\x00\xff\\x1b\n" +
		"@@hostname\nnœud\x1b[31m1\n" +
		"@@uid\n0\n@@time\n1\n@@end\n"
	f, err := parseFacts(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ what, got, want string }{
		{"PRETTY_NAME", f.OSPrettyName, `Débian\x1b]0;owned\a ✓`},
		{"ID", f.OSID, `deb\x1b[2Jian`},
		{"VERSION_ID", f.OSVersionID, `12\r\u2028\u202e`},
		{"kernel", f.Kernel, `6.1\x00\xff\\x1b`},
		{"hostname", f.Hostname, `nœud\x1b[31m1`},
		{"arch", f.Arch, "x86_64"},
	} {
		if c.got != c.want {
			t.Errorf("%s: got %q, want %q", c.what, c.got, c.want)
		}
	}
}
