package grammar

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
)

// validate checks v (decoded with UseNumber) against the supported schema subset.
func validate(schema any, v any) error {
	s, ok := schema.(map[string]any)
	if !ok {
		if schema == true {
			return nil
		}
		return fmt.Errorf("schema %v", schema)
	}
	if c, ok := s["const"]; ok {
		return equalJSON(c, v)
	}
	if e, ok := s["enum"]; ok {
		for _, x := range e.([]any) {
			if equalJSON(x, v) == nil {
				return nil
			}
		}
		return fmt.Errorf("%v not in enum", v)
	}
	if a, ok := s["anyOf"]; ok {
		for _, alt := range a.([]any) {
			if validate(alt, v) == nil {
				return nil
			}
		}
		return fmt.Errorf("%v matches no alternative", v)
	}
	var types []string
	switch t := s["type"].(type) {
	case string:
		types = []string{t}
	case []any:
		for _, x := range t {
			types = append(types, x.(string))
		}
	}
	if len(types) == 0 {
		if _, ok := s["properties"]; ok {
			types = []string{"object"}
		}
	}
	if len(types) == 0 {
		return nil
	}
	var errs []string
	for _, t := range types {
		if err := validateType(s, t, v); err == nil {
			return nil
		} else {
			errs = append(errs, err.Error())
		}
	}
	return fmt.Errorf("%s", strings.Join(errs, "; "))
}

func validateType(s map[string]any, t string, v any) error {
	switch t {
	case "string":
		if _, ok := v.(string); !ok {
			return fmt.Errorf("%v is not a string", v)
		}
	case "number":
		if _, ok := v.(json.Number); !ok {
			return fmt.Errorf("%v is not a number", v)
		}
	case "integer":
		n, ok := v.(json.Number)
		if !ok {
			return fmt.Errorf("%v is not an integer", v)
		}
		if _, err := n.Int64(); err != nil && !bigInteger(n.String()) {
			return fmt.Errorf("%v is not an integer", v)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%v is not a boolean", v)
		}
	case "null":
		if v != nil {
			return fmt.Errorf("%v is not null", v)
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%v is not an array", v)
		}
		if m, ok := s["minItems"].(json.Number); ok {
			if n, _ := m.Int64(); int64(len(a)) < n {
				return fmt.Errorf("too few items")
			}
		}
		if m, ok := s["maxItems"].(json.Number); ok {
			if n, _ := m.Int64(); int64(len(a)) > n {
				return fmt.Errorf("too many items")
			}
		}
		if it, ok := s["items"]; ok {
			for _, x := range a {
				if err := validate(it, x); err != nil {
					return err
				}
			}
		}
	case "object":
		o, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%v is not an object", v)
		}
		props, _ := s["properties"].(map[string]any)
		for _, r := range s["required"].([]any) {
			if _, ok := o[r.(string)]; !ok {
				return fmt.Errorf("missing %v", r)
			}
		}
		for k, x := range o {
			if ps, ok := props[k]; ok {
				if err := validate(ps, x); err != nil {
					return err
				}
				continue
			}
			if len(props) > 0 || s["additionalProperties"] == false {
				return fmt.Errorf("extra property %q", k)
			}
			if ap, ok := s["additionalProperties"].(map[string]any); ok {
				if err := validate(ap, x); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func bigInteger(s string) bool { return !strings.ContainsAny(s, ".eE") }

func equalJSON(a, b any) error {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	if !bytes.Equal(x, y) {
		return fmt.Errorf("%s != %s", x, y)
	}
	return nil
}

func decode(t testing.TB, text string) any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%q does not parse: %v", text, err)
	}
	if dec.More() {
		t.Fatalf("%q has trailing data", text)
	}
	return v
}

func schemaOf(t testing.TB, s string) any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	if m, ok := v.(map[string]any); ok {
		fillRequired(m)
	}
	return v
}

