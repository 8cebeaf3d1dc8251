package modelstore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/engine/quant"
	"github.com/open-autoglm/autoglm/internal/engine/synth"
	"github.com/open-autoglm/autoglm/internal/hub"
	"github.com/open-autoglm/autoglm/internal/modelstore"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/server"
)

func synthBytes(t *testing.T, typ quant.Type, seed int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := synth.Write(&buf, synth.Spec{Arch: "qwen2", Dim: 32, Layers: 2, Heads: 4, KVHeads: 2, FFN: 64, Vocab: 400, Type: typ, Seed: seed}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// startNode serves a store through a real gateway (no authentication), as `autoglm serve`
// mounts it, and returns its hub endpoint.
func startNode(t *testing.T, st *modelstore.Store) string {
	t.Helper()
	cfg := (&config.Config{}).WithDefaults()
	reg, err := router.New(cfg.Models)
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(cfg.Server, reg, slog.New(slog.NewTextHandler(io.Discard, nil)), st.Routes()...)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts.URL + modelstore.HubPrefix
}

// seedStore makes a store holding files as if pulled, by pulling them from a node whose
// store is written by hand.
func handStore(t *testing.T, repo string, files map[string][]byte) *modelstore.Store {
	t.Helper()
	dir := t.TempDir()
	var entries []string
	for name, b := range files {
		p := filepath.Join(dir, filepath.FromSlash(repo), name)
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o640); err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256(b)
		entries = append(entries, `{"path":"`+name+`","size":`+strconv.Itoa(len(b))+`,"sha256":"`+hex.EncodeToString(s[:])+`","pulled_at":"2026-01-02T03:04:05Z"}`)
	}
	man := `{"repo":"` + repo + `","endpoint":"https://huggingface.co","revision":"main","files":[` + strings.Join(entries, ",") + `]}`
	if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(repo), ".autoglm.json"), []byte(man), 0o640); err != nil {
		t.Fatal(err)
	}
	return &modelstore.Store{Dir: dir}
}

