// Package synth writes GGUF model files with random weights, of any shape
// and weight type, for tests and benchmarks of the engine.
//
// The files follow llama.cpp's conventions for their architecture (tensor
// names, metadata keys, fused tensors and biases where the real models have
// them) and carry a usable tokenizer, so a synthetic file can be loaded and
// served end to end; only the text it generates is noise. Output is a pure
// function of the Spec: the same Spec (including Seed) gives the same bytes.
package synth

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/open-autoglm/autoglm/internal/engine/gguf"
	"github.com/open-autoglm/autoglm/internal/engine/quant"
)

// Spec describes a synthetic model. Zero values take the defaults noted.
type Spec struct {
	Arch    string // "llama", "qwen2", "chatglm" or "glm4"; default "llama"
	Name    string // general.name; default "synthetic-<arch>"
	Dim     int    // embedding length
	Layers  int
	Heads   int
	KVHeads int // default Heads
	FFN     int // feed-forward hidden size
	Vocab   int // token count, including 256 byte tokens and the specials
	Ctx     int // context length; default 512
	// Type is the type of the matrix weights, token_embd and output
	// included (F32 is the zero value).
	Type quant.Type
	// Mixture, when set, names a llama.cpp file type ("Q4_K_M", "Q6_K",
	// "Q4_0", … see Mixtures) and picks each matrix's type as
	// llama-quantize does for it, including its fallbacks for rows that
	// the type's block does not divide; Type is then ignored. The file
	// also gets general.file_type.
	Mixture string
	Seed    int64
	// HeadDim overrides Dim/Heads (written as attention.key_length).
	HeadDim int
	// RopeDim is the number of rotated elements per head; default the
	// head size, or half of it for chatglm and glm4.
	RopeDim  int
	RopeBase float64 // default 10000 (1e6 for qwen2)
	NormEps  float32 // default 1e-5 (1e-6 for qwen2)
	// Tied omits output.weight, so the output projection reuses
	// token_embd (as Qwen2.5-0.5B does).
	Tied bool
	// Tokenizer is "gpt2" (byte-level BPE, the default) or "llama"
	// (SentencePiece with byte fallback).
	Tokenizer string
	// ChatTemplate is written as tokenizer.chat_template; default a
	// template of the architecture's usual family.
	ChatTemplate string
	// Specials are extra control tokens added after the architecture's own
	// (fill-in-the-middle or tool-call markers, for example).
	Specials []string
	// Metadata holds extra GGUF metadata, written in key order after the
	// rest (for example tokenizer.ggml.fim_pre_token_id as a uint32).
	Metadata map[string]any
}

// layout is what Write derives from a Spec.
type layout struct {
	Spec
	headDim, qDim, kvDim int
	fusedQKV, qkvBias    bool
	fusedFFN, postNorms  bool
	specials             []string
	mix                  mixture
	mixed                bool
}

