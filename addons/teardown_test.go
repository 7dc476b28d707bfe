package addons

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/bootctl/boot/internal/run"
)

// TestTeardownStepsWithoutAnAPIServer checks that when the cluster's API
// server does not answer (a closed port), the add-ons' part of a teardown
// warns once and lets the run go on to the hosts, in a dry run as in a real
// one.
func TestTeardownStepsWithoutAnAPIServer(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "lab.kubeconfig")
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["lab"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:1", InsecureSkipTLSVerify: true}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: "t"}
	cfg.Contexts["lab"] = &clientcmdapi.Context{Cluster: "lab", AuthInfo: "admin"}
	cfg.CurrentContext = "lab"
	if err := clientcmd.WriteToFile(*cfg, kubeconfig); err != nil {
		t.Fatal(err)
	}
	for _, dry := range []bool{true, false} {
		in := &Installer{Helm: Helm{Kubeconfig: kubeconfig}, Inventory: testInventory(t, ""), Timeout: time.Second}
		ev := &events{}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := run.Do(ctx, append(in.TeardownSteps(), run.Step{Phase: "reset", Plan: func(context.Context, *run.State) ([]run.Change, error) {
			ev.add(run.Event{Phase: "reset", Status: run.OK, Message: "reached"})
			return nil, nil
		}}), run.Options{DryRun: dry, Report: ev.add})
		cancel()
		if err != nil {
			t.Fatalf("dry %v: %v", dry, err)
		}
		var warnings []string
		reached := false
		for _, e := range ev.all {
			switch {
			case e.Status == run.Warning:
				warnings = append(warnings, e.Message)
			case e.Status == run.Failed || e.Status == run.Changed || e.Status == run.Planned:
				t.Errorf("dry %v: unexpected event %+v", dry, e)
			case e.Phase == "reset" && e.Message == "reached":
				reached = true
			}
		}
		if len(warnings) != 1 || !strings.HasPrefix(warnings[0], "releases not removed through the API (the reset removes them with the cluster's state): ") {
			t.Errorf("dry %v: warnings %q, want one saying the releases were not removed through the API", dry, warnings)
		}
		if !reached {
			t.Errorf("dry %v: the run did not go on to the hosts", dry)
		}
	}
}
