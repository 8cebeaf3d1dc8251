package config

// Batch is the "batch" section: the OpenAI Batch API (POST /v1/files, /v1/batches).
type Batch struct {
	// MaxFileBytes caps one uploaded file. Default 104857600 (100 MiB).
	MaxFileBytes int64 `yaml:"max_file_bytes"`
	// Concurrency is how many batch lines run at once on this process, across all batches.
	// Kept small so that batch work yields to interactive traffic. Default 2.
	Concurrency int `yaml:"concurrency"`
}

// Batch defaults.
const (
	DefaultBatchMaxFileBytes = 100 << 20
	DefaultBatchConcurrency  = 2
)

func (b Batch) withDefaults() Batch {
	if b.MaxFileBytes == 0 {
		b.MaxFileBytes = DefaultBatchMaxFileBytes
	}
	if b.Concurrency == 0 {
		b.Concurrency = DefaultBatchConcurrency
	}
	return b
}

func (b Batch) validate(bad func(path, format string, args ...any)) {
	if b.MaxFileBytes < 0 {
		bad("batch.max_file_bytes", "must be positive, got %d", b.MaxFileBytes)
	}
	if b.Concurrency < 0 || b.Concurrency > 256 {
		bad("batch.concurrency", "must be between 1 and 256, got %d", b.Concurrency)
	}
}
