package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/open-autoglm/autoglm/internal/engine/chat"
	"github.com/open-autoglm/autoglm/internal/engine/gguf"
	"github.com/open-autoglm/autoglm/internal/engine/model"
	"github.com/open-autoglm/autoglm/internal/engine/quant"
	"github.com/open-autoglm/autoglm/internal/modelstore"
)

func modelsCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "models",
		Short: "List, describe and remove pulled models (the model store)",
		Long: `models manages the model store, <data-dir>/models/hub, that autoglm pull fills. Each
model is named by its reference: REPO, REPO:QUANT or REPO:FILE.`,
	}
	cmd.PersistentFlags().StringVar(&dataDir, "data-dir", "./data", "data directory holding the model store (models/hub)")
	store := func() *modelstore.Store { return &modelstore.Store{Dir: modelstore.DefaultDir(dataDir)} }

	list := &cobra.Command{
		Use:   "list",
		Short: "List the pulled model files",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			entries, err := store().List()
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "MODEL\tQUANT\tSIZE\tPULLED")
			for _, e := range entries {
				q := modelstore.QuantOf(e.Path)
				if q == "" {
					q = "-"
				}
				fmt.Fprintf(w, "%s:%s\t%s\t%s\t%s\n", e.Repo, e.Path, q, humanBytes(e.Size), e.PulledAt.Format("2006-01-02 15:04"))
			}
			return w.Flush()
		},
	}

	var ctxLen int
	var kvType string
	show := &cobra.Command{
		Use:   "show REF|PATH",
		Short: "Describe a model: architecture, quantisation, context, chat template, size and memory",
		Long: `show reads a pulled model (by reference) or any GGUF file (by path) and prints its
architecture, quantisation, context length, chat template, parameter count and an estimate of
the memory serving it takes: the weights plus the key/value cache of one sequence at the
context length (--ctx, default the model's), stored as --kv-type (f32, f16 or q8_0: the
kv_cache_type of the backend's configuration).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			if _, err := os.Stat(path); err != nil {
				p, rerr := store().Path(args[0])
				if rerr != nil {
					return rerr
				}
				path = p
			}
			kv, err := model.ParseKVType(kvType)
			if err != nil {
				return err
			}
			return showModel(cmd.OutOrStdout(), path, ctxLen, kv)
		},
	}
	show.Flags().IntVar(&ctxLen, "ctx", 0, "context length for the memory estimate (0 = the model's)")
	show.Flags().StringVar(&kvType, "kv-type", "f32", "KV cache type for the memory estimate: f32, f16 or q8_0")

	rm := &cobra.Command{
		Use:   "rm REF...",
		Short: "Remove pulled models (REPO removes every file of the repository)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var errs []error
			for _, a := range args {
				ref, err := modelstore.ParseRef(a)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				gone, err := store().Remove(ref)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				for _, e := range gone {
					fmt.Fprintf(cmd.OutOrStdout(), "removed %s:%s (%s)\n", e.Repo, e.Path, humanBytes(e.Size))
				}
			}
			return errors.Join(errs...)
		},
	}
	cmd.AddCommand(list, show, rm)
	return cmd
}

func showModel(w io.Writer, path string, ctxLen int, kvType quant.Type) error {
	f, err := gguf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	s, err := model.Inspect(f)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	c := s.Config
	if ctxLen <= 0 {
		ctxLen = c.TrainContext
	}
	tmplSrc, _ := f.String("tokenizer.chat_template")
	tmpl := chat.Detect(tmplSrc).Name()
	if tmplSrc == "" {
		tmpl += " (the file has no chat template)"
	}
	quantLabel := c.WeightType.String()
	if q := modelstore.QuantOf(path); q != "" && !strings.EqualFold(q, quantLabel) {
		quantLabel += " (file named " + q + ")"
	}
	kv, err := s.KVBytes(ctxLen, kvType)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, args...)) }
	row("file", "%s", path)
	if c.Name != "" {
		row("name", "%s", c.Name)
	}
	row("architecture", "%s (%d layers, dim %d, %d heads, %d kv heads, ffn %d)", c.Arch, c.Layers, c.Dim, c.Heads, c.KVHeads, c.FFN)
	row("quantisation", "%s", quantLabel)
	row("parameters", "%s (%d)", humanCount(s.Params), s.Params)
	row("context length", "%d", c.TrainContext)
	row("vocabulary", "%d tokens", c.Vocab)
	row("chat template", "%s", tmpl)
	row("memory", "%s = weights %s + KV cache %s (%s, one sequence at %d tokens)",
		humanBytes(s.WeightBytes+kv), humanBytes(s.WeightBytes), humanBytes(kv), strings.ToLower(kvType.String()), ctxLen)
	return tw.Flush()
}

func humanCount(n uint64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fK", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}
