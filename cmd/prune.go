package cmd

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/bootctl/boot/internal/boundedfile"
	"github.com/bootctl/boot/pruner"
)

// Where prune finds the registry credentials: never on the command line.
const (
	envRegistryUsername = "BOOT_REGISTRY_USERNAME"
	envRegistryPassword = "BOOT_REGISTRY_PASSWORD"
)

type pruneOptions struct {
	registry     string
	rules        string
	passwordFile string
	tokenURL     string
	maxDeletions int
}

func newPruneCmd(g *globals) *cobra.Command {
	o := &pruneOptions{}
	c := &cobra.Command{
		Use:   "prune",
		Short: "Delete registry tags that no rule keeps (plan first, then delete)",
		Long: `prune reads every repository of a registry, decides for each tag whether a
rule keeps it (keepLatest, keepSemver, keepDays; see README, "Pruning"),
prints the plan with the reason for every decision, and deletes the rest
through the registry API. It refuses the whole plan when it would delete more
than --max-deletions tags. Blobs are freed later by garbage collection.

Credentials come from the environment, never from flags:
BOOT_REGISTRY_USERNAME, and BOOT_REGISTRY_PASSWORD or --password-file.
Without a username the registry is read anonymously.

A registry with token auth sends clients to its public realm for a token
(https://<host>/token), which pods inside the cluster may neither resolve nor
trust; --token-url sends those requests to the token service's own address
instead, with the same credentials.`,
		Example: `  # see what would go, with the reasons
  BOOT_REGISTRY_USERNAME=admin BOOT_REGISTRY_PASSWORD=... \
    boot prune --registry https://registry.example.com --rules rules.yaml --dry-run

  # the in-cluster CronJob's command
  boot prune --registry http://docker-registry.docker-registry.svc:5000 \
    --rules /etc/boot/prune/rules.yaml --max-deletions 500 -o json

  # the same with token auth: tokens from the token service inside the cluster
  boot prune --registry http://docker-registry.docker-registry.svc:5000 \
    --token-url http://docker-registry-token.docker-registry.svc:5001/token \
    --rules /etc/boot/prune/rules.yaml -o json`,
		Args: usage(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			return runPrune(c, g, o)
		},
	}
	f := c.Flags()
	f.StringVar(&o.registry, "registry", "", "registry URL, http(s)://host[:port] (required)")
	f.StringVar(&o.rules, "rules", "", "rules file (YAML; required)")
	f.StringVar(&o.passwordFile, "password-file", "", "file holding the registry password (instead of "+envRegistryPassword+")")
	f.StringVar(&o.tokenURL, "token-url", "", "send the registry's token requests (its auth realm) to `URL` instead, e.g. the chart's token Service inside the cluster: http://<release>-token.<ns>.svc:5001/token")
	f.IntVar(&o.maxDeletions, "max-deletions", 500, "refuse the whole plan when it deletes more tags than this (0: no limit)")
	return c
}

func runPrune(c *cobra.Command, g *globals, o *pruneOptions) error {
	if o.registry == "" || o.rules == "" {
		return withExit(ExitInvalid, errors.New("--registry and --rules are required"))
	}
	if o.maxDeletions < 0 {
		return withExit(ExitInvalid, fmt.Errorf("--max-deletions %d: expected 0 (no limit) or more", o.maxDeletions))
	}
	rules, err := pruner.LoadRules(o.rules)
	if err != nil {
		return withExit(ExitInvalid, fmt.Errorf("--rules: %w", err))
	}
	user, password, err := registryCredentials(o.passwordFile)
	if err != nil {
		return withExit(ExitInvalid, err)
	}
	var tokenURL *url.URL
	if o.tokenURL != "" {
		if tokenURL, err = url.Parse(o.tokenURL); err != nil {
			// url.Error quotes the URL, which may hold a password.
			return withExit(ExitInvalid, fmt.Errorf("--token-url: %v", errors.Unwrap(err)))
		}
	}
	client, err := pruner.NewClient(o.registry, user, password, pruner.WithParallel(g.Parallel), pruner.WithTokenURL(tokenURL))
	if err != nil {
		return withExit(ExitInvalid, err)
	}
	ctx := c.Context()
	plan, err := pruner.NewPlan(ctx, client, rules, pruner.PlanOptions{Parallel: g.Parallel, Registry: client.String()})
	if err != nil {
		return withExit(ExitUnreachable, fmt.Errorf("reading %s: %w", client, err))
	}
	result, execErr := pruner.Execute(ctx, client, plan, pruner.ExecuteOptions{DryRun: g.DryRun, MaxDeletions: o.maxDeletions, Parallel: g.Parallel})
	if g.Output == "json" {
		b, err := json.Marshal(struct {
			Plan   *pruner.Plan   `json:"plan"`
			Result *pruner.Result `json:"result,omitempty"`
		}{plan, result})
		if err != nil {
			return err
		}
		fmt.Fprintf(g.stdout, "%s\n", b)
	} else {
		if err := plan.WriteText(g.stdout); err != nil {
			return err
		}
		if result != nil {
			fmt.Fprintln(g.stdout, summarise(result))
		}
	}
	return execErr
}

// summarise counts a prune's outcomes in one line.
func summarise(r *pruner.Result) string {
	if r.DryRun {
		return fmt.Sprintf("dry run: %d tag(s) would be deleted; nothing was changed", r.Count(pruner.WouldDelete))
	}
	var parts []string
	for _, s := range []pruner.Status{pruner.Deleted, pruner.DeletedManifest, pruner.Skipped, pruner.Failed} {
		if n := r.Count(s); n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s))
		}
	}
	if len(parts) == 0 {
		return "nothing to delete"
	}
	return strings.Join(parts, ", ")
}

// maxPasswordFile bounds the --password-file (a password is a line).
const maxPasswordFile = 64 << 10

// registryCredentials reads the username and password from the environment
// or the password file.
func registryCredentials(passwordFile string) (user, password string, err error) {
	user = os.Getenv(envRegistryUsername)
	password = os.Getenv(envRegistryPassword)
	if passwordFile != "" {
		b, err := boundedfile.Read(passwordFile, "--password-file", maxPasswordFile)
		if err != nil {
			return "", "", err
		}
		password = strings.TrimRight(string(b), "\r\n")
	}
	if user == "" && password != "" {
		return "", "", errors.New("a registry password is set but " + envRegistryUsername + " is not")
	}
	return user, password, nil
}
