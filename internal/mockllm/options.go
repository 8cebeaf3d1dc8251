package mockllm

import (
	"errors"
	"fmt"
	"time"
)

// Options configure a [Server]. The zero value is usable: it answers at
// once, never fails and requires no API key.
type Options struct {
	// TTFT delays the first token of every generation. Default 0.
	TTFT time.Duration
	// ITL delays every token after the first. Default 0.
	ITL time.Duration
	// Tokens is the number of tokens (words) generated per choice when
	// max_tokens does not cap it. Default 16.
	Tokens int
	// FailRate is the fraction of generation and embedding requests answered
	// with 500 in OpenAI's error shape, in [0, 1]. Default 0.
	FailRate float64
	// Seed seeds the text, the embeddings and the failure draws. Default 0.
	Seed int64
	// APIKey, when set, is required as "Authorization: Bearer <key>" on the
	// /v1 routes; other requests get 401. Default "" (no check).
	APIKey string
	// Models are the ids listed by /v1/models. Default ["mock-model"].
	// Generation requests may name any model; the name is echoed.
	Models []string
	// EmbeddingDim is the length of embedding vectors when the request does
	// not ask for "dimensions". Default 8.
	EmbeddingDim int
	// ToolCalls answers chat requests that offer function tools with a call of one of them
	// (see tools.go). Default false: tools are ignored and the answer is text.
	ToolCalls bool
}

// Limits on what a request may ask for, so that a bad request cannot make
// the mock allocate without bound.
const (
	maxChoices    = 128
	maxDimensions = 65536
	maxBodyBytes  = 32 << 20
)

// WithDefaults returns a copy of o with zero fields set to their defaults
// and out-of-range ones clamped.
func (o Options) WithDefaults() Options {
	if o.Tokens <= 0 {
		o.Tokens = 16
	}
	if len(o.Models) == 0 {
		o.Models = []string{"mock-model"}
	} else {
		o.Models = append([]string(nil), o.Models...)
	}
	if o.EmbeddingDim <= 0 {
		o.EmbeddingDim = 8
	}
	if o.EmbeddingDim > maxDimensions {
		o.EmbeddingDim = maxDimensions
	}
	o.FailRate = min(max(o.FailRate, 0), 1)
	o.TTFT = max(o.TTFT, 0)
	o.ITL = max(o.ITL, 0)
	return o
}

// Validate reports the first field that is out of range. [New] clamps such
// values instead; Validate is for command lines that should reject them.
func (o Options) Validate() error {
	switch {
	case o.TTFT < 0:
		return fmt.Errorf("mockllm: TTFT %v is negative", o.TTFT)
	case o.ITL < 0:
		return fmt.Errorf("mockllm: ITL %v is negative", o.ITL)
	case o.Tokens < 0:
		return fmt.Errorf("mockllm: Tokens %d is negative", o.Tokens)
	case !(o.FailRate >= 0 && o.FailRate <= 1):
		return fmt.Errorf("mockllm: FailRate %v is outside [0, 1]", o.FailRate)
	case o.EmbeddingDim < 0 || o.EmbeddingDim > maxDimensions:
		return fmt.Errorf("mockllm: EmbeddingDim %d is outside [0, %d]", o.EmbeddingDim, maxDimensions)
	}
	for i, m := range o.Models {
		if m == "" {
			return errors.New("mockllm: Models[" + fmt.Sprint(i) + "] is empty")
		}
	}
	return nil
}
