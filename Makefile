# Open-AutoGLM build and test entry points. `make test` is what CI runs.
GO      ?= go
FUZZTIME ?= 100000x
PKGS    := ./...

.PHONY: all build test check vet fmt unit race fuzz compat bench soak clean

all: build

build:
	$(GO) build -o bin/autoglm ./cmd/autoglm

## test: everything CI checks — formatting, vet, unit and integration tests with the race
## detector, a short run of every fuzz target, and the OpenAI SDK compatibility test.
test:
	./scripts/test.sh

check: fmt vet

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

race:
	$(GO) test -race -count=1 $(PKGS)

fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

compat:
	./tests/compat/run.sh

bench:
	./scripts/bench.sh

## soak: mixed traffic through two replicas on PostgreSQL and Redis with the upstream killed
## every few minutes, reporting RSS, goroutines, errors and tasks (docs/RELIABILITY.md).
## Not part of `make test` at this length. DURATION=1h by default: make soak DURATION=20m
DURATION ?= 1h
soak:
	./scripts/soak.sh $(DURATION)

clean:
	rm -rf bin

## proto: lint proto/ and regenerate the committed Go code in gen/ with buf and local plugins:
##   go install github.com/bufbuild/buf/cmd/buf@latest
##   go install google.golang.org/protobuf/cmd/protoc-gen-go@latest
##   go install connectrpc.com/connect/cmd/protoc-gen-connect-go@latest
.PHONY: proto
proto:
	PATH="$$PATH:$$($(GO) env GOPATH)/bin" buf lint
	PATH="$$PATH:$$($(GO) env GOPATH)/bin" buf generate
