package gguf

import (
	"fmt"
	"math"
	"strings"
)

// ValueType is the type tag of a GGUF metadata value.
type ValueType uint32

// The GGUF metadata value types.
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

var valueTypeNames = [...]string{
	"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
	"bool", "string", "array", "uint64", "int64", "float64",
}

func (t ValueType) String() string {
	if int(t) < len(valueTypeNames) {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("ValueType(%d)", uint32(t))
}

func (t ValueType) valid() bool { return int(t) < len(valueTypeNames) }

// size is the encoded size of a scalar, or 0 for strings and arrays.
func (t ValueType) size() int {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeUint64, TypeInt64, TypeFloat64:
		return 8
	}
	return 0
}

// minSize is the fewest bytes one encoded value of type t can take; the
// reader uses it to bound counts before allocating.
func (t ValueType) minSize() int {
	switch t {
	case TypeString:
		return 8 // length prefix
	case TypeArray:
		return 12 // element type and count
	}
	return t.size()
}

func (t ValueType) isInt() bool {
	switch t {
	case TypeUint8, TypeInt8, TypeUint16, TypeInt16, TypeUint32, TypeInt32, TypeUint64, TypeInt64:
		return true
	}
	return false
}

func (t ValueType) isSigned() bool {
	return t == TypeInt8 || t == TypeInt16 || t == TypeInt32 || t == TypeInt64
}

// Value is one metadata value. Scalars carry their GGUF type; arrays carry
// TypeArray plus an element type ([Value.ElemType]) and store their elements
// as a Go slice of the matching type ([]uint8 ... []float64, []bool,
// []string, or []Value for nested arrays). The zero Value is an invalid
// uint8 placeholder that no reader returns.
type Value struct {
	Type ValueType

	elem ValueType
	bits uint64 // integers (signed ones sign-extended), float bits, bool
	str  string
	arr  any
}

// Uint returns an integer value that is not negative.
func (v Value) Uint() (uint64, bool) {
	if !v.Type.isInt() || (v.Type.isSigned() && int64(v.bits) < 0) {
		return 0, false
	}
	return v.bits, true
}

// Int returns an integer value that fits in an int64.
func (v Value) Int() (int64, bool) {
	if !v.Type.isInt() || (v.Type == TypeUint64 && v.bits > math.MaxInt64) {
		return 0, false
	}
	return int64(v.bits), true
}

// Float returns a float32 or float64 value, or an integer converted.
func (v Value) Float() (float64, bool) {
	switch v.Type {
	case TypeFloat32:
		return float64(math.Float32frombits(uint32(v.bits))), true
	case TypeFloat64:
		return math.Float64frombits(v.bits), true
	}
	if v.Type.isInt() {
		if v.Type.isSigned() {
			return float64(int64(v.bits)), true
		}
		return float64(v.bits), true
	}
	return 0, false
}

// Bool returns a bool value.
func (v Value) Bool() (bool, bool) { return v.bits != 0, v.Type == TypeBool }

// Text returns a string value.
func (v Value) Text() (string, bool) { return v.str, v.Type == TypeString }

// ElemType returns the element type of an array value.
func (v Value) ElemType() ValueType { return v.elem }

// Len returns the number of elements of an array value, 0 for scalars.
func (v Value) Len() int {
	switch a := v.arr.(type) {
	case []uint8:
		return len(a)
	case []int8:
		return len(a)
	case []uint16:
		return len(a)
	case []int16:
		return len(a)
	case []uint32:
		return len(a)
	case []int32:
		return len(a)
	case []uint64:
		return len(a)
	case []int64:
		return len(a)
	case []float32:
		return len(a)
	case []float64:
		return len(a)
	case []bool:
		return len(a)
	case []string:
		return len(a)
	case []Value:
		return len(a)
	}
	return 0
}

