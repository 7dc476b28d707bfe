package bootstrap

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/semver"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bootctl/boot/inventory"
	"github.com/bootctl/boot/nodes"
	"github.com/bootctl/boot/scripts"
)

// UpgradingAnnotation marks a Node that boot cordoned to upgrade it, with
// the version it upgrades to: a re-run after an interrupted upgrade
// uncordons only the Nodes boot cordoned, never one a person cordoned.
const UpgradingAnnotation = "bootctl.dev/upgrading-to"

// Upgrade timeouts: a drain (evictions respect PodDisruptionBudgets) and a
// restarted kubelet's Node becoming Ready at the new version.
const (
	DefaultDrainTimeout = 5 * time.Minute
	upgradeReadyTimeout = 5 * time.Minute
)

// UpgradeControlPlane upgrades, when cluster.kubernetesVersion is above
// what the control plane runs, the control plane in place: a backup first
// (TakeBackup, into the cluster's state folder), then kubeadm at the new
// version and kubeadm upgrade apply, then the control plane's own kubelet
// and kubectl with its Node drained. Each step is planned from what the
// cluster runs, so a re-run after an interruption continues where it
// stopped and never repeats a finished step (only the backup is taken
// again, while any node is behind). Preflight has already refused a
// downgrade or a skipped minor (versionFindings).
type UpgradeControlPlane struct {
	DrainTimeout time.Duration // default DefaultDrainTimeout
}

// Name implements Phase.
func (UpgradeControlPlane) Name() string { return "upgrade control plane" }

// UpgradeWorkers upgrades, after the control plane, every worker whose
// kubelet runs an older version than cluster.kubernetesVersion:
// MaxUnavailable at a time (default 1), each with kubeadm at the new
// version, kubeadm upgrade node, its Node cordoned and drained, kubelet and
// its units at the new version, the Node Ready at it, then uncordoned. A
// failed worker stops the ones not started yet.
type UpgradeWorkers struct {
	MaxUnavailable int
	DrainTimeout   time.Duration // default DefaultDrainTimeout
}

// Name implements Phase.
func (UpgradeWorkers) Name() string { return "upgrade workers" }

// upgradeNode is what an upgrade reads of a Node.
type upgradeNode struct {
	KubeletVersion string // what its kubelet reports running
	UpgradingTo    string // UpgradingAnnotation's value: boot cordoned it
}

// pending reports whether the Node has upgrade work left for target: its
// kubelet is behind, or boot's mark is still on it.
func (n upgradeNode) pending(target string) bool {
	return behind(n.KubeletVersion, target) || n.UpgradingTo != ""
}

// readUpgradeNodes reads every Node's kubelet version and
// UpgradingAnnotation through kubectl on the control plane (retried while
// the API server restarts).
func readUpgradeNodes(ctx context.Context, cp *Host) (map[string]upgradeNode, error) {
	out, err := retryKubectl(ctx, cp, "get", "nodes", "-o", "json")
	if err != nil {
		return nil, err
	}
	var list corev1.NodeList
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return nil, fmt.Errorf("kubectl get nodes: %w", err)
	}
	m := map[string]upgradeNode{}
	for _, n := range list.Items {
		m[n.Name] = upgradeNode{
			KubeletVersion: n.Status.NodeInfo.KubeletVersion,
			UpgradingTo:    n.Annotations[UpgradingAnnotation],
		}
	}
	return m, nil
}

// apiServerVersion is the version of the control plane's kube-apiserver:
// its static pod manifest's image tag, which kubeadm upgrade apply moves
// last, once the new API server answers.
func apiServerVersion(ctx context.Context, cp *Host) (string, error) {
	raw, err := cp.Conn.ReadFile(ctx, path.Join(scripts.ManifestDir, "kube-apiserver.yaml"))
	if err != nil {
		return "", fmt.Errorf("the API server's manifest: %w", err)
	}
	return parseAPIServerVersion(raw)
}

