// Package scaleout holds the scale-out test of the whole product: real `autoglm serve`
// processes sharing one PostgreSQL database and one Redis, in front of real `autoglm mockllm`
// processes, all on loopback. The test is in scaleout_test.go; this package has no code of
// its own.
//
// It needs the services `make test` starts (see internal/testenv): under a plain `go test`
// without them it is skipped, under CI=true it fails.
package scaleout
