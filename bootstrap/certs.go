package bootstrap

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/bootctl/boot/internal/run"
	"github.com/bootctl/boot/scripts"
)

// CertWarning is how close to its expiry a control-plane certificate makes
// boot up warn.
const CertWarning = 30 * 24 * time.Hour

// ControlPlaneComponents are the control plane's static pods, in the order
// CertsRenew restarts them.
var ControlPlaneComponents = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"}

// certsRenewPhase names the renewal in events and in the kubeconfig's
// deferred plan.
const certsRenewPhase = "certs renew"

// expiryWarnings checks, on a control plane that already has a cluster
// (admin.conf), the certificates kubeadm manages: when some expire before
// now+CertWarning (or have expired), a warning names the first of them and
// its date and counts the others; a failure to read them is a warning too
// (the run goes on: the cluster works until then).
func expiryWarnings(ctx context.Context, cp *Host, now time.Time) []finding {
	if !cp.Facts.AdminConf {
		return nil
	}
	name := cp.Spec.Name
	certs, err := controlPlaneCerts(ctx, cp.Conn, cp.Facts.KubeadmVersion)
	if err != nil {
		return []finding{{name, false, fmt.Sprintf("could not read the certificates' expiry (kubeadm certs check-expiration): %v", err)}}
	}
	var soon []CertExpiry
	for _, c := range certs {
		if c.Expires.Sub(now) < CertWarning {
			soon = append(soon, c)
		}
	}
	if len(soon) == 0 {
		return nil
	}
	first := FirstToExpire(soon)
	date := first.Expires.Format(time.DateOnly)
	msg := fmt.Sprintf("certificate %s expired on %s", first.Name, date)
	if left := first.Expires.Sub(now); left > 0 {
		msg = fmt.Sprintf("certificate %s expires on %s, in %d day(s)", first.Name, date, int(left.Hours()/24))
	}
	if len(soon) > 1 {
		msg += fmt.Sprintf(" (and %d more within %d days)", len(soon)-1, int(CertWarning.Hours()/24))
	}
	return []finding{{name, false, msg + ": run boot certs renew"}}
}

// CertsRenewOptions tune CertsRenewPhases.
type CertsRenewOptions struct {
	// Timeout bounds each wait of the restarts (a pod stopped, running
	// again, the API server ready); zero means two minutes.
	Timeout time.Duration
	// Merge and MergeInto are as for boot up's kubeconfig (UpOptions).
	Merge     bool
	MergeInto string
}

// CertsRenewPhases are what boot certs renew does: renew the control
// plane's certificates and restart its static pods, then write the
// operator's admin kubeconfig again (its client certificate changed).
func CertsRenewPhases(o CertsRenewOptions) []Phase {
	return []Phase{
		CertsRenew{Timeout: o.Timeout},
		renewedKubeconfig{Kubeconfig{Merge: o.Merge, MergeInto: o.MergeInto}},
	}
}

// CertsRenew renews every certificate kubeadm manages on the control plane
// and restarts the control plane's static pods one at a time so that they
// use them (see scripts.CertsRenew). It always plans its change: renewing
// is asked for, not converged to.
type CertsRenew struct {
	Timeout time.Duration
}

// Name implements Phase.
func (CertsRenew) Name() string { return certsRenewPhase }

// Plan implements Phase: it reads the certificates' expiry and checks, with
// the script in check mode, that the control plane's manifests and tools
// are there.
func (r CertsRenew) Plan(ctx context.Context, c *Cluster) ([]Change, error) {
	cp := c.controlPlane()
	if !cp.Facts.AdminConf {
		return nil, fmt.Errorf("%s has no %s: no cluster to renew (boot up first)", cp.Spec.Name, adminConf)
	}
	version := cp.Facts.KubeadmVersion
	certs, err := controlPlaneCerts(ctx, cp.Conn, version)
	if err != nil {
		return nil, fmt.Errorf("reading the certificates' expiry: %w", err)
	}
	text, err := scripts.CertsRenew(scripts.CertsRenewParams{
		KubeadmConfig: CheckExpirationConfig(version, ""),
		Components:    ControlPlaneComponents,
		AdminConf:     adminConf,
		Timeout:       r.Timeout,
	})
	if err != nil {
		return nil, err
	}
	s := script{name: "certs-renew.sh", text: text}
	would, err := s.check(ctx, cp)
	if err != nil {
		return nil, err
	}
	return []Change{{
		Host:        cp.Spec.Name,
		Description: renewDescription(certs, would),
		Apply:       func(ctx context.Context) error { return s.apply(ctx, cp) },
	}}, nil
}

// renewDescription says which certificates are renewed, the first of them
// to expire and when, and what the script would do besides.
func renewDescription(certs []CertExpiry, would []string) string {
	var renewed []CertExpiry
	var names []string
	for _, c := range certs {
		if !c.Authority { // kubeadm certs renew leaves the CAs as they are
			renewed = append(renewed, c)
			names = append(names, c.Name)
		}
	}
	desc := "renew " + strings.Join(names, ", ")
	if len(renewed) > 0 {
		first := FirstToExpire(renewed)
		desc += fmt.Sprintf(" (first to expire: %s on %s)", first.Name, first.Expires.Format(time.DateOnly))
	}
	var restarts []string
	for _, w := range would {
		if what, ok := strings.CutPrefix(w, "restart "); ok {
			restarts = append(restarts, what)
		} else if !strings.HasPrefix(w, "renew every certificate") {
			desc += "; " + w
		}
	}
	return desc + "; then restart " + strings.Join(restarts, ", ") + " one at a time, the API server answering /readyz in between"
}

// renewedKubeconfig is the kubeconfig phase after a renewal: in a dry run
// whose renewal is pending the admin kubeconfig would change (its client
// certificate does) though admin.conf has not yet, so it says so.
type renewedKubeconfig struct{ Kubeconfig }

// Plan implements Phase.
func (k renewedKubeconfig) Plan(ctx context.Context, c *Cluster) ([]Change, error) {
	if pending := c.run.Pending(certsRenewPhase); pending != "" {
		return []Change{{Host: operator, Description: run.After(pending, "write the admin kubeconfig with its renewed client certificate to "+c.Inventory.Cluster.Kubeconfig),
			Apply: func(ctx context.Context) error { return k.write(ctx, c, c.Inventory.Cluster.Kubeconfig) }}}, nil
	}
	return k.Kubeconfig.Plan(ctx, c)
}
