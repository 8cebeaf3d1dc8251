package server

import (
	"net/http"
	"net/http/pprof"
)

// debugPprof serves Go's runtime profiles under /debug/pprof/. The route table gives it the
// admin.debug permission, which only admins hold; see docs/PROFILING.md.
func debugPprof(w http.ResponseWriter, r *http.Request) error {
	switch name := r.PathValue("name"); name {
	case "":
		pprof.Index(w, r)
	case "cmdline":
		pprof.Cmdline(w, r)
	case "profile":
		pprof.Profile(w, r)
	case "symbol":
		pprof.Symbol(w, r)
	case "trace":
		pprof.Trace(w, r)
	default:
		pprof.Handler(name).ServeHTTP(w, r)
	}
	return nil
}