// fillRequired gives every object schema a required list, so validate can range over it.
func fillRequired(m map[string]any) {
	if _, ok := m["required"]; !ok {
		m["required"] = []any{}
	}
	for _, k := range []string{"properties"} {
		if ps, ok := m[k].(map[string]any); ok {
			for _, p := range ps {
				if pm, ok := p.(map[string]any); ok {
					fillRequired(pm)
				}
			}
		}
	}
	for _, k := range []string{"items", "additionalProperties"} {
		if pm, ok := m[k].(map[string]any); ok {
			fillRequired(pm)
		}
	}
	if a, ok := m["anyOf"].([]any); ok {
		for _, x := range a {
			if pm, ok := x.(map[string]any); ok {
				fillRequired(pm)
			}
		}
	}
}

const personSchema = `{"type":"object","properties":{
	"name":{"type":"string"},
	"age":{"type":"integer"},
	"score":{"type":"number"},
	"tags":{"type":"array","items":{"type":"string","enum":["a","b","c d"]},"maxItems":3},
	"kind":{"const":"person"},
	"ok":{"type":"boolean"},
	"nick":{"anyOf":[{"type":"string"},{"type":"null"}]},
	"address":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false}
},"required":["name","age","kind"],"additionalProperties":false}`

func TestAcceptsAndRefuses(t *testing.T) {
	cases := []struct {
		schema string
		good   []string
		bad    []string // refused at some byte, or incomplete at the end
	}{
		{personSchema,
			[]string{`{"name":"Ann","age":30,"kind":"person"}`,
				`{ "kind" : "person", "age": -1, "name": "A\"\u00e9\n", "tags": ["c d","a"], "ok": true, "nick": null, "score": 1.5e-3, "address": {"city": "Oslo"} }`,
				"{\n  \"name\": \"x\",\n  \"age\": 0,\n  \"kind\": \"person\",\n  \"nick\": \"y\"\n}"},
			[]string{`{"name":"Ann","age":30}`, `{"name":"Ann","age":3.5,"kind":"person"}`, `{"name":"Ann","age":30,"kind":"people"}`,
				`{"name":"Ann","age":30,"kind":"person","extra":1}`, `{"name":"Ann","name":"B","age":1,"kind":"person"}`,
				`{"name":"Ann","age":01,"kind":"person"}`, `{"name":"A` + "\n" + `","age":1,"kind":"person"}`,
				`{"name":"Ann","age":30,"kind":"person","tags":["a","a","a","a"]}`, `{"name":"Ann","age":30,"kind":"person"} x`,
				`{"name":"Ann","age":30,"kind":"person","address":{}}`, `[1]`, `{"name":"Ann","age":30,"kind":"person",}`}},
		{`{"type":"array","items":{"type":"integer"},"minItems":2}`, []string{`[1,2]`, `[ 1 , -20 , 3 ]`}, []string{`[]`, `[1]`, `[1.0,2]`, `[1,2`}},
		{`{"type":["number","null"]}`, []string{`12`, `-0.5`, `null`, `1E+9`}, []string{`1.`, `-`, `nul`, `"1"`, `+1`, `.5`}},
		{`{"enum":["red",1,10,true,null,{"a":1}]}`, []string{`"red"`, `1`, `10`, `true`, `null`, `{"a":1}`}, []string{`"re"`, `100`, `false`, `{"a":2}`}},
		{`{"type":"object","additionalProperties":{"type":"integer"}}`, []string{`{}`, `{"x":1,"y":2}`}, []string{`{"x":"1"}`}},
		{`{}`, []string{`{"a":[1,{"b":null}],"c":"d"}`, `"s"`, `[true,false]`, `-1.5e3`}, []string{`{"a":}`, `[1,]`, `tru`}},
	}
	for _, tc := range cases {
		g, err := Compile([]byte(tc.schema))
		if err != nil {
			t.Fatalf("%s: %v", tc.schema, err)
		}
		c := NewConstraint(g, NewVocab([]string{"x"}, nil))
		sch := schemaOf(t, tc.schema)
		for _, text := range tc.good {
			st := c.Start()
			if !st.AcceptBytes(text) || !st.Done() {
				t.Errorf("%s: refused %q", tc.schema, text)
				continue
			}
			if err := validate(sch, decode(t, text)); err != nil {
				t.Errorf("test validator disagrees on %q: %v", text, err)
			}
		}
		for _, text := range tc.bad {
			st := c.Start()
			if st.AcceptBytes(text) && st.Done() {
				t.Errorf("%s: accepted %q", tc.schema, text)
			}
		}
	}
}

