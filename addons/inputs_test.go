package addons

import (
	"testing"

	"helm.sh/helm/v3/pkg/chart"
)

func TestTemplatesMatch(t *testing.T) {
	for _, tc := range []struct {
		template string
		want     bool
	}{
		{`{{ $s := lookup "v1" "Secret" .Release.Namespace "x" }}`, true},
		{"{{- if (lookup \"v1\" \"Namespace\" \"\" \"x\") }}\n", true},
		{"{{ (lookup\n \"v1\" \"Secret\" \"a\" \"b\") }}", true},
		{"description: The keys are used to lookup values from the object.\n{{ .Values.x }}", false},
		{"{{ .Values.lookupTable }}", false},
	} {
		c := &chart.Chart{Metadata: &chart.Metadata{Name: "c"}, Templates: []*chart.File{{Name: "templates/a.yaml", Data: []byte(tc.template)}}}
		if got := templatesMatch(c, lookupCall); got != tc.want {
			t.Errorf("%q: %v, want %v", tc.template, got, tc.want)
		}
		parent := &chart.Chart{Metadata: &chart.Metadata{Name: "p"}}
		parent.AddDependency(c)
		if got := templatesMatch(parent, lookupCall); got != tc.want {
			t.Errorf("%q in a dependency: %v, want %v", tc.template, got, tc.want)
		}
	}
	if !templatesMatch(&chart.Chart{Metadata: &chart.Metadata{Name: "c"}, Templates: []*chart.File{{Name: "t", Data: []byte(`{{ if .Capabilities.APIVersions.Has "monitoring.coreos.com/v1" }}`)}}}, apiVersionsUse) {
		t.Error("a template asking for the API versions is not found")
	}
}
