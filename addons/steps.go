package addons

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"k8s.io/client-go/kubernetes"

	"github.com/bootctl/boot/internal/run"
)

// Phase names the add-ons' steps in a run's events.
const Phase = "addons"

// Steps returns the add-ons' steps, in order: the charts, the ingress nodes'
// label, cert-manager, the Route53 credentials Secret (the DNS-01 solver's
// key pair, removed without DNS-01), the ClusterIssuer, the removal of the
// ingress controller not chosen (when boot installed it; another's is left
// alone with a warning), the chosen one, the registry's Secrets (the
// credentials, generated once and then always read back, never
// overwritten; the pull Secret for the maintenance jobs; the S3 keys when
// the inventory names them) and the registry. The first step loads the
// charts (Plan), so a chart that cannot be had fails before any add-on
// changes. Each step plans against the cluster (reached through Connect,
// once). In a dry run, after pending changes of a phase of After (a cluster
// not made yet), or without a kubeconfig, a step says what it will do after
// that ("after boot up: ...") instead.
func (in *Installer) Steps() ([]run.Step, error) {
	if in.Inventory == nil {
		return nil, errors.New("addons: no inventory")
	}
	ingress, ingressNamespace, err := IngressRelease(in.Inventory.Addons.Ingress.Controller)
	if err != nil {
		return nil, err
	}
	retired := Release{Name: TraefikRelease, Namespace: TraefikNamespace, Remove: true}
	if ingress == TraefikRelease {
		retired = Release{Name: IngressNginxRelease, Namespace: IngressNginxNamespace, Remove: true}
	}
	in.result, in.releases = Result{}, nil
	ns := in.Inventory.Registry.Namespace
	return []run.Step{
		// The charts first, so that one that cannot be had fails before
		// any add-on changes (boot up runs this step right after its
		// preflight, before any host changes).
		{Phase: Phase, Host: "charts", Done: "loaded", Plan: func(ctx context.Context, _ *run.State) ([]run.Change, error) {
			_, err := in.release(ctx, Release{Name: CertManagerRelease, Namespace: CertManagerNamespace})
			return nil, err
		}},
		in.labelStep(),
		in.releaseStep(Release{Name: CertManagerRelease, Namespace: CertManagerNamespace}),
		in.secretsStep("route53 credentials", usesDNS01(in.Inventory), func(ctx context.Context, _ kubernetes.Interface) ([]secretWrite, error) {
			return in.route53Secrets(ctx)
		}),
		in.releaseStep(Release{Name: IssuerRelease, Namespace: IssuerNamespace}),
		in.releaseStep(retired),
		in.releaseStep(Release{Name: ingress, Namespace: ingressNamespace}),
		in.secretsStep("registry secrets", true, func(ctx context.Context, cs kubernetes.Interface) ([]secretWrite, error) {
			creds, writes, err := in.registrySecrets(ctx, cs, ns)
			if err != nil {
				return nil, err
			}
			users, tokenWrites, err := in.registryTokenSecrets(ctx, cs, ns, creds)
			in.result.Credentials, in.result.CredentialsSecret, in.result.Users = creds, ns+"/"+RegistryCredentialsSecret, users
			return append(writes, tokenWrites...), err
		}),
		in.releaseStep(Release{Name: DefaultRegistryRelease, Namespace: ns}),
	}, nil
}

// release returns the release of Plan named like r, loading the charts on
// first use.
func (in *Installer) release(ctx context.Context, r Release) (Release, error) {
	if in.releases == nil {
		releases, err := in.Plan(ctx)
		if err != nil {
			return Release{}, err
		}
		in.releases = releases
	}
	for _, p := range in.releases {
		if p.Name == r.Name && p.Namespace == r.Namespace && p.Remove == r.Remove {
			return p, nil
		}
	}
	return Release{}, fmt.Errorf("addons: no release %s in the plan", r)
}

// waitsFor says what a step's plan waits for in a dry run: the pending
// changes of an earlier phase of After, or, without a kubeconfig, boot up;
// "" when it can plan now, as always in a real run.
func (in *Installer) waitsFor(s *run.State) string {
	if len(in.After) > 0 {
		if p := s.Pending(in.After...); p != "" {
			return p
		}
	}
	if _, err := os.Stat(in.Helm.Kubeconfig); s.DryRun() && errors.Is(err, os.ErrNotExist) {
		return "boot up"
	}
	return ""
}

// cluster reaches the cluster's API, opening the way (Connect) on first use.
func (in *Installer) cluster(ctx context.Context) (kubernetes.Interface, error) {
	if in.cs != nil {
		return in.cs, nil
	}
	if _, err := os.Stat(in.Helm.Kubeconfig); err != nil {
		return nil, fmt.Errorf("no kubeconfig for the cluster at %s (cluster.kubeconfig): run boot up first: %w", in.Helm.Kubeconfig, err)
	}
	if in.Connect != nil {
		if err := in.Connect(ctx); err != nil {
			return nil, err
		}
	}
	cs, err := in.clientset()
	if err != nil {
		return nil, err
	}
	in.cs = cs
	return cs, nil
}

// labelStep puts the ingress label on exactly the inventory's ingress hosts'
// nodes.
func (in *Installer) labelStep() run.Step {
	const host = "label ingress nodes"
	want := map[string]bool{}
	var names []string
	for _, h := range in.Inventory.IngressHosts() {
		want[h.Name] = true
		names = append(names, h.Name)
	}
	return run.Step{Phase: Phase, Host: host, Plan: func(ctx context.Context, s *run.State) ([]run.Change, error) {
		if p := in.waitsFor(s); p != "" {
			return []run.Change{{Host: host, Description: run.After(p, "label node(s) "+strings.Join(names, ", ")+" where needed")}}, nil
		}
		cs, err := in.cluster(ctx)
		if err != nil {
			return nil, err
		}
		return labelChanges(ctx, cs, host, want)
	}}
}

