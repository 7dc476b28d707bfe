package bundle

import (
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"helm.sh/helm/v3/pkg/chart/loader"

	"github.com/bootctl/boot/internal/boundedfile"
)

// ChartArchive is one Helm chart archive Build packs (Options.Charts).
type ChartArchive struct {
	// Slot is the inventory field under addons the chart serves, e.g.
	// "ingressNginx" or "certManager".
	Slot string
	// Name and Version are the chart's, as its Chart.yaml says.
	Name    string
	Version string
	// Data is the chart's .tgz archive.
	Data []byte
}

// Chart is one Helm chart archive of the bundle.
type Chart struct {
	// Slot is the inventory field under addons the chart serves, e.g.
	// "ingressNginx".
	Slot    string `json:"slot"`
	Name    string `json:"name"`
	Version string `json:"version"`
	// Path is the archive, charts/<name>-<version>.tgz relative to the
	// bundle folder; it is also listed in Files.
	Path string `json:"path"`
}

// chartsDir is the bundle folder's sub-folder for chart archives.
const chartsDir = "charts"

var (
	chartSlotRe = regexp.MustCompile(`^[a-z][A-Za-z0-9]*$`)
	// A chart name as Helm allows it; versions are SemVer 2 with an
	// optional leading v. Both end up in a file name.
	chartNameRe    = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	chartVersionRe = regexp.MustCompile(`^v?[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)
)

// chartPath is where a chart's archive lives in a bundle folder.
func chartPath(name, version string) string {
	return chartsDir + "/" + name + "-" + version + ".tgz"
}

// checkCharts checks, before anything is built, that every archive is a
// Helm chart named and versioned as it says, that no slot is given twice,
// and that slots sharing a chart name and version share the archive too
// (they share its file).
func checkCharts(charts []ChartArchive) error {
	slots := map[string]bool{}
	files := map[string]ChartArchive{}
	for i, c := range charts {
		what := fmt.Sprintf("bundle: chart %d (slot %q)", i, c.Slot)
		switch {
		case !chartSlotRe.MatchString(c.Slot):
			return fmt.Errorf("%s: the slot is not an inventory field name under addons such as ingressNginx", what)
		case slots[c.Slot]:
			return fmt.Errorf("%s: a second chart for that slot", what)
		case !chartNameRe.MatchString(c.Name):
			return fmt.Errorf("%s: %q is not a chart name", what, c.Name)
		case !chartVersionRe.MatchString(c.Version):
			return fmt.Errorf("%s: %q is not an exact chart version", what, c.Version)
		}
		slots[c.Slot] = true
		ch, err := loader.LoadArchive(bytes.NewReader(c.Data))
		if err != nil {
			return fmt.Errorf("%s: %s %s: not a chart archive: %w", what, c.Name, c.Version, err)
		}
		if ch.Metadata.Name != c.Name || ch.Metadata.Version != c.Version {
			return fmt.Errorf("%s: the archive holds chart %s %s, not %s %s", what, ch.Metadata.Name, ch.Metadata.Version, c.Name, c.Version)
		}
		rel := chartPath(c.Name, c.Version)
		if other, ok := files[rel]; ok && !bytes.Equal(other.Data, c.Data) {
			return fmt.Errorf("%s: another archive of %s %s than slot %q's; both would be %s", what, c.Name, c.Version, other.Slot, rel)
		}
		files[rel] = c
	}
	return nil
}

// addCharts writes each archive as charts/<name>-<version>.tgz through add
// (which lists it among the manifest's files; once for slots sharing it) and
// returns the manifest's chart entries. The archives must have passed
// checkCharts.
func addCharts(add addFunc, charts []ChartArchive) ([]Chart, error) {
	var out []Chart
	written := map[string]bool{}
	for _, c := range charts {
		rel := chartPath(c.Name, c.Version)
		if !written[rel] {
			if err := add(rel, "", c.Data, 0o644, c.Name, c.Version); err != nil {
				return nil, fmt.Errorf("bundle: chart %s: %w", rel, err)
			}
			written[rel] = true
		}
		out = append(out, Chart{Slot: c.Slot, Name: c.Name, Version: c.Version, Path: rel})
	}
	return out, nil
}

// ReadManifest reads and validates DIR/manifest.json without checking the
// files it lists (Open checks them all; VerifiedFile checks one). A
// manifest that is not a regular file of at most 16 MiB is refused before
// it is read.
func ReadManifest(dir string) (*Manifest, error) {
	mpath := filepath.Join(dir, ManifestName)
	data, err := boundedfile.Read(mpath, "bundle manifest", maxManifestSize)
	if err != nil {
		return nil, err
	}
	m, err := ParseManifest(data)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", mpath, err)
	}
	return m, nil
}

// Chart returns the manifest's chart for slot.
func (m *Manifest) Chart(slot string) (Chart, bool) {
	for _, c := range m.Charts {
		if c.Slot == slot {
			return c, true
		}
	}
	return Chart{}, false
}

// ChartsHeld describes the manifest's charts for a message, e.g.
// "certManager: cert-manager v1.19.1, ingressNginx: ingress-nginx 4.15.1",
// or "no charts".
func (m *Manifest) ChartsHeld() string {
	if len(m.Charts) == 0 {
		return "no charts"
	}
	parts := make([]string, len(m.Charts))
	for i, c := range m.Charts {
		parts[i] = c.Slot + ": " + c.Name + " " + c.Version
	}
	return strings.Join(parts, ", ")
}

// VerifiedFile checks the one file rel (a Files path) of the bundle folder
// dir against the manifest's size and sha256 and returns its path, so a
// caller that needs one file does not hash the whole bundle.
func (m *Manifest) VerifiedFile(dir, rel string) (string, error) {
	for _, f := range m.Files {
		if f.Path == rel {
			return f.verify(dir)
		}
	}
	return "", fmt.Errorf("bundle %s: file %s is not in the manifest", dir, rel)
}

// verify checks the file's size and sha256 in the bundle folder dir and
// returns its path. Errors name the file.
func (f File) verify(dir string) (string, error) {
	p := filepath.Join(dir, filepath.FromSlash(f.Path))
	sum, size, err := HashFile(p)
	if err != nil {
		return "", fmt.Errorf("bundle %s: file %s: %w", dir, f.Path, err)
	}
	if size != f.Size {
		return "", fmt.Errorf("bundle %s: file %s: size %d, manifest says %d", dir, f.Path, size, f.Size)
	}
	if sum != f.SHA256 {
		return "", fmt.Errorf("bundle %s: file %s: sha256 %s, manifest says %s", dir, f.Path, sum, f.SHA256)
	}
	return p, nil
}
