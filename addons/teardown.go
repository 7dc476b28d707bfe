package addons

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"

	"k8s.io/client-go/kubernetes"

	"github.com/bootctl/boot/internal/run"
)

// TeardownSteps returns the steps that remove the add-ons, in order: boot's
// releases in the reverse of Steps' order, both ingress controllers'
// included (an ingress controller's release that boot does not own is left
// alone with a warning), then any other release labelled as boot's, the
// Secrets boot made beside the registry and for the DNS-01 solver, and the
// ingress node label. Namespaces and cert-manager's CRDs (which its chart
// keeps) stay. They reach the cluster through Connect when it has a
// kubeconfig; without one there is nothing boot installed, and a cluster
// that does not answer is reported with a warning once (its reset removes
// the releases with its state).
func (in *Installer) TeardownSteps() []run.Step {
	inv := in.Inventory
	known := map[string]bool{}
	var steps []run.Step
	for _, r := range []struct {
		namespace, name string
		controller      bool
	}{
		{inv.Registry.Namespace, DefaultRegistryRelease, false},
		{IngressNginxNamespace, IngressNginxRelease, true},
		{TraefikNamespace, TraefikRelease, true},
		{IssuerNamespace, IssuerRelease, false},
		{CertManagerNamespace, CertManagerRelease, false},
	} {
		rel := Release{Name: r.name, Namespace: r.namespace, Remove: true, Timeout: in.Timeout}
		known[rel.String()] = true
		steps = append(steps, in.removeReleaseStep(rel, r.controller))
	}
	steps = append(steps, in.removeOtherReleasesStep(known))
	for _, sec := range []struct{ namespace, name string }{
		{inv.Registry.Namespace, RegistryCredentialsSecret},
		{inv.Registry.Namespace, RegistryPullSecret},
		{inv.Registry.Namespace, RegistryS3Secret},
		{inv.Registry.Namespace, RegistryTokenSecret},
		{CertManagerNamespace, Route53CredentialsSecret},
	} {
		steps = append(steps, in.removeSecretStep(sec.namespace, sec.name))
	}
	return append(steps, in.removeUserSecretsStep(inv.Registry.Namespace), in.unlabelStep())
}

// removeUserSecretsStep removes the registry users' Secrets boot made.
func (in *Installer) removeUserSecretsStep(namespace string) run.Step {
	host := "remove registry user secrets in " + namespace
	return in.teardownStep(host, func(ctx context.Context, _ *run.State, cs kubernetes.Interface) ([]run.Change, error) {
		stale, err := staleUserSecrets(ctx, cs, namespace, nil)
		if err != nil {
			return nil, err
		}
		return secretChanges(ctx, cs, host, stale)
	})
}

// removeReleaseStep removes boot's release rel; the ingress controller's
// (controller) is left alone with a warning when it is not boot's.
func (in *Installer) removeReleaseStep(rel Release, controller bool) run.Step {
	host := "remove " + rel.String()
	return in.teardownStep(host, func(ctx context.Context, s *run.State, _ kubernetes.Interface) ([]run.Change, error) {
		_, todo, err := rel.Plan(ctx, in.Helm)
		if controller && errors.Is(err, errNotBoots) {
			s.Report(run.Event{Phase: Phase, Host: host, Status: run.Warning, Message: "release " + rel.String() + " is not boot's: left alone"})
			return nil, nil
		}
		if err != nil || todo == "" {
			return nil, err
		}
		return []run.Change{{Host: host, Description: todo, Apply: func(ctx context.Context) error {
			_, err := rel.Apply(ctx, in.Helm)
			return err
		}}}, nil
	})
}

// removeOtherReleasesStep removes every other release labelled as boot's.
func (in *Installer) removeOtherReleasesStep(known map[string]bool) run.Step {
	const host = "remove other releases of boot"
	return in.teardownStep(host, func(ctx context.Context, _ *run.State, _ kubernetes.Interface) ([]run.Change, error) {
		owned, err := in.Helm.listOwned()
		if err != nil {
			return nil, err
		}
		owned = slices.DeleteFunc(owned, func(r Release) bool { return known[r.String()] })
		if len(owned) == 0 {
			return nil, nil
		}
		names := make([]string, len(owned))
		for i, r := range owned {
			names[i] = r.String()
		}
		return []run.Change{{Host: host, Description: "remove " + strings.Join(names, ", "), Apply: func(ctx context.Context) error {
			for _, r := range owned {
				if err := ctx.Err(); err != nil {
					return err
				}
				if _, err := in.Helm.Uninstall(r.Namespace, r.Name, in.Timeout); err != nil {
					return err
				}
			}
			return nil
		}}}, nil
	})
}

// removeSecretStep removes the Secret boot made, when it is boot's.
func (in *Installer) removeSecretStep(namespace, name string) run.Step {
	host := "remove secret " + namespace + "/" + name
	return in.teardownStep(host, func(ctx context.Context, _ *run.State, cs kubernetes.Interface) ([]run.Change, error) {
		return secretChanges(ctx, cs, host, []secretWrite{{Namespace: namespace, Name: name}})
	})
}

// unlabelStep takes the ingress label off every node.
func (in *Installer) unlabelStep() run.Step {
	const host = "unlabel ingress nodes"
	return in.teardownStep(host, func(ctx context.Context, _ *run.State, cs kubernetes.Interface) ([]run.Change, error) {
		_, nodes, err := ingressLabelChanges(ctx, cs, nil)
		if err != nil || len(nodes) == 0 {
			return nil, err
		}
		return []run.Change{{Host: host, Description: "unlabel node(s) " + strings.Join(nodes, ", "), Apply: func(ctx context.Context) error {
			return setIngressLabels(ctx, cs, nil, nodes)
		}}}, nil
	})
}

// teardownStep is a step of TeardownSteps that plans with the cluster, when
// there is one that answers. A cluster that cannot be reached, or a plan
// that fails (a release that cannot be read), ends the API's part of the
// teardown with one warning: the hosts' reset removes the releases with
// the cluster's state.
func (in *Installer) teardownStep(host string, plan func(context.Context, *run.State, kubernetes.Interface) ([]run.Change, error)) run.Step {
	return run.Step{Phase: Phase, Host: host, Plan: func(ctx context.Context, s *run.State) ([]run.Change, error) {
		if in.unreachable {
			return nil, nil
		}
		if _, err := os.Stat(in.Helm.Kubeconfig); errors.Is(err, os.ErrNotExist) {
			return nil, nil // no cluster boot knows of: nothing installed
		}
		cs, err := in.cluster(ctx)
		var changes []run.Change
		if err == nil {
			changes, err = plan(ctx, s, cs)
		}
		if err != nil {
			in.unreachable = true
			s.Report(run.Event{Phase: Phase, Host: host, Status: run.Warning, Message: "releases not removed through the API (the reset removes them with the cluster's state): " + err.Error()})
			return nil, nil
		}
		return changes, nil
	}}
}
