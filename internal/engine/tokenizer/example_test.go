package tokenizer_test

import (
	"fmt"
	"log"

	"github.com/open-autoglm/autoglm/internal/engine/gguf"
	"github.com/open-autoglm/autoglm/internal/engine/tokenizer"
)

func Example() {
	f, err := gguf.Open("../../../models/stories260K.gguf")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	tk, err := tokenizer.FromGGUF(f)
	if err != nil {
		log.Fatal(err)
	}

	ids := tk.Encode("Once upon a time", tokenizer.EncodeOptions{AddSpecial: true})
	fmt.Println(ids)
	fmt.Printf("%q\n", tk.Decode(ids))

	// Stream generated tokens: they continue the prompt, so keep their
	// leading space.
	d := tk.NewDecoderWith(tokenizer.DecodeOptions{Continuation: true})
	for _, id := range ids[1:] {
		fmt.Printf("%q ", d.Add(id))
	}
	fmt.Printf("%q\n", d.Flush())
	// Output:
	// [1 403 407 261 378]
	// "Once upon a time"
	// " Once" " upon" " a" " time" ""
}
