package grpcapi

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"connectrpc.com/connect"
	"github.com/google/go-cmp/cmp"
)

func TestStreamWriterEvents(t *testing.T) {
	var got []string
	w := &streamWriter{hdr: http.Header{}, send: func(d []byte) error { got = append(got, string(d)); return nil }}
	w.WriteHeader(http.StatusOK)
	// Events split across writes, CRLF line ends, a comment, a multi-line data field, and an
	// event after [DONE] that must be ignored.
	for _, p := range []string{": keep-alive\n\ndata: {\"a\"", ":1}\r\n\r\nevent: x\ndata: line1\ndata: line2\n\n", "data: [DONE]\n\ndata: late\n\n"} {
		if n, err := w.Write([]byte(p)); err != nil || n != len(p) {
			t.Fatalf("Write: %d, %v", n, err)
		}
	}
	if err := w.finish(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{`{"a":1}`, "line1\nline2"}, got); d != "" {
		t.Errorf("events (-want +got):\n%s", d)
	}
}

func TestStreamWriterSendFailureStops(t *testing.T) {
	boom := errors.New("client gone")
	w := &streamWriter{hdr: http.Header{}, send: func([]byte) error { return boom }}
	if _, err := w.Write([]byte("data: {}\n\n")); !errors.Is(err, boom) {
		t.Fatalf("Write: %v", err)
	}
	if _, err := w.Write([]byte("data: {}\n\n")); !errors.Is(err, boom) {
		t.Fatalf("second Write: %v", err)
	}
	if err := w.FlushError(); !errors.Is(err, boom) {
		t.Fatalf("FlushError: %v", err)
	}
}

func TestStreamWriterErrorAnswer(t *testing.T) {
	w := &streamWriter{hdr: http.Header{}, send: func([]byte) error { t.Fatal("sent an error body"); return nil }}
	w.Header().Set("Retry-After", "3")
	w.WriteHeader(http.StatusTooManyRequests)
	_, _ = w.Write([]byte(`{"error":{"message":"slow down","type":"rate_limit_error","code":"rate_limited"}}`))
	err := w.finish(context.Background())
	var cerr *connect.Error
	if !errors.As(err, &cerr) || cerr.Code() != connect.CodeResourceExhausted || cerr.Message() != "slow down" {
		t.Fatalf("error: %v", err)
	}
	if cerr.Meta().Get("Retry-After") != "3" || cerr.Meta().Get(metaErrorCode) != "rate_limited" {
		t.Errorf("meta: %v", cerr.Meta())
	}
}

func TestStreamErrorEvent(t *testing.T) {
	if streamError([]byte(`{"id":"x","choices":[{"delta":{"content":"error"}}]}`)) != nil {
		t.Error("a chunk whose text says error is not an error")
	}
	cerr := streamError([]byte(`{"error":{"message":"upstream stopped","type":"upstream_error","code":"upstream_stream_interrupted"}}`))
	if cerr == nil || cerr.Code() != connect.CodeUnavailable {
		t.Errorf("error event: %v", cerr)
	}
}

func TestHTTPErrorQuota(t *testing.T) {
	cerr := httpError(http.StatusTooManyRequests, nil, []byte(`{"error":{"message":"quota","type":"insufficient_quota"}}`))
	if cerr.Code() != connect.CodeResourceExhausted {
		t.Errorf("code %v", cerr.Code())
	}
	if cerr := httpError(http.StatusBadGateway, nil, []byte("not json")); cerr.Code() != connect.CodeUnavailable || cerr.Message() != "Bad Gateway" {
		t.Errorf("502: %v", cerr)
	}
}
