package server_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/mockllm"
)

// TestStalledStreamClientIsDropped: a client that stops reading a stream is cut off once a
// write has waited for server.stream_write_timeout, instead of holding the stream and its
// upstream request open for as long as it likes. The client resumes reading well after the
// timeout and must find the stream ended early, without its [DONE].
func TestStalledStreamClientIsDropped(t *testing.T) {
	_, mockURL := startMock(t, mockllm.Options{Tokens: 400000})
	g := startGateway(t, "server: {stream_write_timeout: 200ms}\n"+oneModel(mockURL, ""), nil)
	c, err := net.Dial("tcp", strings.TrimPrefix(g.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := `{"model":"glm4","stream":true,"messages":[{"role":"user","content":"go on"}]}`
	req := "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: " +
		itoa(int64(len(body))) + "\r\n\r\n" + body
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 4096)); err != nil {
		t.Fatalf("first events: %v", err)
	}
	time.Sleep(2 * time.Second) // stop reading: the socket buffers fill and the gateway's write waits
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	rest, err := io.ReadAll(resp.Body)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the stream was still open 20 s after the client resumed (read %d bytes)", len(rest))
	}
	if bytes.Contains(rest, []byte("data: [DONE]")) {
		t.Fatalf("the stalled client got the whole stream (%d bytes): the write timeout did not end it", len(rest))
	}
}
