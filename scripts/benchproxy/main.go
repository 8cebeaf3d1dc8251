// Command benchproxy is the Go baseline of `make bench`: the smallest reverse proxy the
// standard library makes (httputil.ReverseProxy over an http.Transport with a keep-alive pool),
// so that what autoglm adds can be set against what any Go proxy pays.
//
// With -direct it is instead the floor of autoglm's own path: net/http's server and autoglm's
// upstream transport (internal/backend/openai, the direct HTTP/1.1 path), with nothing between
// them but reading the body once and relaying the answer. What autoglm adds over it is the
// cost of its chain; what it adds over nginx is the cost of net/http's server and the
// transport.
//
// With -lean it is the same floor served by internal/h1, the lean HTTP/1.1 server, instead of
// net/http's: what the two floors differ by is what the server side costs.
//
// With -loop N it is the same relay on N epoll event loops, one locked thread each, with no
// goroutine per connection and no allocation per request (loop_linux.go): the model nginx's
// workers follow, written in Go. -loopraw makes each loop wait in epoll holding its P, out of
// the runtime's sight, so that an idle loop's wake-up is the kernel's alone; without it the
// wait goes through the runtime's system-call hooks, which hand the P to another thread.
//
// -debug ADDR serves net/http/pprof on a second listener (execution traces for counting
// wake-ups per request: /debug/pprof/trace?seconds=3).
//
//	benchproxy -addr 127.0.0.1:9000 -upstream http://127.0.0.1:9001 [-direct | -lean | -loop N [-loopraw [-loopidle 5ms]]] [-debug 127.0.0.1:6060]
package main

import (
	"bytes"
	"flag"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	_ "net/http/pprof"
	"net/url"
	"strings"
	"time"

	"github.com/open-autoglm/autoglm/internal/backend/openai"
	"github.com/open-autoglm/autoglm/internal/h1"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen address")
	upstream := flag.String("upstream", "", "upstream root URL")
	direct := flag.Bool("direct", false, "relay with net/http's server and autoglm's upstream transport only")
	lean := flag.Bool("lean", false, "relay with internal/h1's server and autoglm's upstream transport only")
	debug := flag.String("debug", "", "serve net/http/pprof on this address")
	loops := flag.Int("loop", 0, "relay with this many event loops (epoll, one thread each) instead")
	loopRaw := flag.Bool("loopraw", false, "with -loop: wait in epoll holding the runtime's P")
	loopIdle := flag.Duration("loopidle", 0, "with -loopraw: wait that long holding the P, then through the runtime's hooks")
	flag.Parse()
	if *debug != "" {
		go func() { log.Fatal(http.ListenAndServe(*debug, nil)) }()
	}
	u, err := url.Parse(*upstream)
	if err != nil || u.Host == "" {
		log.Fatalf("benchproxy: -upstream %q is not a URL", *upstream)
	}
	if *loops > 0 {
		log.Fatal(serveLoops(*addr, u.Host, *loops, *loopRaw, *loopIdle))
	}
	if *lean {
		ln, err := net.Listen("tcp", *addr)
		if err != nil {
			log.Fatal(err)
		}
		srv := &h1.Server{Handler: relay(strings.TrimRight(*upstream, "/"), openai.NewTransport()),
			ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
		log.Fatal(srv.Serve(ln))
	}
	if *direct {
		log.Fatal(http.ListenAndServe(*addr, relay(strings.TrimRight(*upstream, "/"), openai.NewTransport())))
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 1024, 256
	p := &httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(u); r.Out.Host = u.Host },
		Transport: tr,
	}
	log.Fatal(http.ListenAndServe(*addr, p))
}

// relay reads the request body once, sends it upstream on rt and copies the answer back,
// flushing each read so that a stream's events go out as they come.
func relay(base string, rt http.RoundTripper) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		out, err := http.NewRequestWithContext(r.Context(), r.Method, base+r.URL.RequestURI(), bytes.NewReader(b))
		if err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "" {
			out.Header.Set("Content-Type", ct)
		}
		resp, err := rt.RoundTrip(out)
		if err != nil {
			http.Error(w, "upstream failed", http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for _, k := range []string{"Content-Type", "Content-Length"} {
			if v := resp.Header.Get(k); v != "" {
				w.Header().Set(k, v)
			}
		}
		w.WriteHeader(resp.StatusCode)
		f, _ := w.(http.Flusher)
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return
				}
				if f != nil {
					f.Flush()
				}
			}
			if err != nil {
				return
			}
		}
	})
}
