package plugin

import (
	"bytes"
	"context"
	"io"
	"testing"
)

// chunkedReader hands out its bytes a few at a time, so events arrive split across reads.
type chunkedReader struct {
	b    []byte
	step int
}

func (r *chunkedReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), r.step, len(r.b))
	copy(p, r.b[:n])
	r.b = r.b[n:]
	return n, nil
}

func (r *chunkedReader) Close() error { return nil }

// FuzzStreamRewriterPassesThrough: with no chunk hook the rewriter hands every stream on byte
// for byte, however its events, comments, line ends and reads are cut.
func FuzzStreamRewriterPassesThrough(f *testing.F) {
	for _, s := range []string{
		"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n",
		": keep-alive\r\n\r\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"},\"finish_reason\":\"stop\"}]}\r\n\r\n",
		"event: x\rdata: 1\rdata: 2\r\r\n\ndata: [DONE]",
		"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"no end\"}}]}",
		"\n\n\ndata:\n\n",
	} {
		f.Add([]byte(s), 1)
		f.Add([]byte(s), 7)
	}
	f.Fuzz(func(t *testing.T, in []byte, step int) {
		if step <= 0 || step > 1<<16 {
			step = 1 + step&0xfff
			if step <= 0 {
				step = 1
			}
		}
		c := &Call{Req: &Request{Op: "chat"}}
		r := newStreamRewriter(context.Background(), &Chain{}, c, &chunkedReader{b: bytes.Clone(in), step: step}, 0)
		out, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("stream changed without a hook:\n in %q\nout %q", in, out)
		}
	})
}
