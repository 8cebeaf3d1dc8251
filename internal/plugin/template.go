package plugin

import (
	"strings"
	"text/template"
	"text/template/parse"
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
// render. A template made only of text and plain variables ({{.User}}, {{.Metadata.team}},
// {{index .Metadata "a.b"}}) is rendered by joining its pieces, without text/template's
// reflection; any other is executed by text/template.
type Template struct {
	text  string
	t     *template.Template
	parts []part // nil: executed by t
}

// part is a piece of a template: text, or a variable.
type part struct {
	text  string
	field string // a Vars field name; "Metadata" with key
	key   string
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
	return &Template{text: text, t: t, parts: plainParts(t)}, nil
}

// plainParts returns the template's pieces when it is made only of text and plain
// variables, nil otherwise.
func plainParts(t *template.Template) []part {
	if t.Tree == nil || t.Tree.Root == nil {
		return nil
	}
	var parts []part
	for _, n := range t.Tree.Root.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			parts = append(parts, part{text: string(n.Text)})
		case *parse.ActionNode:
			p, ok := plainVariable(n.Pipe)
			if !ok {
				return nil
			}
			parts = append(parts, p)
		default:
			return nil
		}
	}
	return parts
}

func plainVariable(pipe *parse.PipeNode) (part, bool) {
	if pipe == nil || len(pipe.Decl) > 0 || len(pipe.Cmds) != 1 {
		return part{}, false
	}
	args := pipe.Cmds[0].Args
	switch {
	case len(args) == 1:
		f, ok := args[0].(*parse.FieldNode)
		if !ok {
			return part{}, false
		}
		switch {
		case len(f.Ident) == 1 && f.Ident[0] != "Metadata" && vars(f.Ident[0]):
			return part{field: f.Ident[0]}, true
		case len(f.Ident) == 2 && f.Ident[0] == "Metadata":
			return part{field: "Metadata", key: f.Ident[1]}, true
		}
	case len(args) == 3:
		fn, ok1 := args[0].(*parse.IdentifierNode)
		f, ok2 := args[1].(*parse.FieldNode)
		k, ok3 := args[2].(*parse.StringNode)
		if ok1 && ok2 && ok3 && fn.Ident == "index" && len(f.Ident) == 1 && f.Ident[0] == "Metadata" {
			return part{field: "Metadata", key: k.Text}, true
		}
	}
	return part{}, false
}

// vars reports whether name is a string field of Vars.
func vars(name string) bool {
	switch name {
	case "User", "Key", "KeyID", "Role", "Model", "Route", "Date", "Time", "Language", "Prompt":
		return true
	}
	return false
}

func (v *Vars) field(name, key string) string {
	switch name {
	case "User":
		return v.User
	case "Key":
		return v.Key
	case "KeyID":
		return v.KeyID
	case "Role":
		return v.Role
	case "Model":
		return v.Model
	case "Route":
		return v.Route
	case "Date":
		return v.Date
	case "Time":
		return v.Time
	case "Language":
		return v.Language
	case "Prompt":
		return v.Prompt
	case "Metadata":
		return v.Metadata[key]
	}
	return ""
}

// Render renders the template with v.
func (t *Template) Render(v Vars) (string, error) {
	if t == nil {
		return "", nil
	}
	if t.t == nil {
		return t.text, nil
	}
	if t.parts != nil {
		n := 0
		for i := range t.parts {
			if p := &t.parts[i]; p.field == "" {
				n += len(p.text)
			} else {
				n += len(v.field(p.field, p.key))
			}
		}
		var b strings.Builder
		b.Grow(n)
		for i := range t.parts {
			if p := &t.parts[i]; p.field == "" {
				b.WriteString(p.text)
			} else {
				b.WriteString(v.field(p.field, p.key))
			}
		}
		return b.String(), nil
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
