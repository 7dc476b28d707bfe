package addons

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
)

// InputsLabel, on a release boot installed or upgraded, holds a digest of
// everything its manifest was rendered from: the chart's files, the
// values, the release's name and namespace, what templates see as
// .Capabilities (the cluster's version, Helm's, and the cluster's API
// versions when a template asks for them). A plan that finds the same
// digest on the deployed release knows its manifest unchanged without
// rendering it.
const InputsLabel = "bootctl.dev/inputs"

// inputs returns r's inputs digest on the cluster cfg reaches, or "" when
// the manifest may depend on more than these inputs: a template that calls
// lookup reads live objects.
func (r Release) inputs(cfg *action.Configuration) (string, error) {
	if templatesMatch(r.Chart, lookupCall) {
		return "", nil
	}
	key, err := r.digest(cfg)
	if err != nil {
		return "", fmt.Errorf("release %s: the cluster's version and APIs: %w", r, err)
	}
	return key, nil
}

// digest computes the digest inputs returns.
func (r Release) digest(cfg *action.Configuration) (string, error) {
	dc, err := cfg.RESTClientGetter.ToDiscoveryClient()
	if err != nil {
		return "", err
	}
	sv, err := dc.ServerVersion()
	if err != nil {
		return "", err
	}
	values, err := json.Marshal(r.Values)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	write(h, r.Namespace, r.Name, strconv.FormatBool(r.SkipCRDs), string(values), sv.GitVersion, chartutil.DefaultCapabilities.HelmVersion.Version)
	// The API versions change as CRDs come and go (a release's own among
	// them): only a chart that asks for them depends on them.
	if templatesMatch(r.Chart, apiVersionsUse) {
		// Fresh, as Helm reads them when it renders.
		dc.Invalidate()
		apis, err := action.GetVersionSet(dc)
		if err != nil {
			return "", err
		}
		write(h, slices.Sorted(slices.Values(apis))...)
	}
	if err := hashChart(h, r.Chart); err != nil {
		return "", err
	}
	// A label value holds at most 63 characters: 160 bits of the digest.
	return hex.EncodeToString(h.Sum(nil))[:40], nil
}

// write adds parts to h, each prefixed by its length so that no two lists
// of parts hash alike.
func write(h hash.Hash, parts ...string) {
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s", len(p), p)
	}
}

// hashChart adds c to h: its metadata, default values, schema, templates
// and other files, then its dependencies, by name.
func hashChart(h hash.Hash, c *chart.Chart) error {
	meta, err := json.Marshal(c.Metadata)
	if err != nil {
		return err
	}
	values, err := json.Marshal(c.Values)
	if err != nil {
		return err
	}
	write(h, "chart", string(meta), string(values), string(c.Schema))
	for _, files := range [][]*chart.File{c.Templates, c.Files} {
		write(h, strconv.Itoa(len(files)))
		for _, f := range files {
			write(h, f.Name, string(f.Data))
		}
	}
	deps := slices.Clone(c.Dependencies())
	slices.SortFunc(deps, func(a, b *chart.Chart) int { return strings.Compare(a.Name(), b.Name()) })
	write(h, strconv.Itoa(len(deps)))
	for _, d := range deps {
		if err := hashChart(h, d); err != nil {
			return err
		}
	}
	return nil
}

// lookupCall matches a template action that calls lookup, or may: the
// word inside {{ }} (text outside actions, like the descriptions in a
// CRD, is not a call).
var lookupCall = regexp.MustCompile(`\{\{[^}]*\blookup\b`)

// apiVersionsUse matches a template's use of the cluster's API versions.
var apiVersionsUse = regexp.MustCompile(`\.Capabilities\.APIVersions\b`)

// templatesMatch reports whether a template of c or of its dependencies
// matches re.
func templatesMatch(c *chart.Chart, re *regexp.Regexp) bool {
	for _, t := range c.Templates {
		if re.Match(t.Data) {
			return true
		}
	}
	return slices.ContainsFunc(c.Dependencies(), func(d *chart.Chart) bool { return templatesMatch(d, re) })
}
