package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/evloop"
)

// certReloader serves the certificate of server.tls and reads its files again when either has
// changed, checking at most once per interval, on a handshake: a renewed certificate (cert-
// manager, certbot, a mounted Secret) is served without a restart, and there is no watcher
// goroutine to own. A reload that fails (a half-written file) keeps the previous certificate
// and is tried again at the next check.
type certReloader struct {
	certFile, keyFile string
	interval          time.Duration
	log               *slog.Logger

	cert      atomic.Pointer[tls.Certificate]
	nextCheck atomic.Int64 // unix nanoseconds

	mu      sync.Mutex // serializes reloads
	certMod fileStamp
	keyMod  fileStamp
}

// fileStamp identifies a version of a file.
type fileStamp struct {
	mod  time.Time
	size int64
}

func stamp(path string) (fileStamp, error) {
	st, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{st.ModTime(), st.Size()}, nil
}

func newCertReloader(c config.TLS, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: c.CertFile, keyFile: c.KeyFile, interval: c.ReloadInterval.D(), log: log}
	if r.interval <= 0 {
		r.interval = config.DefaultTLSReloadInterval
	}
	if err := r.load(); err != nil {
		return nil, err
	}
	r.nextCheck.Store(time.Now().Add(r.interval).UnixNano())
	return r, nil
}

// load reads both files if either changed since the last load.
func (r *certReloader) load() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	cm, err := stamp(r.certFile)
	if err != nil {
		return fmt.Errorf("server.tls.cert_file: %w", err)
	}
	km, err := stamp(r.keyFile)
	if err != nil {
		return fmt.Errorf("server.tls.key_file: %w", err)
	}
	if r.cert.Load() != nil && cm == r.certMod && km == r.keyMod {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("server.tls: %w", err)
	}
	first := r.cert.Load() == nil
	r.cert.Store(&cert)
	r.certMod, r.keyMod = cm, km
	if !first {
		r.log.Info("TLS certificate reloaded", "cert_file", r.certFile, "not_after", cert.Leaf.NotAfter)
	}
	return nil
}

// GetCertificate is tls.Config.GetCertificate.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	now := time.Now().UnixNano()
	if next := r.nextCheck.Load(); now >= next && r.nextCheck.CompareAndSwap(next, now+int64(r.interval)) {
		if err := r.load(); err != nil {
			r.log.Warn("TLS certificate not reloaded; serving the previous one", "err", err)
		}
	}
	return r.cert.Load(), nil
}

// tlsConfig builds the listener's TLS configuration from server.tls: the reloaded
// certificate, ALPN h2 then http/1.1, TLS 1.2 or later, and client certificates as
// client_auth asks.
func tlsConfig(c config.TLS, log *slog.Logger) (*tls.Config, error) {
	r, err := newCertReloader(c, log)
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: r.GetCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
	}
	switch c.ClientAuth {
	case "", config.ClientAuthNone:
		tc.ClientAuth = tls.NoClientCert
	case config.ClientAuthRequest:
		tc.ClientAuth = tls.VerifyClientCertIfGiven
	case config.ClientAuthRequireAndVerify:
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	default:
		return nil, fmt.Errorf("server.tls.client_auth: unknown mode %q", c.ClientAuth)
	}
	if c.ClientCAFile != "" {
		pem, err := os.ReadFile(c.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("server.tls.client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("server.tls.client_ca_file: no PEM certificate in the file")
		}
		tc.ClientCAs = pool
	}
	return tc, nil
}

// Scheme is "https" when the server serves TLS, "http" otherwise.
func (s *Server) Scheme() string {
	if s.cfg.TLS.Enabled() {
		return "https"
	}
	return "http"
}

// Protocols names the protocols the listener speaks, for the start-up line.
func (s *Server) Protocols() string {
	if s.cfg.TLS.Enabled() {
		return "HTTP/1.1 and HTTP/2 over TLS"
	}
	if s.cfg.HTTP1 == config.HTTP1Loop && evloop.Supported {
		n := s.cfg.EventLoops
		if n <= 0 {
			n = runtime.GOMAXPROCS(0)
		}
		if n == 1 {
			return "HTTP/1.1 on 1 event loop, and h2c"
		}
		return fmt.Sprintf("HTTP/1.1 on %d event loops, and h2c", n)
	}
	return "HTTP/1.1 and h2c"
}
