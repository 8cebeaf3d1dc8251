package gguf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/open-autoglm/autoglm/internal/engine/quant"
)

const demoModel = "../../../models/stories260K.gguf"

var allScalars = map[string]any{
	"t.u8":  uint8(200),
	"t.i8":  int8(-100),
	"t.u16": uint16(60000),
	"t.i16": int16(-30000),
	"t.u32": uint32(4000000000),
	"t.i32": int32(-2000000000),
	"t.f32": float32(3.25),
	"t.b":   true,
	"t.s":   "héllo",
	"t.u64": uint64(math.MaxUint64),
	"t.i64": int64(math.MinInt64),
	"t.f64": math.Pi,
	"t.es":  "",
}

var allArrays = map[string]any{
	"a.u8":    []uint8{1, 2, 255},
	"a.i8":    []int8{-1, 0, 127},
	"a.u16":   []uint16{1, 65535},
	"a.i16":   []int16{-32768, 5},
	"a.u32":   []uint32{7, 4000000000},
	"a.i32":   []int32{-7, 1 << 30},
	"a.f32":   []float32{0.5, -1.5},
	"a.b":     []bool{true, false, true},
	"a.s":     []string{"a", "", "ccc"},
	"a.u64":   []uint64{1 << 63},
	"a.i64":   []int64{-1 << 62},
	"a.f64":   []float64{1.5e10},
	"a.empty": []int32{},
	"a.n2":    [][]int32{{1, 2}, {}, {3}},
	"a.n2s":   [][]string{{"x"}, {"y", "z"}},
	"a.n3":    [][][]float32{{{1}, {2, 3}}, {}},
}

// sampleTensors returns one small tensor per supported type plus one of a
// known but unsupported type, with their expected bytes.
func sampleTensors(t testing.TB) (names []string, types []quant.Type, dims [][]uint64, data [][]byte) {
	t.Helper()
	for i, typ := range []quant.Type{quant.F32, quant.F16, quant.BF16, quant.Q8_0, quant.Q4_0, quant.Q4_1,
		quant.Q5_0, quant.Q5_1, quant.Q4_K, quant.Q5_K, quant.Q6_K} {
		cols := typ.BlockSize() * 2
		if cols < 8 {
			cols = 8
		}
		x := make([]float32, cols*3)
		for j := range x {
			x[j] = float32(math.Sin(float64(j*(i+1)))) * 2
		}
		b, err := quant.Quantize(typ, x)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, "blk."+typ.String()+".weight")
		types = append(types, typ)
		dims = append(dims, []uint64{uint64(cols), 3})
		data = append(data, b)
	}
	names = append(names, "raw.q2k")
	types = append(types, quant.Q2_K)
	dims = append(dims, []uint64{256})
	raw := make([]byte, 84)
	for i := range raw {
		raw[i] = byte(i)
	}
	data = append(data, raw)
	return names, types, dims, data
}

func sampleFile(t testing.TB, align int) []byte {
	t.Helper()
	w := NewWriter()
	w.Add("general.architecture", "llama")
	if align != 0 {
		w.SetAlignment(align)
	}
	for _, k := range sortedKeys(allScalars) {
		w.Add(k, allScalars[k])
	}
	for _, k := range sortedKeys(allArrays) {
		w.Add(k, allArrays[k])
	}
	names, types, dims, data := sampleTensors(t)
	for i := range names {
		if err := w.AddTensor(names[i], types[i], dims[i], data[i]); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	n, err := w.WriteTo(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("WriteTo reported %d bytes, wrote %d", n, buf.Len())
	}
	return buf.Bytes()
}

func sortedKeys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	for i := range ks {
		for j := i + 1; j < len(ks); j++ {
			if ks[j] < ks[i] {
				ks[i], ks[j] = ks[j], ks[i]
			}
		}
	}
	return ks
}

