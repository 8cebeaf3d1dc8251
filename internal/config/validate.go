package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Validate checks every field and the relations between fields. It expects defaults to be
// applied (see WithDefaults) and returns all problems joined, each naming its field path.
func (c *Config) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	s := c.Server
	if host, port, err := net.SplitHostPort(s.Addr); err != nil || port == "" {
		bad("server.addr", "must be host:port, got %q", s.Addr)
	} else if host != "" && net.ParseIP(host) == nil && !validHostname(host) {
		bad("server.addr", "invalid host %q", host)
	}
	if s.MaxBodyBytes < 1024 || s.MaxBodyBytes > 1<<30 {
		bad("server.max_body_bytes", "must be between 1024 and 1073741824, got %d", s.MaxBodyBytes)
	}
	for name, d := range map[string]Duration{
		"server.read_header_timeout":  s.ReadHeaderTimeout,
		"server.read_timeout":         s.ReadTimeout,
		"server.write_timeout":        s.WriteTimeout,
		"server.stream_write_timeout": s.StreamWriteTimeout,
		"server.idle_timeout":         s.IdleTimeout,
		"server.shutdown_timeout":     s.ShutdownTimeout,
	} {
		if d < 0 {
			bad(name, "must not be negative")
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be one of debug, info, warn, error, got %q", c.Log.Level)
	}

	names := make(map[string]string) // public name or alias → path that claimed it
	claim := func(name, path string) {
		if prev, ok := names[name]; ok {
			bad(path, "%q is already used by %s", name, prev)
			return
		}
		names[name] = path
	}
	for i, m := range c.Models {
		mp := fmt.Sprintf("models[%d]", i)
		if m.Name == "" {
			bad(mp+".name", "is required")
		} else if !validModelName(m.Name) {
			bad(mp+".name", "%q is not a valid model name (1-256 printable characters, no spaces)", m.Name)
		} else {
			claim(m.Name, mp+".name")
		}
		for j, a := range m.Aliases {
			ap := fmt.Sprintf("%s.aliases[%d]", mp, j)
			if !validModelName(a) {
				bad(ap, "%q is not a valid model name (1-256 printable characters, no spaces)", a)
				continue
			}
			claim(a, ap)
		}
		if len(m.Backends) == 0 {
			bad(mp+".backends", "at least one backend is required")
		}
		backendNames := make(map[string]bool)
		for j, b := range m.Backends {
			bp := fmt.Sprintf("%s.backends[%d]", mp, j)
			if backendNames[b.Name] {
				bad(bp+".name", "%q is used by another backend of this model", b.Name)
			}
			backendNames[b.Name] = true
			if b.Weight < 0 {
				bad(bp+".weight", "must not be negative")
			}
			for k := range b.Headers {
				if !validHeaderName(k) {
					bad(bp+".headers", "%q is not a valid header name", k)
				}
			}
			switch b.Type {
			case BackendOpenAI:
				if b.BaseURL == "" {
					bad(bp+".base_url", "is required for type openai")
				} else if u, err := url.Parse(b.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					bad(bp+".base_url", "must be an absolute http or https URL, got %q", b.BaseURL)
				} else if u.RawQuery != "" || u.Fragment != "" {
					bad(bp+".base_url", "must not have a query or fragment")
				}
				if b.Path != "" {
					bad(bp+".path", "applies only to type local")
				}
				if b.ContextLength != 0 || b.Threads != 0 || b.Parallel != 0 || b.Template != "" {
					bad(bp, "context_length, threads, parallel and template apply only to type local")
				}
			case BackendLocal:
				if b.Path == "" {
					bad(bp+".path", "is required for type local")
				}
				if b.BaseURL != "" {
					bad(bp+".base_url", "applies only to type openai")
				}
				if b.APIKey != "" || len(b.Headers) > 0 {
					bad(bp, "api_key and headers apply only to type openai")
				}
				if b.ContextLength < 0 || b.ContextLength > 1<<20 {
					bad(bp+".context_length", "must be between 0 (model default) and 1048576")
				}
				if b.Threads < 0 || b.Threads > 1024 {
					bad(bp+".threads", "must be between 0 (all cores) and 1024")
				}
				if b.Parallel < 0 || b.Parallel > 256 {
					bad(bp+".parallel", "must be between 0 (default 4) and 256")
				}
				switch b.Template {
				case "", "llama2", "chatml", "glm4", "chatglm3", "llama3", "llama3.1", "plain":
				default:
					bad(bp+".template", "unknown chat template %q (want llama2, chatml, glm4, chatglm3, llama3, llama3.1 or plain)", b.Template)
				}
			case "":
				bad(bp+".type", "is required (openai or local)")
			default:
				bad(bp+".type", "unknown backend type %q (want openai or local)", b.Type)
			}
		}
	}
	return errors.Join(errs...)
}

func validModelName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f {
			return false
		}
	}
	return true
}

func validHostname(s string) bool {
	if len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if c != '-' && (c < '0' || c > '9') && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') {
				return false
			}
		}
	}
	return true
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	return true
}
