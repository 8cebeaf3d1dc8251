package server

import (
	"net/http"

	"github.com/klauspost/compress/gzhttp"

	"github.com/open-autoglm/autoglm/internal/httphead"
)

// compress negotiates compression of JSON responses by Accept-Encoding (zstd or gzip, for
// bodies of 1 KiB or more) and accepts request bodies sent with Content-Encoding gzip or zstd.
// Server-sent events are never compressed: a compressor buffers, and a stream must reach the
// client chunk by chunk. Upgrade requests (WebSocket) pass untouched. The body limit applies after decompression (this stage is outside
// limitBody), so a small compressed body cannot expand past max_body_bytes.
func compress(next http.Handler) http.Handler {
	wrap, err := gzhttp.NewWrapper(
		gzhttp.MinSize(1024),
		gzhttp.ContentTypes([]string{"application/json"}),
		gzhttp.EnableZstd(true),
		gzhttp.EnableGzip(true),
		gzhttp.AllowCompressedRequests(true),
	)
	if err != nil {
		panic("server: compression options: " + err.Error()) // fixed options; cannot fail
	}
	compressed := wrap(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A protocol upgrade (WebSocket) must reach its handler with the raw connection: a
		// compressing writer cannot be hijacked.
		if httphead.Get(r.Header, "Upgrade") != "" {
			next.ServeHTTP(w, r)
			return
		}
		// A request that accepts no coding and sends none gets nothing from the wrapper but
		// its Vary line: that is written here, and the answer goes out unwrapped (one
		// writer, its pool and a layer on every write fewer).
		if _, ok := r.Header["Accept-Encoding"]; !ok {
			if _, ok := r.Header["Content-Encoding"]; !ok {
				h := w.Header()
				if vs := h["Vary"]; len(vs) == 0 {
					h["Vary"] = varyAcceptEncoding
				} else {
					h["Vary"] = append(vs, "Accept-Encoding")
				}
				next.ServeHTTP(w, r)
				return
			}
		}
		compressed.ServeHTTP(w, r)
	})
}

// varyAcceptEncoding is the Vary value of an answer that could have been compressed, shared by
// every such answer: one element, capped, so that adding to the field copies it.
var varyAcceptEncoding = []string{"Accept-Encoding"}[:1:1]
