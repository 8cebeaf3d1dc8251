// Package config is autoglm's YAML configuration: the types, their defaults, strict decoding
// (an unknown key is an error that names it), explicit ${ENV} expansion, and validation whose
// errors name the field at fault.
//
// Every field's comment states its default. Parse applies defaults; Validate checks fields
// and their relations and reports every problem at once.
package config

import (
	_ "embed"
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole configuration file.
type Config struct {
	// Server configures the HTTP listener.
	Server Server `yaml:"server"`
	// Log configures structured logging.
	Log Log `yaml:"log"`
	// Models lists the models clients can ask for by name. Default: none.
	Models []Model `yaml:"models"`
}

// Server configures the HTTP listener and its limits.
type Server struct {
	// Addr is the listen address. Default "127.0.0.1:8080".
	Addr string `yaml:"addr"`
	// MaxBodyBytes caps a request body. Default 4194304 (4 MiB).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// ReadHeaderTimeout bounds reading request headers. Default 10s.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds reading a whole request, body included. Default 60s.
	ReadTimeout Duration `yaml:"read_timeout"`
	// WriteTimeout bounds writing a non-streamed response, which includes waiting for the
	// upstream to finish generating it. Default 10m. Streams are not bound by it: each chunk
	// gets StreamWriteTimeout instead.
	WriteTimeout Duration `yaml:"write_timeout"`
	// StreamWriteTimeout bounds the write of each chunk of a stream to a slow client.
	// Default 30s.
	StreamWriteTimeout Duration `yaml:"stream_write_timeout"`
	// IdleTimeout closes keep-alive connections idle this long. Default 120s.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// ShutdownTimeout is how long a graceful shutdown waits for in-flight requests and
	// streams before closing them. Default 30s.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
}

// Log configures logging.
type Log struct {
	// Level is one of debug, info, warn, error. Default "info".
	Level string `yaml:"level"`
}

// Model is one public model name and the backends that serve it.
type Model struct {
	// Name is what clients send as "model". Required, unique across names and aliases.
	Name string `yaml:"name"`
	// Aliases are other names that resolve to this model. Default: none.
	Aliases []string `yaml:"aliases"`
	// Backends serve the model. At least one is required.
	Backends []Backend `yaml:"backends"`
}

// Backend types.
const (
	// BackendOpenAI is any OpenAI-compatible upstream: vLLM, SGLang, TGI, Ollama,
	// llama-server, hosted APIs.
	BackendOpenAI = "openai"
	// BackendLocal is a GGUF model run by the built-in engine.
	BackendLocal = "local"
)

// Backend is one place a model's requests can go.
type Backend struct {
	// Type is "openai" or "local". Required.
	Type string `yaml:"type"`
	// Name labels the backend in logs, metrics and the admin API. Default "<model>#<index>".
	Name string `yaml:"name"`
	// BaseURL is the upstream's API root, including its version path, e.g.
	// "http://127.0.0.1:8000/v1". Required for type openai.
	BaseURL string `yaml:"base_url"`
	// APIKey is sent upstream as "Authorization: Bearer <key>". Default: none.
	APIKey string `yaml:"api_key"`
	// Model is the model name the upstream knows. Default: the public model name.
	Model string `yaml:"model"`
	// Weight is the backend's share of traffic relative to its siblings. Default 1.
	Weight int `yaml:"weight"`
	// Headers are extra headers sent upstream with every request. Default: none.
	Headers map[string]string `yaml:"headers"`
	// Path is the GGUF file to load. Required for type local.
	Path string `yaml:"path"`
	// ContextLength is the context window of a local model, in tokens. Default: the model's
	// metadata. Type local only.
	ContextLength int `yaml:"context_length"`
	// Threads is the number of threads a local model computes with. Default: all cores.
	// Type local only.
	Threads int `yaml:"threads"`
	// Parallel is how many sequences a local model decodes together (continuous batching).
	// Default 4. Type local only.
	Parallel int `yaml:"parallel"`
	// Template names the chat template of a local model: llama2, chatml, glm4, chatglm3,
	// llama3, llama3.1 or plain. Default: detected from the model's metadata. Type local only.
	Template string `yaml:"template"`
}

// Duration is a time.Duration written in YAML as a Go duration string ("300ms", "2m").
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML parses a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("invalid duration %q (want a value such as 300ms, 10s or 2m)", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Defaults for fields left empty.
const (
	DefaultAddr               = "127.0.0.1:8080"
	DefaultMaxBodyBytes       = 4 << 20
	DefaultReadHeaderTimeout  = 10 * time.Second
	DefaultReadTimeout        = 60 * time.Second
	DefaultWriteTimeout       = 10 * time.Minute
	DefaultStreamWriteTimeout = 30 * time.Second
	DefaultIdleTimeout        = 120 * time.Second
	DefaultShutdownTimeout    = 30 * time.Second
)

// WithDefaults returns a copy of c with every empty field set to its default.
func (c Config) WithDefaults() Config {
	s := &c.Server
	if s.Addr == "" {
		s.Addr = DefaultAddr
	}
	if s.MaxBodyBytes == 0 {
		s.MaxBodyBytes = DefaultMaxBodyBytes
	}
	setDur(&s.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	setDur(&s.ReadTimeout, DefaultReadTimeout)
	setDur(&s.WriteTimeout, DefaultWriteTimeout)
	setDur(&s.StreamWriteTimeout, DefaultStreamWriteTimeout)
	setDur(&s.IdleTimeout, DefaultIdleTimeout)
	setDur(&s.ShutdownTimeout, DefaultShutdownTimeout)
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	models := make([]Model, len(c.Models))
	for i, m := range c.Models {
		backends := make([]Backend, len(m.Backends))
		for j, b := range m.Backends {
			if b.Name == "" {
				b.Name = fmt.Sprintf("%s#%d", m.Name, j)
			}
			if b.Model == "" {
				b.Model = m.Name
			}
			if b.Weight == 0 {
				b.Weight = 1
			}
			backends[j] = b
		}
		m.Backends = backends
		models[i] = m
	}
	c.Models = models
	return c
}

func setDur(d *Duration, def time.Duration) {
	if *d == 0 {
		*d = Duration(def)
	}
}

//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML is the configuration `autoglm serve` runs without --config.
func DefaultYAML() []byte { return defaultYAML }
