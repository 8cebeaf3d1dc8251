package runner_test

import (
	"context"
	"fmt"
	"log"
	"strings"

	"github.com/open-autoglm/autoglm/internal/engine/runner"
	"github.com/open-autoglm/autoglm/internal/engine/tokenizer"
)

func ExampleRunner_Generate() {
	// The demo model's metadata says 128 positions; it was trained at 512.
	r, err := runner.Open("../../../models/stories260K.gguf", runner.Options{ContextLength: 512})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()

	prompt := r.Tokenizer().Encode("Once upon a time", tokenizer.EncodeOptions{AddSpecial: true})
	var text strings.Builder
	res, err := r.Generate(context.Background(), runner.Request{
		Prompt: prompt,
		Stop:   []string{"."}, // greedy decoding (the zero sample.Params) up to the first full stop
	}, func(ev runner.Event) error {
		text.WriteString(ev.Text)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q\n%+v\n", text.String(), res)
	// Output:
	// ", there was a little girl named Lily"
	// {PromptTokens:5 CachedTokens:0 CompletionTokens:11 FinishReason:stop}
}

func ExampleRunner_Embed() {
	r, err := runner.Open("../../../models/stories260K.gguf", runner.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()

	tok := r.Tokenizer()
	var inputs [][]int32
	for _, s := range []string{"The cat sat on the mat.", "A cat sat on a mat.", "Lily went to the park."} {
		inputs = append(inputs, tok.Encode(s, tokenizer.EncodeOptions{AddSpecial: true}))
	}
	vecs, err := r.Embed(context.Background(), inputs)
	if err != nil {
		log.Fatal(err)
	}
	cos := func(a, b []float32) (s float32) {
		for i := range a {
			s += a[i] * b[i]
		}
		return s
	}
	fmt.Println(len(vecs), len(vecs[0]))
	fmt.Println(cos(vecs[0], vecs[1]) > cos(vecs[0], vecs[2]))
	// Output:
	// 3 64
	// true
}