// plain converts a Value to comparable Go data, expanding nested arrays.
func plain(v Value) any {
	if v.Type == TypeArray && v.ElemType() == TypeArray {
		out := make([]any, v.Len())
		for i := range out {
			out[i] = plain(v.Elem(i))
		}
		return out
	}
	return v.Any()
}

func plainGo(x any) any {
	switch x := x.(type) {
	case [][]int32:
		out := make([]any, len(x))
		for i := range x {
			out[i] = x[i]
		}
		return out
	case [][]string:
		out := make([]any, len(x))
		for i := range x {
			out[i] = x[i]
		}
		return out
	case [][][]float32:
		out := make([]any, len(x))
		for i := range x {
			out[i] = plainGo([][]float32(x[i]))
		}
		return out
	case [][]float32:
		out := make([]any, len(x))
		for i := range x {
			out[i] = x[i]
		}
		return out
	}
	return x
}

func checkSample(t *testing.T, f *File, align int) {
	t.Helper()
	if f.Version != 3 {
		t.Errorf("Version = %d", f.Version)
	}
	if f.Alignment != align {
		t.Errorf("Alignment = %d, want %d", f.Alignment, align)
	}
	if f.DataOffset%int64(align) != 0 {
		t.Errorf("DataOffset %d not aligned to %d", f.DataOffset, align)
	}
	for k, want := range allScalars {
		v, ok := f.Lookup(k)
		if !ok {
			t.Errorf("%s missing", k)
			continue
		}
		if diff := cmp.Diff(want, v.Any()); diff != "" {
			t.Errorf("%s (-want +got):\n%s", k, diff)
		}
	}
	for k, want := range allArrays {
		v, ok := f.Lookup(k)
		if !ok {
			t.Errorf("%s missing", k)
			continue
		}
		if diff := cmp.Diff(plainGo(want), plain(v)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", k, diff)
		}
	}
	names, types, dims, data := sampleTensors(t)
	if len(f.Tensors) != len(names) {
		t.Fatalf("%d tensors, want %d", len(f.Tensors), len(names))
	}
	for i, name := range names {
		ti, ok := f.Tensor(name)
		if !ok {
			t.Fatalf("tensor %s missing", name)
		}
		if ti != &f.Tensors[i] {
			t.Errorf("tensor %s out of order", name)
		}
		if ti.Type != types[i] || !cmp.Equal(ti.Dims, dims[i]) || ti.Size != int64(len(data[i])) {
			t.Errorf("tensor %s = %v %v %d bytes, want %v %v %d", name, ti.Type, ti.Dims, ti.Size, types[i], dims[i], len(data[i]))
		}
		if ti.Offset%uint64(align) != 0 {
			t.Errorf("tensor %s offset %d not aligned", name, ti.Offset)
		}
		got, err := f.TensorData(ti)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data[i]) {
			t.Errorf("tensor %s data differs", name)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, align := range []int{0, 64, 1} {
		buf := sampleFile(t, align)
		want := align
		if want == 0 {
			want = 32
		}
		f, err := Read(bytes.NewReader(buf), int64(len(buf)))
		if err != nil {
			t.Fatalf("align %d: %v", align, err)
		}
		checkSample(t, f, want)

		path := filepath.Join(t.TempDir(), "sample.gguf")
		if err := os.WriteFile(path, buf, 0o644); err != nil {
			t.Fatal(err)
		}
		mf, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		checkSample(t, mf, want)
		if err := mf.Close(); err != nil {
			t.Fatal(err)
		}
		if err := mf.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	}
}

// Re-writing a parsed file through Add(key, Value) reproduces it byte for
// byte, so values keep their exact types.
func TestRewriteIdentical(t *testing.T) {
	buf := sampleFile(t, 0)
	f, err := Read(bytes.NewReader(buf), int64(len(buf)))
	if err != nil {
		t.Fatal(err)
	}
	w := NewWriter()
	for _, kv := range f.KV {
		w.Add(kv.Key, kv.Value)
	}
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		data, err := f.TensorData(ti)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.AddTensor(ti.Name, ti.Type, ti.Dims, data); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if _, err := w.WriteTo(&out); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), buf) {
		t.Error("rewritten file differs from the original")
	}
}

