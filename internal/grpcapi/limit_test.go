package grpcapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/textproto"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"connectrpc.com/connect"
	"github.com/klauspost/compress/gzip"
	"github.com/open-autoglm/autoglm/gen/autoglm/v1/autoglmv1connect"
	"github.com/open-autoglm/autoglm/internal/mockllm"
)

// bombSize is how far the compressed message expands: far beyond the body limit the tests'
// gateways run with (limitYAML), yet small on the wire.
const bombSize = 128 << 20

const limitYAML = `
server:
  max_body_bytes: 262144
`

var (
	bombOnce sync.Once
	bomb     []byte
)

// gzipBomb is bombSize zero bytes, gzip-compressed (about 130 KB): one member of 1 MiB of
// zeros, repeated (gzip readers read concatenated members as one stream), which is far
// cheaper to build under the race detector than compressing 128 MiB.
func gzipBomb(t *testing.T) []byte {
	t.Helper()
	bombOnce.Do(func() {
		var member bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&member, gzip.BestCompression)
		_, _ = zw.Write(make([]byte, 1<<20))
		_ = zw.Close()
		bomb = bytes.Repeat(member.Bytes(), bombSize>>20)
	})
	if len(bomb) >= 262144 {
		t.Fatalf("the bomb is %d bytes on the wire, not under the body limit", len(bomb))
	}
	return bomb
}

// envelope frames one message as gRPC, gRPC-Web and Connect streams do: a flags byte (1:
// compressed) and a big-endian length.
func envelope(flags byte, msg []byte) []byte {
	out := make([]byte, 5, 5+len(msg))
	out[0] = flags
	binary.BigEndian.PutUint32(out[1:], uint32(len(msg)))
	return append(out, msg...)
}

// bombCall is one way of sending the bomb: the protocol's headers and framing.
type bombCall struct {
	name      string
	procedure string
	h2c       bool
	header    map[string]string
	framed    bool // the body is an enveloped message, not a bare one
}

var bombCalls = []bombCall{
	{name: "connect-stream", procedure: autoglmv1connect.InferenceServiceChatStreamProcedure, framed: true,
		header: map[string]string{"Content-Type": "application/connect+proto", "Connect-Content-Encoding": "gzip", "Connect-Protocol-Version": "1"}},
	{name: "connect-unary", procedure: autoglmv1connect.InferenceServiceChatProcedure,
		header: map[string]string{"Content-Type": "application/proto", "Content-Encoding": "gzip", "Connect-Protocol-Version": "1"}},
	{name: "grpc-stream", procedure: autoglmv1connect.InferenceServiceChatStreamProcedure, h2c: true, framed: true,
		header: map[string]string{"Content-Type": "application/grpc+proto", "Grpc-Encoding": "gzip", "Te": "trailers"}},
	{name: "grpc-unary", procedure: autoglmv1connect.InferenceServiceChatProcedure, h2c: true, framed: true,
		header: map[string]string{"Content-Type": "application/grpc+proto", "Grpc-Encoding": "gzip", "Te": "trailers"}},
	{name: "grpcweb-stream", procedure: autoglmv1connect.InferenceServiceChatStreamProcedure, framed: true,
		header: map[string]string{"Content-Type": "application/grpc-web+proto", "Grpc-Encoding": "gzip"}},
	{name: "grpcweb-unary", procedure: autoglmv1connect.InferenceServiceEmbedProcedure, framed: true,
		header: map[string]string{"Content-Type": "application/grpc-web+proto", "Grpc-Encoding": "gzip"}},
}

// rpcStatus is the code and message of a call's answer, whatever its protocol.
type rpcStatus struct {
	code    string // Connect's name for the code ("resource_exhausted")
	message string
}

var grpcCodeNames = map[string]string{"0": "ok", "3": "invalid_argument", "7": "permission_denied", "8": "resource_exhausted", "13": "internal", "16": "unauthenticated"}

// send posts body as c (enveloped as a compressed message when c is framed) and reads back
// the answer's status.
func (c bombCall) send(t *testing.T, url, credential string, body []byte) rpcStatus {
	t.Helper()
	if c.framed {
		body = envelope(1, body)
	}
	return c.sendRaw(t, url, credential, body)
}

