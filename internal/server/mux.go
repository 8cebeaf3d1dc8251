package server

import (
	"net/http"
	"strings"
)

// routeMux is the server's ServeMux with the patterns that have no wildcard served from a
// map: the OpenAI routes every request takes are fixed paths, and ServeMux's matcher (its
// path cleaning, tree walk and per-request match bookkeeping) was one of the larger costs
// on the request path. A request goes to the map only when ServeMux would give it the same
// handler: its path is exactly a fixed pattern and needs no escaping (ServeMux matches the
// escaped path, so "/v1/chat%2Fcompletions" is not "/v1/chat/completions"), and it is not a
// CONNECT (whose path ServeMux does not clean). Everything else goes to ServeMux, which
// still holds every pattern.
type routeMux struct {
	mux   *http.ServeMux
	exact map[string]exactRoute
}

type exactRoute struct {
	h       http.Handler
	pattern string
}

func newRouteMux() *routeMux {
	return &routeMux{mux: http.NewServeMux(), exact: map[string]exactRoute{}}
}

// Handle registers h for pattern, a pattern without method or host.
func (m *routeMux) Handle(pattern string, h http.Handler) {
	m.mux.Handle(pattern, h)
	if !strings.Contains(pattern, "{") && !strings.HasSuffix(pattern, "/") && strings.HasPrefix(pattern, "/") {
		m.exact[pattern] = exactRoute{h: h, pattern: pattern}
	}
}

// Handler reports the handler and pattern ServeMux chooses for r.
func (m *routeMux) Handler(r *http.Request) (http.Handler, string) { return m.mux.Handler(r) }

func (m *routeMux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.RawPath == "" && r.Method != http.MethodConnect {
		if e, ok := m.exact[r.URL.Path]; ok {
			r.Pattern = e.pattern
			e.h.ServeHTTP(w, r)
			return
		}
	}
	m.mux.ServeHTTP(w, r)
}
