package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/bootctl/boot/internal/kubetest"
	"github.com/bootctl/boot/internal/run"
	"github.com/bootctl/boot/internal/sshtest"
	"github.com/bootctl/boot/internal/testenv"
	"github.com/bootctl/boot/nodes"
)

// prunedSession is the ForceCommand of the host of a Node that left the
// inventory: it records each session's command and standard input in the
// test's folder (the teardown script is not run on this machine) and
// prints a snapshot with one section.
const prunedSession = `#!/bin/sh
n=$(ls %[1]s | grep -c '^session-')
echo "$SSH_ORIGINAL_COMMAND" > %[1]s/session-$n.command
cat > %[1]s/session-$n.stdin
printf '## section\nafter\n'
`

// TestPruneNodesThatLeftTheInventory: against a real API server (through
// the bundle's kubectl on a control plane reached over real SSH), Prune
// finds the Nodes that are no inventory host. Without Remove it only
// warns of each ("remove <node>") and plans nothing; with Remove it plans
// one removal each, changing nothing while planning; applying them drains
// and deletes both Nodes, resets the reachable host (the teardown script,
// with the bundle's files, sent over SSH to the Node's InternalIP with the
// inventory's ssh settings and known_hosts) and names the unreachable one
// as not reset. The reset host's snapshot, named after the Node, is what
// Verify compares. Inventory hosts' Nodes are kept; a control-plane Node
// missing from the inventory is refused before any change.
func TestPruneNodesThatLeftTheInventory(t *testing.T) {
	testenv.File(t, "/usr/bin/unshare", "util-linux")
	sshtest.Require(t)
	bundleDir := testenv.BundleDir(t)
	api := kubetest.Start(t)
	dir := t.TempDir()
	wrapper := filepath.Join(dir, "host-session")
	if err := os.WriteFile(wrapper, fmt.Appendf(nil, hostSession, dir, api.Kubeconfig, filepath.Join(bundleDir, "bin")), 0o755); err != nil {
		t.Fatal(err)
	}
	sshAndHosts := startSessionHosts(t, dir, wrapper, []sessionHost{
		{"cp1", "control-plane", "journal"},
		{"w1", "worker", "journal"},
	})

	// w3's host: its own sshd, with the inventory's key and its host key
	// in the inventory's known_hosts; its port is the inventory's default.
	// w9's InternalIP has no sshd.
	records := filepath.Join(dir, "w3")
	if err := os.Mkdir(records, 0o755); err != nil {
		t.Fatal(err)
	}
	pruned := filepath.Join(dir, "pruned-session")
	if err := os.WriteFile(pruned, fmt.Appendf(nil, prunedSession, records), 0o755); err != nil {
		t.Fatal(err)
	}
	keyPath := strings.TrimSpace(strings.TrimPrefix(strings.Split(sshAndHosts, "\n")[1], "  keyPath:"))
	keyText, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(keyText)
	if err != nil {
		t.Fatal(err)
	}
	w3 := sshtest.Start(t, sshtest.Options{
		Address:        "127.0.0.20",
		AuthorizedKeys: map[string][]ssh.PublicKey{"root": {signer.PublicKey()}},
		Extra:          []string{"ForceCommand " + pruned},
	})
	known, err := os.OpenFile(filepath.Join(dir, "known_hosts"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(known, w3.KnownHostsLine())
	known.Close()
	sshAndHosts = strings.Replace(sshAndHosts, "ssh:\n", fmt.Sprintf("ssh:\n  port: %d\n  connectTimeout: 2s\n", w3.Port), 1)
	inv := testenv.Inventory(t, fmt.Sprintf("apiVersion: boot/v1alpha1\nkind: Cluster\nmetadata:\n  name: prune\ncluster:\n  imageRepository: 127.0.0.1:5000/k8s\npackages:\n  source: bundle\n  bundle: %s\n%sregistry:\n  host: registry.example.com\n  acmeEmail: ops@example.com\n",
		bundleDir, sshAndHosts))
	snapshot := snapshotPath(inv, "w3")
	if err := os.MkdirAll(filepath.Dir(snapshot), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(snapshot, []byte("## section\nbefore\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	cs, err := kubernetes.NewForConfig(api.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	createNode := func(name, ip string, controlPlane bool) {
		t.Helper()
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}}}
		if controlPlane {
			n.Labels[controlPlaneLabel] = ""
		}
		n, err := cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: name}, {Type: corev1.NodeInternalIP, Address: ip}}
		if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	createNode("cp1", "127.0.0.2", true)
	createNode("w1", "127.0.0.3", false)
	createNode("w3", w3.Address, false)
	createNode("w9", "127.0.0.21", false)
	nodeNames := func() []string {
		t.Helper()
		list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, n := range list.Items {
			names = append(names, n.Name)
		}
		slices.Sort(names)
		return names
	}
	sessions := func() []string {
		t.Helper()
		m, err := filepath.Glob(filepath.Join(records, "session-*.command"))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}

	var mu sync.Mutex
	var events []run.Event
	c, err := Connect(ctx, inv, ConnectOptions{Parallel: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Report = func(e run.Event) { mu.Lock(); events = append(events, e); mu.Unlock() }

	// Without Remove: a warning each, nothing planned.
	warn := &Prune{}
	changes, err := warn.Plan(ctx, c)
	if err != nil || len(changes) != 0 {
		t.Fatalf("plan without Remove: %v, %+v; want no change", err, changes)
	}
	var warned []string
	for _, e := range events {
		if e.Status == run.Warning {
			warned = append(warned, e.Host+": "+e.Message)
		}
	}
	want := []string{
		"w3: remove w3: left the inventory: not removed; run with --prune to drain, delete and reset it",
		"w9: remove w9: left the inventory: not removed; run with --prune to drain, delete and reset it",
	}
	if !slices.Equal(warned, want) {
		t.Errorf("warnings %q, want %q", warned, want)
	}

	// With Remove: planned, nothing changed yet.
	p := &Prune{Remove: true}
	defer p.Close()
	start := time.Now()
	changes, err = p.Plan(ctx, c)
	t.Logf("plan with Remove took %s", time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var descs []string
	for _, ch := range changes {
		descs = append(descs, ch.Host+": "+ch.Description)
	}
	want = []string{
		"w3: remove w3: drain it, delete the Node and reset its host 127.0.0.20 with the teardown script",
		"w9: remove w9: drain it and delete the Node (its host 127.0.0.21 is unreachable: not reset)",
	}
	if !slices.Equal(descs, want) {
		t.Fatalf("planned %q, want %q", descs, want)
	}
	if got := nodeNames(); !slices.Equal(got, []string{"cp1", "w1", "w3", "w9"}) {
		t.Fatalf("Nodes after planning: %v", got)
	}
	if s := sessions(); len(s) != 0 {
		t.Fatalf("planning ran commands on w3's host: %v", s)
	}

	for _, ch := range changes {
		if err := ch.Apply(ctx); err != nil {
			t.Fatalf("%s: %v", ch.Description, err)
		}
	}
	if got := nodeNames(); !slices.Equal(got, []string{"cp1", "w1"}) {
		t.Errorf("Nodes after the removals: %v, want cp1 w1", got)
	}
	s := sessions()
	if len(s) != 1 {
		t.Fatalf("sessions on w3's host: %v, want one (the reset)", s)
	}
	command, _ := os.ReadFile(s[0])
	stdin, _ := os.ReadFile(strings.TrimSuffix(s[0], ".command") + ".stdin")
	if !strings.Contains(string(command), "bash -s") || !strings.Contains(string(stdin), "kubeadm reset") || !strings.Contains(string(stdin), "/usr/local/bin/kubelet") {
		t.Errorf("w3's host ran %q with %d bytes of input; want the teardown script (kubeadm reset, the bundle's /usr/local/bin/kubelet)", command, len(stdin))
	}
	nr := p.NotReset()
	if len(nr) != 1 || nr[0].Name != "w9" || !errors.Is(nr[0].Err, nodes.ErrUnreachable) {
		t.Errorf("not reset: %+v, want w9, unreachable", nr)
	}

	// Verify compares the reset host with its snapshot, by the Node's name.
	diffs, err := Verify(ctx, p.PrunedCluster(c))
	if err != nil {
		t.Fatal(err)
	}
	if got := diffs["w3"]; len(diffs) != 1 || !slices.Equal(got, []string{"section: - before", "section: + after"}) {
		t.Errorf("differences %q, want w3's section before/after", diffs)
	}

	// A control-plane Node that is no inventory host: refused, nothing
	// planned.
	createNode("cp0", "127.0.0.22", true)
	createNode("w4", "127.0.0.23", false)
	changes, err = (&Prune{Remove: true}).Plan(ctx, c)
	if err == nil || !strings.Contains(err.Error(), "node cp0 is a control plane of the cluster and no host of the inventory") {
		t.Errorf("plan with cp0: %v, %d change(s); want cp0 refused", err, len(changes))
	}
	if got := nodeNames(); !slices.Equal(got, []string{"cp0", "cp1", "w1", "w4"}) {
		t.Errorf("Nodes after the refusal: %v", got)
	}
}