func TestCompileRefusesUnsupported(t *testing.T) {
	for _, s := range []string{
		`{"type":"string","pattern":"^a"}`, `{"type":"string","format":"date"}`, `{"$ref":"#/$defs/x"}`,
		`{"oneOf":[{"type":"string"}]}`, `{"type":"integer","minimum":1}`, `{"anyOf":[{"type":"object"},{"type":"object","properties":{"a":{}}}]}`,
		`{"type":"object","required":["a"]}`, `{"type":"strin"}`, `{"enum":[]}`, `false`, `[1]`, `{"type":"string","items":{}}`,
	} {
		if _, err := Compile([]byte(s)); err == nil {
			t.Errorf("%s compiled", s)
		}
	}
}

// testVocab is a vocabulary of JSON-ish pieces: single bytes, and longer pieces like the
// ones BPE vocabularies have ("\":", " \"", "true", digits runs, words).
func testVocab(r *rand.Rand, n int) []string {
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for b := 0x20; b < 0x7f; b++ {
		add(string(rune(b)))
	}
	// Byte tokens above ASCII, as byte-level BPE vocabularies have: a literal with
	// "é" in it is spelled \xc3 then \xa9.
	for b := 0x80; b <= 0xff; b++ {
		add(string([]byte{byte(b)}))
	}
	for _, s := range []string{"\n", "\t", "\":", "\": ", " \"", "\",", "\", \"", "{\"", "\"}", "},", "[\"", "\"]", "true", "false", "null",
		"name", "age", "kind", "person", "tags", "score", "nick", "address", "city", "ok", "\\n", "\\u00", "12", "0.", "e-", "  ", "\n  ", "c d", "\"c d\""} {
		add(s)
	}
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789 \":{},[]-.\\e"
	for len(out) < n {
		l := 1 + r.IntN(6)
		b := make([]byte, l)
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		add(string(b))
	}
	return out
}

// generate samples from random logits under the mask until the end token.
func generate(t testing.TB, c *Constraint, pieces []string, eos int32, r *rand.Rand, maxTokens int) (string, bool) {
	st := c.Start()
	var out strings.Builder
	logits := make([]float32, len(pieces))
	for range maxTokens {
		for i := range logits {
			logits[i] = float32(r.NormFloat64())
		}
		// Lean towards ending so that outputs stay short.
		logits[eos] += 2
		st.Mask(logits)
		best, bestV := -1, float32(math.Inf(-1))
		for i, v := range logits {
			if v > bestV {
				best, bestV = i, v
			}
		}
		if best < 0 {
			t.Fatalf("the mask left no token after %q", out.String())
		}
		if int32(best) == eos {
			if st.Done() {
				return out.String(), true
			}
			// The end of an unfinished output is allowed only in a dead end: the
			// vocabulary cannot spell any continuation, and the mask left nothing else.
			for i, v := range logits {
				if i != int(eos) && !math.IsInf(float64(v), -1) {
					t.Fatalf("the mask allowed the end after the unfinished %q beside token %q", out.String(), pieces[i])
				}
			}
			return out.String(), false
		}
		st.Accept(int32(best))
		out.WriteString(pieces[best])
	}
	return out.String(), false
}

