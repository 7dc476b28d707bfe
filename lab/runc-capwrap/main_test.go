package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/bootctl/boot/lab/internal/capset"
)

// withoutSysResource is the bounding set of a machine that lacks only CAP_SYS_RESOURCE (24).
const withoutSysResource uint64 = 0x1fffeffffff

const config = `{
  "ociVersion": "1.2.0",
  "process": {
    "args": ["/pause"],
    "cwd": "/",
    "user": {"uid": 0, "gid": 0},
    "capabilities": {
      "bounding": ["CAP_CHOWN", "CAP_SYS_RESOURCE", "CAP_SYS_ADMIN"],
      "effective": ["CAP_SYS_RESOURCE", "CAP_NET_ADMIN"],
      "permitted": ["CAP_SYS_RESOURCE"],
      "inheritable": [],
      "ambient": ["CAP_FUTURE_THING"]
    },
    "oomScoreAdj": -998
  },
  "root": {"path": "rootfs", "readonly": true},
  "linux": {"resources": {"memory": {"limit": 123456789012345}}}
}`

func caps(t *testing.T, data []byte, wrapped bool) map[string][]string {
	t.Helper()
	var v struct {
		Process struct {
			Capabilities map[string][]string `json:"capabilities"`
		} `json:"process"`
		Capabilities map[string][]string `json:"capabilities"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if wrapped {
		return v.Process.Capabilities
	}
	return v.Capabilities
}

func TestFilterJSONDropsOnlyMissingCapabilities(t *testing.T) {
	out, changed, err := filterJSON([]byte(config), limits{bounding: withoutSysResource}, true)
	if err != nil || !changed {
		t.Fatalf("changed=%v err=%v", changed, err)
	}
	want := map[string][]string{
		"bounding":    {"CAP_CHOWN", "CAP_SYS_ADMIN"},
		"effective":   {"CAP_NET_ADMIN"},
		"permitted":   {},
		"inheritable": {},
		"ambient":     {"CAP_FUTURE_THING"}, // unknown names are runc's business
	}
	if got := caps(t, out, true); !reflect.DeepEqual(got, want) {
		t.Errorf("capabilities = %v, want %v", got, want)
	}
	// Everything else keeps its exact value, large numbers included.
	var before, after map[string]any
	dec := func(b []byte, v *map[string]any) {
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		if err := d.Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	dec([]byte(config), &before)
	dec(out, &after)
	delete(before["process"].(map[string]any), "capabilities")
	delete(after["process"].(map[string]any), "capabilities")
	if !reflect.DeepEqual(before, after) {
		t.Errorf("other fields changed:\nbefore %v\nafter  %v", before, after)
	}
}

func TestFilterJSONFullBoundingSetChangesNothing(t *testing.T) {
	out, changed, err := filterJSON([]byte(config), limits{bounding: 1<<41 - 1}, true)
	if err != nil || changed || string(out) != config {
		t.Fatalf("changed=%v err=%v", changed, err)
	}
}

func TestFilterJSONProcessFile(t *testing.T) {
	process := `{"args":["sh"],"capabilities":{"bounding":["CAP_SYS_RESOURCE","CAP_KILL"],"effective":["CAP_KILL"]}}`
	out, changed, err := filterJSON([]byte(process), limits{bounding: withoutSysResource}, false)
	if err != nil || !changed {
		t.Fatalf("changed=%v err=%v", changed, err)
	}
	if got := caps(t, out, false)["bounding"]; !reflect.DeepEqual(got, []string{"CAP_KILL"}) {
		t.Errorf("bounding = %v", got)
	}
}

func TestFilterJSONErrorsNameTheField(t *testing.T) {
	_, _, err := filterJSON([]byte(`{"process":{"capabilities":{"bounding":"CAP_KILL"}}}`), limits{bounding: withoutSysResource}, true)
	if err == nil || !strings.Contains(err.Error(), "process.capabilities.bounding") {
		t.Fatalf("err = %v", err)
	}
	if _, _, err := filterJSON([]byte(`{`), limits{}, true); err == nil {
		t.Fatal("no error for broken JSON")
	}
}

func TestFilterForCommandFindsTheFiles(t *testing.T) {
	dir := t.TempDir()
	bundle := filepath.Join(dir, "bundle")
	if err := os.Mkdir(bundle, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(bundle, "config.json")
	process := filepath.Join(dir, "process.json")
	reset := func() {
		if err := os.WriteFile(cfg, []byte(config), 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(process, []byte(`{"capabilities":{"bounding":["CAP_SYS_RESOURCE"]}}`), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	filtered := func(path string, wrapped bool) bool {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, list := range caps(t, data, wrapped) {
			for _, c := range list {
				if c == "CAP_SYS_RESOURCE" {
					return false
				}
			}
		}
		return true
	}
	// How containerd's shim and Docker call runc.
	for _, tc := range []struct {
		args      []string
		cfg, proc bool
	}{
		{[]string{"--root", "/run/containerd/runc/k8s.io", "--log", "/x/log.json", "--log-format", "json", "--systemd-cgroup", "create", "--bundle", bundle, "--pid-file", "/x/pid", "id1"}, true, false},
		{[]string{"--root=/run/runc", "run", "-b=" + bundle, "id2"}, true, false},
		{[]string{"--debug", "create", "-b", bundle, "id3"}, true, false},
		{[]string{"--root", "/r", "exec", "--process", process, "--detach", "--pid-file", "/x", "id4"}, false, true},
		{[]string{"exec", "-p=" + process, "id5"}, false, true},
		{[]string{"--root", "/r", "start", "id6"}, false, false},
		{[]string{"--root", "/r", "delete", "--force", "id7"}, false, false},
		{[]string{"--version"}, false, false},
	} {
		reset()
		if err := filterForCommand(tc.args, limits{bounding: withoutSysResource}); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if filtered(cfg, true) != tc.cfg || filtered(process, false) != tc.proc {
			t.Errorf("%v: config filtered %v (want %v), process filtered %v (want %v)",
				tc.args, filtered(cfg, true), tc.cfg, filtered(process, false), tc.proc)
		}
	}
	info, err := os.Stat(cfg)
	if err != nil || info.Mode().Perm() != 0o640 {
		t.Errorf("config.json mode %v, %v; want it kept (0640)", info.Mode(), err)
	}
}

func TestFilterForCommandCreateInCurrentFolder(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	if err := filterForCommand([]string{"create", "id"}, limits{bounding: withoutSysResource}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	if got := caps(t, data, true)["permitted"]; len(got) != 0 {
		t.Errorf("permitted = %v", got)
	}
}

func TestFindRuncSkipsItself(t *testing.T) {
	dir := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// A "runc" that is this very program comes first on PATH: it must be skipped.
	if err := os.Link(self, filepath.Join(dir, "runc")); err != nil {
		t.Skipf("cannot hard-link the test binary: %v", err)
	}
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "runc"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("RUNC_CAPWRAP_RUNC", "")
	t.Setenv("PATH", dir+string(os.PathListSeparator)+other)
	got, err := findRunc()
	if err != nil || got != filepath.Join(other, "runc") {
		t.Fatalf("findRunc = %q, %v; want %s", got, err, filepath.Join(other, "runc"))
	}
	t.Setenv("RUNC_CAPWRAP_RUNC", "/opt/runc")
	if got, _ := findRunc(); got != "/opt/runc" {
		t.Errorf("with RUNC_CAPWRAP_RUNC: %q", got)
	}
}

func TestCapsetNumbers(t *testing.T) {
	if capset.Number("CAP_SYS_RESOURCE") != 24 || capset.Number("sys_resource") != 24 || capset.Number("CAP_NOPE") != -1 {
		t.Error("capability numbers wrong")
	}
	if !allowed("CAP_KILL", withoutSysResource) || allowed("CAP_SYS_RESOURCE", withoutSysResource) || !allowed("CAP_NOPE", 0) {
		t.Error("allowed wrong")
	}
}

func TestFilterJSONRaisesOOMScoreAdjToTheFloor(t *testing.T) {
	floor := 0
	out, changed, err := filterJSON([]byte(config), limits{bounding: 1<<41 - 1, oomFloor: &floor}, true)
	if err != nil || !changed {
		t.Fatalf("changed %v, err %v; want a change", changed, err)
	}
	var got struct {
		Process struct {
			OOMScoreAdj int `json:"oomScoreAdj"`
		} `json:"process"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if got.Process.OOMScoreAdj != 0 {
		t.Errorf("oomScoreAdj %d, want the floor 0", got.Process.OOMScoreAdj)
	}
	// At or above the floor, and without a floor, nothing changes.
	low := -999
	for _, l := range []limits{{bounding: 1<<41 - 1, oomFloor: &low}, {bounding: 1<<41 - 1}} {
		if _, changed, err := filterJSON([]byte(config), l, true); err != nil || changed {
			t.Errorf("floor %v: changed %v, err %v; want no change", l.oomFloor, changed, err)
		}
	}
}