func TestGetters(t *testing.T) {
	buf := sampleFile(t, 0)
	f, err := Read(bytes.NewReader(buf), int64(len(buf)))
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := f.String("general.architecture"); !ok || s != "llama" {
		t.Errorf("String = %q, %v", s, ok)
	}
	if _, ok := f.String("t.u8"); ok {
		t.Error("String accepted a uint8")
	}
	if u, ok := f.Uint("t.u16"); !ok || u != 60000 {
		t.Errorf("Uint(u16) = %d, %v", u, ok)
	}
	if _, ok := f.Uint("t.i8"); ok {
		t.Error("Uint accepted a negative int8")
	}
	if i, ok := f.Int("t.i32"); !ok || i != -2000000000 {
		t.Errorf("Int(i32) = %d, %v", i, ok)
	}
	if _, ok := f.Int("t.u64"); ok {
		t.Error("Int accepted MaxUint64")
	}
	if x, ok := f.Float("t.f32"); !ok || x != 3.25 {
		t.Errorf("Float(f32) = %g, %v", x, ok)
	}
	if x, ok := f.Float("t.u32"); !ok || x != 4000000000 {
		t.Errorf("Float(u32) = %g, %v", x, ok)
	}
	if b, ok := f.Bool("t.b"); !ok || !b {
		t.Errorf("Bool = %v, %v", b, ok)
	}
	if s, ok := f.Strings("a.s"); !ok || !cmp.Equal(s, []string{"a", "", "ccc"}) {
		t.Errorf("Strings = %q, %v", s, ok)
	}
	if x, ok := f.Float32s("a.f64"); !ok || !cmp.Equal(x, []float32{1.5e10}) {
		t.Errorf("Float32s(f64) = %v, %v", x, ok)
	}
	if x, ok := f.Int32s("a.u16"); !ok || !cmp.Equal(x, []int32{1, 65535}) {
		t.Errorf("Int32s(u16) = %v, %v", x, ok)
	}
	if _, ok := f.Int32s("a.u32"); ok {
		t.Error("Int32s accepted 4000000000")
	}
	if _, ok := f.Lookup("missing"); ok {
		t.Error("Lookup(missing) succeeded")
	}
	if _, ok := f.Tensor("missing"); ok {
		t.Error("Tensor(missing) succeeded")
	}
	v, _ := f.Lookup("a.n2")
	if got := v.String(); got != "[[1 2] [] [3]]" {
		t.Errorf("String() = %s", got)
	}
}

