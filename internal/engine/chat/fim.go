package chat

// FIM is a model's fill-in-the-middle convention: the prompt is
//
//	[BOS] Prefix-token <prefix text> Suffix-token <suffix text> Middle-token
//
// and the model writes the middle, ending with an end-of-generation token. Qwen2.5-Coder
// (<|fim_prefix|>, <|fim_suffix|>, <|fim_middle|>), DeepSeek-Coder (<｜fim▁begin｜>,
// <｜fim▁hole｜>, <｜fim▁end｜>), StarCoder (<fim_prefix>, <fim_suffix>, <fim_middle>) and
// CodeLlama (▁<PRE>, ▁<SUF>, ▁<MID>) all follow this prefix-suffix-middle order.
type FIM struct {
	Prefix, Suffix, Middle int32
	// Style names where the tokens came from: "metadata" or a convention's name.
	Style string
}

// fimConventions are the token spellings of known code models, most specific first.
var fimConventions = []struct {
	style               string
	prefix, suffix, mid string
}{
	{"qwen", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"},
	{"deepseek", "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"},
	{"starcoder", "<fim_prefix>", "<fim_suffix>", "<fim_middle>"},
	{"codellama", "▁<PRE>", "▁<SUF>", "▁<MID>"},
	{"codellama", "<PRE>", "<SUF>", "<MID>"},
}

// fimKeys are the GGUF metadata keys naming the FIM token ids: llama.cpp's current keys,
// then the older ones.
var fimKeys = [][3]string{
	{"tokenizer.ggml.fim_pre_token_id", "tokenizer.ggml.fim_suf_token_id", "tokenizer.ggml.fim_mid_token_id"},
	{"tokenizer.ggml.prefix_token_id", "tokenizer.ggml.suffix_token_id", "tokenizer.ggml.middle_token_id"},
}

// DetectFIM finds a model's FIM tokens: from the file's metadata (meta reads an unsigned
// integer key) when it names all three, else from the vocabulary (lookup finds a token by
// its text) by the conventions above. vocab is the vocabulary size; ids outside it are
// ignored.
func DetectFIM(meta func(key string) (uint64, bool), lookup func(text string) (int32, bool), vocab int) (FIM, bool) {
	for _, keys := range fimKeys {
		var ids [3]int32
		ok := true
		for i, k := range keys {
			v, found := meta(k)
			if !found || v >= uint64(vocab) {
				ok = false
				break
			}
			ids[i] = int32(v)
		}
		if ok {
			return FIM{Prefix: ids[0], Suffix: ids[1], Middle: ids[2], Style: "metadata"}, true
		}
	}
	for _, c := range fimConventions {
		p, ok1 := lookup(c.prefix)
		s, ok2 := lookup(c.suffix)
		m, ok3 := lookup(c.mid)
		if ok1 && ok2 && ok3 {
			return FIM{Prefix: p, Suffix: s, Middle: m, Style: c.style}, true
		}
	}
	return FIM{}, false
}

// Prompt assembles the token sequence: bos (nil for none), the prefix and suffix tokens in
// prefix-suffix-middle order.
func (f FIM) Prompt(bos []int32, prefix, suffix []int32) []int32 {
	out := make([]int32, 0, len(bos)+len(prefix)+len(suffix)+3)
	out = append(out, bos...)
	out = append(out, f.Prefix)
	out = append(out, prefix...)
	out = append(out, f.Suffix)
	out = append(out, suffix...)
	return append(out, f.Middle)
}
