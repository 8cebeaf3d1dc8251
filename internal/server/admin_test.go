package server_test

import (
	"encoding/json"
	"testing"

	"github.com/open-autoglm/autoglm/internal/mockllm"
	"github.com/open-autoglm/autoglm/internal/router"
)

// TestAdminBackends checks GET /v1/admin/backends reports each backend's figures in the
// envelope, and that /readyz names each backend's circuit.
func TestAdminBackends(t *testing.T) {
	_, mockURL := startMock(t, mockllm.Options{Tokens: 2})
	g := startGateway(t, oneModel(mockURL, "        name: primary\n"), nil)
	for range 3 {
		if resp, b := post(t, g.URL+"/v1/chat/completions", `{"model":"glm4","messages":[{"role":"user","content":"hi"}]}`); resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
	}
	resp, b := get(t, g.URL+"/v1/admin/backends")
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil || resp.StatusCode != 200 || !env.Success {
		t.Fatalf("admin backends: %d %s", resp.StatusCode, b)
	}
	var data struct {
		Models []router.ModelStatus `json:"models"`
	}
	if err := json.Unmarshal(env.Data, &data); err != nil {
		t.Fatal(err)
	}
	if len(data.Models) != 1 || len(data.Models[0].Backends) != 1 {
		t.Fatalf("data: %s", env.Data)
	}
	m, be := data.Models[0], data.Models[0].Backends[0]
	if m.Name != "glm-4-flash" || m.Strategy != "weighted" || m.Requests != 3 {
		t.Errorf("model: %+v", m)
	}
	if be.Name != "primary" || be.Circuit != "closed" || be.Requests != 3 || be.Successes != 3 ||
		be.Inflight != 0 || be.EWMALatencyMs <= 0 || be.Errors["connect"] != 0 {
		t.Errorf("backend: %+v", be)
	}
	_, b = get(t, g.URL+"/readyz")
	if err := json.Unmarshal(b, &env); err != nil || !json.Valid(env.Data) {
		t.Fatalf("readyz: %s", b)
	}
	var ready struct {
		Models []struct {
			Backends []struct{ Circuit string } `json:"backends"`
		} `json:"models"`
	}
	if err := json.Unmarshal(env.Data, &ready); err != nil || ready.Models[0].Backends[0].Circuit != "closed" {
		t.Errorf("readyz lacks the circuit: %s", env.Data)
	}
}