// sendRaw posts body as it is.
func (c bombCall) sendRaw(t *testing.T, url, credential string, body []byte) rpcStatus {
	t.Helper()
	tr := &http.Transport{}
	if c.h2c {
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetUnencryptedHTTP2(true)
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodPost, url+c.procedure, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	if credential != "" {
		req.Header.Set("Authorization", "Bearer "+credential)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("%s: reading the answer: %v", c.name, err)
	}
	ct := resp.Header.Get("Content-Type")
	switch {
	case strings.HasPrefix(ct, "application/grpc-web"):
		if code := resp.Header.Get("Grpc-Status"); code != "" {
			return rpcStatus{grpcCodeNames[code], resp.Header.Get("Grpc-Message")}
		}
		for len(raw) >= 5 {
			n := binary.BigEndian.Uint32(raw[1:5])
			frame := raw[5 : 5+n]
			if raw[0]&0x80 != 0 {
				tp := textproto.NewReader(bufio.NewReader(io.MultiReader(bytes.NewReader(frame), strings.NewReader("\r\n"))))
				h, _ := tp.ReadMIMEHeader()
				return rpcStatus{grpcCodeNames[h.Get("Grpc-Status")], h.Get("Grpc-Message")}
			}
			raw = raw[5+n:]
		}
	case strings.HasPrefix(ct, "application/grpc"):
		code, msg := resp.Header.Get("Grpc-Status"), resp.Header.Get("Grpc-Message")
		if code == "" {
			code, msg = resp.Trailer.Get("Grpc-Status"), resp.Trailer.Get("Grpc-Message")
		}
		return rpcStatus{grpcCodeNames[code], msg}
	case strings.HasPrefix(ct, "application/connect+"):
		for len(raw) >= 5 {
			n := binary.BigEndian.Uint32(raw[1:5])
			frame := raw[5 : 5+n]
			if raw[0]&0x02 != 0 {
				if raw[0]&0x01 != 0 { // compressed as the request was
					zr, err := gzip.NewReader(bytes.NewReader(frame))
					if err != nil {
						t.Fatalf("%s: end of stream: %v", c.name, err)
					}
					if frame, err = io.ReadAll(io.LimitReader(zr, 1<<20)); err != nil {
						t.Fatalf("%s: end of stream: %v", c.name, err)
					}
				}
				var end struct {
					Error *struct{ Code, Message string }
				}
				if json.Unmarshal(frame, &end) != nil || end.Error == nil {
					return rpcStatus{"ok", ""}
				}
				return rpcStatus{end.Error.Code, end.Error.Message}
			}
			raw = raw[5+n:]
		}
	case strings.HasPrefix(ct, "application/json"):
		var e struct{ Code, Message string }
		if err := json.Unmarshal(raw, &e); err == nil && e.Code != "" {
			return rpcStatus{e.Code, e.Message}
		}
	}
	t.Fatalf("%s: an answer in no RPC protocol: %d %s %q", c.name, resp.StatusCode, ct, raw)
	return rpcStatus{}
}

// allocatedDuring returns how many bytes the process allocated while f ran.
func allocatedDuring(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestCompressedBombRefused sends a gzip bomb over every protocol the listener speaks, with
// authentication off, without a credential and with one. It must be refused in the caller's
// protocol (Unauthenticated without a credential, ResourceExhausted otherwise) without the
// process allocating anything near the expanded size, and without internal error text.
func TestCompressedBombRefused(t *testing.T) {
	b := gzipBomb(t)
	open := startGatewayWith(t, mockllm.Options{}, false, limitYAML)
	guarded := startGatewayWith(t, mockllm.Options{}, true, limitYAML)
	cases := []struct {
		name       string
		url        string
		credential string
		want       string
		maxAlloc   uint64
	}{
		{"auth-off", open.URL, "", "resource_exhausted", 16 << 20},
		{"no-credential", guarded.URL, "", "unauthenticated", 4 << 20},
		{"admin", guarded.URL, adminKey, "resource_exhausted", 16 << 20},
	}
	for _, tc := range cases {
		for _, c := range bombCalls {
			t.Run(tc.name+"/"+c.name, func(t *testing.T) {
				var st rpcStatus
				n := allocatedDuring(func() { st = c.send(t, tc.url, tc.credential, b) })
				if st.code != tc.want {
					t.Errorf("code %q (%q), want %q", st.code, st.message, tc.want)
				}
				if n > tc.maxAlloc {
					t.Errorf("the process allocated %d MiB for a %d KiB message (limit 256 KiB, %d MiB expanded)", n>>20, len(b)>>10, bombSize>>20)
				}
				for _, leak := range []string{"flate", "gzip:", "decompress", "http:", "http.", "MaxBytes", ".go:", "unexpected EOF", "unmarshal", "autoglmv1"} {
					if strings.Contains(st.message, leak) {
						t.Errorf("message %q shows internal text %q", st.message, leak)
					}
				}
				if tc.want == "resource_exhausted" && !strings.Contains(st.message, strconv.Itoa(262144)) {
					t.Errorf("message %q does not name the limit", st.message)
				}
			})
		}
	}
}

// TestOversizedWireBody: a message larger than the limit on the wire is refused by the
// server's body-limit stage, in the caller's protocol, like the expanded bomb; a credential
// that does not check out is refused there too, in the caller's protocol.
func TestOversizedWireBody(t *testing.T) {
	g := startGatewayWith(t, mockllm.Options{}, true, limitYAML)
	big := make([]byte, 300<<10)
	for _, c := range bombCalls {
		c.header = maps.Clone(c.header)
		delete(c.header, "Grpc-Encoding")
		delete(c.header, "Connect-Content-Encoding")
		delete(c.header, "Content-Encoding")
		t.Run(c.name, func(t *testing.T) {
			body := big
			if c.framed {
				body = envelope(0, big)
			}
			st := c.sendRaw(t, g.URL, adminKey, body)
			if st.code != "resource_exhausted" || !strings.Contains(st.message, "262144") {
				t.Errorf("oversized body: %+v", st)
			}
			st = c.sendRaw(t, g.URL, "not-a-key", []byte{})
			if st.code != "unauthenticated" {
				t.Errorf("bad credential: %+v", st)
			}
		})
	}
}

// TestCompressedCallsWork: the limit leaves ordinary compressed calls alone.
func TestCompressedCallsWork(t *testing.T) {
	g := startGatewayWith(t, mockllm.Options{Tokens: 4}, true, limitYAML)
	h1 := &http.Client{Transport: &http.Transport{}}
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	h2c := &http.Client{Transport: tr}
	defer h1.CloseIdleConnections()
	defer h2c.CloseIdleConnections()
	for name, c := range map[string]autoglmv1connect.InferenceServiceClient{
		"connect": autoglmv1connect.NewInferenceServiceClient(h1, g.URL, connect.WithSendGzip()),
		"grpc":    autoglmv1connect.NewInferenceServiceClient(h2c, g.URL, connect.WithGRPC(), connect.WithSendGzip()),
		"grpcweb": autoglmv1connect.NewInferenceServiceClient(h1, g.URL, connect.WithGRPCWeb(), connect.WithSendGzip()),
	} {
		t.Run(name, func(t *testing.T) {
			req := chatRequest()
			req.Messages[0].Content = strings.Repeat("hello ", 20000) // 120 KB, compresses well
			call := connect.NewRequest(req)
			call.Header().Set("Authorization", "Bearer "+adminKey)
			resp, err := c.Chat(context.Background(), call)
			if err != nil {
				t.Fatalf("Chat: %v", err)
			}
			if len(resp.Msg.Choices) != 1 {
				t.Fatalf("answer: %v", resp.Msg)
			}
			call = connect.NewRequest(req)
			call.Header().Set("Authorization", "Bearer "+adminKey)
			stream, err := c.ChatStream(context.Background(), call)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for stream.Receive() {
				n++
			}
			if err := stream.Err(); err != nil || n == 0 {
				t.Fatalf("stream: %d messages, %v", n, err)
			}
		})
	}
}
