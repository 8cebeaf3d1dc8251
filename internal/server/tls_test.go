package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"

	"github.com/open-autoglm/autoglm/internal/grpcapi"
	"github.com/open-autoglm/autoglm/internal/mockllm"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

var serial int64 = 100

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue makes a leaf certificate for 127.0.0.1 (server) or a client, as PEM cert and key.
func (ca *testCA) issue(t *testing.T, cn string, client bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// httpsClient trusts ca, presents cert when given, and uses a new connection per request so
// that each request makes a handshake.
func httpsClient(ca *testCA, cert *tls.Certificate) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	tc := &tls.Config{RootCAs: pool}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true, DisableKeepAlives: true}}
}

// startTLS serves the gateway over TLS with the given client_auth and the extra routes.
func startTLS(t *testing.T, clientAuth string) (g *gateway, ca *testCA, dir string) {
	t.Helper()
	dir = t.TempDir()
	ca = newCA(t, "test CA")
	c, k := ca.issue(t, "first", false)
	writeFile(t, filepath.Join(dir, "cert.pem"), c)
	writeFile(t, filepath.Join(dir, "key.pem"), k)
	writeFile(t, filepath.Join(dir, "ca.pem"), ca.pem)
	_, mockURL := startMock(t, mockllm.Options{Tokens: 2})
	cfg := `
server:
  tls:
    cert_file: ${DIR}/cert.pem
    key_file: ${DIR}/key.pem
    client_ca_file: ${DIR}/ca.pem
    client_auth: ` + clientAuth + `
    reload_interval: 1ms
` + oneModel(mockURL, "")
	g = startGateway(t, cfg, map[string]string{"DIR": dir}, grpcapi.ConventionRoutes(func() bool { return true }, grpcapi.Options{MaxBytes: 1 << 20})...)
	g.URL = strings.Replace(g.URL, "http://", "https://", 1)
	return g, ca, dir
}

// TestTLS: with server.tls the listener speaks HTTPS, negotiates HTTP/2 by ALPN (HTTP/1.1 for
// clients without it), serves gRPC on the same port, and serves a renewed certificate
// without a restart.
func TestTLS(t *testing.T) {
	g, ca, dir := startTLS(t, "none")
	if g.srv.Scheme() != "https" {
		t.Errorf("scheme %q", g.srv.Scheme())
	}
	client := httpsClient(ca, nil)
	resp, err := client.Get(g.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Proto != "HTTP/2.0" || resp.TLS.NegotiatedProtocol != "h2" {
		t.Fatalf("status %d, proto %s, ALPN %q", resp.StatusCode, resp.Proto, resp.TLS.NegotiatedProtocol)
	}
	if cn := resp.TLS.PeerCertificates[0].Subject.CommonName; cn != "first" {
		t.Fatalf("certificate %q", cn)
	}
	// A client that offers only HTTP/1.1 gets it.
	h1 := httpsClient(ca, nil)
	h1.Transport.(*http.Transport).ForceAttemptHTTP2 = false
	h1.Transport.(*http.Transport).TLSClientConfig.NextProtos = []string{"http/1.1"}
	if resp, err := h1.Get(g.URL + "/healthz"); err != nil || resp.Proto != "HTTP/1.1" {
		t.Fatalf("HTTP/1.1 client: %v", err)
	} else {
		resp.Body.Close()
	}
	// Plain HTTP on the TLS port is refused.
	if resp, err := http.Get(strings.Replace(g.URL, "https://", "http://", 1) + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP was served on the TLS listener")
		}
	}

	// gRPC over the same TLS listener.
	health := grpchealth.NewClient(client, g.URL, connect.WithGRPC())
	if got, err := health.Check(context.Background(), &grpchealth.CheckRequest{}); err != nil || got.Status != grpchealth.StatusServing {
		t.Fatalf("gRPC health over TLS: %v %v", got, err)
	}

	// Renew: a new certificate and key are picked up by the next handshake.
	c, k := ca.issue(t, "renewed", false)
	writeFile(t, filepath.Join(dir, "key.pem"), k)
	writeFile(t, filepath.Join(dir, "cert.pem"), c)
	future := time.Now().Add(time.Minute)
	for _, f := range []string{"cert.pem", "key.pem"} {
		if err := os.Chtimes(filepath.Join(dir, f), future, future); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the renewed certificate", func() bool {
		resp, err := client.Get(g.URL + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0].Subject.CommonName == "renewed"
	})
	if !strings.Contains(g.logs.String(), "TLS certificate reloaded") {
		t.Error("the reload is not logged")
	}
	// A broken file keeps the certificate that works.
	writeFile(t, filepath.Join(dir, "cert.pem"), []byte("not a certificate"))
	later := future.Add(time.Minute)
	_ = os.Chtimes(filepath.Join(dir, "cert.pem"), later, later)
	for range 3 {
		resp, err := client.Get(g.URL + "/healthz")
		if err != nil {
			t.Fatalf("a broken certificate file broke the listener: %v", err)
		}
		resp.Body.Close()
		if cn := resp.TLS.PeerCertificates[0].Subject.CommonName; cn != "renewed" {
			t.Fatalf("certificate %q", cn)
		}
	}
}

// TestTLSClientCertificates: require_and_verify refuses a client without a certificate, or
// with one the configured CA did not issue, and serves one with a certificate it did;
// request serves both.
func TestTLSClientCertificates(t *testing.T) {
	g, ca, _ := startTLS(t, "require_and_verify")
	cc, ck := ca.issue(t, "client", true)
	good, err := tls.X509KeyPair(cc, ck)
	if err != nil {
		t.Fatal(err)
	}
	stranger := newCA(t, "another CA")
	sc, sk := stranger.issue(t, "client", true)
	bad, err := tls.X509KeyPair(sc, sk)
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := httpsClient(ca, nil).Get(g.URL + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatalf("served without a client certificate: %d", resp.StatusCode)
	}
	if resp, err := httpsClient(ca, &bad).Get(g.URL + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatalf("served a certificate of another CA: %d", resp.StatusCode)
	}
	resp, err := httpsClient(ca, &good).Get(g.URL + "/healthz")
	if err != nil {
		t.Fatalf("refused a valid client certificate: %v", err)
	}
	resp.Body.Close()

	g2, ca2, _ := startTLS(t, "request")
	resp, err = httpsClient(ca2, nil).Get(g2.URL + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("request mode refused a client without a certificate: %v", err)
	}
	resp.Body.Close()
}
