package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/config"
)

// runServe runs serve with cfg until the test ends (stopping it in a cleanup, which fails
// the test if serve returns an error or does not stop) and waits until cfg.Server.Addr
// answers /readyz; it returns the server's base URL. Cleanups the test registers after
// this call run before serve stops.
func runServe(t *testing.T, cfg *config.Config) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, "test", t.TempDir(), false, serveFlags{}) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("serve did not stop")
		}
	})
	base := "http://" + cfg.Server.Addr
	for deadline := time.Now().Add(30 * time.Second); ; {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("server not ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
