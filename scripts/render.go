package scripts

import (
	"bytes"
	"embed"
	"fmt"
	"strings"
	"text/template"

	"github.com/bootctl/boot/internal/quote"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

// templates holds every embedded template, parsed once. Scripts share the
// prelude defined in templates/prelude.sh.tmpl.
var templates = template.Must(template.New("").Funcs(template.FuncMap{
	"q":     quote.Shell,
	"join":  strings.Join,
	"tomlq": tomlQuote,
	"yamlq": quote.YAML,
}).ParseFS(templateFS, "templates/*.tmpl"))

func render(name string, data any) ([]byte, error) {
	var b bytes.Buffer
	if err := templates.ExecuteTemplate(&b, name, data); err != nil {
		// Template errors name the template and the field, never values.
		return nil, fmt.Errorf("render %s: %w", name, err)
	}
	return b.Bytes(), nil
}

// tomlQuote returns s as a TOML basic string. Parameters never hold control
// characters (inventory.CheckText refuses them), so only " and \ need escaping.
func tomlQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}

// wrapError prefixes a public function's error with its name.
func wrapError(err *error, function string) {
	if *err != nil {
		*err = fmt.Errorf("scripts.%s: %w", function, *err)
	}
}