// Elem returns element i of an array value as a Value. It panics if v is not
// an array or i is out of range.
func (v Value) Elem(i int) Value {
	switch a := v.arr.(type) {
	case []uint8:
		return Value{Type: TypeUint8, bits: uint64(a[i])}
	case []int8:
		return Value{Type: TypeInt8, bits: uint64(int64(a[i]))}
	case []uint16:
		return Value{Type: TypeUint16, bits: uint64(a[i])}
	case []int16:
		return Value{Type: TypeInt16, bits: uint64(int64(a[i]))}
	case []uint32:
		return Value{Type: TypeUint32, bits: uint64(a[i])}
	case []int32:
		return Value{Type: TypeInt32, bits: uint64(int64(a[i]))}
	case []uint64:
		return Value{Type: TypeUint64, bits: a[i]}
	case []int64:
		return Value{Type: TypeInt64, bits: uint64(a[i])}
	case []float32:
		return Value{Type: TypeFloat32, bits: uint64(math.Float32bits(a[i]))}
	case []float64:
		return Value{Type: TypeFloat64, bits: math.Float64bits(a[i])}
	case []bool:
		return boolValue(a[i])
	case []string:
		return Value{Type: TypeString, str: a[i]}
	case []Value:
		return a[i]
	}
	panic(fmt.Sprintf("gguf: Elem on a %v value", v.Type))
}

// Any returns the value as a Go value: uint8 ... float64, bool or string for
// scalars; for arrays the stored slice ([]uint32, []string, ..., or []Value
// when the elements are arrays). Slices are shared with v, not copied.
func (v Value) Any() any {
	switch v.Type {
	case TypeUint8:
		return uint8(v.bits)
	case TypeInt8:
		return int8(v.bits)
	case TypeUint16:
		return uint16(v.bits)
	case TypeInt16:
		return int16(v.bits)
	case TypeUint32:
		return uint32(v.bits)
	case TypeInt32:
		return int32(v.bits)
	case TypeUint64:
		return v.bits
	case TypeInt64:
		return int64(v.bits)
	case TypeFloat32:
		return math.Float32frombits(uint32(v.bits))
	case TypeFloat64:
		return math.Float64frombits(v.bits)
	case TypeBool:
		return v.bits != 0
	case TypeString:
		return v.str
	case TypeArray:
		return v.arr
	}
	return nil
}

// Strings returns a string array.
func (v Value) Strings() ([]string, bool) {
	a, ok := v.arr.([]string)
	return a, ok
}

// Float32s returns a float32 array (shared, not copied), or a copy of a
// float64 or integer array converted to float32.
func (v Value) Float32s() ([]float32, bool) {
	if a, ok := v.arr.([]float32); ok {
		return a, true
	}
	if v.Type != TypeArray || !(v.elem == TypeFloat64 || v.elem.isInt()) {
		return nil, false
	}
	out := make([]float32, v.Len())
	for i := range out {
		f, _ := v.Elem(i).Float()
		out[i] = float32(f)
	}
	return out, true
}

// Int32s returns an int32 array (shared, not copied), or a copy of another
// integer array converted to int32 if every element fits.
func (v Value) Int32s() ([]int32, bool) {
	if a, ok := v.arr.([]int32); ok {
		return a, true
	}
	if v.Type != TypeArray || !v.elem.isInt() {
		return nil, false
	}
	out := make([]int32, v.Len())
	for i := range out {
		n, ok := v.Elem(i).Int()
		if !ok || n < math.MinInt32 || n > math.MaxInt32 {
			return nil, false
		}
		out[i] = int32(n)
	}
	return out, true
}

// String formats the value for people: strings quoted, long arrays cut
// short with their length.
func (v Value) String() string {
	switch v.Type {
	case TypeString:
		return fmt.Sprintf("%q", v.str)
	case TypeArray:
		const show = 8
		var b strings.Builder
		b.WriteByte('[')
		n := v.Len()
		for i := 0; i < n && i < show; i++ {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(v.Elem(i).String())
		}
		if n > show {
			fmt.Fprintf(&b, " ... (%d %v)", n, v.elem)
		}
		b.WriteByte(']')
		return b.String()
	}
	return fmt.Sprint(v.Any())
}

func boolValue(b bool) Value {
	v := Value{Type: TypeBool}
	if b {
		v.bits = 1
	}
	return v
}
