package main

import (
	"bufio"
	"errors"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/open-autoglm/autoglm/internal/engine/model"
	"github.com/open-autoglm/autoglm/internal/engine/tokenizer"
)

func logitsCmd() *cobra.Command {
	var (
		path, text      string
		ctxLen, threads int
		special         bool
	)
	cmd := &cobra.Command{
		Use:   "logits",
		Short: "Run a prompt through a GGUF model once and print the logits at every position",
		Long: `logits tokenizes --text as tokenize does, runs the tokens through the model from position 0
(float32 KV cache) and prints one line per prompt position:

  <pos> <token id> <logit 0> <logit 1> ... <logit V-1>

separated by single spaces, logits with six decimals. The logits on the line of position p
predict the token at position p+1. The output is meant for comparison with other
implementations on the same file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, tok, err := openTokenizer(path)
			if err != nil {
				return err
			}
			defer f.Close()
			ids := tok.Encode(text, tokenizer.EncodeOptions{AddSpecial: true, ParseSpecial: special})
			m, err := model.Load(f, model.Options{ContextLength: ctxLen, Threads: threads})
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			defer m.Close()
			vocab := m.Config().Vocab
			// Feed the prompt in chunks so that the logits held at once stay
			// near 64 MB even for 150k-token vocabularies.
			chunk := max(1, (16<<20)/vocab)
			out := bufio.NewWriterSize(cmd.OutOrStdout(), 1<<16)
			seq := &model.Seq{Cache: m.NewCache(), AllLogits: true}
			var line []byte
			for start := 0; start < len(ids); start += chunk {
				seq.Tokens = ids[start:min(start+chunk, len(ids))]
				if err := m.Forward(cmd.Context(), []*model.Seq{seq}); err != nil {
					if errors.Is(err, model.ErrContextFull) {
						return fmt.Errorf("%w: the prompt has %d tokens (raise --ctx)", err, len(ids))
					}
					return err
				}
				for i, id := range seq.Tokens {
					line = strconv.AppendInt(line[:0], int64(start+i), 10)
					line = append(line, ' ')
					line = strconv.AppendInt(line, int64(id), 10)
					for _, v := range seq.Logits[i*vocab : (i+1)*vocab] {
						line = append(line, ' ')
						line = strconv.AppendFloat(line, float64(v), 'f', 6, 32)
					}
					line = append(line, '\n')
					if _, err := out.Write(line); err != nil {
						return err
					}
				}
			}
			return out.Flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&path, "model", "", "GGUF model file (required)")
	f.StringVar(&text, "text", "", "prompt text (required)")
	f.IntVar(&ctxLen, "ctx", 0, "context length (0 = the model's metadata)")
	f.IntVar(&threads, "threads", 0, "threads (0 = GOMAXPROCS)")
	f.BoolVar(&special, "special", false, "parse control-token text into control tokens")
	_ = cmd.MarkFlagRequired("model")
	_ = cmd.MarkFlagRequired("text")
	return cmd
}