func TestGeneratedOutputValidates(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	pieces := append(testVocab(r, 2000), "") // the last id is the end token
	eos := int32(len(pieces) - 1)
	v := NewVocab(pieces, []int32{eos})
	for _, schema := range []string{personSchema, `{"type":"array","items":{"type":"integer"},"minItems":1,"maxItems":4}`,
		`{"type":"object","properties":{"a":{"type":"array","items":{"type":"object","properties":{"b":{"type":["string","null"]}},"required":["b"],"additionalProperties":false}}},"required":["a"],"additionalProperties":false}`} {
		g, err := Compile([]byte(schema))
		if err != nil {
			t.Fatal(err)
		}
		c := NewConstraint(g, v)
		sch := schemaOf(t, schema)
		ended := 0
		for i := range 20 {
			text, ok := generate(t, c, pieces, eos, r, 400)
			if !ok {
				continue // ran out of tokens: the output is a valid prefix only
			}
			ended++
			if err := validate(sch, decode(t, text)); err != nil {
				t.Errorf("run %d: %q: %v", i, text, err)
			}
		}
		if ended < 5 {
			t.Errorf("%s: only %d of 20 runs ended", schema, ended)
		}
	}
	// json_object: any object.
	c := NewConstraint(JSONObject(), v)
	for range 20 {
		if text, ok := generate(t, c, pieces, eos, r, 400); ok {
			if _, isObj := decode(t, text).(map[string]any); !isObj {
				t.Errorf("%q is not an object", text)
			}
		}
	}
}

// FuzzGrammar compiles fuzzed schemas and walks fuzzed token choices through the mask:
// whatever is chosen among the allowed tokens, a finished output parses and validates.
func FuzzGrammar(f *testing.F) {
	f.Add([]byte(personSchema), uint64(1))
	f.Add([]byte(`{"type":"array","items":{"enum":[1,"a",null]}}`), uint64(2))
	f.Add([]byte(`{"anyOf":[{"type":"integer"},{"type":"string"}]}`), uint64(3))
	f.Add([]byte(`{}`), uint64(4))
	f.Add([]byte(`{"type":"object","additionalProperties":{"type":"boolean"}}`), uint64(5))
	r0 := rand.New(rand.NewPCG(7, 7))
	pieces := append(testVocab(r0, 600), "")
	eos := int32(len(pieces) - 1)
	v := NewVocab(pieces, []int32{eos})
	f.Fuzz(func(t *testing.T, schema []byte, seed uint64) {
		g, err := Compile(schema)
		if err != nil {
			return
		}
		c := NewConstraint(g, v)
		r := rand.New(rand.NewPCG(seed, 1))
		text, ok := generate(t, c, pieces, eos, r, 120)
		if !ok {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(schema))
		dec.UseNumber()
		var sch any
		if dec.Decode(&sch) != nil {
			t.Fatal("compiled a schema that does not parse")
		}
		if m, ok := sch.(map[string]any); ok {
			fillRequiredDeep(m)
		}
		if err := validate(sch, decode(t, text)); err != nil {
			t.Fatalf("schema %s: output %q: %v", schema, text, err)
		}
	})
}

// fillRequiredDeep adds empty required lists everywhere a fuzzed schema nests.
func fillRequiredDeep(m map[string]any) {
	if _, ok := m["required"]; !ok {
		m["required"] = []any{}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch x := m[k].(type) {
		case map[string]any:
			if k == "properties" {
				for _, p := range x {
					if pm, ok := p.(map[string]any); ok {
						fillRequiredDeep(pm)
					}
				}
			} else if k != "const" && k != "enum" {
				fillRequiredDeep(x)
			}
		case []any:
			if k == "anyOf" {
				for _, p := range x {
					if pm, ok := p.(map[string]any); ok {
						fillRequiredDeep(pm)
					}
				}
			}
		}
	}
}

// TestStringFastPathMatchesTrie: inside a string the mask is computed from the plain-token
// set and the special tokens; it must equal what the full trie search finds.
func TestStringFastPathMatchesTrie(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	pieces := append(testVocab(r, 2000), "a\"b", "\"}", "\\n\"", "\x01", "\"\n", "\",\"age\":")
	v := NewVocab(pieces, nil)
	g, err := Compile([]byte(personSchema))
	if err != nil {
		t.Fatal(err)
	}
	c := NewConstraint(g, v)
	for _, prefix := range []string{`{"name":"A`, `{"name": "x", "nick": "`, `{"name":"`, `{"name":"x","age":1,"kind":"person","tags":["a"],"address":{"city":"O`} {
		st := c.Start()
		if !st.AcceptBytes(prefix) {
			t.Fatalf("%q refused", prefix)
		}
		fast := c.m.allowed(st.st)
		slow := make([]uint64, len(fast))
		c.m.walk(st.st, slow)
		for i := range fast {
			if fast[i] != slow[i] {
				t.Errorf("%q: masks differ in word %d: %064b vs %064b", prefix, i, fast[i], slow[i])
				break
			}
		}
	}
}

