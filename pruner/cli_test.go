package pruner_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bootctl/boot/addons"
	"github.com/bootctl/boot/cmd"
	"github.com/bootctl/boot/pruner"
)

// TestBootPruneCommand drives `boot prune` (the command the in-cluster
// CronJob runs) against the real registry: the dry run changes nothing, the
// max-deletions guard refuses the whole plan, the real run deletes exactly
// what the plan said, and the password shows up nowhere.
func TestBootPruneCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	creds, err := addons.NewRegistryCredentials("admin", "")
	if err != nil {
		t.Fatal(err)
	}
	reg := startRegistry(t, nil, fastAuth(t, creds))
	now := time.Now()
	for i, tag := range []string{"1.0.0", "1.1.0", "1.2.0", "PR-1", "PR-2", "latest"} {
		reg.mustPush(ctx, t, "app/api:"+tag, newImage(t, now.Add(time.Duration(i-10)*24*time.Hour), randomLayer(t)))
	}
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte("rules:\n  - keepSemver: {highest: 2}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("BOOT_REGISTRY_USERNAME", creds.Username())
	t.Setenv("BOOT_REGISTRY_PASSWORD", creds.Password())
	client, err := pruner.NewClient(reg.URL, creds.Username(), creds.Password())
	if err != nil {
		t.Fatal(err)
	}
	all := []string{"app/api:1.0.0", "app/api:1.1.0", "app/api:1.2.0", "app/api:PR-1", "app/api:PR-2", "app/api:latest"}

	boot := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := cmd.Execute(append([]string{"prune", "--registry", reg.URL, "--rules", rules}, args...), &stdout, &stderr)
		for _, out := range []string{stdout.String(), stderr.String()} {
			if strings.Contains(out, creds.Password()) {
				t.Fatalf("boot prune %v printed the registry password", args)
			}
		}
		return code, stdout.String(), stderr.String()
	}

	code, out, errOut := boot("--dry-run", "-o", "json")
	if code != 0 {
		t.Fatalf("dry run: exit %d: %s", code, errOut)
	}
	var answer struct {
		Plan   pruner.Plan   `json:"plan"`
		Result pruner.Result `json:"result"`
	}
	if err := json.Unmarshal([]byte(out), &answer); err != nil {
		t.Fatalf("dry run output is not JSON: %v\n%s", err, out)
	}
	if s := answer.Plan.Summary; s.Delete != 3 || s.Keep != 3 || !answer.Result.DryRun || answer.Result.Count(pruner.WouldDelete) != 3 {
		t.Errorf("dry run plan %+v, result %+v; want 3 deletions (1.0.0, PR-1, PR-2) and 3 kept (1.1.0, 1.2.0 and the protected latest)", s, answer.Result)
	}
	if got := listAll(ctx, t, client); !slices.Equal(got, all) {
		t.Fatalf("the dry run changed the registry: %v", got)
	}

	code, _, errOut = boot("--max-deletions", "2")
	if code != 1 || !strings.Contains(errOut, "nothing was deleted") {
		t.Errorf("over the guard: exit %d, stderr %q", code, errOut)
	}
	if got := listAll(ctx, t, client); !slices.Equal(got, all) {
		t.Fatalf("the guard let deletions through: %v", got)
	}

	code, out, errOut = boot()
	if code != 0 || !strings.Contains(out, "3 deleted") || !strings.Contains(out, "delete  PR-1") {
		t.Fatalf("prune: exit %d\n%s\n%s", code, out, errOut)
	}
	if got, want := listAll(ctx, t, client), []string{"app/api:1.1.0", "app/api:1.2.0", "app/api:latest"}; !slices.Equal(got, want) {
		t.Errorf("after prune %v, want %v", got, want)
	}

	t.Setenv("BOOT_REGISTRY_PASSWORD", "wrong-"+creds.Password())
	if code, _, errOut = boot("--dry-run"); code != 3 || !strings.Contains(errOut, "UNAUTHORIZED") {
		t.Errorf("wrong password: exit %d, stderr %q (want 3 and the registry's refusal)", code, errOut)
	}
}