// parseAPIServerVersion reads the kube-apiserver container's image tag
// from its static pod manifest.
func parseAPIServerVersion(raw []byte) (string, error) {
	c, err := staticPodContainer(raw, "the API server's manifest", "kube-apiserver")
	if err != nil {
		return "", err
	}
	image, _, _ := strings.Cut(c.Image, "@")
	tag := image[strings.LastIndexByte(image, ':')+1:]
	if !semver.IsValid(tag) {
		return "", fmt.Errorf("the API server's manifest runs image %q, whose tag is no Kubernetes version", c.Image)
	}
	return tag, nil
}

// upgradeState is what both upgrade phases plan from: the target version,
// the API server's and every Node's. ok is false when there is no cluster
// yet (nothing to upgrade).
func (c *Cluster) upgradeState(ctx context.Context) (api string, ns map[string]upgradeNode, ok bool, err error) {
	cp := c.controlPlane()
	if up, err := exists(ctx, cp, adminConf); err != nil || !up {
		return "", nil, false, err
	}
	if api, err = apiServerVersion(ctx, cp); err != nil {
		return "", nil, false, err
	}
	ns, err = readUpgradeNodes(ctx, cp)
	return api, ns, err == nil, err
}

// behind reports whether a version a cluster part runs is below the target.
func behind(running, target string) bool {
	return semver.IsValid(running) && semver.Compare(running, target) < 0
}

// Plan implements Phase.
func (u UpgradeControlPlane) Plan(ctx context.Context, c *Cluster) ([]Change, error) {
	target := c.Inventory.Cluster.KubernetesVersion
	api, ns, ok, err := c.upgradeState(ctx)
	if err != nil || !ok {
		return nil, err
	}
	cp := c.controlPlane()
	name := cp.Spec.Name
	node, joined := ns[name]
	anyBehind := behind(api, target)
	for _, n := range ns {
		anyBehind = anyBehind || behind(n.KubeletVersion, target)
	}
	var changes []Change
	if anyBehind {
		dir := DefaultBackupDir(c.Inventory, time.Now())
		changes = append(changes, Change{Host: name,
			Description: "back up etcd, the PKI and kubeadm's configuration to " + dir + " before the upgrade",
			Apply: func(ctx context.Context) error {
				_, err := TakeBackup(ctx, c.Inventory, cp.Conn, dir, time.Now())
				return err
			}})
	}
	if behind(api, target) {
		changes = append(changes, Change{Host: name,
			Description: fmt.Sprintf("kubeadm upgrade apply %s: the control plane from %s", target, api),
			Apply: func(ctx context.Context) error {
				if err := c.installKube(ctx, cp, "kubeadm"); err != nil {
					return err
				}
				cmd := "kubeadm upgrade apply " + target + " --yes" + ignoreFlag(cp)
				_, err := cp.Conn.Sudo(ctx, cmd, nodes.Label("kubeadm upgrade apply"))
				return err
			}})
	}
	if joined && node.pending(target) {
		changes = append(changes, c.upgradeKubelet(cp, node, u.DrainTimeout, []string{"kubelet", "kubectl"}))
	}
	return changes, nil
}

// ignoreFlag is kubeadm's --ignore-preflight-errors for the host, or "".
func ignoreFlag(h *Host) string {
	if ig := ignoredPreflight(h); len(ig) > 0 {
		return " --ignore-preflight-errors=" + strings.Join(ig, ",")
	}
	return ""
}

