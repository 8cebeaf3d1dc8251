// Command fhproxy is the smallest proxy built on fasthttp, a baseline for `make bench`: the
// best Go HTTP/1.1 stack we know of, with its own server, client and connection pool, none of
// net/http, so that a run shows how close any Go server comes to nginx on the same machine.
// It relays a streamed (chunked) answer as it arrives, flushing after each read, and sends
// an answer of known length whole.
//
// It is its own module so that fasthttp stays out of autoglm's go.mod: the gateway does not
// use it, and only the benchmark script builds this.
//
//	fhproxy -addr 127.0.0.1:9000 -upstream 127.0.0.1:9001
package main

import (
	"bufio"
	"flag"
	"log"

	"github.com/valyala/fasthttp"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen address")
	upstream := flag.String("upstream", "", "upstream host:port (plain HTTP)")
	flag.Parse()
	if *upstream == "" {
		log.Fatal("fhproxy: -upstream is required")
	}
	c := &fasthttp.HostClient{Addr: *upstream, MaxConns: 1024, StreamResponseBody: true}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		req := fasthttp.AcquireRequest()
		ctx.Request.CopyTo(req)
		req.SetHost(*upstream)
		resp := fasthttp.AcquireResponse()
		err := c.Do(req, resp)
		fasthttp.ReleaseRequest(req)
		if err != nil {
			fasthttp.ReleaseResponse(resp)
			ctx.Error("upstream unreachable", fasthttp.StatusBadGateway)
			return
		}
		if !resp.IsBodyStream() || resp.Header.ContentLength() >= 0 {
			// An answer of known length is read whole (Body reads the stream to its end) and
			// sent with its length, as the other proxies send it.
			resp.Body()
			resp.CopyTo(&ctx.Response)
			fasthttp.ReleaseResponse(resp)
			return
		}
		resp.Header.CopyTo(&ctx.Response.Header)
		body := resp.BodyStream()
		ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
			defer fasthttp.ReleaseResponse(resp)
			defer resp.CloseBodyStream()
			buf := make([]byte, 16<<10)
			for {
				n, err := body.Read(buf)
				if n > 0 {
					if _, werr := w.Write(buf[:n]); werr != nil || w.Flush() != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		})
	}}
	log.Fatal(srv.ListenAndServe(*addr))
}
