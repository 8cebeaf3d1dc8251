package web

import (
	"net/http"
	"os"
	"runtime"

	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/engine/runner"
	"github.com/open-autoglm/autoglm/internal/httpapi"
)

// EngineModel describes one model the in-process engine serves.
type EngineModel struct {
	Model         string `json:"model"`
	Backend       string `json:"backend"`
	Name          string `json:"name,omitempty"` // the file's general.name
	Arch          string `json:"arch"`
	Template      string `json:"template"`
	ContextLength int    `json:"context_length"`
	VocabSize     int    `json:"vocab_size"`
	EmbeddingDim  int    `json:"embedding_dim"`
	// Running and Waiting are the sequences holding a slot and the requests queued for one.
	Running int `json:"running"`
	Waiting int `json:"waiting"`
	// FileBytes is the size of the GGUF file, which the engine maps into memory: the weights'
	// share of the process's memory. 0 when the file cannot be read.
	FileBytes int64 `json:"file_bytes"`
}

// Engine is the answer to GET /v1/admin/engine.
type Engine struct {
	Models []EngineModel `json:"models"`
	// Process is the Go runtime's view of the whole process's memory, outside the mapped
	// model files.
	Process struct {
		HeapBytes  uint64 `json:"heap_bytes"`
		SysBytes   uint64 `json:"sys_bytes"`
		Goroutines int    `json:"goroutines"`
		CPUs       int    `json:"cpus"`
	} `json:"process"`
}

// engineRunner is what a local backend offers: its runner.
type engineRunner interface{ Runner() *runner.Runner }

// engine lists the models of the in-process engine: what each file holds, its load and its
// size.
func (c *Console) engine(w http.ResponseWriter, r *http.Request) error {
	out := Engine{Models: []EngineModel{}}
	// The registry, not the configuration read at start: a reload may add or remove models.
	for _, m := range c.reg.Models() {
		for _, t := range m.Targets {
			if t.Type != config.BackendLocal {
				continue
			}
			er, ok := t.Backend.(engineRunner)
			if !ok {
				continue
			}
			info, stats := er.Runner().Info(), er.Runner().Stats()
			em := EngineModel{Model: m.Name, Backend: t.Name, Name: info.Name, Arch: info.Arch, Template: info.Template,
				ContextLength: info.ContextLength, VocabSize: info.VocabSize, EmbeddingDim: info.EmbeddingDim,
				Running: stats.Running, Waiting: stats.Waiting}
			if st, err := os.Stat(t.Config().Path); err == nil {
				em.FileBytes = st.Size()
			}
			out.Models = append(out.Models, em)
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	out.Process.HeapBytes, out.Process.SysBytes = ms.HeapInuse, ms.Sys
	out.Process.Goroutines, out.Process.CPUs = runtime.NumGoroutine(), runtime.GOMAXPROCS(0)
	return httpapi.WriteData(w, r, http.StatusOK, out)
}
