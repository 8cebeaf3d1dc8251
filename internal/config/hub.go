package config

import (
	"net/url"
	"strings"

	"github.com/open-autoglm/autoglm/internal/hub"
)

// Hub is the "hub" section: where `autoglm pull` downloads models from. Pulled models live
// in the model store, <data-dir>/models/hub (layout: internal/modelstore).
type Hub struct {
	// Endpoint is the model hub's root URL: Hugging Face, a mirror (https://hf-mirror.com)
	// or another autoglm node's store (http://node1:8080/hub). The HF_ENDPOINT environment
	// variable, then pull's --endpoint flag, override it. Default "https://huggingface.co".
	Endpoint string `yaml:"endpoint"`
	// Token is sent as a bearer token, for gated or private repositories or a node with
	// authentication on (a key whose role holds models.pull). Write it as ${ENV}. HF_TOKEN
	// and --token override it. Default: none.
	Token string `yaml:"token"`
}

func (h Hub) withDefaults() Hub {
	if h.Endpoint == "" {
		h.Endpoint = hub.DefaultEndpoint
	}
	return h
}

func (h Hub) validate(bad func(path, format string, args ...any)) {
	if u, err := url.Parse(h.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		bad("hub.endpoint", "must be an absolute http or https URL without query, got %q", h.Endpoint)
	}
}

// validPulledRef reports whether s has the form of a pulled model's reference,
// REPO[:FILE|:QUANT] with REPO "owner/name". Whether the store holds it is checked when the
// model is loaded.
func validPulledRef(s string) bool {
	repo, suffix, has := strings.Cut(s, ":")
	return hub.ValidRepo(repo) && (!has || (suffix != "" && !strings.Contains(suffix, "..")))
}
