package main

import (
	"os"
	"testing"

	"github.com/open-autoglm/autoglm/internal/config"
)

// TestDeployConfigs decodes the configuration files shipped for deployment strictly, with
// the environment they document, so a renamed or removed option breaks the test, not a
// deployment.
func TestDeployConfigs(t *testing.T) {
	env := map[string]string{
		"AUTOGLM_UPSTREAM_URL": "http://upstream:8000/v1",
		"AUTOGLM_POSTGRES_DSN": "postgres://autoglm:pw@postgres:5432/autoglm?sslmode=disable",
	}
	for _, file := range []string{"../../deploy/compose/config.yaml"} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Parse(data, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if cfg.Store.Driver != "postgres" || cfg.RateLimit.Redis.Addr == "" || cfg.Cache.Redis.Addr == "" {
			t.Errorf("%s: replicas must share PostgreSQL and Redis: store %q, limits %q, cache %q",
				file, cfg.Store.Driver, cfg.RateLimit.Redis.Addr, cfg.Cache.Redis.Addr)
		}
	}
}
