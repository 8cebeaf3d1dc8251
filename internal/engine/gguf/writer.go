package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"reflect"

	"github.com/open-autoglm/autoglm/internal/engine/quant"
)

// Writer builds a GGUF v3 file in memory order: metadata in the order first
// added, tensors in the order added. It keeps references to tensor data, so
// the caller must not modify those slices before WriteTo. A Writer is not
// safe for concurrent use.
type Writer struct {
	kv      []KV
	keys    map[string]int
	tensors []wtensor
	names   map[string]int
}

type wtensor struct {
	info TensorInfo
	data []byte
}

// NewWriter returns an empty Writer with the default alignment of 32.
func NewWriter() *Writer {
	return &Writer{keys: map[string]int{}, names: map[string]int{}}
}

// SetAlignment sets the data alignment, stored as the uint32 metadata value
// "general.alignment". It panics unless n is a power of two no larger than
// 1<<30.
func (w *Writer) SetAlignment(n int) {
	if n <= 0 || n&(n-1) != 0 || n > maxAlignment {
		panic(fmt.Sprintf("gguf: alignment %d is not a power of two up to %d", n, maxAlignment))
	}
	w.Add("general.alignment", uint32(n))
}

// Add sets the metadata value for key; setting a key again replaces its
// value but keeps its position. v may be a Value (e.g. from a File), a
// string, bool, any sized or unsized integer (int and uint are written as
// 64-bit), float32 or float64, or a slice of any of those, including slices
// of slices for nested arrays. Add panics on any other Go type: that is a
// programming error.
func (w *Writer) Add(key string, v any) {
	val, err := valueOf(v, 0)
	if err != nil {
		panic(fmt.Sprintf("gguf: Add(%q): %v", key, err))
	}
	if i, ok := w.keys[key]; ok {
		w.kv[i].Value = val
		return
	}
	w.keys[key] = len(w.kv)
	w.kv = append(w.kv, KV{Key: key, Value: val})
}

// AddTensor appends a tensor. dims are in ggml order (dims[0] is the row
// length); data must hold exactly the tensor's bytes in type t's layout.
func (w *Writer) AddTensor(name string, t quant.Type, dims []uint64, data []byte) error {
	if name == "" {
		return errors.New("gguf: tensor name is empty")
	}
	if _, dup := w.names[name]; dup {
		return fmt.Errorf("gguf: duplicate tensor %q", name)
	}
	if !t.Known() {
		return fmt.Errorf("gguf: tensor %q: unknown type id %d", name, uint32(t))
	}
	if len(dims) == 0 || len(dims) > maxDims {
		return fmt.Errorf("gguf: tensor %q has %d dimensions, want 1 to %d", name, len(dims), maxDims)
	}
	rows := uint64(1)
	for i, d := range dims {
		if d == 0 || d > math.MaxInt64 {
			return fmt.Errorf("gguf: tensor %q dimension %d is %d", name, i, d)
		}
		if i > 0 {
			hi, lo := bits.Mul64(rows, d)
			if hi != 0 || lo > math.MaxInt64 {
				return fmt.Errorf("gguf: tensor %q is too large", name)
			}
			rows = lo
		}
	}
	if dims[0] > math.MaxInt {
		return fmt.Errorf("gguf: tensor %q row is too long", name)
	}
	rb, err := quant.RowBytes(t, int(dims[0]))
	if err != nil {
		return fmt.Errorf("gguf: tensor %q: %w", name, err)
	}
	hi, size := bits.Mul64(uint64(rb), rows)
	if hi != 0 || size != uint64(len(data)) {
		return fmt.Errorf("gguf: tensor %q of %v %v needs %d bytes, got %d", name, t, dims, size, len(data))
	}
	w.names[name] = len(w.tensors)
	w.tensors = append(w.tensors, wtensor{
		info: TensorInfo{Name: name, Dims: append([]uint64(nil), dims...), Type: t, Size: int64(len(data))},
		data: data,
	})
	return nil
}

