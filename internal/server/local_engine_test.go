package server_test

import (
	"encoding/json"
	"testing"

	"github.com/open-autoglm/autoglm/api"
	_ "github.com/open-autoglm/autoglm/internal/backend/local"
	"github.com/open-autoglm/autoglm/internal/router"
)

const localModelConfig = `
models:
  - name: stories
    backends:
      - type: local
        name: engine
        path: ../../models/stories260K.gguf
        context_length: 256
        parallel: 2
        kv_cache_type: f16
`

// TestLocalEngineThroughServer sends the same completion twice to a local model through the
// OpenAI route: the second finds its prompt in the KV cache and says so in
// usage.prompt_tokens_details.cached_tokens; GET /v1/admin/backends shows the model's memory.
func TestLocalEngineThroughServer(t *testing.T) {
	g := startGateway(t, localModelConfig, nil)
	var usages []*api.Usage
	for range 2 {
		resp, b := post(t, g.URL+"/v1/completions", `{"model":"stories","prompt":"Once upon a time","max_tokens":6,"temperature":0}`)
		var c api.Completion
		if resp.StatusCode != 200 || json.Unmarshal(b, &c) != nil || c.Usage == nil {
			t.Fatalf("completion: %d %s", resp.StatusCode, b)
		}
		usages = append(usages, c.Usage)
	}
	// "Once upon a time" is BOS + 4 tokens; all but the last come from the cache.
	if d := usages[0].PromptTokensDetails; d == nil || d.CachedTokens != 0 {
		t.Errorf("first request: %+v", usages[0])
	}
	if d := usages[1].PromptTokensDetails; d == nil || d.CachedTokens != 4 || usages[1].PromptTokens != 5 {
		t.Errorf("second request: %+v, details %+v", usages[1], d)
	}

	resp, b := get(t, g.URL+"/v1/admin/backends")
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil || resp.StatusCode != 200 {
		t.Fatalf("admin backends: %d %s", resp.StatusCode, b)
	}
	var data struct {
		Models []router.ModelStatus `json:"models"`
	}
	if err := json.Unmarshal(env.Data, &data); err != nil || len(data.Models) != 1 || len(data.Models[0].Backends) != 1 {
		t.Fatalf("data: %s", env.Data)
	}
	m := data.Models[0].Backends[0].Memory
	// 292,800 f32 weights; f16 cache of 5 layers × 4 KV heads × 8 values × 2 × 2 bytes per
	// position, 2 sequences of 256 positions at most.
	// An F32 model has nothing repacked at load.
	if m == nil || m.WeightsMapped != 4*292800 || m.WeightsPacked != 0 || m.KVCacheType != "F16" || m.KVCacheMax != 2*256*640 ||
		m.KVCache <= 0 || m.KVCache > m.KVCacheMax || m.Scratch <= 0 {
		t.Errorf("memory: %+v", m)
	}
}
