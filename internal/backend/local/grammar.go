package local

import (
	"encoding/json"
	"errors"
	"sync"

	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/engine/grammar"
	"github.com/open-autoglm/autoglm/internal/engine/tokenizer"
)

// constraints holds what grammar-constrained output needs per model: the vocabulary trie
// (built on first use, a fraction of a second for 150k tokens) and compiled constraints by
// schema text, whose mask caches then serve later requests with the same schema.
type constraints struct {
	once  sync.Once
	vocab *grammar.Vocab

	mu     sync.Mutex
	byText map[string]*grammar.Constraint
}

// maxConstraints bounds the compiled schemas kept per model.
const maxConstraints = 64

func (b *Backend) grammarVocab() *grammar.Vocab {
	c := &b.cons
	c.once.Do(func() {
		tok := b.r.Tokenizer()
		n := tok.VocabSize()
		pieces := make([]string, n)
		var eog []int32
		for id := range int32(n) {
			if tok.IsEOG(id) {
				eog = append(eog, id)
				continue
			}
			if tok.IsControl(id) {
				continue
			}
			pieces[id] = tok.DecodeWith([]int32{id}, tokenizer.DecodeOptions{Continuation: true})
		}
		c.vocab = grammar.NewVocab(pieces, eog)
	})
	return c.vocab
}

// responseFormat is the chat API's response_format.
type responseFormat struct {
	Type       string `json:"type"`
	JSONSchema *struct {
		Name   string          `json:"name"`
		Schema json.RawMessage `json:"schema"`
		Strict *bool           `json:"strict"`
	} `json:"json_schema"`
}

// constraintFor compiles a response_format: nil for text (or none).
func (b *Backend) constraintFor(raw json.RawMessage) (*grammar.Constraint, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var rf responseFormat
	if err := json.Unmarshal(raw, &rf); err != nil {
		return nil, invalid("response_format", "response_format must be an object with a type")
	}
	var key string
	var schema []byte
	switch rf.Type {
	case "text":
		return nil, nil
	case "json_object":
		key = "json_object"
	case "json_schema":
		if rf.JSONSchema == nil || len(rf.JSONSchema.Schema) == 0 {
			return nil, invalid("response_format", "json_schema needs json_schema.schema")
		}
		schema = rf.JSONSchema.Schema
		key = "schema:" + string(schema)
	default:
		return nil, invalid("response_format", "response_format.type must be text, json_object or json_schema")
	}
	return b.compiled(key, schema)
}

// compiled returns the constraint of a schema (nil schema: any JSON object), from the cache
// when it was compiled before.
func (b *Backend) compiled(key string, schema []byte) (*grammar.Constraint, error) {
	c := &b.cons
	c.mu.Lock()
	if k, ok := c.byText[key]; ok {
		c.mu.Unlock()
		return k, nil
	}
	c.mu.Unlock()
	var (
		g   *grammar.Grammar
		err error
	)
	if schema == nil {
		g = grammar.JSONObject()
	} else if g, err = grammar.Compile(schema); err != nil {
		if errors.Is(err, grammar.ErrUnsupported) {
			return nil, &apierr.Error{Kind: apierr.Invalid, Code: apierr.CodeUnsupportedSchema, Param: "response_format", Message: err.Error()}
		}
		return nil, invalid("response_format", "%v", err)
	}
	k := grammar.NewConstraint(g, b.grammarVocab())
	c.mu.Lock()
	if c.byText == nil || len(c.byText) >= maxConstraints {
		c.byText = map[string]*grammar.Constraint{}
	}
	c.byText[key] = k
	c.mu.Unlock()
	return k, nil
}