func (s Spec) layout() (layout, error) {
	if s.Arch == "" {
		s.Arch = "llama"
	}
	if s.Name == "" {
		s.Name = "synthetic-" + s.Arch
	}
	if s.KVHeads == 0 {
		s.KVHeads = s.Heads
	}
	if s.Ctx == 0 {
		s.Ctx = 512
	}
	if s.Tokenizer == "" {
		s.Tokenizer = "gpt2"
	}
	l := layout{Spec: s}
	switch s.Arch {
	case "llama":
		l.specials = []string{"<|begin_of_text|>", "<|end_of_text|>", "[INST]", "[/INST]"}
	case "qwen2":
		l.qkvBias = true
		l.specials = []string{"<|endoftext|>", "<|im_start|>", "<|im_end|>"}
	case "chatglm", "glm4":
		l.fusedQKV = s.Arch == "chatglm"
		l.qkvBias, l.fusedFFN, l.postNorms = true, true, s.Arch == "glm4"
		l.specials = []string{"<|endoftext|>", "[gMASK]", "<sop>", "<|system|>", "<|user|>", "<|assistant|>", "<|observation|>"}
	default:
		return l, fmt.Errorf("synth: unknown architecture %q", s.Arch)
	}
	if s.Tokenizer == "llama" {
		l.specials = []string{"<unk>", "<s>", "</s>"}
	} else if s.Tokenizer != "gpt2" {
		return l, fmt.Errorf("synth: unknown tokenizer %q", s.Tokenizer)
	}
	l.specials = append(l.specials[:len(l.specials):len(l.specials)], s.Specials...)
	if s.Dim <= 0 || s.Layers <= 0 || s.Heads <= 0 || s.KVHeads <= 0 || s.FFN <= 0 || s.Ctx <= 0 {
		return l, fmt.Errorf("synth: dimensions must be positive: %+v", s)
	}
	if s.Heads%s.KVHeads != 0 {
		return l, fmt.Errorf("synth: %d heads is not a multiple of %d kv heads", s.Heads, s.KVHeads)
	}
	l.headDim = s.HeadDim
	if l.headDim == 0 {
		if s.Dim%s.Heads != 0 {
			return l, fmt.Errorf("synth: dim %d is not a multiple of %d heads", s.Dim, s.Heads)
		}
		l.headDim = s.Dim / s.Heads
	}
	if l.RopeDim == 0 {
		l.RopeDim = l.headDim
		if l.fusedFFN {
			l.RopeDim = l.headDim / 2
		}
	}
	if l.RopeBase == 0 {
		l.RopeBase = 10000
		if s.Arch == "qwen2" {
			l.RopeBase = 1e6
		}
	}
	if l.NormEps == 0 {
		l.NormEps = 1e-5
		if s.Arch == "qwen2" {
			l.NormEps = 1e-6
		}
	}
	l.qDim, l.kvDim = s.Heads*l.headDim, s.KVHeads*l.headDim
	if floor := 256 + len(l.specials); s.Vocab < floor {
		return l, fmt.Errorf("synth: vocab %d is below the %d byte and special tokens", s.Vocab, floor)
	}
	if s.Mixture != "" {
		mix, err := findMixture(s.Mixture)
		if err != nil {
			return l, err
		}
		l.mix, l.mixed = mix, true
		return l, nil
	}
	bs := s.Type.BlockSize()
	if !s.Type.Supported() {
		return l, fmt.Errorf("synth: unsupported weight type %v", s.Type)
	}
	for _, n := range []int{s.Dim, l.qDim, s.FFN} {
		if n%bs != 0 {
			return l, fmt.Errorf("synth: row length %d is not a multiple of the %v block size %d", n, s.Type, bs)
		}
	}
	return l, nil
}

// Write writes the GGUF file for s to w.
func Write(w io.Writer, s Spec) error {
	l, err := s.layout()
	if err != nil {
		return err
	}
	g := gguf.NewWriter()
	a := l.Arch
	g.Add("general.architecture", a)
	g.Add("general.name", l.Name)
	g.Add(a+".context_length", uint32(l.Ctx))
	g.Add(a+".embedding_length", uint32(l.Dim))
	g.Add(a+".block_count", uint32(l.Layers))
	g.Add(a+".feed_forward_length", uint32(l.FFN))
	g.Add(a+".attention.head_count", uint32(l.Heads))
	g.Add(a+".attention.head_count_kv", uint32(l.KVHeads))
	if l.HeadDim != 0 {
		g.Add(a+".attention.key_length", uint32(l.headDim))
		g.Add(a+".attention.value_length", uint32(l.headDim))
	}
	g.Add(a+".rope.dimension_count", uint32(l.RopeDim))
	g.Add(a+".rope.freq_base", float32(l.RopeBase))
	g.Add(a+".attention.layer_norm_rms_epsilon", l.NormEps)
	if l.mixed {
		g.Add("general.file_type", l.mix.fileType)
	}
	l.addTokenizer(g)
	keys := make([]string, 0, len(l.Metadata))
	for k := range l.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		g.Add(k, l.Metadata[k])
	}

	r := rand.New(rand.NewPCG(uint64(l.Seed), 0x5eed))
	var werr error
	add := func(name string, typ quant.Type, dims []uint64, data []byte) {
		if werr == nil {
			werr = g.AddTensor(name, typ, dims, data)
		}
	}
	matrixAs := func(name string, rl role, layer, rows, cols int) {
		typ := l.Type
		if l.mixed {
			typ = l.mix.typeFor(rl, layer, l.Layers, cols, l.Tied)
		}
		data, err := randomMatrix(r, typ, rows, cols)
		if err != nil && werr == nil {
			werr = err
		}
		add(name, typ, []uint64{uint64(cols), uint64(rows)}, data)
	}
	matrix := func(name string, rows, cols int) { matrixAs(name, roleOther, 0, rows, cols) }
	// vector writes n F32 values around center with the given spread.
	vector := func(name string, n int, center, spread float32) {
		v := make([]float32, n)
		for i := range v {
			v[i] = center + spread*(2*r.Float32()-1)
		}
		data, _ := quant.Quantize(quant.F32, v)
		add(name, quant.F32, []uint64{uint64(n)}, data)
	}

	matrixAs("token_embd.weight", roleTokenEmbd, 0, l.Vocab, l.Dim)
	for i := range l.Layers {
		p := fmt.Sprintf("blk.%d.", i)
		vector(p+"attn_norm.weight", l.Dim, 1, 0.2)
		if l.fusedQKV {
			matrixAs(p+"attn_qkv.weight", roleAttnQKV, i, l.qDim+2*l.kvDim, l.Dim)
			vector(p+"attn_qkv.bias", l.qDim+2*l.kvDim, 0, 0.2)
		} else {
			matrix(p+"attn_q.weight", l.qDim, l.Dim)
			matrix(p+"attn_k.weight", l.kvDim, l.Dim)
			matrixAs(p+"attn_v.weight", roleAttnV, i, l.kvDim, l.Dim)
			if l.qkvBias {
				vector(p+"attn_q.bias", l.qDim, 0, 0.2)
				vector(p+"attn_k.bias", l.kvDim, 0, 0.2)
				vector(p+"attn_v.bias", l.kvDim, 0, 0.2)
			}
		}
		matrix(p+"attn_output.weight", l.Dim, l.qDim)
		if l.postNorms {
			vector(p+"post_attention_norm.weight", l.Dim, 1, 0.2)
		}
		vector(p+"ffn_norm.weight", l.Dim, 1, 0.2)
		if l.fusedFFN {
			matrix(p+"ffn_up.weight", 2*l.FFN, l.Dim)
		} else {
			matrix(p+"ffn_gate.weight", l.FFN, l.Dim)
			matrix(p+"ffn_up.weight", l.FFN, l.Dim)
		}
		matrixAs(p+"ffn_down.weight", roleFFNDown, i, l.Dim, l.FFN)
		if l.postNorms {
			vector(p+"post_ffw_norm.weight", l.Dim, 1, 0.2)
		}
	}
	vector("output_norm.weight", l.Dim, 1, 0.2)
	if !l.Tied {
		matrixAs("output.weight", roleOutput, 0, l.Vocab, l.Dim)
	}
	if werr != nil {
		return werr
	}
	_, err = g.WriteTo(w)
	return err
}

