// Package grammar constrains generated text to JSON that follows a JSON schema (or to any
// JSON object, for response_format json_object). A Grammar is compiled once per schema; a
// Vocab (the model's tokens as bytes, in a trie) once per model; a State follows one
// generation and masks, before each sampled token, every token whose bytes cannot continue
// valid output. Masks are cached per parser state, so repeated states (the inside of a
// string, the start of a key) cost a map lookup.
//
// Supported schema keywords: type (one type or a list), properties, required,
// additionalProperties (false, true or a schema; with properties given, objects are closed to
// the listed properties), items, minItems, maxItems, enum, const, anyOf (alternatives must
// begin with different characters: a string or null, an object or an array), and the
// annotations title, description, default, $schema, examples. Everything else (pattern,
// format, minLength, minimum, $ref, oneOf, allOf, ...) is refused by Compile with an error
// naming the keyword, rather than ignored.
package grammar

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

type nodeKind uint8

const (
	kAny nodeKind = iota
	kObject
	kArray
	kString
	kNumber
	kInteger
	kLit // enum, const, boolean, null: a set of literal JSON texts
	kAnyOf
)

type prop struct {
	name string
	node int32
}

type node struct {
	kind       nodeKind
	props      []prop   // kObject, sorted by name
	keys       []string // kObject: the JSON-encoded property names, same order
	required   uint64
	additional int32 // kObject: node of extra properties' values, or -1 for none
	items      int32 // kArray
	minItems   int
	maxItems   int      // -1: no limit
	lits       []string // kLit: JSON texts
	alts       []int32  // kAnyOf
	first      [4]uint64
}

// maxLits bounds enum sizes and property counts (sets are 64-bit masks).
const maxLits = 64

// Grammar is a compiled schema. It is immutable and safe for concurrent use.
type Grammar struct {
	nodes []node
	root  int32
	// nAnyObject and nAnyArray are the free-form containers an any value may open.
	nAnyObject, nAnyArray int32
}

// ErrUnsupported is wrapped by Compile's errors for schemas outside the supported subset.
var ErrUnsupported = fmt.Errorf("unsupported JSON schema")

// JSONObject returns the grammar of any JSON object (response_format json_object).
func JSONObject() *Grammar {
	g := &Grammar{}
	anyN := g.add(node{kind: kAny})
	g.root = g.add(node{kind: kObject, additional: anyN, maxItems: -1})
	g.finish()
	return g
}

// Compile compiles a JSON schema.
func Compile(schema []byte) (*Grammar, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(schema))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("the schema is not valid JSON: %v", err)
	}
	g := &Grammar{}
	root, err := g.compile(v, "#", 0)
	if err != nil {
		return nil, err
	}
	g.root = root
	g.finish()
	if err := g.checkAnyOf(); err != nil {
		return nil, err
	}
	return g, nil
}

func (g *Grammar) add(n node) int32 {
	g.nodes = append(g.nodes, n)
	return int32(len(g.nodes) - 1)
}

var annotations = map[string]bool{"title": true, "description": true, "default": true, "$schema": true, "examples": true, "$comment": true}

func unsupported(path, format string, args ...any) error {
	return fmt.Errorf("%w at %s: %s", ErrUnsupported, path, fmt.Sprintf(format, args...))
}

func (g *Grammar) compile(v any, path string, depth int) (int32, error) {
	if depth > 32 {
		return 0, unsupported(path, "the schema nests deeper than 32 levels")
	}
	switch s := v.(type) {
	case bool:
		if s {
			return g.add(node{kind: kAny}), nil
		}
		return 0, unsupported(path, "the schema false accepts nothing")
	case map[string]any:
		return g.compileObject(s, path, depth)
	}
	return 0, fmt.Errorf("%w at %s: a schema must be an object or a boolean", ErrUnsupported, path)
}

func encodeLit(v any) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	// DEL is the one byte JSON leaves unescaped that a vocabulary of printable characters
	// lacks; written \u007f, a literal holding it can be spelled by any such vocabulary.
	return strings.ReplaceAll(strings.TrimSuffix(buf.String(), "\n"), "\x7f", `\u007f`), nil
}