// WriteTo writes the file to out and returns the number of bytes written.
func (w *Writer) WriteTo(out io.Writer) (int64, error) {
	align := defaultAlignment
	if i, ok := w.keys["general.alignment"]; ok {
		a, ok := w.kv[i].Value.Uint()
		if !ok || a == 0 || a&(a-1) != 0 || a > maxAlignment {
			return 0, fmt.Errorf("gguf: general.alignment %v is not a power of two up to %d", w.kv[i].Value, maxAlignment)
		}
		align = int(a)
	}
	// Assign offsets: each tensor starts aligned, relative to the data section.
	var off uint64
	for i := range w.tensors {
		w.tensors[i].info.Offset = off
		off = alignUp(off+uint64(len(w.tensors[i].data)), uint64(align))
	}

	e := &encoder{w: bufio.NewWriterSize(out, 1<<16)}
	e.raw([]byte(magic))
	e.u32(3)
	e.u64(uint64(len(w.tensors)))
	e.u64(uint64(len(w.kv)))
	for _, kv := range w.kv {
		e.str(kv.Key)
		e.u32(uint32(kv.Value.Type))
		e.value(kv.Value)
	}
	for _, t := range w.tensors {
		e.str(t.info.Name)
		e.u32(uint32(len(t.info.Dims)))
		for _, d := range t.info.Dims {
			e.u64(d)
		}
		e.u32(uint32(t.info.Type))
		e.u64(t.info.Offset)
	}
	e.pad(align)
	for _, t := range w.tensors {
		e.raw(t.data)
		e.pad(align)
	}
	if e.err == nil {
		e.err = e.w.Flush()
	}
	return e.n, e.err
}

func alignUp(n, a uint64) uint64 { return (n + a - 1) / a * a }

// encoder writes little-endian fields and remembers the first error.
type encoder struct {
	w   *bufio.Writer
	n   int64
	err error
	tmp [8]byte
}

func (e *encoder) raw(b []byte) {
	if e.err != nil {
		return
	}
	n, err := e.w.Write(b)
	e.n += int64(n)
	e.err = err
}

func (e *encoder) u8(v uint8)   { e.raw([]byte{v}) }
func (e *encoder) u16(v uint16) { binary.LittleEndian.PutUint16(e.tmp[:], v); e.raw(e.tmp[:2]) }
func (e *encoder) u32(v uint32) { binary.LittleEndian.PutUint32(e.tmp[:], v); e.raw(e.tmp[:4]) }
func (e *encoder) u64(v uint64) { binary.LittleEndian.PutUint64(e.tmp[:], v); e.raw(e.tmp[:8]) }

func (e *encoder) str(s string) {
	e.u64(uint64(len(s)))
	if e.err == nil {
		n, err := e.w.WriteString(s)
		e.n += int64(n)
		e.err = err
	}
}

func (e *encoder) pad(align int) {
	var zeros [64]byte
	for n := int((uint64(align) - uint64(e.n)%uint64(align)) % uint64(align)); n > 0; {
		k := min(n, len(zeros))
		e.raw(zeros[:k])
		n -= k
	}
}

func (e *encoder) scalar(t ValueType, bits uint64) {
	switch t.size() {
	case 1:
		e.u8(uint8(bits))
	case 2:
		e.u16(uint16(bits))
	case 4:
		e.u32(uint32(bits))
	case 8:
		e.u64(bits)
	}
}

func (e *encoder) value(v Value) {
	switch v.Type {
	case TypeString:
		e.str(v.str)
	case TypeArray:
		e.u32(uint32(v.elem))
		n := v.Len()
		e.u64(uint64(n))
		for i := 0; i < n; i++ {
			el := v.Elem(i)
			if v.elem == TypeArray || v.elem == TypeString {
				e.value(el)
			} else {
				e.scalar(v.elem, el.bits)
			}
		}
	default:
		e.scalar(v.Type, v.bits)
	}
}

