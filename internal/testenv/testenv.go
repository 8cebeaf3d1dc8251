// Package testenv gives tests the real services that `make test` starts (PostgreSQL, Redis).
//
// The test script exports their addresses. Under a plain `go test` without them, tests that
// need a service are skipped; under CI=true a missing service fails the test, so CI can never
// pass by skipping.
package testenv

import (
	"os"
	"testing"
)

// Environment variables the test script sets.
const (
	PostgresEnv = "AUTOGLM_TEST_POSTGRES_DSN"
	RedisEnv    = "AUTOGLM_TEST_REDIS_ADDR"
)

// PostgresDSN returns the test PostgreSQL's connection string.
func PostgresDSN(t testing.TB) string { return need(t, PostgresEnv, "PostgreSQL") }

// RedisAddr returns the test Redis's host:port.
func RedisAddr(t testing.TB) string { return need(t, RedisEnv, "Redis") }

func need(t testing.TB, env, what string) string {
	t.Helper()
	if v := os.Getenv(env); v != "" {
		return v
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required under CI=true but %s is not set (run the tests with `make test`)", what, env)
	}
	t.Skipf("%s not available: %s is not set (`make test` starts one)", what, env)
	return ""
}
