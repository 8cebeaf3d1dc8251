package gguf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"slices"
	"unsafe"

	"github.com/open-autoglm/autoglm/internal/engine/quant"
)

// ErrFormat is wrapped by every error that reports a malformed file.
var ErrFormat = errors.New("gguf: invalid file")

// ErrUnknownType is wrapped by the error TensorData returns for a tensor
// whose type id this build does not know.
var ErrUnknownType = errors.New("gguf: unknown tensor type")

const (
	magic            = "GGUF"
	defaultAlignment = 32
	// maxAlignment keeps padding arithmetic far from overflow; ggml itself
	// only ever writes small powers of two.
	maxAlignment = 1 << 30
	// maxDims is ggml's GGML_MAX_DIMS.
	maxDims = 4
	// maxNesting bounds the recursion of nested arrays.
	maxNesting = 64
	// minKVBytes: key length + 1 key byte + value type + smallest value.
	minKVBytes = 8 + 1 + 4 + 1
	// minTensorBytes: name length + 1 name byte + n_dims + one dim + type + offset.
	minTensorBytes = 8 + 1 + 4 + 8 + 4 + 8
)

// File is a parsed GGUF file. Its exported fields describe the file and may
// be read freely; they must not be modified. A File is safe for concurrent
// reads; Close must not run concurrently with TensorData.
type File struct {
	Version    uint32
	KV         []KV         // metadata in file order
	Tensors    []TensorInfo // in file order
	Alignment  int
	DataOffset int64 // start of the tensor data section

	r       io.ReaderAt
	size    int64
	data    []byte       // the whole file when mapped or read into memory
	release func() error // unmaps; nil when there is nothing to release
	keys    map[string]int
	names   map[string]int
}

// KV is one metadata entry.
type KV struct {
	Key   string
	Value Value
}

// TensorInfo describes one tensor.
type TensorInfo struct {
	Name string
	// Dims are in ggml order: Dims[0] is the row length (the fastest
	// varying index).
	Dims   []uint64
	Type   quant.Type
	Offset uint64 // relative to File.DataOffset
	Size   int64  // bytes of data; 0 when Type is unknown
}

