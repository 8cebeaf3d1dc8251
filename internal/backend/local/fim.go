package local

import (
	"github.com/open-autoglm/autoglm/api"
	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/engine/tokenizer"
)

// fimPrompts builds fill-in-the-middle prompts from text prompts (the prefixes) and suffix,
// with the model's FIM tokens.
func (b *Backend) fimPrompts(in api.Input, suffix string) ([][]int32, error) {
	fim, ok := b.r.FIM()
	if !ok {
		return nil, &apierr.Error{Kind: apierr.Invalid, Code: apierr.CodeFIMUnsupported, Param: "suffix",
			Message: "this model has no fill-in-the-middle tokens; suffix needs a code model such as Qwen2.5-Coder, DeepSeek-Coder, StarCoder or CodeLlama"}
	}
	if len(in.Tokens) > 0 {
		return nil, invalid("suffix", "suffix needs text prompts, not token arrays")
	}
	tok := b.r.Tokenizer()
	var bos []int32
	if tok.AddBOS() && tok.BOS() >= 0 {
		bos = []int32{tok.BOS()}
	}
	// Text is encoded without parsing special-token text, so code containing "<|fim_...|>"
	// cannot forge the structure.
	opts := tokenizer.EncodeOptions{}
	suf := tok.Encode(suffix, opts)
	out := make([][]int32, 0, len(in.Texts))
	for _, prefix := range in.Texts {
		out = append(out, fim.Prompt(bos, tok.Encode(prefix, opts), suf))
	}
	return out, nil
}