// valueOf converts a Go value accepted by Writer.Add into a Value.
func valueOf(x any, depth int) (Value, error) {
	if depth > maxNesting {
		return Value{}, fmt.Errorf("arrays nested more than %d deep", maxNesting)
	}
	switch v := x.(type) {
	case Value:
		if !v.Type.valid() || (v.Type == TypeArray && v.arr == nil) {
			return Value{}, fmt.Errorf("invalid Value of type %v", v.Type)
		}
		return v, nil
	case string:
		return Value{Type: TypeString, str: v}, nil
	case bool:
		return boolValue(v), nil
	case uint8:
		return Value{Type: TypeUint8, bits: uint64(v)}, nil
	case int8:
		return Value{Type: TypeInt8, bits: uint64(int64(v))}, nil
	case uint16:
		return Value{Type: TypeUint16, bits: uint64(v)}, nil
	case int16:
		return Value{Type: TypeInt16, bits: uint64(int64(v))}, nil
	case uint32:
		return Value{Type: TypeUint32, bits: uint64(v)}, nil
	case int32:
		return Value{Type: TypeInt32, bits: uint64(int64(v))}, nil
	case uint64:
		return Value{Type: TypeUint64, bits: v}, nil
	case int64:
		return Value{Type: TypeInt64, bits: uint64(v)}, nil
	case uint:
		return Value{Type: TypeUint64, bits: uint64(v)}, nil
	case int:
		return Value{Type: TypeInt64, bits: uint64(int64(v))}, nil
	case float32:
		return Value{Type: TypeFloat32, bits: uint64(math.Float32bits(v))}, nil
	case float64:
		return Value{Type: TypeFloat64, bits: math.Float64bits(v)}, nil
	}
	return sliceValue(x, depth)
}

// sliceValue handles slices. Slices of the stored element types are kept as
// copies; int and uint slices widen to 64 bits; slices of slices become
// nested arrays.
func sliceValue(x any, depth int) (Value, error) {
	rv := reflect.ValueOf(x)
	if rv.Kind() != reflect.Slice {
		return Value{}, fmt.Errorf("unsupported type %T", x)
	}
	n := rv.Len()
	et := rv.Type().Elem()
	elem, ok := map[reflect.Kind]ValueType{
		reflect.Uint8: TypeUint8, reflect.Int8: TypeInt8, reflect.Uint16: TypeUint16,
		reflect.Int16: TypeInt16, reflect.Uint32: TypeUint32, reflect.Int32: TypeInt32,
		reflect.Uint64: TypeUint64, reflect.Int64: TypeInt64, reflect.Uint: TypeUint64,
		reflect.Int: TypeInt64, reflect.Float32: TypeFloat32, reflect.Float64: TypeFloat64,
		reflect.Bool: TypeBool, reflect.String: TypeString, reflect.Slice: TypeArray,
	}[et.Kind()]
	if !ok || et == reflect.TypeFor[Value]() {
		return Value{}, fmt.Errorf("unsupported slice type %T", x)
	}
	out := Value{Type: TypeArray, elem: elem}
	switch elem {
	case TypeArray:
		a := make([]Value, n)
		for i := range a {
			v, err := valueOf(rv.Index(i).Interface(), depth+1)
			if err != nil {
				return Value{}, err
			}
			a[i] = v
		}
		out.arr = a
		return out, nil
	case TypeString:
		a := make([]string, n)
		for i := range a {
			a[i] = rv.Index(i).String()
		}
		out.arr = a
		return out, nil
	}
	// Numeric and bool slices: copy through the stored slice type.
	var dst reflect.Value
	switch elem {
	case TypeUint8:
		dst = reflect.ValueOf(make([]uint8, n))
	case TypeInt8:
		dst = reflect.ValueOf(make([]int8, n))
	case TypeUint16:
		dst = reflect.ValueOf(make([]uint16, n))
	case TypeInt16:
		dst = reflect.ValueOf(make([]int16, n))
	case TypeUint32:
		dst = reflect.ValueOf(make([]uint32, n))
	case TypeInt32:
		dst = reflect.ValueOf(make([]int32, n))
	case TypeUint64:
		dst = reflect.ValueOf(make([]uint64, n))
	case TypeInt64:
		dst = reflect.ValueOf(make([]int64, n))
	case TypeFloat32:
		dst = reflect.ValueOf(make([]float32, n))
	case TypeFloat64:
		dst = reflect.ValueOf(make([]float64, n))
	case TypeBool:
		dst = reflect.ValueOf(make([]bool, n))
	}
	for i := 0; i < n; i++ {
		dst.Index(i).Set(rv.Index(i).Convert(dst.Type().Elem()))
	}
	out.arr = dst.Interface()
	return out, nil
}
