// Package testenv gives tests the real services that `make test` starts (PostgreSQL, Redis),
// and a server on a loopback port (ServeLoopback).
//
// The test script exports their addresses. Under a plain `go test` without them, tests that
// need a service are skipped; under CI=true a missing service fails the test, so CI can never
// pass by skipping.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
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

// PostgresSchemaDSN creates a schema of the test's own, named prefix_<random>, in the test
// PostgreSQL database, drops it when the test ends, and returns a DSN whose search_path
// selects it. Extra connection parameters (such as pool_max_conns) are set on the DSN.
func PostgresSchemaDSN(t testing.TB, prefix string, params ...string) string {
	t.Helper()
	u, schema := ownPostgres(t, prefix, "CREATE SCHEMA %s", "DROP SCHEMA %s CASCADE")
	q := u.Query()
	q.Set("search_path", schema)
	for i := 0; i+1 < len(params); i += 2 {
		q.Set(params[i], params[i+1])
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// PostgresDatabaseDSN creates a database of the test's own on the test PostgreSQL, named prefix
// and a random suffix, dropped (WITH FORCE: a process killed with SIGKILL may leave a session
// the server has not reaped) when the test ends, and returns its DSN. For tests that run
// several processes on one database, where a schema on the search path is not enough.
func PostgresDatabaseDSN(t testing.TB, prefix string) string {
	t.Helper()
	u, name := ownPostgres(t, prefix, "CREATE DATABASE %s", "DROP DATABASE IF EXISTS %s WITH (FORCE)")
	u.Path = "/" + name
	return u.String()
}

// ownPostgres names an object prefix_<random>, creates it on the test PostgreSQL with the
// statement create (%s: the name), runs drop when the test ends, and returns the test
// database's DSN, parsed, with the name.
func ownPostgres(t testing.TB, prefix, create, drop string) (*url.URL, string) {
	t.Helper()
	base := PostgresDSN(t)
	ctx := context.Background()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := prefix + "_" + hex.EncodeToString(b[:])
	exec := func(stmt string) error {
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, fmt.Sprintf(stmt, name))
		return err
	}
	if err := exec(create); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := exec(drop); err != nil {
			t.Error(err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	return u, name
}
