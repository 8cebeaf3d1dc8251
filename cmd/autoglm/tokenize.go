package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/open-autoglm/autoglm/internal/engine/gguf"
	"github.com/open-autoglm/autoglm/internal/engine/tokenizer"
)

func tokenizeCmd() *cobra.Command {
	var (
		path, text string
		special    bool
	)
	cmd := &cobra.Command{
		Use:   "tokenize",
		Short: "Print the token ids of a text under a GGUF model's tokenizer, as a JSON array",
		Long: `tokenize encodes --text with the tokenizer stored in the GGUF file --model and prints the
ids as one JSON array, with BOS (and EOS) added when the model's tokenizer adds them.
With --special, the text of control tokens such as "<|im_start|>" becomes those tokens.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, tok, err := openTokenizer(path)
			if err != nil {
				return err
			}
			defer f.Close()
			ids := tok.Encode(text, tokenizer.EncodeOptions{AddSpecial: true, ParseSpecial: special})
			if ids == nil {
				ids = []int32{} // "[]", not "null"
			}
			b, err := json.Marshal(ids)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n", b)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&path, "model", "", "GGUF model file (required)")
	f.StringVar(&text, "text", "", "text to tokenize (required)")
	f.BoolVar(&special, "special", false, "parse control-token text into control tokens")
	_ = cmd.MarkFlagRequired("model")
	_ = cmd.MarkFlagRequired("text")
	return cmd
}

// openTokenizer opens a GGUF file and builds its tokenizer. The caller closes the file.
func openTokenizer(path string) (*gguf.File, *tokenizer.Tokenizer, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, nil, err
	}
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, tok, nil
}
