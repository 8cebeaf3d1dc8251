package tokenizer

import (
	"fmt"
	"slices"

	"github.com/open-autoglm/autoglm/internal/engine/gguf"
)

// GGUF metadata keys read by FromGGUF.
const (
	keyModel       = "tokenizer.ggml.model"
	keyPre         = "tokenizer.ggml.pre"
	keyTokens      = "tokenizer.ggml.tokens"
	keyScores      = "tokenizer.ggml.scores"
	keyTypes       = "tokenizer.ggml.token_type"
	keyMerges      = "tokenizer.ggml.merges"
	keyBOS         = "tokenizer.ggml.bos_token_id"
	keyEOS         = "tokenizer.ggml.eos_token_id"
	keyEOT         = "tokenizer.ggml.eot_token_id"
	keyEOM         = "tokenizer.ggml.eom_token_id"
	keyUNK         = "tokenizer.ggml.unknown_token_id"
	keyPAD         = "tokenizer.ggml.padding_token_id"
	keyAddBOS      = "tokenizer.ggml.add_bos_token"
	keyAddEOS      = "tokenizer.ggml.add_eos_token"
	keySpacePrefix = "tokenizer.ggml.add_space_prefix"
)

// eotTexts name end-of-turn tokens, for files that do not say which token
// that is (llama.cpp guesses the same way).
var eotTexts = []string{
	"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
	"<|end_of_text|>", "<EOT>", "_<EOT>", "<｜end▁of▁sentence｜>",
}

// FromGGUF builds the tokenizer described by a GGUF file's tokenizer.ggml.*
// metadata, filling in what the file leaves out as llama.cpp does:
//
//   - "llama": BOS 1, EOS 2, UNK 0, AddBOS and AddSpacePrefix on.
//   - "gpt2": BOS and EOS 11 (GPT-2's historical default), no space prefix;
//     Llama 3 pre-tokenizers also turn on AddBOS and IgnoreMerges; GLM-4
//     ("chatglm-bpe", "glm4") has no BOS.
//
// Ids and flags present in the file override these defaults; an id outside
// the vocabulary (0xFFFFFFFF is common for "none") is ignored. Without an
// end-of-turn id, one is guessed from token texts such as "<|eot_id|>" and
// "<|im_end|>", and tokens that end a generation are treated as control tokens
// even if the file calls them normal, so that they are not printed.
func FromGGUF(f *gguf.File) (*Tokenizer, error) {
	model, ok := f.String(keyModel)
	if !ok {
		return nil, fmt.Errorf("tokenizer: GGUF has no %s", keyModel)
	}
	tokens, ok := f.Strings(keyTokens)
	if !ok || len(tokens) == 0 {
		return nil, fmt.Errorf("tokenizer: GGUF has no %s", keyTokens)
	}
	v := Vocab{Model: model, Tokens: tokens, BOS: -1, EOS: -1, UNK: -1, PAD: -1, EOT: -1}
	v.Pre, _ = f.String(keyPre)
	if _, present := f.Lookup(keyScores); present {
		if v.Scores, ok = f.Float32s(keyScores); !ok {
			return nil, fmt.Errorf("tokenizer: %s is not a float array", keyScores)
		}
	}
	if _, present := f.Lookup(keyTypes); present {
		if v.Types, ok = f.Int32s(keyTypes); !ok {
			return nil, fmt.Errorf("tokenizer: %s is not an integer array", keyTypes)
		}
		if len(v.Types) != len(tokens) { // checked here too: types are edited below
			return nil, fmt.Errorf("tokenizer: %d token types for %d tokens", len(v.Types), len(tokens))
		}
	}

	switch model {
	case "llama":
		v.BOS, v.EOS, v.UNK = 1, 2, 0
		v.AddBOS, v.AddSpacePrefix = true, true
	case "gpt2":
		if v.Merges, ok = f.Strings(keyMerges); !ok {
			return nil, fmt.Errorf("tokenizer: GGUF has no %s", keyMerges)
		}
		v.BOS, v.EOS = 11, 11
		switch v.Pre {
		case "llama3", "llama-v3", "llama-bpe", "falcon3":
			v.AddBOS, v.IgnoreMerges = true, true
		case "chatglm-bpe", "glm4":
			v.BOS = -1
		}
	default:
		return nil, fmt.Errorf("tokenizer: unsupported tokenizer model %q (supported: llama, gpt2)", model)
	}

	n := uint64(len(tokens))
	for _, id := range []*int32{&v.BOS, &v.EOS, &v.UNK} {
		if *id >= 0 && uint64(*id) >= n {
			*id = -1 // a default that a small vocabulary does not have
		}
	}
	for _, s := range []struct {
		key string
		id  *int32
	}{{keyBOS, &v.BOS}, {keyEOS, &v.EOS}, {keyEOT, &v.EOT}, {keyUNK, &v.UNK}, {keyPAD, &v.PAD}} {
		if u, ok := f.Uint(s.key); ok && u < n {
			*s.id = int32(u)
		}
	}
	if u, ok := f.Uint(keyEOM); ok && u < n {
		v.EOG = append(v.EOG, int32(u))
	}
	for _, s := range []struct {
		key string
		val *bool
	}{{keyAddBOS, &v.AddBOS}, {keyAddEOS, &v.AddEOS}, {keySpacePrefix, &v.AddSpacePrefix}} {
		if b, ok := f.Bool(s.key); ok {
			*s.val = b
		}
	}
	// Asking for a token the vocabulary does not have cannot be honoured;
	// llama.cpp would abort at the first Encode.
	v.AddBOS = v.AddBOS && v.BOS >= 0
	v.AddEOS = v.AddEOS && v.EOS >= 0

	found := findTexts(tokens, eotTexts, eogTexts, glmEOGTexts)
	lookup := func(s string) (int32, bool) { id, ok := found[s]; return id, ok }
	if v.EOT < 0 {
		for _, s := range eotTexts {
			if id, ok := found[s]; ok {
				v.EOT = id
				break
			}
		}
	}
	if eog := endOfGeneration(v, lookup); len(eog) > 0 {
		if v.Types == nil {
			v.Types = slices.Repeat([]int32{TypeNormal}, len(tokens))
		} else {
			v.Types = slices.Clone(v.Types) // shared with the File
		}
		for _, id := range eog {
			v.Types[id] = TypeControl
		}
	}

	return New(v)
}

// findTexts returns the first id of each of the given texts that the
// vocabulary has, in one pass over it.
func findTexts(tokens []string, lists ...[]string) map[string]int32 {
	want := map[string]bool{}
	for _, l := range lists {
		for _, s := range l {
			want[s] = true
		}
	}
	found := map[string]int32{}
	for i, s := range tokens {
		if _, dup := found[s]; want[s] && !dup {
			found[s] = int32(i)
		}
	}
	return found
}
