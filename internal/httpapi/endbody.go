package httpapi

import "net/http"

// EndOnFlush asks the server under w to end the response body with the next flush, through
// any wrappers that expose it with Unwrap (as http.ResponseController finds a writer's
// methods). It reports whether a writer took the request; one that did not ends the body when
// the handler returns, as always. A handler calls it once its last bytes are written or about
// to be: a relayed stream whose upstream has ended.
func EndOnFlush(w http.ResponseWriter) bool {
	for {
		switch v := w.(type) {
		case interface{ EndOnFlush() }:
			v.EndOnFlush()
			return true
		case interface{ Unwrap() http.ResponseWriter }:
			w = v.Unwrap()
		default:
			return false
		}
	}
}
