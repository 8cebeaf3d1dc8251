// Package faults injects the faults a production deployment meets into real `autoglm serve`
// processes and checks what docs/RELIABILITY.md promises: a database or Redis restarted under
// load, a full disk under SQLite, upstreams and clients that misbehave. The tests are in the
// _test.go files; this package has no code of its own.
//
// Tests that need PostgreSQL or Redis either use the services `make test` starts (see
// internal/testenv) or start a private server from the Debian binaries so they can stop and
// restart it; without those binaries they are skipped under a plain `go test` and fail under
// CI=true.
package faults
