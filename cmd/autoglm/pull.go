package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/hub"
	"github.com/open-autoglm/autoglm/internal/modelstore"
)

// hubFlags are the flags of the commands that reach a model hub.
type hubFlags struct {
	cfgPath, endpoint, token, dataDir, revision string
}

func (h *hubFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&h.cfgPath, "config", "", "configuration file whose hub section to use (default: none)")
	f.StringVar(&h.endpoint, "endpoint", "", "model hub URL (default: $HF_ENDPOINT, then hub.endpoint, then https://huggingface.co)")
	f.StringVar(&h.token, "token", "", "bearer token for gated or private repositories (default: $HF_TOKEN, then hub.token)")
	f.StringVar(&h.revision, "revision", "main", "branch, tag or commit to pull")
}

// client builds the hub client: flag, then environment, then configuration, then default.
func (h *hubFlags) client() (*hub.Client, error) {
	c := &hub.Client{}
	if h.cfgPath != "" {
		cfg, err := config.Load(h.cfgPath)
		if err != nil {
			return nil, err
		}
		c.Endpoint, c.Token = cfg.Hub.Endpoint, cfg.Hub.Token
	}
	for _, v := range []string{os.Getenv("HF_ENDPOINT"), h.endpoint} {
		if v != "" {
			c.Endpoint = v
		}
	}
	for _, v := range []string{os.Getenv("HF_TOKEN"), h.token} {
		if v != "" {
			c.Token = v
		}
	}
	if c.Endpoint == "" {
		c.Endpoint = hub.DefaultEndpoint
	}
	if u, err := url.Parse(c.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("hub endpoint %q: want an absolute http or https URL", c.Endpoint)
	}
	return c, nil
}

func pullCmd() *cobra.Command {
	var hf hubFlags
	cmd := &cobra.Command{
		Use:   "pull REPO[:QUANT|:FILE]",
		Short: "Download a GGUF model from a model hub into the local model store",
		Long: `pull downloads one GGUF file of a Hugging Face repository (or of a mirror, or of another
autoglm node's store) into the model store, <data-dir>/models/hub, and verifies its SHA-256.

  autoglm pull Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M       by quantisation
  autoglm pull Qwen/Qwen2.5-0.5B-Instruct-GGUF:qwen2.5-0.5b-instruct-q8_0.gguf
  autoglm pull bartowski/SmolLM2-135M-Instruct-GGUF          the only GGUF file, or Q4_K_M
  HF_ENDPOINT=https://hf-mirror.com autoglm pull ...        through a mirror
  HF_ENDPOINT=http://node1:8080/hub autoglm pull ...        from another node's store

An interrupted pull resumes where it stopped when run again. A configuration names a pulled
model for a local backend as "model: REPO:QUANT" instead of a path.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := modelstore.ParseRef(args[0])
			if err != nil {
				return err
			}
			c, err := hf.client()
			if err != nil {
				return err
			}
			st := &modelstore.Store{Dir: modelstore.DefaultDir(hf.dataDir)}
			errOut := cmd.ErrOrStderr()
			bar := newDownloadBar(errOut, writerIsTerminal(errOut))
			e, err := st.Pull(cmd.Context(), c, ref, modelstore.PullOptions{
				Revision: hf.revision,
				Progress: func(f hub.File) hub.Progress {
					fmt.Fprintf(errOut, "pulling %s/%s (%s) from %s\n", ref.Repo, f.Path, humanBytes(f.Size), c.Endpoint)
					return bar.update
				},
			})
			bar.finish()
			if err != nil {
				if errors.Is(err, context.Canceled) {
					return fmt.Errorf("interrupted; run the same command again to resume")
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s:%s\n  %s\n  sha256 %s (verified)\n", e.Repo, e.Path, st.FilePath(e), e.SHA256)
			return nil
		},
	}
	hf.add(cmd)
	cmd.Flags().StringVar(&hf.dataDir, "data-dir", "./data", "data directory holding the model store (models/hub)")
	return cmd
}

// downloadBar draws one line, redrawn in place on a terminal and at most every 100 ms;
// elsewhere it prints a line per tenth of the file.
type downloadBar struct {
	w        io.Writer
	tty      bool
	mu       sync.Mutex
	start    time.Time
	first    int64 // bytes present when the download (re)started
	last     time.Time
	lastTen  int64
	drawn    bool
	done, of int64
}

func newDownloadBar(w io.Writer, tty bool) *downloadBar { return &downloadBar{w: w, tty: tty} }

func (p *downloadBar) update(done, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if p.start.IsZero() {
		p.start, p.first = now, done
	}
	p.done, p.of = done, total
	if !p.tty {
		if total > 0 {
			if ten := done * 10 / total; ten > p.lastTen {
				p.lastTen = ten
				fmt.Fprintf(p.w, "  %3d%%  %s / %s\n", ten*10, humanBytes(done), humanBytes(total))
			}
		}
		return
	}
	if now.Sub(p.last) < 100*time.Millisecond && done != total {
		return
	}
	p.last = now
	p.draw(now)
}

func (p *downloadBar) draw(now time.Time) {
	const width = 30
	frac := 1.0
	if p.of > 0 {
		frac = float64(p.done) / float64(p.of)
	}
	filled := int(frac * width)
	bar := strings.Repeat("█", filled) + strings.Repeat("░", width-filled)
	rate := ""
	if el := now.Sub(p.start).Seconds(); el > 0.2 {
		bps := float64(p.done-p.first) / el
		rate = humanBytes(int64(bps)) + "/s"
		if bps > 0 && p.done < p.of {
			rate += fmt.Sprintf("  %s left", (time.Duration(float64(p.of-p.done)/bps) * time.Second).Round(time.Second))
		}
	}
	fmt.Fprintf(p.w, "\r\x1b[K  %3.0f%% %s %s / %s  %s", frac*100, bar, humanBytes(p.done), humanBytes(p.of), rate)
	p.drawn = true
}

func (p *downloadBar) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.drawn {
		p.draw(time.Now())
		fmt.Fprintln(p.w)
	}
}

// writerIsTerminal reports whether w is a terminal.
func writerIsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isTerminal(f)
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
