package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// LookupEnv finds an environment variable; os.LookupEnv is the usual one.
type LookupEnv func(name string) (string, bool)

// Load reads, expands, decodes and validates the file at path, using the process environment.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cfg, err := Parse(data, os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Parse decodes data strictly, expands ${NAME} references with env, applies defaults and
// validates. The returned error lists every problem found, one per line, each naming its
// field path (for example "models[0].backends[1].base_url: ...").
//
// Expansion happens only where a value contains ${NAME} or ${NAME:-default}: nothing is read
// from the environment implicitly. A variable that is not set and has no default is an
// error; "$${" writes a literal "${".
func Parse(data []byte, env LookupEnv) (*Config, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			// An empty file is an empty configuration.
			c := Config{}.WithDefaults()
			return &c, c.Validate()
		}
		return nil, fmt.Errorf("invalid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, errors.New("invalid YAML: more than one document")
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	var errs []error
	expandEnv(root, "", env, &errs)
	checkNode(root, reflect.TypeFor[Config](), "", &errs)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	var c Config
	if err := root.Decode(&c); err != nil {
		return nil, fmt.Errorf("invalid configuration: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// expandEnv replaces ${NAME} and ${NAME:-default} in every scalar value (never in keys).
func expandEnv(n *yaml.Node, path string, env LookupEnv, errs *[]error) {
	switch n.Kind {
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "${") {
			return
		}
		v, err := expandString(n.Value, env)
		if err != nil {
			*errs = append(*errs, fieldErr(path, n, "%v", err))
			return
		}
		n.Value = v
		if n.Style == 0 {
			// Let YAML resolve the expanded plain scalar's type again (so "${PORT}" can
			// become an integer).
			n.Tag = ""
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			expandEnv(n.Content[i+1], join(path, n.Content[i].Value), env, errs)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			expandEnv(c, path+"["+strconv.Itoa(i)+"]", env, errs)
		}
	case yaml.DocumentNode:
		for _, c := range n.Content {
			expandEnv(c, path, env, errs)
		}
	}
}

func expandString(s string, env LookupEnv) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		if i > 0 && s[i-1] == '$' {
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated ${ in %q", s)
		}
		ref := s[i+2 : i+end]
		s = s[i+end+1:]
		name, def, hasDef := strings.Cut(ref, ":-")
		if !validEnvName(name) {
			return "", fmt.Errorf("invalid environment variable name %q", name)
		}
		v, ok := env(name)
		switch {
		case ok:
			b.WriteString(v)
		case hasDef:
			b.WriteString(def)
		default:
			return "", fmt.Errorf("environment variable %s is not set (write ${%s:-} to allow it to be empty)", name, name)
		}
	}
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}

var (
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	nodeType        = reflect.TypeFor[yaml.Node]()
)

// checkNode walks the YAML tree beside the Go type it will decode into, reporting unknown
// and duplicate keys and values of the wrong kind, each with its field path and line.
func checkNode(n *yaml.Node, t reflect.Type, path string, errs *[]error) {
	if n.Kind == yaml.AliasNode {
		*errs = append(*errs, fieldErr(path, n, "YAML aliases are not supported"))
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // an explicit null leaves the default in place
	}
	if t == nodeType {
		return // a section decoded later by its owner (a plugin's config), strictly
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		if n.Kind != yaml.ScalarNode {
			*errs = append(*errs, fieldErr(path, n, "must be a single value"))
			return
		}
		if err := reflect.New(t).Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			*errs = append(*errs, fieldErr(path, n, "%v", err))
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			*errs = append(*errs, fieldErr(path, n, "must be a mapping"))
			return
		}
		fields := yamlFields(t)
		seen := make(map[string]bool, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			if seen[k.Value] {
				*errs = append(*errs, fieldErr(p, k, "duplicate key"))
				continue
			}
			seen[k.Value] = true
			ft, ok := fields[k.Value]
			if !ok {
				*errs = append(*errs, fieldErr(p, k, "unknown key%s", suggest(k.Value, fields)))
				continue
			}
			checkNode(v, ft, p, errs)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			*errs = append(*errs, fieldErr(path, n, "must be a list"))
			return
		}
		for i, c := range n.Content {
			checkNode(c, t.Elem(), path+"["+strconv.Itoa(i)+"]", errs)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			*errs = append(*errs, fieldErr(path, n, "must be a mapping"))
			return
		}
		seen := make(map[string]bool, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			p := join(path, k.Value)
			if seen[k.Value] {
				*errs = append(*errs, fieldErr(p, k, "duplicate key"))
				continue
			}
			seen[k.Value] = true
			checkNode(n.Content[i+1], t.Elem(), p, errs)
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			*errs = append(*errs, fieldErr(path, n, "must be a string"))
		}
	case reflect.Int, reflect.Int64, reflect.Int32:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			*errs = append(*errs, fieldErr(path, n, "must be an integer"))
		}
	case reflect.Float64, reflect.Float32:
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") {
			*errs = append(*errs, fieldErr(path, n, "must be a number"))
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			*errs = append(*errs, fieldErr(path, n, "must be true or false"))
		}
	}
}

// yamlFields maps each YAML key of struct type t to its field type.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	m := make(map[string]reflect.Type, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = f.Type
	}
	return m
}

// suggest names the known key the unknown one most likely meant: one it is a prefix of (or
// that is a prefix of it), else one within a small edit distance.
func suggest(key string, fields map[string]reflect.Type) string {
	best, bestD := "", len(key)/2
	for k := range fields {
		d := editDistance(key, k)
		if strings.HasPrefix(k, key) || strings.HasPrefix(key, k) {
			d = 0
		}
		if d < bestD || d == bestD && best != "" && k < best {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func fieldErr(path string, n *yaml.Node, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if path == "" {
		path = "(top level)"
	}
	return fmt.Errorf("%s: %s (line %d)", path, msg, n.Line)
}
