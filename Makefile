# Open-AutoGLM build and test entry points. `make test` is what CI runs.
GO      ?= go
FUZZTIME ?= 100000x
PKGS    := ./...

.PHONY: all build test check vet fmt unit race purego fuzz compat bench bench-cpu bench-engine soak \
	web console screenshots image clean

## image: the container image without a Docker daemon: a static binary (CGO_ENABLED=0) in one
## layer on an empty base, written as an OCI layout tar (build/autoglm-image.tar; load it with
## `docker load`, `podman load` or `skopeo copy oci-archive:...`), then booted from its unpacked
## root by deploy/image's test. The Dockerfile builds the same image with a daemon.
IMAGE_VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
image:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(IMAGE_VERSION)" -o bin/autoglm-static ./cmd/autoglm
	$(GO) run ./deploy/image -binary bin/autoglm-static -out build/autoglm-image.tar -tag autoglm:$(IMAGE_VERSION)
	AUTOGLM_IMAGE_BINARY=$(CURDIR)/bin/autoglm-static AUTOGLM_IMAGE_VERSION=$(IMAGE_VERSION) $(GO) test -count=1 ./deploy/image

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

## purego: the engine's tests on its portable Go kernels instead of the assembly.
purego:
	$(GO) test -tags purego -count=1 ./internal/engine/...

fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

compat:
	./tests/compat/run.sh

## web: rebuild the console's committed assets (web/dist) from web/src. Needs Node's npm once
## for the front-end packages (`npm ci` in web/); the bundling itself is esbuild's Go API.
web:
	cd web && npm ci --no-audit --no-fund --loglevel=error && $(GO) generate .

## console: the console's browser test (headless Chromium, installed with apt-get if missing).
console:
	./tests/console/run.sh

## screenshots: the console test, writing a screenshot of each page to docs/console/.
screenshots:
	SCREENSHOTS=1 ./tests/console/run.sh

bench:
	./scripts/bench.sh

## bench-cpu: CPU time per proxied request for nginx, the Go floor and autoglm, in one run
## (scripts/benchcpu.sh; valid on a busy machine when compared within the run).
bench-cpu:
	./scripts/benchcpu.sh

## bench-engine: the engine against llama.cpp on the same random-weight Qwen2.5-0.5B-shaped files
## (written to build/bench-engine), at 1 and 2 threads; see scripts/bench-engine.sh.
bench-engine:
	./scripts/bench-engine.sh

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