// labelChanges plans making IngressNodeLabel present on exactly the nodes in
// want: one change, or none.
func labelChanges(ctx context.Context, cs kubernetes.Interface, host string, want map[string]bool) ([]run.Change, error) {
	label, unlabel, err := ingressLabelChanges(ctx, cs, want)
	if err != nil || len(label)+len(unlabel) == 0 {
		return nil, err
	}
	var what []string
	if len(label) > 0 {
		what = append(what, "label node(s) "+strings.Join(label, ", "))
	}
	if len(unlabel) > 0 {
		what = append(what, "unlabel node(s) "+strings.Join(unlabel, ", "))
	}
	return []run.Change{{Host: host, Description: strings.Join(what, "; "), Apply: func(ctx context.Context) error {
		return setIngressLabels(ctx, cs, label, unlabel)
	}}}, nil
}

// secretsStep keeps the Secrets writes returns as they say. Deferred in a
// dry run, it plans writing them when writesSomething.
func (in *Installer) secretsStep(host string, writesSomething bool, writes func(context.Context, kubernetes.Interface) ([]secretWrite, error)) run.Step {
	return run.Step{Phase: Phase, Host: host, Plan: func(ctx context.Context, s *run.State) ([]run.Change, error) {
		if p := in.waitsFor(s); p != "" {
			if !writesSomething {
				return nil, nil
			}
			return []run.Change{{Host: host, Description: run.After(p, "create or update "+host)}}, nil
		}
		cs, err := in.cluster(ctx)
		if err != nil {
			return nil, err
		}
		ws, err := writes(ctx, cs)
		if err != nil {
			return nil, err
		}
		return secretChanges(ctx, cs, host, ws)
	}}
}

// secretChanges plans the writes among ws that change something: one
// change, or none.
func secretChanges(ctx context.Context, cs kubernetes.Interface, host string, ws []secretWrite) ([]run.Change, error) {
	todo, err := planSecrets(ctx, cs, ws...)
	if err != nil || len(todo) == 0 {
		return nil, err
	}
	return []run.Change{{Host: host, Description: describeSecrets(todo), Apply: func(ctx context.Context) error {
		return writeSecrets(ctx, cs, todo)
	}}}, nil
}

// releaseStep installs, upgrades or removes r as its plan says; one that
// is not boot's, to be removed, is left alone with a warning.
func (in *Installer) releaseStep(named Release) run.Step {
	host := named.String()
	if named.Remove {
		host = "remove " + host
	}
	return run.Step{Phase: Phase, Host: host, Plan: func(ctx context.Context, s *run.State) ([]run.Change, error) {
		r, err := in.release(ctx, named)
		if err != nil {
			return nil, err
		}
		if p := in.waitsFor(s); p != "" {
			what := "remove " + r.String() + " if boot installed it"
			if !r.Remove {
				what = "install or upgrade " + r.chartVersion()
			}
			return []run.Change{{Host: host, Description: run.After(p, what)}}, nil
		}
		if _, err := in.cluster(ctx); err != nil {
			return nil, err
		}
		rev, todo, err := r.Plan(ctx, in.Helm)
		if r.Remove && errors.Is(err, errNotBoots) {
			s.Report(run.Event{Phase: Phase, Host: host, Status: run.Warning, Message: "release " + r.String() + " is not boot's: left alone"})
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if todo == "" {
			in.applied(r, rev, false)
			return nil, nil
		}
		if todo == RecordInputs {
			return []run.Change{{Host: host, Description: todo, Apply: func(context.Context) error {
				rev, err := r.RecordDigest(in.Helm)
				if err == nil {
					in.applied(r, rev, true)
				}
				return err
			}}}, nil
		}
		return []run.Change{{Host: host, Description: todo, Apply: func(ctx context.Context) error {
			return in.applyRelease(ctx, s, r, host)
		}}}, nil
	}}
}

// applyRelease applies r, reporting what its readiness wait finds not ready;
// a failed wait names the release's workloads that are not ready.
func (in *Installer) applyRelease(ctx context.Context, s *run.State, r Release, host string) error {
	w := &waitWatcher{next: in.Helm.Log, seen: func(msg string) {
		s.Report(run.Event{Phase: Phase, Host: host, Status: run.Warning, Message: waitingPrefix + msg})
	}}
	h := in.Helm
	h.Log = w.log
	rev, err := r.Apply(ctx, h)
	if err != nil && r.Wait {
		if pending := notReadyObjects(ctx, in.cs, in.Helm, r); len(pending) > 0 {
			err = fmt.Errorf("%w; not ready: %s", err, strings.Join(pending, ", "))
		} else if last := w.lastNotReady(); last != "" {
			err = fmt.Errorf("%w; last seen: %s", err, last)
		}
	}
	if err == nil {
		in.applied(r, rev, true)
	}
	return err
}

// waitingPrefix starts the warning a release's readiness wait reports.
const waitingPrefix = "waiting: "

// applied records a release that is in place for Install's Result.
func (in *Installer) applied(r Release, revision int, changed bool) {
	if r.Remove {
		return
	}
	in.result.Releases = append(in.result.Releases, AppliedRelease{
		Release: r.String(), Chart: r.Chart.Metadata.Name + "-" + r.Chart.Metadata.Version, Revision: revision, Changed: changed,
	})
}

// Result is what the steps of Steps found and did, once they have run.
func (in *Installer) Result() *Result {
	res := in.result
	return &res
}
