package inventory

import (
	"maps"
	"testing"
)

func TestEvictionSignals(t *testing.T) {
	if got := (EvictionHard{}).Signals(); got != nil {
		t.Errorf("no field set: %v, want nil (the kubelet's defaults)", got)
	}
	got := EvictionHard{ImagefsAvailable: "2Gi", MemoryAvailable: "5%"}.Signals()
	want := map[string]string{
		"memory.available":   "5%",
		"nodefs.available":   "10%",
		"nodefs.inodesFree":  "5%",
		"imagefs.available":  "2Gi",
		"imagefs.inodesFree": "5%",
	}
	if !maps.Equal(got, want) {
		t.Errorf("Signals() = %v, want %v", got, want)
	}
	if KubeletEvictionDefaults["imagefs.available"] != "15%" {
		t.Errorf("Signals changed the defaults: %v", KubeletEvictionDefaults)
	}
	for _, ok := range []string{"10%", "0.5%", "2Gi", "100k", "0"} {
		if err := CheckEvictionThreshold(ok); err != nil {
			t.Errorf("CheckEvictionThreshold(%q): %v", ok, err)
		}
	}
}
