package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/modelstore"
)

// fakeHubServing serves one repository holding the demo model in the hub's layout and
// records the Authorization headers it saw.
func fakeHubServing(t *testing.T, repo, file string, data []byte, auths *[]string) *httptest.Server {
	t.Helper()
	sum := sha256.Sum256(data)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/models/"+repo+"/tree/main", func(w http.ResponseWriter, r *http.Request) {
		*auths = append(*auths, r.Header.Get("Authorization"))
		_ = json.NewEncoder(w).Encode([]map[string]any{{"type": "file", "path": file, "size": len(data),
			"lfs": map[string]any{"oid": hex.EncodeToString(sum[:]), "size": len(data)}}})
	})
	mux.HandleFunc("GET /"+repo+"/resolve/main/"+file, func(w http.ResponseWriter, r *http.Request) {
		*auths = append(*auths, r.Header.Get("Authorization"))
		http.ServeContent(w, r, file, time.Time{}, strings.NewReader(string(data)))
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts
}

func TestPullListShowRemove(t *testing.T) {
	data, err := os.ReadFile(demoModelPath)
	if err != nil {
		t.Fatal(err)
	}
	var auths []string
	ts := fakeHubServing(t, "karpathy/tinyllamas-GGUF", "stories260K-F32.gguf", data, &auths)
	dir := t.TempDir()
	t.Setenv("HF_ENDPOINT", ts.URL)
	t.Setenv("HF_TOKEN", "hf_abc")

	out, errOut := runEngineCmd(t, pullCmd(), "karpathy/tinyllamas-GGUF:F32", "--data-dir", dir)
	if !strings.Contains(out, "(verified)") || !strings.Contains(errOut, "pulling karpathy/tinyllamas-GGUF/stories260K-F32.gguf") {
		t.Errorf("pull printed %q / %q", out, errOut)
	}
	if !strings.Contains(errOut, "100%") {
		t.Errorf("no progress shown: %q", errOut)
	}
	for _, a := range auths {
		if a != "Bearer hf_abc" {
			t.Errorf("HF_TOKEN not sent: %q", a)
		}
	}
	out, _ = runEngineCmd(t, modelsCmd(), "list", "--data-dir", dir)
	if !strings.Contains(out, "karpathy/tinyllamas-GGUF:stories260K-F32.gguf  F32") {
		t.Errorf("models list printed %q", out)
	}
	out, _ = runEngineCmd(t, modelsCmd(), "show", "karpathy/tinyllamas-GGUF:F32", "--data-dir", dir, "--ctx", "512")
	for _, want := range []string{"llama (5 layers, dim 64, 8 heads, 4 kv heads, ffn 172)", "parameters      292.8K", "context length  128",
		"KV cache 640.0 KiB (f32, one sequence at 512 tokens)", "chat template   plain"} {
		if !strings.Contains(out, want) {
			t.Errorf("models show: %q missing from\n%s", want, out)
		}
	}

	// The estimate follows the KV cache type: f16 halves it; q8_0 needs a head size that is a
	// multiple of 32, which this model (8) does not have.
	out, _ = runEngineCmd(t, modelsCmd(), "show", "karpathy/tinyllamas-GGUF:F32", "--data-dir", dir, "--ctx", "512", "--kv-type", "f16")
	if !strings.Contains(out, "KV cache 320.0 KiB (f16, one sequence at 512 tokens)") {
		t.Errorf("models show --kv-type f16:\n%s", out)
	}
	show := modelsCmd()
	show.SetArgs([]string{"show", "karpathy/tinyllamas-GGUF:F32", "--data-dir", dir, "--kv-type", "q8_0"})
	show.SetOut(io.Discard)
	show.SetErr(io.Discard)
	if err := show.Execute(); err == nil || !strings.Contains(err.Error(), "multiple of 32") {
		t.Errorf("models show --kv-type q8_0: %v", err)
	}

	// serve's configuration may name the pulled model instead of a path.
	cfg, err := config.Parse([]byte("models:\n  - name: tiny\n    backends: [{type: local, model: \"karpathy/tinyllamas-GGUF:F32\"}]\n"), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	st := &modelstore.Store{Dir: modelstore.DefaultDir(dir)}
	if err := resolvePulledModels(cfg, st); err != nil {
		t.Fatal(err)
	}
	if p := cfg.Models[0].Backends[0].Path; filepath.Base(p) != "stories260K-F32.gguf" {
		t.Errorf("resolved path %q", p)
	}
	cfg.Models[0].Backends[0].Path, cfg.Models[0].Backends[0].Model = "", "karpathy/tinyllamas-GGUF:Q4_0"
	if err := resolvePulledModels(cfg, st); err == nil || !strings.Contains(err.Error(), "autoglm pull karpathy/tinyllamas-GGUF:Q4_0") {
		t.Errorf("unpulled model: %v", err)
	}

	out, _ = runEngineCmd(t, modelsCmd(), "rm", "karpathy/tinyllamas-GGUF", "--data-dir", dir)
	if !strings.Contains(out, "removed karpathy/tinyllamas-GGUF:stories260K-F32.gguf") {
		t.Errorf("models rm printed %q", out)
	}
	if out, _ = runEngineCmd(t, modelsCmd(), "list", "--data-dir", dir); strings.Count(out, "\n") != 1 {
		t.Errorf("after rm, list printed %q", out)
	}
}
