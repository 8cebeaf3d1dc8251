package config

import (
	"net/url"
	"strings"
)

// Telemetry is the "telemetry" section: what the server reports about itself beyond logs and
// /metrics.
type Telemetry struct {
	// Tracing configures OpenTelemetry traces.
	Tracing Tracing `yaml:"tracing"`
}

// Tracing configures OpenTelemetry tracing, exported over OTLP. It is off by default. Every
// field left empty falls back to the standard OTEL_* environment variable that covers it
// (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_ENDPOINT,
// OTEL_EXPORTER_OTLP_PROTOCOL, OTEL_EXPORTER_OTLP_HEADERS, OTEL_SERVICE_NAME,
// OTEL_TRACES_SAMPLER, ...); a field that is set wins over the variable.
type Tracing struct {
	// Enabled turns tracing on. OTEL_TRACES_EXPORTER=otlp in the environment turns it on
	// too; OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none keep it off whatever this
	// says. Default false.
	Enabled bool `yaml:"enabled"`
	// Protocol is the OTLP transport: "http/protobuf" or "grpc". Default: the
	// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL variable, else
	// "http/protobuf".
	Protocol string `yaml:"protocol"`
	// Endpoint is the collector's URL: for http/protobuf the full URL traces are posted to
	// (http://collector:4318/v1/traces), for grpc the collector's address as a URL
	// (http://collector:4317). An http:// URL sends in clear text. Default: the OTEL_*
	// endpoint variables, else the exporter's default (localhost:4318 or localhost:4317).
	Endpoint string `yaml:"endpoint"`
	// Headers are sent with every export (a collector's API key: write it as ${ENV}).
	// Default: OTEL_EXPORTER_OTLP_TRACES_HEADERS or OTEL_EXPORTER_OTLP_HEADERS.
	Headers map[string]string `yaml:"headers"`
	// ServiceName is the service.name resource attribute. Default: OTEL_SERVICE_NAME, else
	// "autoglm".
	ServiceName string `yaml:"service_name"`
	// SampleRatio is the share of new traces recorded, between 0 and 1; a request that
	// continues a caller's trace follows the caller's sampling decision. 0 means unset.
	// Default: OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG, else 1 (every trace).
	SampleRatio float64 `yaml:"sample_ratio"`
	// Timeout bounds one export. Default 10s.
	Timeout Duration `yaml:"timeout"`
}

// Tracing protocols.
const (
	TracingHTTP = "http/protobuf"
	TracingGRPC = "grpc"
)

func (t Telemetry) validate(bad func(path, format string, args ...any)) {
	tr := t.Tracing
	switch tr.Protocol {
	case "", TracingHTTP, TracingGRPC:
	default:
		bad("telemetry.tracing.protocol", "must be %q or %q, got %q", TracingHTTP, TracingGRPC, tr.Protocol)
	}
	if tr.Endpoint != "" {
		u, err := url.Parse(tr.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("telemetry.tracing.endpoint", "must be an absolute http or https URL, got %q", tr.Endpoint)
		}
	}
	for k := range tr.Headers {
		if k == "" || strings.ContainsAny(k, " \t\r\n:") {
			bad("telemetry.tracing.headers", "invalid header name %q", k)
		}
	}
	if tr.SampleRatio < 0 || tr.SampleRatio > 1 {
		bad("telemetry.tracing.sample_ratio", "must be between 0 and 1, got %g", tr.SampleRatio)
	}
	if tr.Timeout < 0 {
		bad("telemetry.tracing.timeout", "must not be negative")
	}
}