// FuzzAcceptBytes feeds arbitrary text to the parser under a fixed schema: whenever the
// parser accepts all of it and says it is complete, the text parses and validates.
func FuzzAcceptBytes(f *testing.F) {
	for _, s := range []string{`{"name":"Ann","age":30,"kind":"person"}`, `{"name":"A\"\u00e9","age":-1,"kind":"person","tags":["c d"],"ok":false,"nick":null,"score":1e5,"address":{"city":""}}`,
		`{"name":"x","age":0,"kind":"person","score":-0.0}`, `{"age":1}`, `{"name":"\ud83d\ude00","age":2,"kind":"person"}`} {
		f.Add(s)
	}
	g, err := Compile([]byte(personSchema))
	if err != nil {
		f.Fatal(err)
	}
	c := NewConstraint(g, NewVocab([]string{"x"}, nil))
	sch := schemaOf(f, personSchema)
	f.Fuzz(func(t *testing.T, text string) {
		st := c.Start()
		if !st.AcceptBytes(text) || !st.Done() {
			return
		}
		dec := json.NewDecoder(strings.NewReader(text))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil || dec.More() {
			t.Fatalf("accepted %q, which does not parse: %v", text, err)
		}
		if err := validate(sch, v); err != nil {
			t.Fatalf("accepted %q, which does not validate: %v", text, err)
		}
	})
}

// TestDeadEndEnds: when the vocabulary cannot spell the rest of a literal (no token holds
// the byte "é" starts with), the mask leaves the end token alone rather than nothing, and
// the state reports the output incomplete.
func TestDeadEndEnds(t *testing.T) {
	pieces := []string{"\"", "a", "b", ""}
	eos := int32(3)
	g, err := Compile([]byte(`{"enum":["é","ab"]}`))
	if err != nil {
		t.Fatal(err)
	}
	c := NewConstraint(g, NewVocab(pieces, []int32{eos}))
	st := c.Start()
	st.Accept(0) // `"`: "é" and "ab" both still possible
	st.Accept(1) // `"a`
	logits := []float32{1, 1, 1, 1}
	st.Mask(logits)
	if !math.IsInf(float64(logits[0]), -1) || !math.IsInf(float64(logits[1]), -1) || math.IsInf(float64(logits[2]), -1) {
		t.Fatalf("after \"a the mask is %v; want only b", logits)
	}

	st = c.Start()
	st.Accept(0)
	if !st.AcceptBytes("\xc3") {
		t.Fatal("the grammar refused the first byte of é")
	}
	logits = []float32{1, 1, 1, 1}
	st.Mask(logits)
	for id, l := range logits {
		if (id == int(eos)) == math.IsInf(float64(l), -1) {
			t.Fatalf("in a dead end the mask is %v; want the end token only", logits)
		}
	}
	if st.Done() {
		t.Fatal("a literal cut short reports Done")
	}
}

// TestDELLiteral: JSON leaves DEL unescaped, and a vocabulary of printable characters has no
// token for it; the literal is written \u007f, so such a vocabulary spells it to the end
// (found by CI's fuzz stage with {"enum":["\x7f"]}).
func TestDELLiteral(t *testing.T) {
	g, err := Compile([]byte("{\"enum\":[\"a\x7f\"]}"))
	if err != nil {
		t.Fatal(err)
	}
	var pieces []string
	for b := 0x20; b < 0x7f; b++ {
		pieces = append(pieces, string(rune(b)))
	}
	st := NewConstraint(g, NewVocab(pieces, nil)).Start()
	if !st.AcceptBytes(`"a\u007f"`) || !st.Done() {
		t.Fatal(`"a\u007f" is not a finished output`)
	}
}