// Plan implements Phase.
func (u UpgradeWorkers) Plan(ctx context.Context, c *Cluster) ([]Change, error) {
	target := c.Inventory.Cluster.KubernetesVersion
	_, ns, ok, err := c.upgradeState(ctx)
	if err != nil || !ok {
		return nil, err
	}
	// The Nodes an interrupted run left drained first: their capacity
	// comes back before another Node is drained.
	var todo []*Host
	for _, h := range c.workers() {
		node, joined := ns[h.Spec.Name]
		if joined && node.pending(target) {
			todo = append(todo, h)
		}
	}
	unmarked := func(h *Host) int {
		if ns[h.Spec.Name].UpgradingTo != "" {
			return 0
		}
		return 1
	}
	slices.SortStableFunc(todo, func(a, b *Host) int { return unmarked(a) - unmarked(b) })
	g := newUpgradeGate(len(todo), u.MaxUnavailable)
	var changes []Change
	for i, h := range todo {
		node := ns[h.Spec.Name]
		ch := c.upgradeKubelet(h, node, u.DrainTimeout, []string{"kubelet"})
		// The mark goes on after kubeadm upgrade node succeeded: a marked
		// Node (a drain that failed) has it done.
		if behind(node.KubeletVersion, target) && node.UpgradingTo != target {
			ch.Description = "kubeadm upgrade node, then " + ch.Description
			drainAndKubelet := ch.Apply
			ch.Apply = func(ctx context.Context) error {
				if err := c.installKube(ctx, h, "kubeadm"); err != nil {
					return err
				}
				if _, err := h.Conn.Sudo(ctx, "kubeadm upgrade node"+ignoreFlag(h), nodes.Label("kubeadm upgrade node")); err != nil {
					return err
				}
				return drainAndKubelet(ctx)
			}
		}
		changes = append(changes, g.wrap(i, h.Spec.Name, ch))
	}
	return changes, nil
}

// upgradeGate starts the workers' upgrades in the plan's order,
// MaxUnavailable at a time (the i-th once the (i-MaxUnavailable)-th ended;
// the runner starts hosts in order, see run.Parallel), and once one failed
// or panicked starts no other.
type upgradeGate struct {
	slots  int
	ended  []chan struct{} // ended[i] closes when the i-th upgrade ends
	mu     sync.Mutex
	failed string
}

func newUpgradeGate(n, slots int) *upgradeGate {
	g := &upgradeGate{slots: max(slots, 1), ended: make([]chan struct{}, n)}
	for i := range g.ended {
		g.ended[i] = make(chan struct{})
	}
	return g
}