// randomMatrix draws rows × cols values uniform in ±√(3/cols) (unit
// variance of each output for unit-variance inputs, so activations stay
// in a sane range through any depth) and encodes them as typ, a chunk of
// rows at a time to bound memory for large vocabularies.
func randomMatrix(r *rand.Rand, typ quant.Type, rows, cols int) ([]byte, error) {
	rb, err := quant.RowBytes(typ, cols)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, rb*rows)
	a := float32(math.Sqrt(3 / float64(cols)))
	chunk := max(1, (1<<16)/cols)
	buf := make([]float32, chunk*cols)
	for r0 := 0; r0 < rows; r0 += chunk {
		n := min(chunk, rows-r0) * cols
		for i := range buf[:n] {
			buf[i] = a * (2*r.Float32() - 1)
		}
		b, err := quant.Quantize(typ, buf[:n])
		if err != nil {
			return nil, err
		}
		out = append(out, b...)
	}
	return out, nil
}

// addTokenizer writes the tokenizer section: a byte-level BPE vocabulary
// (256 byte tokens, generated merges, the architecture's special tokens
// last) or a SentencePiece one (<unk>, <s>, </s>, 256 byte-fallback tokens,
// then generated pieces with descending scores).
func (l layout) addTokenizer(g *gguf.Writer) {
	pieces := l.Vocab - 256 - len(l.specials)
	const normal, control, byteType = 1, 3, 6
	var tokens []string
	var types []int32
	tmpl := l.ChatTemplate
	if tmpl == "" {
		tmpl = defaultTemplates[l.Arch]
	}
	if l.Tokenizer == "llama" {
		tokens = append(tokens, l.specials...)
		types = append(types, 2, control, control)
		for range l.specials[3:] {
			types = append(types, control)
		}
		for b := range 256 {
			tokens = append(tokens, fmt.Sprintf("<0x%02X>", b))
			types = append(types, byteType)
		}
		// Single letters first: SentencePiece needs "▁" and each letter
		// as pieces of their own, not only inside longer pieces.
		const alphabet = "▁abcdefghijklmnopqrstuvwxyz"
		var words []string
		for _, r := range alphabet {
			if len(words) < pieces {
				words = append(words, string(r))
			}
		}
		for _, p := range generatePieces(alphabet, pieces-len(words)) {
			words = append(words, p.text)
		}
		scores := make([]float32, len(tokens), l.Vocab)
		for i, wd := range words {
			tokens = append(tokens, wd)
			types = append(types, normal)
			scores = append(scores, -float32(i))
		}
		g.Add("tokenizer.ggml.model", "llama")
		g.Add("tokenizer.ggml.tokens", tokens)
		g.Add("tokenizer.ggml.scores", scores)
		g.Add("tokenizer.ggml.token_type", types)
		g.Add("tokenizer.ggml.unknown_token_id", uint32(0))
		g.Add("tokenizer.ggml.bos_token_id", uint32(1))
		g.Add("tokenizer.ggml.eos_token_id", uint32(2))
		g.Add("tokenizer.ggml.add_bos_token", true)
		g.Add("tokenizer.chat_template", tmpl)
		return
	}
	enc := byteEncoder()
	for b := range 256 {
		tokens = append(tokens, string(enc[b]))
		types = append(types, normal)
	}
	words := generatePieces(string(enc[' '])+"abcdefghijklmnopqrstuvwxyz", pieces)
	merges := make([]string, 0, len(words))
	for _, wd := range words {
		tokens = append(tokens, wd.text)
		types = append(types, normal)
		merges = append(merges, wd.left+" "+wd.right)
	}
	first := len(tokens)
	for _, s := range l.specials {
		tokens = append(tokens, s)
		types = append(types, control)
	}
	pre := map[string]string{"llama": "llama-bpe", "qwen2": "qwen2", "chatglm": "chatglm-bpe", "glm4": "glm4"}[l.Arch]
	g.Add("tokenizer.ggml.model", "gpt2")
	g.Add("tokenizer.ggml.pre", pre)
	g.Add("tokenizer.ggml.tokens", tokens)
	g.Add("tokenizer.ggml.token_type", types)
	g.Add("tokenizer.ggml.merges", merges)
	eos := first
	if l.Arch == "llama" {
		eos = first + 1
	}
	g.Add("tokenizer.ggml.bos_token_id", uint32(first))
	g.Add("tokenizer.ggml.eos_token_id", uint32(eos))
	g.Add("tokenizer.ggml.add_bos_token", l.Arch == "llama")
	g.Add("tokenizer.chat_template", tmpl)
}

