package telemetry

import (
	"context"
	"net"
	"sync"
	"testing"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/open-autoglm/autoglm/internal/config"
)

// grpcCollector is an OTLP/gRPC trace endpoint that keeps the span names it receives and the
// api key header of the exports.
type grpcCollector struct {
	collectortrace.UnimplementedTraceServiceServer
	mu    sync.Mutex
	names []string
	keys  []string
}

func (c *grpcCollector) Export(ctx context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	md, _ := metadata.FromIncomingContext(ctx)
	c.keys = append(c.keys, md.Get("x-api-key")...)
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				c.names = append(c.names, s.Name)
			}
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// TestExportOverGRPC sends spans to an OTLP/gRPC receiver on loopback, configured in YAML
// terms (protocol grpc, an http:// endpoint for clear text, a header).
func TestExportOverGRPC(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	col := &grpcCollector{}
	gs := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(gs, col)
	go func() { _ = gs.Serve(ln) }()
	defer gs.Stop()

	tr, err := StartTracing(context.Background(), config.Tracing{Enabled: true, Protocol: config.TracingGRPC,
		Endpoint: "http://" + ln.Addr().String(), Headers: map[string]string{"x-api-key": "k1"}}, "test", envOf(nil))
	if err != nil || tr == nil {
		t.Fatalf("StartTracing: %v, %v", tr, err)
	}
	ctx, root := tr.Provider().Tracer(Scope).Start(context.Background(), "root")
	_, child := StartSpan(ctx, SpanUpstream)
	child.End()
	root.End()
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	if len(col.names) != 2 || len(col.keys) == 0 || col.keys[0] != "k1" {
		t.Errorf("received spans %v with keys %v", col.names, col.keys)
	}
}