// Elements returns the number of elements (the product of Dims).
func (t *TensorInfo) Elements() uint64 {
	n := uint64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// Open opens and parses the GGUF file at path. On unix the file is mapped
// read-only and TensorData returns slices of the mapping; elsewhere the file
// is read into memory. Close releases the mapping.
func Open(path string) (*File, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fd.Close()
	st, err := fd.Stat()
	if err != nil {
		return nil, err
	}
	data, release, err := mapFile(fd, st.Size())
	if err != nil {
		return nil, fmt.Errorf("gguf: %s: %w", path, err)
	}
	f, err := parse(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		if release != nil {
			_ = release()
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f.data = data
	f.release = release
	return f, nil
}

// Read parses a GGUF file of size bytes from r. Tensor data stays in r and
// is read by TensorData on demand, so r must stay usable while the File is.
func Read(r io.ReaderAt, size int64) (*File, error) {
	return parse(r, size)
}

// Release tells the system that the process no longer needs b, tensor data
// from TensorData that the caller has copied elsewhere, in memory: where
// the file is mapped, the whole pages inside b leave the process's
// resident memory (MADV_DONTNEED; the page cache keeps them while the
// system has room), so a copy does not hold the weights twice. b stays
// valid: a later read brings its pages back from the file. Elsewhere, or
// for bytes outside the mapping, it does nothing.
func (f *File) Release(b []byte) {
	if f.release == nil || len(b) == 0 || len(f.data) == 0 {
		return
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(f.data)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	if p < lo || p+uintptr(len(b)) > lo+uintptr(len(f.data)) {
		return
	}
	releasePages(f.data, int(p-lo), len(b))
}

// Close releases the memory mapping, if any. Slices returned by TensorData
// must not be used afterwards. Close is idempotent.
func (f *File) Close() error {
	rel := f.release
	f.release = nil
	f.data = nil
	if rel != nil {
		return rel()
	}
	return nil
}

// Lookup returns the metadata value stored under key.
func (f *File) Lookup(key string) (Value, bool) {
	i, ok := f.keys[key]
	if !ok {
		return Value{}, false
	}
	return f.KV[i].Value, true
}

// String returns a string value.
func (f *File) String(key string) (string, bool) {
	v, _ := f.Lookup(key)
	return v.Text()
}

// Uint returns a value of any integer type that is not negative.
func (f *File) Uint(key string) (uint64, bool) {
	v, ok := f.Lookup(key)
	if !ok {
		return 0, false
	}
	return v.Uint()
}

// Int returns a value of any integer type that fits in an int64.
func (f *File) Int(key string) (int64, bool) {
	v, ok := f.Lookup(key)
	if !ok {
		return 0, false
	}
	return v.Int()
}

// Float returns a float32 or float64 value, or an integer converted.
func (f *File) Float(key string) (float64, bool) {
	v, ok := f.Lookup(key)
	if !ok {
		return 0, false
	}
	return v.Float()
}

// Bool returns a bool value.
func (f *File) Bool(key string) (bool, bool) {
	v, _ := f.Lookup(key)
	return v.Bool()
}

// Strings returns a string array. The slice is shared with the File.
func (f *File) Strings(key string) ([]string, bool) {
	v, _ := f.Lookup(key)
	return v.Strings()
}

// Float32s returns a float32 array (shared with the File), or a converted
// copy of a float64 or integer array.
func (f *File) Float32s(key string) ([]float32, bool) {
	v, _ := f.Lookup(key)
	return v.Float32s()
}

// Int32s returns an int32 array (shared with the File), or a converted copy
// of another integer array whose elements all fit in int32.
func (f *File) Int32s(key string) ([]int32, bool) {
	v, _ := f.Lookup(key)
	return v.Int32s()
}

// Tensor returns the info of the tensor called name.
func (f *File) Tensor(name string) (*TensorInfo, bool) {
	i, ok := f.names[name]
	if !ok {
		return nil, false
	}
	return &f.Tensors[i], true
}

// TensorData returns the bytes of tensor t, which must come from f. When the
// file is mapped (or was read into memory) the result aliases that memory:
// it must not be modified and is valid until Close. Otherwise it is read from
// the underlying ReaderAt into a new slice. It fails with ErrUnknownType if
// the tensor's type id is not known.
func (f *File) TensorData(t *TensorInfo) ([]byte, error) {
	if !t.Type.Known() {
		return nil, fmt.Errorf("%w: tensor %q has type id %d", ErrUnknownType, t.Name, uint32(t.Type))
	}
	if t.Size < 0 || t.Offset > uint64(f.size) {
		return nil, fmt.Errorf("%w: tensor %q has data outside the file", ErrFormat, t.Name)
	}
	start := f.DataOffset + int64(t.Offset)
	if start < f.DataOffset || start > f.size || t.Size > f.size-start {
		return nil, fmt.Errorf("%w: tensor %q has data outside the file", ErrFormat, t.Name)
	}
	end := start + t.Size
	if f.data != nil {
		return f.data[start:end:end], nil
	}
	if f.r == nil {
		return nil, errors.New("gguf: file is closed")
	}
	buf := make([]byte, t.Size)
	if _, err := f.r.ReadAt(buf, start); err != nil {
		if err == io.EOF {
			return nil, fmt.Errorf("%w: tensor %q data truncated", ErrFormat, t.Name)
		}
		return nil, fmt.Errorf("gguf: reading tensor %q: %w", t.Name, err)
	}
	return buf, nil
}

// decoder reads little-endian fields sequentially from a ReaderAt through a
// small buffer, tracking the offset for error messages and bounds.
type decoder struct {
	r      io.ReaderAt
	size   int64
	off    int64 // next unread byte
	buf    []byte
	bufOff int64  // file offset of buf[0]
	ctx    string // what is being parsed, for error messages
}

const decoderBuf = 64 << 10

func (d *decoder) remaining() int64 { return d.size - d.off }

func (d *decoder) errorf(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if d.ctx != "" {
		msg = d.ctx + ": " + msg
	}
	return fmt.Errorf("%w: at offset %d: %s", ErrFormat, d.off, msg)
}

// next returns the next n bytes. The slice is only valid until the next
// call. n is checked against the bytes remaining before anything is read or
// allocated.
func (d *decoder) next(n int64, what string) ([]byte, error) {
	if n < 0 || n > d.remaining() {
		return nil, d.errorf("%s needs %d bytes, only %d remain", what, n, d.remaining())
	}
	if start := d.off - d.bufOff; start >= 0 && start+n <= int64(len(d.buf)) {
		d.off += n
		return d.buf[start : start+n], nil
	}
	if n > decoderBuf {
		b := make([]byte, n)
		if err := d.readAt(b, what); err != nil {
			return nil, err
		}
		d.off += n
		return b, nil
	}
	fill := min(int64(decoderBuf), d.remaining())
	if cap(d.buf) < decoderBuf {
		d.buf = make([]byte, decoderBuf)
	}
	d.buf = d.buf[:fill]
	if err := d.readAt(d.buf, what); err != nil {
		d.buf = d.buf[:0]
		return nil, err
	}
	d.bufOff = d.off
	d.off += n
	return d.buf[:n], nil
}

func (d *decoder) readAt(b []byte, what string) error {
	n, err := d.r.ReadAt(b, d.off)
	if n == len(b) {
		return nil
	}
	if err == io.EOF || err == nil {
		return d.errorf("%s: file is shorter than its stated size", what)
	}
	return fmt.Errorf("gguf: reading %s at offset %d: %w", what, d.off, err)
}

func (d *decoder) u32(what string) (uint32, error) {
	b, err := d.next(4, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (d *decoder) u64(what string) (uint64, error) {
	b, err := d.next(8, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

func (d *decoder) str(what string) (string, error) {
	n, err := d.u64(what + " length")
	if err != nil {
		return "", err
	}
	if n > uint64(d.remaining()) {
		return "", d.errorf("%s length %d exceeds the %d bytes remaining", what, n, d.remaining())
	}
	b, err := d.next(int64(n), what)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// count reads an element count and checks that count elements of at least
// minSize bytes each fit in the rest of the file.
func (d *decoder) count(what string, minSize int) (int, error) {
	n, err := d.u64(what)
	if err != nil {
		return 0, err
	}
	if minSize > 0 && n > uint64(d.remaining())/uint64(minSize) {
		return 0, d.errorf("%s %d cannot fit in the %d bytes remaining", what, n, d.remaining())
	}
	return int(n), nil
}

func parse(r io.ReaderAt, size int64) (*File, error) {
	if size < 0 {
		return nil, fmt.Errorf("%w: negative size %d", ErrFormat, size)
	}
	d := &decoder{r: r, size: size}
	f := &File{r: r, size: size, Alignment: defaultAlignment}

	b, err := d.next(4, "magic")
	if err != nil {
		return nil, err
	}
	if string(b) != magic {
		return nil, fmt.Errorf("%w: not a GGUF file (magic %q)", ErrFormat, b)
	}
	if f.Version, err = d.u32("version"); err != nil {
		return nil, err
	}
	switch v := f.Version; {
	case v == 2 || v == 3:
	case v == 1:
		return nil, fmt.Errorf("%w: GGUF version 1 is not supported; convert the file to version 3", ErrFormat)
	case v&0xffff == 0 && bits.ReverseBytes32(v) >= 1 && bits.ReverseBytes32(v) <= 3:
		return nil, fmt.Errorf("%w: big-endian GGUF files are not supported", ErrFormat)
	default:
		return nil, fmt.Errorf("%w: unsupported GGUF version %d", ErrFormat, v)
	}
	nTensors, err := d.count("tensor count", minTensorBytes)
	if err != nil {
		return nil, err
	}
	nKV, err := d.count("metadata count", minKVBytes)
	if err != nil {
		return nil, err
	}

	f.KV = make([]KV, 0, nKV)
	f.keys = make(map[string]int, nKV)
	for i := 0; i < nKV; i++ {
		key, err := d.str("metadata key")
		if err != nil {
			return nil, err
		}
		if key == "" {
			return nil, d.errorf("metadata entry %d has an empty key", i)
		}
		if _, dup := f.keys[key]; dup {
			return nil, d.errorf("duplicate metadata key %q", key)
		}
		t, err := d.u32("value type")
		if err != nil {
			return nil, err
		}
		d.ctx = fmt.Sprintf("metadata %q", key)
		v, err := d.value(ValueType(t), 0)
		d.ctx = ""
		if err != nil {
			return nil, err
		}
		f.keys[key] = len(f.KV)
		f.KV = append(f.KV, KV{Key: key, Value: v})
	}
	if v, ok := f.Lookup("general.alignment"); ok {
		a, ok := v.Uint()
		if !ok || a == 0 || a&(a-1) != 0 || a > maxAlignment {
			return nil, fmt.Errorf("%w: general.alignment must be a power of two up to %d, got %v (%v)", ErrFormat, maxAlignment, v, v.Type)
		}
		f.Alignment = int(a)
	}

	f.Tensors = make([]TensorInfo, 0, nTensors)
	f.names = make(map[string]int, nTensors)
	for i := 0; i < nTensors; i++ {
		t, err := d.tensorInfo(f.Alignment)
		if err != nil {
			return nil, err
		}
		if _, dup := f.names[t.Name]; dup {
			return nil, d.errorf("duplicate tensor name %q", t.Name)
		}
		f.names[t.Name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, t)
	}

	align := int64(f.Alignment)
	f.DataOffset = (d.off + align - 1) / align * align
	if err := f.checkData(); err != nil {
		return nil, err
	}
	return f, nil
}

func (d *decoder) tensorInfo(align int) (TensorInfo, error) {
	var t TensorInfo
	var err error
	if t.Name, err = d.str("tensor name"); err != nil {
		return t, err
	}
	if t.Name == "" {
		return t, d.errorf("tensor with an empty name")
	}
	nd, err := d.u32("dimension count")
	if err != nil {
		return t, err
	}
	if nd == 0 || nd > maxDims {
		return t, d.errorf("tensor %q has %d dimensions, want 1 to %d", t.Name, nd, maxDims)
	}
	t.Dims = make([]uint64, nd)
	elems := uint64(1)
	for j := range t.Dims {
		if t.Dims[j], err = d.u64("dimension"); err != nil {
			return t, err
		}
		if t.Dims[j] == 0 || t.Dims[j] > math.MaxInt64 {
			return t, d.errorf("tensor %q dimension %d is %d", t.Name, j, t.Dims[j])
		}
		hi, lo := bits.Mul64(elems, t.Dims[j])
		if hi != 0 || lo > math.MaxInt64 {
			return t, d.errorf("tensor %q: element count overflows", t.Name)
		}
		elems = lo
	}
	typ, err := d.u32("tensor type")
	if err != nil {
		return t, err
	}
	t.Type = quant.Type(typ)
	if t.Offset, err = d.u64("tensor offset"); err != nil {
		return t, err
	}
	if t.Offset%uint64(align) != 0 {
		return t, d.errorf("tensor %q offset %d is not a multiple of the alignment %d", t.Name, t.Offset, align)
	}
	if !t.Type.Known() {
		return t, nil // reported when the data is asked for
	}
	bs := uint64(t.Type.BlockSize())
	if t.Dims[0]%bs != 0 {
		return t, d.errorf("tensor %q row length %d is not a multiple of the %v block size %d", t.Name, t.Dims[0], t.Type, bs)
	}
	hi, size := bits.Mul64(elems/bs, uint64(t.Type.BlockBytes()))
	if hi != 0 || size > uint64(d.size) {
		return t, d.errorf("tensor %q needs more bytes than the file holds", t.Name)
	}
	t.Size = int64(size)
	return t, nil
}

// checkData verifies that every tensor of known type lies inside the file
// and that no two overlap.
func (f *File) checkData() error {
	avail := f.size - f.DataOffset // may be negative when the file ends early
	type span struct {
		lo, hi uint64
		name   string
	}
	spans := make([]span, 0, len(f.Tensors))
	for i := range f.Tensors {
		t := &f.Tensors[i]
		if !t.Type.Known() {
			continue
		}
		if avail < 0 || t.Offset > uint64(avail) || uint64(t.Size) > uint64(avail)-t.Offset {
			return fmt.Errorf("%w: tensor %q data at offset %d (%d bytes) lies outside the %d-byte data section",
				ErrFormat, t.Name, t.Offset, t.Size, max(avail, 0))
		}
		end := t.Offset + uint64(t.Size)
		spans = append(spans, span{t.Offset, end, t.Name})
	}
	slices.SortFunc(spans, func(a, b span) int {
		switch {
		case a.lo < b.lo:
			return -1
		case a.lo > b.lo:
			return 1
		}
		return 0
	})
	for i := 1; i < len(spans); i++ {
		if spans[i].lo < spans[i-1].hi {
			return fmt.Errorf("%w: tensors %q and %q overlap", ErrFormat, spans[i-1].name, spans[i].name)
		}
	}
	return nil
}

func (d *decoder) value(t ValueType, depth int) (Value, error) {
	if !t.valid() {
		return Value{}, d.errorf("unknown value type %d", uint32(t))
	}
	switch t {
	case TypeString:
		s, err := d.str("string")
		return Value{Type: TypeString, str: s}, err
	case TypeArray:
		return d.array(depth)
	case TypeBool:
		b, err := d.next(1, "bool")
		if err != nil {
			return Value{}, err
		}
		if b[0] > 1 {
			return Value{}, d.errorf("bool value %d", b[0])
		}
		return Value{Type: TypeBool, bits: uint64(b[0])}, nil
	}
	b, err := d.next(int64(t.size()), t.String())
	if err != nil {
		return Value{}, err
	}
	return Value{Type: t, bits: scalarBits(t, b)}, nil
}

// scalarBits decodes a fixed-size scalar into Value.bits form.
func scalarBits(t ValueType, b []byte) uint64 {
	switch t {
	case TypeUint8, TypeBool:
		return uint64(b[0])
	case TypeInt8:
		return uint64(int64(int8(b[0])))
	case TypeUint16:
		return uint64(binary.LittleEndian.Uint16(b))
	case TypeInt16:
		return uint64(int64(int16(binary.LittleEndian.Uint16(b))))
	case TypeUint32, TypeFloat32:
		return uint64(binary.LittleEndian.Uint32(b))
	case TypeInt32:
		return uint64(int64(int32(binary.LittleEndian.Uint32(b))))
	}
	return binary.LittleEndian.Uint64(b)
}

func (d *decoder) array(depth int) (Value, error) {
	if depth >= maxNesting {
		return Value{}, d.errorf("arrays nested more than %d deep", maxNesting)
	}
	et, err := d.u32("array element type")
	if err != nil {
		return Value{}, err
	}
	elem := ValueType(et)
	if !elem.valid() {
		return Value{}, d.errorf("unknown array element type %d", et)
	}
	n, err := d.count("array length", elem.minSize())
	if err != nil {
		return Value{}, err
	}
	v := Value{Type: TypeArray, elem: elem}
	switch elem {
	case TypeString:
		a := make([]string, n)
		for i := range a {
			if a[i], err = d.str("string"); err != nil {
				return Value{}, err
			}
		}
		v.arr = a
		return v, nil
	case TypeArray:
		a := make([]Value, n)
		for i := range a {
			if a[i], err = d.array(depth + 1); err != nil {
				return Value{}, err
			}
		}
		v.arr = a
		return v, nil
	}
	size := elem.size()
	b, err := d.next(int64(n)*int64(size), "array data")
	if err != nil {
		return Value{}, err
	}
	v.arr, err = decodeArray(elem, n, b)
	if err != nil {
		return Value{}, d.errorf("%v", err)
	}
	return v, nil
}

func decodeArray(t ValueType, n int, b []byte) (any, error) {
	le := binary.LittleEndian
	switch t {
	case TypeUint8:
		return bytes.Clone(b[:n:n]), nil
	case TypeInt8:
		a := make([]int8, n)
		for i := range a {
			a[i] = int8(b[i])
		}
		return a, nil
	case TypeBool:
		a := make([]bool, n)
		for i := range a {
			if b[i] > 1 {
				return nil, fmt.Errorf("bool array element %d is %d", i, b[i])
			}
			a[i] = b[i] == 1
		}
		return a, nil
	case TypeUint16:
		a := make([]uint16, n)
		for i := range a {
			a[i] = le.Uint16(b[2*i:])
		}
		return a, nil
	case TypeInt16:
		a := make([]int16, n)
		for i := range a {
			a[i] = int16(le.Uint16(b[2*i:]))
		}
		return a, nil
	case TypeUint32:
		a := make([]uint32, n)
		for i := range a {
			a[i] = le.Uint32(b[4*i:])
		}
		return a, nil
	case TypeInt32:
		a := make([]int32, n)
		for i := range a {
			a[i] = int32(le.Uint32(b[4*i:]))
		}
		return a, nil
	case TypeFloat32:
		a := make([]float32, n)
		for i := range a {
			a[i] = math.Float32frombits(le.Uint32(b[4*i:]))
		}
		return a, nil
	case TypeUint64:
		a := make([]uint64, n)
		for i := range a {
			a[i] = le.Uint64(b[8*i:])
		}
		return a, nil
	case TypeInt64:
		a := make([]int64, n)
		for i := range a {
			a[i] = int64(le.Uint64(b[8*i:]))
		}
		return a, nil
	case TypeFloat64:
		a := make([]float64, n)
		for i := range a {
			a[i] = math.Float64frombits(le.Uint64(b[8*i:]))
		}
		return a, nil
	}
	return nil, fmt.Errorf("array of %v", t)
}