func (g *Grammar) compileObject(s map[string]any, path string, depth int) (int32, error) {
	known := map[string]bool{"type": true, "properties": true, "required": true, "additionalProperties": true, "items": true,
		"minItems": true, "maxItems": true, "enum": true, "const": true, "anyOf": true}
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !known[k] && !annotations[k] {
			return 0, unsupported(path, "the keyword %q is not supported", k)
		}
	}
	if c, ok := s["const"]; ok {
		lit, err := encodeLit(c)
		if err != nil {
			return 0, unsupported(path, "bad const")
		}
		return g.add(node{kind: kLit, lits: []string{lit}}), nil
	}
	if e, ok := s["enum"]; ok {
		list, ok := e.([]any)
		if !ok || len(list) == 0 || len(list) > maxLits {
			return 0, unsupported(path, "enum must be a list of 1 to %d values", maxLits)
		}
		n := node{kind: kLit}
		for _, x := range list {
			lit, err := encodeLit(x)
			if err != nil {
				return 0, unsupported(path, "bad enum value")
			}
			n.lits = append(n.lits, lit)
		}
		return g.add(n), nil
	}
	if a, ok := s["anyOf"]; ok {
		list, ok := a.([]any)
		if !ok || len(list) == 0 {
			return 0, unsupported(path, "anyOf must be a non-empty list")
		}
		n := node{kind: kAnyOf}
		for i, x := range list {
			id, err := g.compile(x, fmt.Sprintf("%s/anyOf/%d", path, i), depth+1)
			if err != nil {
				return 0, err
			}
			n.alts = append(n.alts, id)
		}
		for k := range s {
			if !annotations[k] && k != "anyOf" {
				return 0, unsupported(path, "anyOf cannot be combined with %q", k)
			}
		}
		return g.add(n), nil
	}
	var types []string
	switch t := s["type"].(type) {
	case nil:
		types = nil
	case string:
		types = []string{t}
	case []any:
		for _, x := range t {
			str, ok := x.(string)
			if !ok {
				return 0, unsupported(path, "type must be a string or a list of strings")
			}
			types = append(types, str)
		}
	default:
		return 0, unsupported(path, "type must be a string or a list of strings")
	}
	if len(types) == 0 {
		if _, ok := s["properties"]; ok {
			types = []string{"object"}
		} else if _, ok := s["items"]; ok {
			types = []string{"array"}
		} else {
			return g.add(node{kind: kAny}), nil
		}
	}
	if len(types) > 1 {
		n := node{kind: kAnyOf}
		for _, t := range types {
			sub := map[string]any{}
			for k, v := range s {
				sub[k] = v
			}
			sub["type"] = t
			id, err := g.compileObject(sub, path, depth+1)
			if err != nil {
				return 0, err
			}
			n.alts = append(n.alts, id)
		}
		return g.add(n), nil
	}
	only := func(allowed ...string) error {
		for k := range s {
			if known[k] && k != "type" && !contains(allowed, k) {
				return unsupported(path, "%q does not apply to type %s", k, types[0])
			}
		}
		return nil
	}
	switch types[0] {
	case "string":
		return g.add(node{kind: kString}), only()
	case "number":
		return g.add(node{kind: kNumber}), only()
	case "integer":
		return g.add(node{kind: kInteger}), only()
	case "boolean":
		return g.add(node{kind: kLit, lits: []string{"true", "false"}}), only()
	case "null":
		return g.add(node{kind: kLit, lits: []string{"null"}}), only()
	case "array":
		if err := only("items", "minItems", "maxItems"); err != nil {
			return 0, err
		}
		n := node{kind: kArray, maxItems: -1}
		if it, ok := s["items"]; ok {
			id, err := g.compile(it, path+"/items", depth+1)
			if err != nil {
				return 0, err
			}
			n.items = id
		} else {
			n.items = g.add(node{kind: kAny})
		}
		var err error
		if n.minItems, err = count(s, "minItems", 0); err != nil {
			return 0, unsupported(path, "%v", err)
		}
		if n.maxItems, err = count(s, "maxItems", -1); err != nil {
			return 0, unsupported(path, "%v", err)
		}
		if n.maxItems >= 0 && n.maxItems < n.minItems {
			return 0, unsupported(path, "maxItems is below minItems")
		}
		return g.add(n), nil
	case "object":
		if err := only("properties", "required", "additionalProperties"); err != nil {
			return 0, err
		}
		n := node{kind: kObject, additional: -1, maxItems: -1}
		props, _ := s["properties"].(map[string]any)
		if _, ok := s["properties"]; ok && props == nil {
			return 0, unsupported(path, "properties must be an object")
		}
		if len(props) > maxLits {
			return 0, unsupported(path, "more than %d properties", maxLits)
		}
		names := make([]string, 0, len(props))
		for k := range props {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, name := range names {
			id, err := g.compile(props[name], path+"/properties/"+name, depth+1)
			if err != nil {
				return 0, err
			}
			key, _ := encodeLit(name)
			n.props = append(n.props, prop{name: name, node: id})
			n.keys = append(n.keys, key)
		}
		if req, ok := s["required"]; ok {
			list, ok := req.([]any)
			if !ok {
				return 0, unsupported(path, "required must be a list of property names")
			}
			for _, r := range list {
				name, _ := r.(string)
				i := sort.SearchStrings(names, name)
				if i == len(names) || names[i] != name {
					return 0, unsupported(path, "required names %q, which is not among the properties", name)
				}
				n.required |= 1 << i
			}
		}
		switch ap := s["additionalProperties"].(type) {
		case nil:
			if len(props) == 0 {
				n.additional = g.add(node{kind: kAny})
			}
		case bool:
			if ap && len(props) == 0 {
				n.additional = g.add(node{kind: kAny})
			}
		case map[string]any:
			if len(props) > 0 {
				return 0, unsupported(path, "additionalProperties with a schema beside properties")
			}
			id, err := g.compile(ap, path+"/additionalProperties", depth+1)
			if err != nil {
				return 0, err
			}
			n.additional = id
		default:
			return 0, unsupported(path, "additionalProperties must be a boolean or a schema")
		}
		return g.add(n), nil
	}
	return 0, unsupported(path, "unknown type %q", types[0])
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func count(s map[string]any, key string, def int) (int, error) {
	v, ok := s[key]
	if !ok {
		return def, nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return 0, fmt.Errorf("%s must be a non-negative integer", key)
	}
	i, err := n.Int64()
	if err != nil || i < 0 || i > 1<<20 {
		return 0, fmt.Errorf("%s must be a non-negative integer", key)
	}
	return int(i), nil
}

// finish computes each node's first-byte set and checks that anyOf alternatives can be told
// apart by their first byte.
func (g *Grammar) finish() {
	anyN := g.add(node{kind: kAny})
	g.nAnyObject = g.add(node{kind: kObject, additional: anyN, maxItems: -1})
	g.nAnyArray = g.add(node{kind: kArray, items: anyN, maxItems: -1})
	for i := range g.nodes {
		g.nodes[i].first = g.firstSet(int32(i), 0)
	}
}

func setBit(s *[4]uint64, b byte) { s[b>>6] |= 1 << (b & 63) }

func hasBit(s *[4]uint64, b byte) bool { return s[b>>6]&(1<<(b&63)) != 0 }

func (g *Grammar) firstSet(id int32, depth int) [4]uint64 {
	var s [4]uint64
	n := &g.nodes[id]
	switch n.kind {
	case kAny:
		for _, b := range []byte(`{["-0123456789tfn`) {
			setBit(&s, b)
		}
	case kObject:
		setBit(&s, '{')
	case kArray:
		setBit(&s, '[')
	case kString:
		setBit(&s, '"')
	case kNumber, kInteger:
		for _, b := range []byte("-0123456789") {
			setBit(&s, b)
		}
	case kLit:
		for _, l := range n.lits {
			setBit(&s, l[0])
		}
	case kAnyOf:
		if depth > 64 {
			return s
		}
		for _, a := range n.alts {
			f := g.firstSet(a, depth+1)
			for i := range s {
				s[i] |= f[i]
			}
		}
	}
	return s
}

// checkAnyOf reports an anyOf whose alternatives overlap in their first byte.
func (g *Grammar) checkAnyOf() error {
	for i := range g.nodes {
		n := &g.nodes[i]
		if n.kind != kAnyOf {
			continue
		}
		var seen [4]uint64
		for _, a := range n.alts {
			f := g.nodes[a].first
			for j := range f {
				if seen[j]&f[j] != 0 {
					return fmt.Errorf("%w: anyOf alternatives that can start with the same character (two objects, two strings, a number and an integer, ...)", ErrUnsupported)
				}
				seen[j] |= f[j]
			}
		}
	}
	return nil
}