func TestDemoModel(t *testing.T) {
	f, err := Open(demoModel)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if s, _ := f.String("general.architecture"); s != "llama" {
		t.Errorf("general.architecture = %q", s)
	}
	if n, _ := f.Uint("llama.embedding_length"); n != 64 {
		t.Errorf("llama.embedding_length = %d", n)
	}
	if n, _ := f.Uint("llama.block_count"); n != 5 {
		t.Errorf("llama.block_count = %d", n)
	}
	if s, _ := f.String("tokenizer.ggml.model"); s != "llama" {
		t.Errorf("tokenizer.ggml.model = %q", s)
	}
	toks, ok := f.Strings("tokenizer.ggml.tokens")
	if !ok || len(toks) != 512 {
		t.Errorf("tokenizer.ggml.tokens: %d tokens, %v", len(toks), ok)
	}
	if sc, ok := f.Float32s("tokenizer.ggml.scores"); !ok || len(sc) != 512 {
		t.Errorf("tokenizer.ggml.scores: %d, %v", len(sc), ok)
	}
	if tt, ok := f.Int32s("tokenizer.ggml.token_type"); !ok || len(tt) != 512 {
		t.Errorf("tokenizer.ggml.token_type: %d, %v", len(tt), ok)
	}
	ti, ok := f.Tensor("token_embd.weight")
	if !ok {
		t.Fatal("token_embd.weight missing")
	}
	if ti.Type != quant.F32 || !cmp.Equal(ti.Dims, []uint64{64, 512}) || ti.Size != 64*512*4 {
		t.Errorf("token_embd.weight = %v %v %d bytes", ti.Type, ti.Dims, ti.Size)
	}
	data, err := f.TensorData(ti)
	if err != nil || len(data) != 64*512*4 {
		t.Fatalf("TensorData: %d bytes, %v", len(data), err)
	}
	var total int64
	for i := range f.Tensors {
		total += f.Tensors[i].Size
	}
	if f.DataOffset+total > int64(f.size) {
		t.Errorf("tensors need %d bytes past %d, file is %d", total, f.DataOffset, f.size)
	}
	// The same file through Read and a plain ReaderAt gives the same data.
	fd, err := os.Open(demoModel)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	st, _ := fd.Stat()
	g, err := Read(fd, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	ti2, _ := g.Tensor("token_embd.weight")
	data2, err := g.TensorData(ti2)
	if err != nil || !bytes.Equal(data, data2) {
		t.Errorf("Read and Open disagree on token_embd.weight (%v)", err)
	}
}

// raw builds GGUF bytes by hand for the corruption tests.
type raw struct{ bytes.Buffer }

func (r *raw) u32(v uint32) *raw { _ = binary.Write(r, binary.LittleEndian, v); return r }
func (r *raw) u64(v uint64) *raw { _ = binary.Write(r, binary.LittleEndian, v); return r }
func (r *raw) str(s string) *raw { r.u64(uint64(len(s))); r.WriteString(s); return r }
func (r *raw) bytes(b ...byte) *raw {
	r.Write(b)
	return r
}

func header(version uint32, tensors, kvs uint64) *raw {
	r := &raw{}
	r.WriteString("GGUF")
	return r.u32(version).u64(tensors).u64(kvs)
}

// tensorInfo appends one tensor info.
func (r *raw) tensor(name string, typ uint32, offset uint64, dims ...uint64) *raw {
	r.str(name).u32(uint32(len(dims)))
	for _, d := range dims {
		r.u64(d)
	}
	return r.u32(typ).u64(offset)
}

// padTo pads with zeros to a multiple of a, then appends n data bytes.
func (r *raw) data(a, n int) *raw {
	for r.Len()%a != 0 {
		r.WriteByte(0)
	}
	r.Write(make([]byte, n))
	return r
}

func TestCorrupt(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		want string // substring of the error
	}{
		{"empty", nil, "magic needs 4 bytes"},
		{"bad magic", []byte("GGML\x03\x00\x00\x00"), "not a GGUF file"},
		{"v1", header(1, 0, 0).Bytes(), "version 1 is not supported"},
		{"v0", header(0, 0, 0).Bytes(), "unsupported GGUF version 0"},
		{"v4", header(4, 0, 0).Bytes(), "unsupported GGUF version 4"},
		{"big endian", header(0x03000000, 0, 0).Bytes(), "big-endian"},
		{"huge tensor count", header(3, 1<<62, 0).Bytes(), "tensor count"},
		{"huge kv count", header(3, 0, math.MaxUint64).Bytes(), "metadata count"},
		{"huge key length", header(3, 0, 1).u64(1 << 60).bytes(make([]byte, 20)...).Bytes(), "metadata key length"},
		{"empty key", header(3, 0, 1).str("").u32(0).bytes(1, 0, 0, 0, 0, 0).Bytes(), "empty key"},
		{"huge string", header(3, 0, 1).str("k").u32(uint32(TypeString)).u64(math.MaxUint64).Bytes(), "string length"},
		{"huge array", header(3, 0, 1).str("k").u32(uint32(TypeArray)).u32(uint32(TypeUint64)).u64(1 << 40).Bytes(), "array length"},
		{"huge string array", header(3, 0, 1).str("k").u32(uint32(TypeArray)).u32(uint32(TypeString)).u64(1 << 40).Bytes(), "array length"},
		{"huge nested array", header(3, 0, 1).str("k").u32(uint32(TypeArray)).u32(uint32(TypeArray)).u64(1 << 40).Bytes(), "array length"},
		{"unknown value type", header(3, 0, 1).str("k").u32(13).bytes(0, 0, 0, 0).Bytes(), "unknown value type 13"},
		{"unknown elem type", header(3, 0, 1).str("k").u32(uint32(TypeArray)).u32(99).u64(0).Bytes(), "unknown array element type 99"},
		{"bad bool", header(3, 0, 1).str("k").u32(uint32(TypeBool)).bytes(2).Bytes(), "bool value 2"},
		{"bad bool array", header(3, 0, 1).str("k").u32(uint32(TypeArray)).u32(uint32(TypeBool)).u64(2).bytes(1, 7).Bytes(), "bool array element 1"},
		{"duplicate key", header(3, 0, 2).str("k").u32(uint32(TypeUint8)).bytes(1).str("k").u32(uint32(TypeUint8)).bytes(2).Bytes(), `duplicate metadata key "k"`},
		{"alignment zero", header(3, 0, 1).str("general.alignment").u32(uint32(TypeUint32)).u32(0).Bytes(), "general.alignment"},
		{"alignment 48", header(3, 0, 1).str("general.alignment").u32(uint32(TypeUint32)).u32(48).Bytes(), "general.alignment"},
		{"alignment huge", header(3, 0, 1).str("general.alignment").u32(uint32(TypeUint64)).u64(1 << 40).Bytes(), "general.alignment"},
		{"alignment string", header(3, 0, 1).str("general.alignment").u32(uint32(TypeString)).str("32").Bytes(), "general.alignment"},
		{"zero dims", header(3, 1, 0).tensor("t", 0, 0).data(32, 0).Bytes(), "0 dimensions"},
		{"five dims", header(3, 1, 0).tensor("t", 0, 0, 1, 1, 1, 1, 1).data(32, 4).Bytes(), "5 dimensions"},
		{"zero dim", header(3, 1, 0).tensor("t", 0, 0, 4, 0).data(32, 0).Bytes(), "dimension 1 is 0"},
		{"dims overflow", header(3, 1, 0).tensor("t", 0, 0, 1<<32, 1<<32).data(32, 0).Bytes(), "overflows"},
		{"dim above int64", header(3, 1, 0).tensor("t", 0, 0, 1<<63).data(32, 0).Bytes(), "dimension 0 is"},
		{"empty name", header(3, 1, 0).tensor("", 0, 0, 4).data(32, 16).Bytes(), "empty name"},
		{"duplicate tensor", header(3, 2, 0).tensor("t", 0, 0, 4).tensor("t", 0, 32, 4).data(32, 48).Bytes(), `duplicate tensor name "t"`},
		{"misaligned offset", header(3, 1, 0).tensor("t", 0, 4, 4).data(32, 32).Bytes(), "not a multiple of the alignment"},
		{"partial block", header(3, 1, 0).tensor("t", uint32(quant.Q4_0), 0, 16).data(32, 32).Bytes(), "not a multiple of the Q4_0 block size"},
		{"larger than file", header(3, 1, 0).tensor("t", 0, 0, 1<<40).data(32, 16).Bytes(), "more bytes than the file holds"},
		{"data past end", header(3, 1, 0).tensor("t", 0, 0, 8).data(32, 16).Bytes(), "outside"},
		{"offset past end", header(3, 1, 0).tensor("t", 0, 1<<40, 4).data(32, 16).Bytes(), "outside"},
		{"offset near 2^64", header(3, 1, 0).tensor("t", 0, math.MaxUint64&^31, 4).data(32, 16).Bytes(), "outside"},
		{"overlap", header(3, 2, 0).tensor("a", 0, 0, 16).tensor("b", 0, 32, 16).data(32, 96).Bytes(), `"a" and "b" overlap`},
		{"same offset", header(3, 2, 0).tensor("a", 0, 0, 4).tensor("b", 0, 0, 4).data(32, 16).Bytes(), "overlap"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Read(bytes.NewReader(tt.b), int64(len(tt.b)))
			if err == nil {
				t.Fatal("Read succeeded")
			}
			if !errors.Is(err, ErrFormat) {
				t.Errorf("error %q does not wrap ErrFormat", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

// Deep nesting is refused before it can exhaust the stack.
func TestDeepNesting(t *testing.T) {
	r := header(3, 0, 1).str("k").u32(uint32(TypeArray))
	for i := 0; i < 1000; i++ {
		r.u32(uint32(TypeArray)).u64(1)
	}
	r.u32(uint32(TypeUint8)).u64(0)
	b := r.Bytes()
	_, err := Read(bytes.NewReader(b), int64(len(b)))
	if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "nested") {
		t.Fatalf("err = %v", err)
	}
}

// Every proper prefix of a valid file up to the end of its last tensor is
// rejected with ErrFormat.
func TestTruncated(t *testing.T) {
	buf := sampleFile(t, 0)
	f, err := Read(bytes.NewReader(buf), int64(len(buf)))
	if err != nil {
		t.Fatal(err)
	}
	last := f.Tensors[len(f.Tensors)-1]
	end := int(f.DataOffset) + int(last.Offset) + int(last.Size)
	for n := 0; n < end; n++ {
		_, err := Read(bytes.NewReader(buf[:n]), int64(n))
		if !errors.Is(err, ErrFormat) {
			t.Fatalf("truncated to %d bytes: err = %v", n, err)
		}
	}
	// A stated size larger than what the ReaderAt holds is also caught.
	if _, err := Read(bytes.NewReader(buf[:100]), int64(len(buf))); !errors.Is(err, ErrFormat) {
		t.Fatalf("short reader: err = %v", err)
	}
}

// Hostile counts must not cause allocations beyond what the file implies.
func TestHostileAllocation(t *testing.T) {
	files := [][]byte{
		header(3, 1<<40, 1<<40).Bytes(),
		header(3, 0, 1).str("k").u32(uint32(TypeArray)).u32(uint32(TypeString)).u64(1 << 20).bytes(make([]byte, 64)...).Bytes(),
		header(3, 0, 1).str("k").u32(uint32(TypeString)).u64(1 << 40).bytes(make([]byte, 64)...).Bytes(),
	}
	for i, b := range files {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := Read(bytes.NewReader(b), int64(len(b)))
		runtime.ReadMemStats(&after)
		if err == nil {
			t.Errorf("file %d: Read succeeded", i)
		}
		if got := after.TotalAlloc - before.TotalAlloc; got > 256<<10 {
			t.Errorf("file %d (%d bytes): allocated %d bytes", i, len(b), got)
		}
	}
}

func TestUnknownTensorType(t *testing.T) {
	b := header(3, 2, 0).tensor("odd", 31, 0, 32).tensor("ok", 0, 0, 4).data(32, 16).Bytes()
	f, err := Read(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("unknown type should not fail parsing: %v", err)
	}
	ti, _ := f.Tensor("odd")
	if _, err := f.TensorData(ti); !errors.Is(err, ErrUnknownType) || !strings.Contains(err.Error(), "31") {
		t.Errorf("TensorData(odd) err = %v", err)
	}
	ti, _ = f.Tensor("ok")
	if d, err := f.TensorData(ti); err != nil || len(d) != 16 {
		t.Errorf("TensorData(ok) = %d bytes, %v", len(d), err)
	}
}

func TestVersion2(t *testing.T) {
	b := header(2, 1, 1).str("general.architecture").u32(uint32(TypeString)).str("llama").
		tensor("t", 0, 0, 2).data(32, 8).Bytes()
	f, err := Read(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != 2 || len(f.Tensors) != 1 {
		t.Errorf("Version %d, %d tensors", f.Version, len(f.Tensors))
	}
}

func TestWriterErrors(t *testing.T) {
	w := NewWriter()
	if err := w.AddTensor("a", quant.F32, []uint64{4}, make([]byte, 16)); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name string
		typ  quant.Type
		dims []uint64
		n    int
	}{
		{"a", quant.F32, []uint64{4}, 16},       // duplicate
		{"", quant.F32, []uint64{4}, 16},        // empty name
		{"b", quant.Type(31), []uint64{32}, 18}, // unknown type
		{"c", quant.F32, nil, 0},                // no dims
		{"d", quant.F32, []uint64{1, 1, 1, 1, 1}, 4},
		{"e", quant.F32, []uint64{4, 0}, 0}, // zero dim
		{"f", quant.Q4_0, []uint64{16}, 9},  // partial block
		{"g", quant.F32, []uint64{4}, 15},   // wrong size
		{"h", quant.F32, []uint64{1 << 40, 1 << 40}, 0},
	}
	for _, tt := range bad {
		if err := w.AddTensor(tt.name, tt.typ, tt.dims, make([]byte, tt.n)); err == nil {
			t.Errorf("AddTensor(%q, %v, %v) succeeded", tt.name, tt.typ, tt.dims)
		}
	}
	mustPanic(t, "Add(struct)", func() { w.Add("x", struct{}{}) })
	mustPanic(t, "Add([]any)", func() { w.Add("x", []any{1}) })
	mustPanic(t, "SetAlignment(3)", func() { w.SetAlignment(3) })

	w.Add("general.alignment", uint32(12))
	if _, err := w.WriteTo(&bytes.Buffer{}); err == nil {
		t.Error("WriteTo with alignment 12 succeeded")
	}
}

// Add on an existing key replaces the value in place.
func TestWriterReplace(t *testing.T) {
	w := NewWriter()
	w.Add("a", 1)
	w.Add("b", "x")
	w.Add("a", "two")
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := Read(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.KV) != 2 || f.KV[0].Key != "a" || f.KV[0].Value.Any() != "two" {
		t.Errorf("KV = %v", f.KV)
	}
	if u, ok := f.Int("missing"); ok || u != 0 {
		t.Error("Int(missing)")
	}
}

func mustPanic(t *testing.T, name string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s did not panic", name)
		}
	}()
	f()
}

func FuzzRead(f *testing.F) {
	sample := sampleFile(f, 0)
	f.Add(sample)
	for _, n := range []int{0, 3, 8, 24, 40, 100, 500, len(sample) / 2, len(sample) - 1} {
		f.Add(sample[:n])
	}
	small := header(3, 2, 1).str("general.alignment").u32(uint32(TypeUint32)).u32(16).
		tensor("a", 0, 0, 4).tensor("b", 8, 16, 32).data(16, 64).Bytes()
	f.Add(small)
	if demo, err := os.ReadFile(demoModel); err == nil {
		f.Add(demo[:4096])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := Read(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error does not wrap ErrFormat: %v", err)
			}
			return
		}
		for _, kv := range file.KV {
			_ = kv.Value.String()
		}
		for i := range file.Tensors {
			ti := &file.Tensors[i]
			d, err := file.TensorData(ti)
			if err != nil {
				if !errors.Is(err, ErrUnknownType) {
					t.Fatalf("TensorData(%q): %v", ti.Name, err)
				}
				continue
			}
			if int64(len(d)) != ti.Size {
				t.Fatalf("TensorData(%q) = %d bytes, Size %d", ti.Name, len(d), ti.Size)
			}
		}
	})
}