// wrap makes ch the i-th upgrade of the gate.
func (g *upgradeGate) wrap(i int, host string, ch Change) Change {
	apply := ch.Apply
	ch.Apply = func(ctx context.Context) error {
		defer close(g.ended[i])
		if i >= g.slots {
			select {
			case <-g.ended[i-g.slots]:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		g.mu.Lock()
		failed := g.failed
		g.mu.Unlock()
		if failed != "" {
			return fmt.Errorf("not started: the upgrade of %s failed (a re-run continues from there)", failed)
		}
		ok := false
		defer func() {
			if !ok { // an error, or a panic on its way up
				g.mu.Lock()
				if g.failed == "" {
					g.failed = host
				}
				g.mu.Unlock()
			}
		}()
		err := apply(ctx)
		ok = err == nil
		return err
	}
	return ch
}

// upgradeKubelet is the change that moves a Node's kubelet to the target:
// mark it (UpgradingAnnotation), cordon and drain it, install bins (kubelet
// first, its units with it) at the target version, which restarts the
// kubelet, wait until the Node is Ready at the target (on a control plane,
// also until its API server answers steadily again), uncordon and unmark
// it. A Node
// whose kubelet already runs the target (an interrupted run) is only
// waited for and uncordoned.
func (c *Cluster) upgradeKubelet(h *Host, node upgradeNode, drainTimeout time.Duration, bins []string) Change {
	target := c.Inventory.Cluster.KubernetesVersion
	name := h.Spec.Name
	cp := c.controlPlane()
	if drainTimeout <= 0 {
		drainTimeout = DefaultDrainTimeout
	}
	desc := fmt.Sprintf("drain %s, kubelet %s to %s, uncordon", name, node.KubeletVersion, target)
	switch {
	case behind(node.KubeletVersion, target) && node.UpgradingTo == target:
		desc = fmt.Sprintf("drain %s again (an interrupted upgrade), kubelet %s to %s, uncordon", name, node.KubeletVersion, target)
	case !behind(node.KubeletVersion, target):
		desc = fmt.Sprintf("finish the interrupted upgrade of %s to %s (its kubelet runs %s): uncordon it and clear its mark", name, node.UpgradingTo, node.KubeletVersion)
	}
	return Change{Host: name, Description: desc, Apply: func(ctx context.Context) error {
		installed := behind(node.KubeletVersion, target)
		if installed {
			if _, err := retryKubectl(ctx, cp, "patch", "node", name, "--type=merge", "-p",
				`{"metadata":{"annotations":{"`+UpgradingAnnotation+`":"`+target+`"}}}`); err != nil {
				return err
			}
			if err := drain(ctx, cp, name, drainTimeout); err != nil {
				return err
			}
			if err := c.installKube(ctx, h, bins...); err != nil {
				return err
			}
		}
		if err := waitKubelet(ctx, cp, name, target, upgradeReadyTimeout); err != nil {
			return err
		}
		if installed && h.Spec.Role == inventory.RoleControlPlane {
			// The new kubelet restarts the control plane's static pods
			// within seconds of starting (their pod hashes changed): what
			// follows needs the API server to have come back for good.
			if err := waitSteadyAPI(ctx, cp, upgradeReadyTimeout); err != nil {
				return err
			}
		}
		// Uncordoned and unmarked in one patch: idempotent, so retried.
		_, err := retryKubectl(ctx, cp, "patch", "node", name, "--type=merge", "-p",
			`{"spec":{"unschedulable":null},"metadata":{"annotations":{"`+UpgradingAnnotation+`":null}}}`)
		return err
	}}
}

// kubectlRetry is how long retryKubectl tries.
const kubectlRetry = 3 * time.Minute

// retryKubectl runs kubectl on the control plane (output not streamed) and
// retries, for kubectlRetry, a failed call: the reads and idempotent
// patches of an upgrade, whose API server restarts under them.
func retryKubectl(ctx context.Context, cp *Host, args ...string) (string, error) {
	var out string
	var err error
	perr := poll(ctx, kubectlRetry, func() (bool, string) {
		out, err = kubectlOutput(ctx, cp, nil, args...)
		return err == nil, ""
	}, func(string) error { return err })
	return out, perr
}

// steadyFor is how long the API server must keep answering /readyz for
// waitSteadyAPI.
const steadyFor = 20 * time.Second

// waitSteadyAPI waits until the API server has answered /readyz without a
// failure for steadyFor, polled every 2 seconds.
func waitSteadyAPI(ctx context.Context, cp *Host, timeout time.Duration) error {
	var since time.Time
	return poll(ctx, timeout, func() (bool, string) {
		if _, err := kubectlOutput(ctx, cp, nil, "get", "--raw=/readyz", "--request-timeout=5s"); err != nil {
			since = time.Time{}
			return false, err.Error()
		}
		if since.IsZero() {
			since = time.Now()
		}
		return time.Since(since) >= steadyFor, "answering for " + time.Since(since).Round(time.Second).String()
	}, func(last string) error {
		return fmt.Errorf("the API server did not answer /readyz steadily for %s within %s: %s", steadyFor, timeout, last)
	})
}

// installKube installs bins of kubeadm, kubelet and kubectl at the target
// version on h: from the staged bundle, or pinned from the repository.
func (c *Cluster) installKube(ctx context.Context, h *Host, bins ...string) error {
	s, err := c.kubePackagesScript(h, bins)
	if err != nil {
		return err
	}
	return s.apply(ctx, h)
}

// drain cordons and drains the Node (evictions respect PodDisruptionBudgets;
// DaemonSets' pods stay). On failure the error names the pods still on it.
func drain(ctx context.Context, cp *Host, name string, timeout time.Duration) error {
	err := kubectl(ctx, cp, nil, "drain", name, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout="+timeout.String())
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return err
	}
	left, lerr := podsLeft(ctx, cp, name)
	switch {
	case lerr != nil:
		return fmt.Errorf("drain %s: %w (and listing its pods: %v)", name, err, lerr)
	case len(left) > 0:
		return fmt.Errorf("drain %s did not finish within %s: still on it: %s (a PodDisruptionBudget, or a pod no controller manages; the Node stays cordoned, a re-run drains it again): %w",
			name, timeout, strings.Join(left, ", "), err)
	}
	return fmt.Errorf("drain %s: %w", name, err)
}

// podsLeft lists, as namespace/name, the pods on the Node that a drain
// evicts: neither a DaemonSet's nor a static (mirror) pod, and not
// finished.
func podsLeft(ctx context.Context, cp *Host, node string) ([]string, error) {
	out, err := retryKubectl(ctx, cp, "get", "pods", "--all-namespaces", "--field-selector", "spec.nodeName="+node, "-o", "json")
	if err != nil {
		return nil, err
	}
	var list corev1.PodList
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return nil, fmt.Errorf("kubectl get pods: %w", err)
	}
	var left []string
	for _, p := range list.Items {
		if _, mirror := p.Annotations[corev1.MirrorPodAnnotationKey]; mirror || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		if slices.ContainsFunc(p.OwnerReferences, func(o metav1.OwnerReference) bool { return o.Kind == "DaemonSet" }) {
			continue
		}
		left = append(left, nodes.EscapeHostText(p.Namespace+"/"+p.Name))
	}
	slices.Sort(left)
	return left, nil
}

// waitKubelet waits until the Node is Ready with its kubelet reporting
// version.
func waitKubelet(ctx context.Context, cp *Host, name, version string, timeout time.Duration) error {
	return poll(ctx, timeout, func() (bool, string) {
		states, err := nodeStates(ctx, cp)
		if err != nil {
			return false, err.Error()
		}
		s := states[name]
		return s.Ready && s.Kubelet == version, fmt.Sprintf("kubelet %s, %s", s.Kubelet, s)
	}, func(last string) error {
		return fmt.Errorf("node %s is not Ready at %s after %s: %s", name, version, timeout, last)
	})
}

// upgrading reports whether the host is a Node whose kubelet runs another
// version than the target: the upgrade phases, not the package phase, move
// it (installing the new kubelet before its turn would break the order the
// version-skew policy requires).
func (c *Cluster) upgrading(h *Host) bool {
	return h.Facts.KubeletConf && semver.IsValid(h.Facts.KubeletVersion) && h.Facts.KubeletVersion != c.Inventory.Cluster.KubernetesVersion
}

// kubePackagesScript renders the script that installs bins (all three
// where a role needs them, when empty) at the target version on h.
func (c *Cluster) kubePackagesScript(h *Host, bins []string) (script, error) {
	if c.bundleMode() {
		dir, err := c.kubeBinDir()
		if err != nil {
			return script{}, err
		}
		text, err := scripts.KubeBundle(scripts.KubeBundleParams{StagingDir: StagingDir, BinDir: dir,
			Kubectl: h.Spec.Role == inventory.RoleControlPlane, Binaries: bins})
		return script{"kube-bundle.sh", text}, err
	}
	repo, err := packageMirror("kubernetes", c.Inventory.Packages.Mirrors.Kubernetes)
	if err != nil {
		return script{}, err
	}
	text, err := scripts.KubeOnline(scripts.KubeOnlineParams{KubernetesVersion: c.Inventory.Cluster.KubernetesVersion,
		Repository: repo, Proxy: c.proxyFor(h), Packages: bins})
	return script{"kube-online.sh", text}, err
}
