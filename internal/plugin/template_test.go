package plugin

import (
	"strings"
	"testing"
	"text/template"
)

// renderSlow renders text the way text/template does, for comparison with Render.
func renderSlow(t *testing.T, text string, v Vars) (string, bool) {
	tt, err := template.New("x").Option("missingkey=zero").Parse(text)
	if err != nil {
		return "", false
	}
	var b strings.Builder
	if err := tt.Execute(&b, v); err != nil {
		return "", false
	}
	return b.String(), true
}

var templateVars = Vars{User: "alice", Key: "sk-ab12", KeyID: "k1", Role: "support", Model: "glm-4",
	Route: "task", Date: "2026-01-02", Time: "10:11", Metadata: map[string]string{"team": "search", "a.b": "dotted"},
	Language: "go", Prompt: "write {{.User}}"}

func TestTemplatePlainVariablesRenderAsTextTemplate(t *testing.T) {
	for _, text := range []string{
		"Answer for {{.Model}} on {{.Date}}.",
		"{{.User}}{{.Key}}{{.KeyID}}{{.Role}}{{.Route}}{{.Time}}{{.Language}}{{.Prompt}}",
		"team {{.Metadata.team}}, dotted {{index .Metadata \"a.b\"}}, missing [{{.Metadata.nope}}]",
		"{{if .User}}hi {{.User}}{{end}}",       // not plain: text/template
		"{{.User | printf \"%q\"}} {{- .Role}}", // not plain
		"{{/* a comment */}}x{{.User}}",         // not plain
		"{{ .User }} and {{.Metadata}}",         // the whole map: text/template
	} {
		tmpl, err := ParseTemplate("t", text)
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		got, err := tmpl.Render(templateVars)
		want, _ := renderSlow(t, text, templateVars)
		if err != nil || got != want {
			t.Errorf("%q: rendered %q (%v), text/template renders %q", text, got, err, want)
		}
	}
	if tmpl, _ := ParseTemplate("t", "Answer for {{.Model}} on {{.Date}}."); tmpl.parts == nil {
		t.Error("a template of plain variables is executed by text/template")
	}
}

// FuzzTemplate: whatever the template, Render gives what text/template gives.
func FuzzTemplate(f *testing.F) {
	f.Add("Answer for {{.Model}} on {{.Date}}.", "alice", "search")
	f.Add("{{index .Metadata \"team\"}} {{.Metadata.team}}", "", "")
	f.Add("{{if .User}}{{.User}}{{else}}none{{end}}", "bob", "x")
	f.Fuzz(func(t *testing.T, text, user, team string) {
		tmpl, err := ParseTemplate("t", text)
		if err != nil {
			return
		}
		v := templateVars
		v.User, v.Metadata = user, map[string]string{"team": team}
		got, err := tmpl.Render(v)
		want, ok := renderSlow(t, text, v)
		if !ok || err != nil {
			return
		}
		if got != want {
			t.Fatalf("%q: rendered %q, text/template renders %q", text, got, want)
		}
	})
}
