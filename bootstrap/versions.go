package bootstrap

import (
	"fmt"

	"github.com/bootctl/boot/bundle"

	"golang.org/x/mod/semver"
)

// versionFindings checks cluster.kubernetesVersion (target) against what
// the cluster's nodes run (their kubelet's version) and, in bundle mode,
// against the versions the bundle carries (bundle nil online). Kubernetes
// moves one minor at a time and never back: a node whose kubelet runs a
// newer version than target, or one more than a minor older, fails
// preflight (exit 4), each rule named, before anything changes. A node one
// minor (or some patches) older is upgraded in place by the upgrade phases;
// the version-skew policy lets such kubelets run beside the upgraded control
// plane meanwhile. A new host (no kubelet.conf) gets target and is not
// checked.
func versionFindings(hosts []*Host, target string, b *bundle.Manifest) []finding {
	var out []finding
	if b != nil && len(hosts) > 0 {
		if _, err := b.KubernetesBinDir(target); err != nil {
			out = append(out, finding{hosts[0].Spec.Name, true, fmt.Sprintf(
				"cluster.kubernetesVersion is %s but the %v: use a bundle built for %s (boot bundle build --kubernetes %s) or set cluster.kubernetesVersion to %s",
				target, err, target, target, b.KubernetesVersion)})
		}
	}
	for _, h := range hosts {
		running := h.Facts.KubeletVersion
		if !h.Facts.KubeletConf || !semver.IsValid(running) || running == target {
			continue
		}
		major, minor := majorMinor(running)
		_, targetMinor := majorMinor(target)
		var msg string
		switch {
		case semver.Compare(target, running) < 0:
			msg = fmt.Sprintf("downgrade refused: the node runs Kubernetes %s and cluster.kubernetesVersion is %s; Kubernetes cannot be downgraded (restore a backup taken before the upgrade instead)", running, target)
		case targetMinor > minor+1:
			msg = fmt.Sprintf("skipped minor refused: the node runs Kubernetes %s and cluster.kubernetesVersion is %s; Kubernetes is upgraded one minor at a time (v%d.%d first)", running, target, major, minor+1)
		default:
			continue
		}
		out = append(out, finding{h.Spec.Name, true, msg})
	}
	return out
}

// majorMinor returns the major and minor numbers of a valid
// vMAJOR.MINOR.PATCH version.
func majorMinor(v string) (major, minor int) {
	fmt.Sscanf(semver.MajorMinor(v), "v%d.%d", &major, &minor)
	return major, minor
}
