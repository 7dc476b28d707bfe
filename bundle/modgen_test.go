package bundle

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func TestGenerateModuleGolden(t *testing.T) {
	up, err := os.ReadFile("testdata/upstream.go.mod")
	if err != nil {
		t.Fatal(err)
	}
	got, err := generateModule("boot.bundle/big", "example.com/big", "v1.2.0", up, "v0.2.0",
		map[string]string{"example.com/unserved": "v1.0.0"}, []string{"example.com/big/cmd/one", "example.com/big/cmd/two"})
	if err != nil {
		t.Fatal(err)
	}
	const golden = "testdata/generated.go.mod.golden"
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("generated go.mod differs from %s:\n--- got\n%s\n--- want\n%s", golden, got, want)
	}
}

func TestGenerateModuleLocalReplaceNeedsVersion(t *testing.T) {
	up, err := os.ReadFile("testdata/upstream.go.mod")
	if err != nil {
		t.Fatal(err)
	}
	_, err = generateModule("boot.bundle/big", "example.com/big", "v1.2.0", up, "", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "go.mod:14") || !strings.Contains(err.Error(), "example.com/big/staging/api") {
		t.Fatalf("want an error naming go.mod line 14 and the module, got %v", err)
	}
}

func TestGenerateModuleRaisesOldGoForTools(t *testing.T) {
	up := []byte("module example.com/old\n\ngo 1.14\n")
	got, err := generateModule("boot.bundle/old", "example.com/old", "v0.9.1", up, "", nil, []string{"example.com/old/cmd"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got), "\ngo 1.24\n") {
		t.Errorf("want go 1.24 for a module with tool directives, got:\n%s", got)
	}
}