// TestNodePullsFromNode: node 1's store is served by its gateway; node 2 pulls through it by
// quantisation label, gets a verified copy with the same checksum, and can serve it on.
func TestNodePullsFromNode(t *testing.T) {
	q8 := synthBytes(t, quant.Q8_0, 1)
	f32 := synthBytes(t, quant.F32, 2)
	repo := "Qwen/Tiny-GGUF"
	node1 := handStore(t, repo, map[string][]byte{"tiny-q8_0.gguf": q8, "tiny-f32.gguf": f32})
	ep1 := startNode(t, node1)

	node2 := &modelstore.Store{Dir: t.TempDir()}
	c := &hub.Client{Endpoint: ep1, Backoff: time.Millisecond}
	var progressed int64
	e, err := node2.Pull(context.Background(), c, modelstore.Ref{Repo: repo, Quant: "Q8_0"}, modelstore.PullOptions{
		Progress: func(f hub.File) hub.Progress { return func(done, total int64) { progressed = done } },
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(node2.FilePath(e))
	if err != nil || !bytes.Equal(got, q8) {
		t.Fatalf("pulled file differs (%v)", err)
	}
	if progressed != int64(len(q8)) {
		t.Errorf("progress ended at %d of %d", progressed, len(q8))
	}
	if s := sha256.Sum256(q8); e.SHA256 != hex.EncodeToString(s[:]) {
		t.Errorf("recorded sha256 %s", e.SHA256)
	}
	// Resolve finds it offline by every form of reference, and not the file not pulled.
	for _, ref := range []string{repo, repo + ":Q8_0", repo + ":q8_0", repo + ":tiny-q8_0.gguf"} {
		p, err := node2.Path(ref)
		if err != nil || p != node2.FilePath(e) {
			t.Errorf("Path(%q) = %q, %v", ref, p, err)
		}
	}
	if _, err := node2.Path(repo + ":F32"); !errors.Is(err, modelstore.ErrNotStored) {
		t.Errorf("unpulled quantisation: %v, want ErrNotStored", err)
	}

	// A third node pulls from the second: the store serves what it pulled.
	ep2 := startNode(t, node2)
	node3 := &modelstore.Store{Dir: t.TempDir()}
	if _, err := node3.Pull(context.Background(), &hub.Client{Endpoint: ep2}, modelstore.Ref{Repo: repo}, modelstore.PullOptions{}); err != nil {
		t.Fatal(err)
	}

	// Pulling again downloads nothing.
	before, _ := os.Stat(node2.FilePath(e))
	if _, err := node2.Pull(context.Background(), c, modelstore.Ref{Repo: repo, Quant: "Q8_0"}, modelstore.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(node2.FilePath(e))
	if !after.ModTime().Equal(before.ModTime()) {
		t.Error("a second pull of a stored file downloaded it again")
	}

	// Without a quantisation, a repository with several files takes the first of the
	// usual choices it has (here Q8_0, not F32).
	if e2, err := node2.Pull(context.Background(), c, modelstore.Ref{Repo: repo}, modelstore.PullOptions{}); err != nil || e2.Path != "tiny-q8_0.gguf" {
		t.Errorf("bare pull = %+v, %v; want the Q8_0 file", e2, err)
	}
	if _, err := node2.Pull(context.Background(), c, modelstore.Ref{Repo: "Qwen/Missing"}, modelstore.PullOptions{}); !errors.Is(err, hub.ErrNotFound) {
		t.Errorf("missing repository: %v", err)
	}

	// Ranges work through the gateway (resume from a node).
	req, _ := http.NewRequest("GET", ep1+"/"+repo+"/resolve/main/tiny-q8_0.gguf", nil)
	req.Header.Set("Range", "bytes=10-19")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, q8[10:20]) {
		t.Errorf("range request: %d, %d bytes", resp.StatusCode, len(body))
	}
	// Nothing outside the manifest is served.
	for _, p := range []string{"/" + repo + "/resolve/main/.autoglm.json", "/" + repo + "/resolve/main/../../etc/passwd", "/api/models/Qwen/None/tree/main", "/" + repo + "/resolve/v2/tiny-q8_0.gguf"} {
		resp, err := http.Get(ep1 + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, resp.StatusCode)
		}
	}
}

func TestListAndRemove(t *testing.T) {
	repo := "acme/Two-GGUF"
	st := handStore(t, repo, map[string][]byte{"two-Q4_K_M.gguf": []byte("aaaa"), "two-Q8_0.gguf": []byte("bbbbbbbb")})
	list, err := st.List()
	if err != nil || len(list) != 2 {
		t.Fatalf("List = %v, %v", list, err)
	}
	// A bare repository resolves to its Q4_K_M file when it has several.
	p, err := st.Path(repo)
	if err != nil || filepath.Base(p) != "two-Q4_K_M.gguf" {
		t.Errorf("Path(repo) = %q, %v", p, err)
	}
	gone, err := st.Remove(modelstore.Ref{Repo: repo, Quant: "Q8_0"})
	if err != nil || len(gone) != 1 || gone[0].Path != "two-Q8_0.gguf" {
		t.Fatalf("Remove = %v, %v", gone, err)
	}
	if list, _ := st.List(); len(list) != 1 {
		t.Errorf("after removing one file: %v", list)
	}
	// Two files without a usual choice are ambiguous; the error names the choices.
	amb := handStore(t, "acme/Floats", map[string][]byte{"m-F16.gguf": []byte("a"), "m-F32.gguf": []byte("b")})
	if _, err := amb.Path("acme/Floats"); err == nil || !strings.Contains(err.Error(), "acme/Floats:F16") || !strings.Contains(err.Error(), "acme/Floats:F32") {
		t.Errorf("ambiguous reference: %v", err)
	}
	if _, err := st.Remove(modelstore.Ref{Repo: repo}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(st.Dir, "acme")); !os.IsNotExist(err) {
		t.Error("owner folder kept after its last repository was removed")
	}
	if _, err := st.Remove(modelstore.Ref{Repo: repo}); !errors.Is(err, modelstore.ErrNotStored) {
		t.Errorf("removing again: %v", err)
	}
}

func TestParseRef(t *testing.T) {
	good := map[string]modelstore.Ref{
		"Qwen/Qwen2.5-0.5B-Instruct-GGUF":                                   {Repo: "Qwen/Qwen2.5-0.5B-Instruct-GGUF"},
		"Qwen/Qwen2.5-0.5B-Instruct-GGUF:q4_k_m":                            {Repo: "Qwen/Qwen2.5-0.5B-Instruct-GGUF", Quant: "Q4_K_M"},
		"Qwen/Qwen2.5-0.5B-Instruct-GGUF:qwen2.5-0.5b-instruct-q4_k_m.gguf": {Repo: "Qwen/Qwen2.5-0.5B-Instruct-GGUF", File: "qwen2.5-0.5b-instruct-q4_k_m.gguf"},
		"a/b:IQ2_XS":     {Repo: "a/b", Quant: "IQ2_XS"},
		"a/b:BF16":       {Repo: "a/b", Quant: "BF16"},
		"a/b:sub/x.gguf": {Repo: "a/b", File: "sub/x.gguf"},
	}
	for s, want := range good {
		got, err := modelstore.ParseRef(s)
		if err != nil || got != want {
			t.Errorf("ParseRef(%q) = %+v, %v; want %+v", s, got, err, want)
		}
		if again, _ := modelstore.ParseRef(got.String()); again != got {
			t.Errorf("%q does not survive String: %q", s, got.String())
		}
	}
	for _, s := range []string{"", "model.gguf", "a/b/c", "a/b:", "a/b:latest", "a/b:../x.gguf", "../a:Q4_0", "a/b:.autoglm.json"} {
		if _, err := modelstore.ParseRef(s); err == nil {
			t.Errorf("ParseRef(%q) accepted", s)
		}
	}
	for name, want := range map[string]string{
		"qwen2.5-0.5b-instruct-q4_k_m.gguf": "Q4_K_M", "Llama-3.2-1B-Instruct-Q8_0.gguf": "Q8_0",
		"model.f16.gguf": "F16", "model.gguf": "", "x-Q4_0.bin": "", "dir/m-IQ3_XXS.gguf": "IQ3_XXS",
	} {
		if got := modelstore.QuantOf(name); got != want {
			t.Errorf("QuantOf(%q) = %q, want %q", name, got, want)
		}
	}
}

func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"a/b", "a/b:Q4_K_M", "a/b:x.gguf", "a/b:sub/x.gguf", "a/b:..", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := modelstore.ParseRef(s)
		if err != nil {
			return
		}
		if r.File != "" && (strings.Contains(r.File, "..") && !hub.ValidPath(r.File)) {
			t.Fatalf("%q: unsafe path %q accepted", s, r.File)
		}
		if again, err := modelstore.ParseRef(r.String()); err != nil || again != r {
			t.Fatalf("%q: round trip gives %+v, %v", s, again, err)
		}
	})
}
