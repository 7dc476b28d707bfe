package inventory

import (
	"fmt"
	"maps"
	"regexp"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
)

// KubeletEvictionDefaults are the kubelet's own hard eviction thresholds, by
// signal. A kubelet configuration naming some signals drops the others'
// thresholds (before Kubernetes 1.33's mergeDefaultEvictionSettings), so
// boot writes every one of them.
var KubeletEvictionDefaults = map[string]string{
	"memory.available":   "100Mi",
	"nodefs.available":   "10%",
	"nodefs.inodesFree":  "5%",
	"imagefs.available":  "15%",
	"imagefs.inodesFree": "5%",
}

// fields pairs each EvictionHard field (its path under
// cluster.kubelet.evictionHard) with its kubelet signal.
func (e EvictionHard) fields() []struct{ field, signal, value string } {
	return []struct{ field, signal, value string }{
		{"memoryAvailable", "memory.available", e.MemoryAvailable},
		{"nodefsAvailable", "nodefs.available", e.NodefsAvailable},
		{"nodefsInodesFree", "nodefs.inodesFree", e.NodefsInodesFree},
		{"imagefsAvailable", "imagefs.available", e.ImagefsAvailable},
		{"imagefsInodesFree", "imagefs.inodesFree", e.ImagefsInodesFree},
	}
}

// Signals returns the thresholds to write in the kubelet's evictionHard,
// by signal: nil when no field is set (the kubelet's defaults apply), else
// every signal of KubeletEvictionDefaults, the fields set replacing their
// defaults.
func (e EvictionHard) Signals() map[string]string {
	var out map[string]string
	for _, f := range e.fields() {
		if f.value == "" {
			continue
		}
		if out == nil {
			out = maps.Clone(KubeletEvictionDefaults)
		}
		out[f.signal] = f.value
	}
	return out
}

// decimal is a plain decimal number (no sign, exponent, NaN or Inf).
var decimal = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)

// CheckEvictionThreshold checks one kubelet eviction threshold: a
// percentage above 0 and below 100, or a non-negative amount.
func CheckEvictionThreshold(v string) error {
	if p, ok := strings.CutSuffix(v, "%"); ok {
		f, err := strconv.ParseFloat(p, 64)
		if !decimal.MatchString(p) || err != nil || f <= 0 || f >= 100 {
			return fmt.Errorf("is not a percentage above 0%% and below 100%%")
		}
		return nil
	}
	q, err := resource.ParseQuantity(v)
	if err != nil {
		return fmt.Errorf("is neither a percentage nor an amount")
	}
	if q.Sign() < 0 {
		return fmt.Errorf("is negative")
	}
	return nil
}

// kubelet checks cluster.kubelet.
func (c *checker) kubelet() {
	for _, f := range c.inv.Cluster.Kubelet.EvictionHard.fields() {
		if f.value == "" {
			continue
		}
		if err := CheckEvictionThreshold(f.value); err != nil {
			c.add("cluster.kubelet.evictionHard."+f.field, quote(f.value)+" "+err.Error(),
				`a percentage of the resource ("10%") or an amount ("2Gi"; for inodes a count, "100k")`)
		}
	}
}
