# syntax=docker/dockerfile:1
# autoglm's container image: a static binary on distroless/static (CA certificates, tzdata,
# and the unprivileged "nonroot" user, uid 65532; no shell). `make image` builds the same
# layout without a Docker daemon.
#
#   docker build -t autoglm:dev --build-arg VERSION=$(git describe --tags --always) .
#   docker run -p 8080:8080 -v $PWD/config.yaml:/etc/autoglm/config.yaml:ro autoglm:dev
#
# There is no HEALTHCHECK: the image has no shell or curl, and orchestrators probe
# GET /healthz (liveness) and GET /readyz (readiness) themselves.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/root/go/pkg/mod go mod download
COPY . .
ARG VERSION=devel
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/autoglm ./cmd/autoglm \
    && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/autoglm /usr/local/bin/autoglm
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
WORKDIR /data
EXPOSE 8080
VOLUME ["/data"]
ENTRYPOINT ["/usr/local/bin/autoglm"]
CMD ["serve", "--config", "/etc/autoglm/config.yaml", "--data-dir", "/data"]
