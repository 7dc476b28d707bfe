package bundle

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// checkGolden compares got with the file golden (rewritten with -update).
func checkGolden(t *testing.T, golden string, got []byte) {
	t.Helper()
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

func TestGenerateModuleGolden(t *testing.T) {
	up, err := os.ReadFile("testdata/upstream.go.mod")
	if err != nil {
		t.Fatal(err)
	}
	got, err := generateModule("boot.bundle/big", "example.com/big", "v1.2.0", up, "v0.2.0",
		map[string]string{"example.com/unserved": "v1.0.0"}, nil, []string{"example.com/big/cmd/one", "example.com/big/cmd/two"})
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "testdata/generated.go.mod.golden", got)
}

// Sources are required at the zero pseudo-version and replaced by their
// folders; upstream's replace of a source's path into its repository
// (which would need a published version) gives way to the source.
func TestGenerateModuleSources(t *testing.T) {
	up, err := os.ReadFile("testdata/upstream.go.mod")
	if err != nil {
		t.Fatal(err)
	}
	sources := []localModule{
		{path: "example.com/big/staging/api", dir: "src/api"},
		{path: "example.com/big/cmd-binary", dir: "src/cmd"},
	}
	got, err := generateModule("boot.bundle/big", "example.com/big", "v1.2.0", up, "", nil, sources,
		[]string{"example.com/big/cmd-binary", "example.com/big/cmd/two"})
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "testdata/generated-sources.go.mod.golden", got)

	for _, c := range []struct {
		sources []localModule
		want    string
	}{
		{[]localModule{{path: "example.com/a", dir: "../a"}}, `example.com/a: folder "../a"`},
		{[]localModule{{path: "example.com/a", dir: "/a"}}, `example.com/a: folder "/a"`},
		{[]localModule{{path: "example.com/a", dir: "."}}, `example.com/a: folder "."`},
		{[]localModule{{path: "example.com/a", dir: "src/a"}, {path: "example.com/b", dir: "src/a"}}, `example.com/b: folder "src/a"`},
		{[]localModule{{path: "example.com/a", dir: "src/a"}, {path: "example.com/a", dir: "src/b"}}, "example.com/a given twice"},
	} {
		if _, err := generateModule("boot.bundle/big", "example.com/big", "v1.2.0", up, "v0.2.0", nil, c.sources, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("sources %+v: want an error with %q, got %v", c.sources, c.want, err)
		}
	}
}

func TestGenerateModuleLocalReplaceNeedsVersion(t *testing.T) {
	up, err := os.ReadFile("testdata/upstream.go.mod")
	if err != nil {
		t.Fatal(err)
	}
	_, err = generateModule("boot.bundle/big", "example.com/big", "v1.2.0", up, "", nil, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "go.mod:14") || !strings.Contains(err.Error(), "example.com/big/staging/api") {
		t.Fatalf("want an error naming go.mod line 14 and the module, got %v", err)
	}
}

func TestGenerateModuleRaisesOldGoForTools(t *testing.T) {
	up := []byte("module example.com/old\n\ngo 1.14\n")
	got, err := generateModule("boot.bundle/old", "example.com/old", "v0.9.1", up, "", nil, nil, []string{"example.com/old/cmd"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got), "\ngo 1.24\n") {
		t.Errorf("want go 1.24 for a module with tool directives, got:\n%s", got)
	}
}
