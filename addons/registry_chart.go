package addons

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// The "all:" prefix keeps _helpers.tpl and the other partials, which start with "_".
//
//go:embed all:charts/registry
var registryChartFS embed.FS

const registryChartDir = "charts/registry"

// Defaults used when RenderOptions leaves the release name or namespace empty.
const (
	DefaultRegistryRelease   = "registry"
	DefaultRegistryNamespace = "registry"
)

// Template names inside the rendered map (chart name + path).
const (
	registryConfigTemplate = "registry/templates/secret-config.yaml"
	registryNotesTemplate  = "registry/templates/NOTES.txt"
	// RegistryConfigKey is the key of config.yml in the config Secret.
	RegistryConfigKey = "config.yml"
)

// The registry's read-only switch. The chart sets it on the registry container as an
// environment variable (distribution parses the value as YAML into
// storage.maintenance.readonly); the gc job patches it to RegistryReadOnlyOn for the
// garbage collection and back. Note that REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED
// does not work: distribution ignores env overrides below a map parsed from YAML.
const (
	RegistryReadOnlyEnv = "REGISTRY_STORAGE_MAINTENANCE_READONLY"
	RegistryReadOnlyOn  = `{"enabled":true}`
	RegistryReadOnlyOff = `{"enabled":false}`
)

// RegistryChart returns the embedded registry chart, loaded with the Helm SDK.
// Every call loads a fresh copy, so callers may modify it.
func RegistryChart() (*chart.Chart, error) {
	var files []*loader.BufferedFile
	err := fs.WalkDir(registryChartFS, registryChartDir, func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := registryChartFS.ReadFile(name)
		if err != nil {
			return err
		}
		files = append(files, &loader.BufferedFile{Name: strings.TrimPrefix(name, registryChartDir+"/"), Data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read embedded registry chart: %w", err)
	}
	c, err := loader.LoadFiles(files)
	if err != nil {
		return nil, fmt.Errorf("load embedded registry chart: %w", err)
	}
	return c, nil
}

// RenderOptions says how to render the registry chart.
type RenderOptions struct {
	// ReleaseName defaults to DefaultRegistryRelease.
	ReleaseName string
	// Namespace defaults to DefaultRegistryNamespace.
	Namespace string
	// Values override the chart's values.yaml; they are checked against
	// values.schema.json. host and credentials.existingSecret are required.
	Values map[string]any
}

// RenderRegistry renders the registry chart client-side (no cluster needed), the way
// `helm template` does, and returns the manifests keyed by template name, e.g.
// "registry/templates/deployment.yaml". Templates that render to nothing and
// NOTES.txt are left out.
func RenderRegistry(opts RenderOptions) (map[string]string, error) {
	out, err := renderRegistryChart(opts)
	if err != nil {
		return nil, err
	}
	delete(out, registryNotesTemplate)
	for name, text := range out {
		if strings.TrimSpace(text) == "" {
			delete(out, name)
		}
	}
	return out, nil
}

// renderRegistryChart renders every template, NOTES.txt included.
func renderRegistryChart(opts RenderOptions) (map[string]string, error) {
	c, err := RegistryChart()
	if err != nil {
		return nil, err
	}
	release := chartutil.ReleaseOptions{
		Name:      opts.ReleaseName,
		Namespace: opts.Namespace,
		Revision:  1,
		IsInstall: true,
	}
	if release.Name == "" {
		release.Name = DefaultRegistryRelease
	}
	if release.Namespace == "" {
		release.Namespace = DefaultRegistryNamespace
	}
	values := opts.Values
	if values == nil {
		values = map[string]any{}
	}
	top, err := chartutil.ToRenderValues(c, values, release, chartutil.DefaultCapabilities.Copy())
	if err != nil {
		return nil, fmt.Errorf("registry chart values: %w", explainSchemaError(c.Schema, err))
	}
	// Strict: a template that reads a value the chart does not define is a bug.
	out, err := engine.Engine{Strict: true}.Render(c, top)
	if err != nil {
		return nil, fmt.Errorf("render registry chart: %w", err)
	}
	return out, nil
}

// RenderRegistryConfig returns the registry's config.yml exactly as the chart puts it
// into its config Secret, for release DefaultRegistryRelease in DefaultRegistryNamespace.
// It holds no secret: http.secret, the Redis password and S3 keys reach the registry
// through environment variables (see the chart's README.md).
func RenderRegistryConfig(values map[string]any) ([]byte, error) {
	out, err := RenderRegistry(RenderOptions{Values: values})
	if err != nil {
		return nil, err
	}
	manifest, ok := out[registryConfigTemplate]
	if !ok {
		return nil, fmt.Errorf("registry chart rendered no %s", path.Base(registryConfigTemplate))
	}
	var secret corev1.Secret
	if err := yaml.UnmarshalStrict([]byte(manifest), &secret); err != nil {
		return nil, fmt.Errorf("decode rendered %s: %w", path.Base(registryConfigTemplate), err)
	}
	config, ok := secret.Data[RegistryConfigKey]
	if !ok || len(bytes.TrimSpace(config)) == 0 {
		return nil, fmt.Errorf("rendered Secret %s has no %s", secret.Name, RegistryConfigKey)
	}
	return config, nil
}

// schemaErrorPath finds the values a JSON schema error names: "at '/image/tag': ...".
var schemaErrorPath = regexp.MustCompile(`at '(/[^']+)'`)

// explainSchemaError adds the schema's description of every value the error names,
// so "does not match pattern '^(3\\.[1-9]...'" comes with "image.tag: distribution
// 3.1 or newer ...".
func explainSchemaError(schema []byte, err error) error {
	var root map[string]any
	if json.Unmarshal(schema, &root) != nil {
		return err
	}
	var hints []string
	seen := map[string]bool{}
	for _, m := range schemaErrorPath.FindAllStringSubmatch(err.Error(), -1) {
		if seen[m[1]] {
			continue
		}
		seen[m[1]] = true
		if d := schemaDescription(root, strings.Split(strings.TrimPrefix(m[1], "/"), "/")); d != "" {
			hints = append(hints, strings.ReplaceAll(strings.TrimPrefix(m[1], "/"), "/", ".")+": "+d)
		}
	}
	if len(hints) == 0 {
		return err
	}
	return fmt.Errorf("%w\n%s", err, strings.Join(hints, "\n"))
}

// schemaDescription walks properties along path and returns the description of the
// last one, looking through "$ref" and "allOf" to the definitions.
func schemaDescription(root map[string]any, path []string) string {
	node := root
	for _, name := range path {
		props, _ := node["properties"].(map[string]any)
		next, ok := props[name].(map[string]any)
		if !ok {
			return ""
		}
		node = next
	}
	for _, n := range schemaAlternatives(root, node) {
		if d, ok := n["description"].(string); ok {
			return d
		}
	}
	return ""
}

// schemaAlternatives returns node, then the definitions it refers to directly or
// through allOf.
func schemaAlternatives(root, node map[string]any) []map[string]any {
	out := []map[string]any{node}
	refs := []any{node["$ref"]}
	if all, ok := node["allOf"].([]any); ok {
		for _, a := range all {
			if m, ok := a.(map[string]any); ok {
				refs = append(refs, m["$ref"])
			}
		}
	}
	defs, _ := root["$defs"].(map[string]any)
	for _, r := range refs {
		if s, ok := r.(string); ok {
			if def, ok := defs[strings.TrimPrefix(s, "#/$defs/")].(map[string]any); ok {
				out = append(out, def)
			}
		}
	}
	return out
}
