// Package cmd holds boot's command line: cobra commands, flags bound through
// viper (so every global flag can also come from a BOOT_* environment
// variable), logging, and the human and JSON renderings of a run.
package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// globals are the flags every command shares.
type globals struct {
	Inventory string
	DryRun    bool
	Yes       bool
	Output    string
	LogLevel  string
	LogFile   string
	Parallel  int
	Verbose   bool // up and teardown: stream the hosts' output

	stdout io.Writer
	stderr io.Writer
	v      *viper.Viper
}

// Execute runs boot with args and returns the process exit code. Every
// command's context ends on SIGINT or SIGTERM: the remote commands running
// then are stopped, no further step starts, and what the run opened is
// closed.
func Execute(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root, _ := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
	}
	return exitCode(err)
}

func newRootCmd(stdout, stderr io.Writer) (*cobra.Command, *globals) {
	g := &globals{stdout: stdout, stderr: stderr, v: viper.New()}
	root := &cobra.Command{
		Use:   "boot",
		Short: "Bootstrap a kubeadm cluster with a private Docker registry over SSH",
		Long: `boot turns plain Linux hosts into a kubeadm Kubernetes cluster (one control
plane, several workers, containerd, a CNI) and installs a production private
Docker registry on it (ingress-nginx, cert-manager, the CNCF distribution
registry with Redis caching, htpasswd auth, garbage collection and an image
pruner), all from one inventory file, over SSH.

Every global flag can also be set in the environment as BOOT_<FLAG>, for
example BOOT_INVENTORY=inventory.yaml or BOOT_OUTPUT=json.`,
		Example: `  # see what boot would do, without changing anything
  boot up -i inventory.yaml --dry-run

  # build the cluster and the registry, following progress as JSON lines
  boot up -i inventory.yaml -o json`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(c *cobra.Command, _ []string) error {
			return g.bind(c)
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return withExit(ExitInvalid, err)
	})

	f := root.PersistentFlags()
	f.StringVarP(&g.Inventory, "inventory", "i", "", "inventory file (env BOOT_INVENTORY)")
	f.BoolVar(&g.DryRun, "dry-run", false, "connect and inspect, print the plan, change nothing")
	f.BoolVarP(&g.Yes, "yes", "y", false, "answer yes to confirmations")
	f.StringVarP(&g.Output, "output", "o", "text", "output format: text, or json (one event per line)")
	f.StringVar(&g.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.StringVar(&g.LogFile, "log-file", "", "also write a debug log to this file (0600)")
	f.IntVar(&g.Parallel, "parallel", 10, "hosts worked on at once")

	root.AddCommand(
		newUpCmd(g),
		newAddonsCmd(g),
		newTeardownCmd(g),
		newTunnelCmd(g),
		newVerifyCmd(g),
		newStatusCmd(g),
		newCertsCmd(g),
		newBackupCmd(g),
		newRestoreCmd(g),
		newPruneCmd(g),
		newRegistryCmd(g),
		newBundleCmd(g),
		newLabCmd(g),
		newValidateCmd(g),
		newVersionCmd(g),
	)
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			c.Example = "  source <(boot completion bash)\n  boot completion zsh > \"${fpath[1]}/_boot\""
			for _, shell := range c.Commands() {
				shell.Example = fmt.Sprintf("  boot completion %s > boot-completion.%s", shell.Name(), shell.Name())
			}
		}
	}
	return root, g
}

// bind applies BOOT_* environment variables to the global flags the user did
// not set (command-specific flags are not read from the environment),
// then checks the values.
func (g *globals) bind(c *cobra.Command) error {
	g.v.SetEnvPrefix("BOOT")
	g.v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	g.v.AutomaticEnv()
	var errs []error
	c.Root().PersistentFlags().VisitAll(func(fl *pflag.Flag) {
		if fl.Changed || !g.v.IsSet(fl.Name) {
			return
		}
		if err := fl.Value.Set(g.v.GetString(fl.Name)); err != nil {
			errs = append(errs, fmt.Errorf("environment BOOT_%s: %v", envName(fl.Name), err))
		}
	})
	if err := errors.Join(errs...); err != nil {
		return withExit(ExitInvalid, err)
	}
	switch g.Output {
	case "text", "json":
	default:
		return withExit(ExitInvalid, fmt.Errorf("--output %q: expected text or json", g.Output))
	}
	if _, err := parseLevel(g.LogLevel); err != nil {
		return withExit(ExitInvalid, err)
	}
	if g.Parallel < 1 {
		return withExit(ExitInvalid, fmt.Errorf("--parallel %d: expected at least 1", g.Parallel))
	}
	return nil
}

func envName(flag string) string {
	return strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// requireInventory returns the inventory path or a usage error.
func (g *globals) requireInventory() (string, error) {
	if g.Inventory == "" {
		return "", withExit(ExitInvalid, errors.New("no inventory: pass -i FILE or set BOOT_INVENTORY (see examples/inventory.yaml)"))
	}
	return g.Inventory, nil
}
