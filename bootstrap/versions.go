package bootstrap

import (
	"fmt"

	"golang.org/x/mod/semver"
)

// versionFindings checks cluster.kubernetesVersion (target) against what
// the cluster's nodes run (their kubelet's version) and, in bundle mode,
// against the bundle's version (bundleVersion; "" online). Kubernetes
// moves one minor at a time and never back, and boot does not yet upgrade
// a running cluster: a node whose kubelet runs another version than target
// fails preflight (exit 4), each rule named, before anything changes. A
// new host (no kubelet.conf) gets target and is not checked.
func versionFindings(hosts []*Host, target, bundleVersion string) []finding {
	var out []finding
	if bundleVersion != "" && bundleVersion != target && len(hosts) > 0 {
		out = append(out, finding{hosts[0].Spec.Name, true, fmt.Sprintf(
			"cluster.kubernetesVersion is %s but the bundle carries Kubernetes %s: use a bundle built for %s (boot bundle build --kubernetes %s) or set cluster.kubernetesVersion to %s",
			target, bundleVersion, target, target, bundleVersion)})
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
			msg = fmt.Sprintf("upgrade refused: the node runs Kubernetes %s and cluster.kubernetesVersion is %s; boot does not upgrade a running cluster yet: keep cluster.kubernetesVersion at %s (installing %s's packages beside a %s control plane would break the version-skew policy)",
				running, target, running, target, running)
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
