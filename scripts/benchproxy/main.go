// Command benchproxy is the Go baseline of `make bench`: the smallest reverse proxy the
// standard library makes (httputil.ReverseProxy over an http.Transport with a keep-alive pool),
// so that what autoglm adds can be set against what any Go proxy pays.
//
//	benchproxy -addr 127.0.0.1:9000 -upstream http://127.0.0.1:9001
package main

import (
	"flag"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen address")
	upstream := flag.String("upstream", "", "upstream root URL")
	flag.Parse()
	u, err := url.Parse(*upstream)
	if err != nil || u.Host == "" {
		log.Fatalf("benchproxy: -upstream %q is not a URL", *upstream)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 1024, 256
	p := &httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(u); r.Out.Host = u.Host },
		Transport: tr,
	}
	log.Fatal(http.ListenAndServe(*addr, p))
}
