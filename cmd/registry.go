package cmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/bootctl/boot/addons"
	"github.com/bootctl/boot/internal/run"
	"github.com/bootctl/boot/pruner"
)

// envRedisPassword holds the registry cache's Redis password for
// `boot registry gc`: never a flag, never printed.
const envRedisPassword = "BOOT_REDIS_PASSWORD"

// gcRestoreTimeout bounds the cache flush and the switch back to read-write
// once read-only was requested, even after --timeout or SIGTERM. The chart's
// job deadline (2400 s) leaves room for --timeout (30m) plus both.
const gcRestoreTimeout = 4 * time.Minute

func newRegistryCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "registry",
		Short: "Maintain the registry add-on inside its cluster",
		Example: `  # what the registry chart's gc CronJob runs
  boot registry gc --namespace docker-registry --deployment docker-registry`,
		Args: usage(cobra.NoArgs),
	}
	c.AddCommand(newRegistryGCCmd(g))
	c.AddCommand(newRegistryTokenServerCmd(g))
	return c
}

type registryGCOptions struct {
	namespace  string
	deployment string
	container  string
	config     string
	redisAddr  string
	redisDB    int
	timeout    time.Duration
	kubeconfig string
}

func newRegistryGCCmd(g *globals) *cobra.Command {
	o := &registryGCOptions{}
	c := &cobra.Command{
		Use:   "gc",
		Short: "Garbage-collect the registry safely: read-only, sweep, flush the Redis cache, read-write",
		Long: `gc runs the registry's garbage collection in the only safe order, inside the
registry pod of the registry chart's Deployment (its storage may be a volume
only that pod can mount):

  1. switch the Deployment read-only (env REGISTRY_STORAGE_MAINTENANCE_READONLY,
     remembering the old value in annotation registry.bootctl.io/gc-restore)
     and wait for the rollout;
  2. exec "registry garbage-collect --delete-untagged <config>" in a Running,
     Ready, read-only pod, streaming its output;
  3. with --redis, delete the blob-descriptor keys blobs::* and repository::*
     (otherwise Redis claims swept blobs exist and pushes break);
  4. restore the remembered value, remove the annotation, wait for the rollout.

If garbage-collect fails after it may have deleted blobs, or the cache flush
fails, the registry is left read-only on purpose (pulls still work) and gc
exits non-zero; the next run finds the annotation and finishes the job. Tag
deletion is "boot prune"'s job, run before this.

The Redis password comes from BOOT_REDIS_PASSWORD, never from a flag. The
cluster is the one the pod runs in (in-cluster service account) unless
--kubeconfig is given; outside a cluster --kubeconfig or $KUBECONFIG.
The chart's README ("Garbage collection") documents the contract.`,
		Example: `  # the registry chart's gc CronJob (service account <fullname>-gc)
  BOOT_REDIS_PASSWORD=... boot registry gc --namespace docker-registry \
    --deployment docker-registry --container registry \
    --config /etc/distribution/config.yml \
    --redis docker-registry-redis:6379 --redis-db 0 --timeout 30m

  # by hand from a workstation, registry without a Redis cache
  boot registry gc --kubeconfig seed.kubeconfig \
    --namespace docker-registry --deployment docker-registry`,
		Args: usage(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			return runRegistryGC(c.Context(), c, g, o)
		},
	}
	f := c.Flags()
	f.StringVar(&o.namespace, "namespace", "", "namespace of the registry release (required)")
	f.StringVar(&o.deployment, "deployment", "", "the registry Deployment, the release's full name (required)")
	f.StringVar(&o.container, "container", "registry", "the registry container of the Deployment")
	f.StringVar(&o.config, "config", "/etc/distribution/config.yml", "the registry configuration file inside the container")
	f.StringVar(&o.redisAddr, "redis", "", "the registry cache's Redis, host:port (omit when the registry has no cache)")
	f.IntVar(&o.redisDB, "redis-db", 0, "the Redis database the registry uses (with --redis)")
	f.DurationVar(&o.timeout, "timeout", 30*time.Minute, "bound on the switch to read-only and the garbage collection (the flush and the switch back get 4m more)")
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig to use instead of the in-cluster service account (default $KUBECONFIG outside a cluster)")
	return c
}

