package addons

import (
	"fmt"
	"time"

	"helm.sh/helm/v3/pkg/action"
)

// ManagedRelease is the latest revision of one Helm release boot manages,
// as `boot status` shows it.
type ManagedRelease struct {
	Namespace  string    `json:"namespace"`
	Name       string    `json:"name"`
	Chart      string    `json:"chart"`
	Version    string    `json:"version"`
	AppVersion string    `json:"appVersion,omitempty"`
	Status     string    `json:"status"` // Helm's: deployed, failed, pending-upgrade...
	Revision   int       `json:"revision"`
	Updated    time.Time `json:"updated"`
}

// Managed lists, read-only, the latest revision of every release in every
// namespace labelled as boot's (ManagedByLabel=ManagedByBoot), in any
// state, in Helm's order (by release name).
func (h Helm) Managed() ([]ManagedRelease, error) {
	cfg, err := h.config("")
	if err != nil {
		return nil, err
	}
	list := action.NewList(cfg)
	list.AllNamespaces = true
	list.All = true
	list.StateMask = action.ListAll
	list.Selector = ManagedByLabel + "=" + ManagedByBoot
	rels, err := list.Run()
	if err != nil {
		return nil, fmt.Errorf("listing boot's releases: %w", err)
	}
	out := make([]ManagedRelease, len(rels))
	for i, rel := range rels {
		m := ManagedRelease{Namespace: rel.Namespace, Name: rel.Name, Revision: rel.Version}
		if rel.Info != nil {
			m.Status, m.Updated = rel.Info.Status.String(), rel.Info.LastDeployed.Time
		}
		if rel.Chart != nil && rel.Chart.Metadata != nil {
			m.Chart, m.Version, m.AppVersion = rel.Chart.Metadata.Name, rel.Chart.Metadata.Version, rel.Chart.Metadata.AppVersion
		}
		out[i] = m
	}
	return out, nil
}