var defaultTemplates = map[string]string{
	"llama": "{% for message in messages %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + message['content'].strip() + ' [/INST]' }}" +
		"{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'].strip() + ' ' + eos_token }}{% endif %}{% endfor %}",
	"qwen2": "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}" +
		"{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
	"chatglm": "[gMASK]<sop>{% for item in messages %}<|{{ item['role'] }}|>\n{{ item['content'] }}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}",
	"glm4":    "[gMASK]<sop>{% for item in messages %}<|{{ item['role'] }}|>\n{{ item['content'] }}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}",
}

type piece struct{ text, left, right string }

// generatePieces returns n distinct multi-character pieces over alphabet,
// shortest first, each the concatenation of an earlier piece (or alphabet
// letter) and one letter, which makes every piece a valid BPE merge result.
func generatePieces(alphabet string, n int) []piece {
	if n <= 0 {
		return nil
	}
	letters := []string{}
	for _, r := range alphabet {
		letters = append(letters, string(r))
	}
	out := make([]piece, 0, n)
	prev := letters
	for len(out) < n {
		var next []string
		for _, p := range prev {
			for _, c := range letters {
				if len(out) == n {
					return out
				}
				out = append(out, piece{p + c, p, c})
				next = append(next, p+c)
			}
		}
		prev = next
	}
	return out
}

// byteEncoder is GPT-2's reversible map from bytes to printable runes:
// printable Latin-1 bytes map to themselves and the rest to 256 onwards.
func byteEncoder() [256]rune {
	var enc [256]rune
	var direct []int
	for b := '!'; b <= '~'; b++ {
		direct = append(direct, int(b))
	}
	for b := 0xA1; b <= 0xAC; b++ {
		direct = append(direct, b)
	}
	for b := 0xAE; b <= 0xFF; b++ {
		direct = append(direct, b)
	}
	sort.Ints(direct)
	isDirect := map[int]bool{}
	for _, b := range direct {
		isDirect[b] = true
		enc[b] = rune(b)
	}
	n := 0
	for b := range 256 {
		if !isDirect[b] {
			enc[b] = rune(256 + n)
			n++
		}
	}
	return enc
}
