package plugin

import (
	"strings"
	"text/template"
	"time"
)

// Vars are the variables a text template in a plugin's configuration can use:
// {{.User}}, {{.Key}} (the key's display prefix), {{.KeyID}}, {{.Role}}, {{.Model}},
// {{.Route}}, {{.Date}} (2006-01-02, UTC), {{.Time}} (15:04 UTC), {{.Metadata.name}}, and
// for code templates {{.Language}} and {{.Prompt}}.
type Vars struct {
	User, Key, KeyID, Role, Model, Route string
	Date, Time                           string
	Metadata                             map[string]string
	Language, Prompt                     string
}

// VarsOf returns the variables of r at now.
func VarsOf(r *Request, now time.Time) Vars {
	now = now.UTC()
	return Vars{User: r.User, Key: r.KeyName, KeyID: r.KeyID, Role: r.Role, Model: r.Model, Route: r.Route,
		Date: now.Format("2006-01-02"), Time: now.Format("15:04"), Metadata: r.Metadata}
}

// Template is a text with variables; text without "{{" is kept as is and costs nothing to
// render.
type Template struct {
	text string
	t    *template.Template
}

// ParseTemplate parses text (Go text/template syntax). A missing metadata entry renders
// empty.
func ParseTemplate(name, text string) (*Template, error) {
	if !strings.Contains(text, "{{") {
		return &Template{text: text}, nil
	}
	t, err := template.New(name).Option("missingkey=zero").Parse(text)
	if err != nil {
		return nil, err
	}
	return &Template{text: text, t: t}, nil
}

// Render renders the template with v.
func (t *Template) Render(v Vars) (string, error) {
	if t == nil {
		return "", nil
	}
	if t.t == nil {
		return t.text, nil
	}
	var b strings.Builder
	if err := t.t.Execute(&b, v); err != nil {
		return "", err
	}
	return b.String(), nil
}

// String is the template's source.
func (t *Template) String() string {
	if t == nil {
		return ""
	}
	return t.text
}