func (o *registryGCOptions) validate(c *cobra.Command, g *globals) error {
	var missing []string
	for _, name := range []string{"namespace", "deployment", "container", "config"} {
		if c.Flags().Lookup(name).Value.String() == "" {
			missing = append(missing, "--"+name)
		}
	}
	switch {
	case len(missing) > 0:
		return fmt.Errorf("%s required", strings.Join(missing, ", "))
	case g.DryRun:
		return errors.New("--dry-run: boot registry gc has no dry run (garbage-collect decides what to sweep only while the registry is read-only)")
	case o.timeout <= 0:
		return fmt.Errorf("--timeout %s: expected a positive duration such as 30m", o.timeout)
	case o.redisDB < 0:
		return fmt.Errorf("--redis-db %d: expected 0 or more", o.redisDB)
	case o.redisAddr == "" && c.Flags().Changed("redis-db"):
		return errors.New("--redis-db needs --redis host:port")
	case o.redisAddr == "" && os.Getenv(envRedisPassword) != "":
		return errors.New(envRedisPassword + " is set but --redis is not: pass the cache's --redis host:port")
	}
	return nil
}

// restConfig picks the cluster: --kubeconfig, else the in-cluster service
// account when KUBERNETES_SERVICE_HOST is set, else $KUBECONFIG.
func (o *registryGCOptions) restConfig() (*rest.Config, error) {
	if o.kubeconfig == "" && os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in-cluster config: %w", err)
		}
		return cfg, nil
	}
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: o.kubeconfig}
	if o.kubeconfig == "" {
		rules.Precedence = filepath.SplitList(os.Getenv("KUBECONFIG"))
		if len(rules.Precedence) == 0 {
			return nil, withExit(ExitInvalid, errors.New("no cluster: not running in a pod (KUBERNETES_SERVICE_HOST unset), and neither --kubeconfig nor $KUBECONFIG is set"))
		}
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	if err != nil {
		return nil, withExit(ExitInvalid, fmt.Errorf("kubeconfig: %w", err))
	}
	return cfg, nil
}

func runRegistryGC(ctx context.Context, c *cobra.Command, g *globals, o *registryGCOptions) error {
	if err := o.validate(c, g); err != nil {
		return withExit(ExitInvalid, err)
	}
	cfg, err := o.restConfig()
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return withExit(ExitInvalid, err)
	}
	execer, err := addons.NewAPIExecer(cfg)
	if err != nil {
		return withExit(ExitInvalid, err)
	}
	out := newPrinter(g.stdout, g.Output)
	// garbage-collect's own output goes to the job log as it comes; with
	// -o json stdout stays JSON lines only.
	gcOut := g.stdout
	if g.Output == "json" {
		gcOut = g.stderr
	}
	m := &addons.RegistryMaintenance{
		Client: client, Exec: execer,
		Namespace: o.namespace, Deployment: o.deployment, Container: o.container, Config: o.config,
		Stdout: gcOut, Stderr: g.stderr,
		Report: out.Emit,
	}
	opts := pruner.GCOptions{RestoreTimeout: gcRestoreTimeout}
	if o.redisAddr != "" {
		rdb := redis.NewClient(&redis.Options{Addr: o.redisAddr, Password: os.Getenv(envRedisPassword), DB: o.redisDB})
		defer rdb.Close()
		// Reach the cache before anything changes: a flush that fails after
		// the sweep leaves the registry read-only.
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := rdb.Ping(pctx).Err()
		cancel()
		if err != nil {
			return fmt.Errorf("redis %s db %d (password from %s): %w; nothing was changed", o.redisAddr, o.redisDB, envRedisPassword, err)
		}
		opts.Redis = rdb
	}
	start := time.Now()
	gctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	rep, err := pruner.CollectGarbage(gctx, m, opts)
	status := run.OK
	if err != nil {
		status = run.Failed
	}
	out.Emit(run.Event{Phase: addons.RegistryGCPhase, Status: status, Message: gcSummary(rep, o.redisAddr != ""), Duration: time.Since(start)})
	return err
}

// gcSummary says in one line what a garbage collection did.
func gcSummary(r *pruner.GCReport, cache bool) string {
	var parts []string
	if r.Collected {
		parts = append(parts, "garbage collected")
	} else {
		parts = append(parts, "garbage collection not completed")
	}
	switch {
	case r.CacheFlushed:
		parts = append(parts, fmt.Sprintf("%d cache key(s) deleted", r.FlushedKeys))
	case cache:
		parts = append(parts, "cache not flushed")
	}
	switch {
	case r.LeftReadOnly:
		parts = append(parts, "registry LEFT READ-ONLY")
	case r.ReadWriteBack:
		parts = append(parts, "registry switched back")
	}
	return strings.Join(parts, ", ")
}
