package bootstrap

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/bootctl/boot/internal/kubetest"
	"github.com/bootctl/boot/internal/sshtest"
	"github.com/bootctl/boot/internal/testenv"
)

// hostSession is the ForceCommand of the test hosts' sshd: it runs each
// session's command as on a control plane, in a mount namespace of its own
// where /etc has kubernetes/admin.conf (an overlay on this machine's /etc,
// which stays as it is) and PATH starts with the bundle's bin folder (its
// kubectl). With the argument "no-journal", journalctl cannot run there;
// with "odd-journal", journalctl is the test's (odd-bin/journalctl in the
// test's folder), whose lines hold a terminal escape and a carriage return.
const hostSession = `#!/bin/sh
exec unshare --mount --propagation private sh -e -c '
d=$(mktemp -d "$1/session.XXXXXX")
mkdir -p "$d/up/kubernetes" "$d/work"
cp "$2" "$d/up/kubernetes/admin.conf"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$d/up,workdir=$d/work" /etc
if [ "$4" = no-journal ] && j=$(command -v journalctl); then mount --bind /dev/null "$j"; fi
if [ "$4" = odd-journal ]; then PATH="$1/odd-bin:$PATH"; fi
PATH="$3:$PATH" exec sh -c "$SSH_ORIGINAL_COMMAND"' host-session %s %s %s "$1"
`

// TestWaitReadyTimeoutExplainsNodes: when the nodes are not Ready in time,
// the error names each one that is not, with its Ready condition as a real
// API server reports it (through the bundle's kubectl on the control plane)
// and its kubelet's last journal lines, or why there are none. A Ready node
// is not named. The cluster's and the hosts' text is shown with control
// characters escaped: a terminal escape or a carriage return in a condition
// or a journal line reaches the error as \x1b or \r.
func TestWaitReadyTimeoutExplainsNodes(t *testing.T) {
	testenv.File(t, "/usr/bin/unshare", "util-linux")
	sshtest.Require(t)
	bundleDir := testenv.BundleDir(t)
	api := kubetest.Start(t)
	dir := t.TempDir()
	wrapper := filepath.Join(dir, "host-session")
	if err := os.WriteFile(wrapper, fmt.Appendf(nil, hostSession, dir, api.Kubeconfig, filepath.Join(bundleDir, "bin")), 0o755); err != nil {
		t.Fatal(err)
	}

	oddBin := filepath.Join(dir, "odd-bin")
	if err := os.Mkdir(oddBin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(oddBin, "journalctl"), []byte("#!/bin/sh\nprintf 'Started kubelet\\n\\033[31mE1207 failed\\rover\\n'\n"), 0o755); err != nil {
		t.Fatal(err)
	}

	sshAndHosts := startSessionHosts(t, dir, wrapper, []sessionHost{
		{"cp1", "control-plane", "journal"},
		{"w1", "worker", "no-journal"},
		{"w2", "worker", "journal"},
		{"w3", "worker", "journal"},
		{"w4", "worker", "odd-journal"},
	})
	inv := testenv.Inventory(t, fmt.Sprintf("apiVersion: boot/v1alpha1\nkind: Cluster\nmetadata:\n  name: ready\n%sregistry:\n  host: registry.example.com\n  acmeEmail: ops@example.com\n",
		sshAndHosts))

	// cp1's kubelet runs without a network plugin, w1's stopped posting,
	// with a terminal escape and a carriage return in its message, w2
	// never registered, w3 is Ready, w4 has registered but reported nothing
	// yet.
	cs, err := kubernetes.NewForConfig(api.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const notReadyMessage = "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized"
	for _, n := range []struct {
		name                    string
		status, reason, message string
	}{
		{"cp1", "False", "KubeletNotReady", notReadyMessage},
		{"w1", "Unknown", "NodeStatusUnknown", "Kubelet stopped \x1b[31mposting\r node status."},
		{"w3", "True", "KubeletReady", "kubelet is posting ready status"},
		{"w4", "", "", ""},
	} {
		node, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.name}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if n.status == "" {
			continue
		}
		node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionStatus(n.status), Reason: n.reason, Message: n.message, LastHeartbeatTime: metav1.Now()}}
		if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	c, err := Connect(ctx, inv, ConnectOptions{Parallel: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w := WaitReady{Timeout: time.Second}
	changes, err := w.Plan(ctx, c)
	if err != nil || len(changes) != 1 {
		t.Fatalf("plan: %v, %+v; want one change (waiting)", err, changes)
	}
	start := time.Now()
	err = changes[0].Apply(ctx)
	took := time.Since(start)
	if err == nil {
		t.Fatal("the wait ended without error although four nodes are not Ready")
	}
	msg := err.Error()
	t.Logf("after %s:\n%s", took.Round(time.Millisecond), msg)
	for _, want := range []string{
		"4 node(s) not Ready after 1s: cp1, w1, w2, w4\n",
		"\n  cp1: Ready=False (KubeletNotReady: " + notReadyMessage + ")\n",
		"\n  w1: Ready=Unknown (NodeStatusUnknown: Kubelet stopped \\x1b[31mposting\\r node status.)\n    kubelet journal unavailable: ",
		"\n  w2: not registered with the API server\n",
		"\n  w4: no Ready condition yet\n    kubelet: Started kubelet\n    kubelet: \\x1b[31mE1207 failed\\rover",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error lacks %q", want)
		}
	}
	if i := strings.IndexFunc(msg, func(r rune) bool { return r != '\n' && unicode.IsControl(r) }); i >= 0 {
		t.Errorf("the error holds the control character %q at %d", msg[i], i)
	}
	if strings.Contains(msg, "w3") {
		t.Error("the error names w3, which is Ready")
	}
	// cp1 and w2 have journalctl: their kubelet's lines, or none (this
	// machine's journal may hold no kubelet), but never "unavailable".
	lines := strings.Split(msg, "\n")
	for _, name := range []string{"cp1", "w2"} {
		i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "  "+name+": ") })
		if i < 0 || i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "    kubelet: ") && lines[i+1] != "    kubelet journal: no entries" {
			t.Errorf("%s: no kubelet journal lines nor \"no entries\" after its condition", name)
		}
	}
	if took > 20*time.Second {
		t.Errorf("the explanation took %s", took)
	}
}
