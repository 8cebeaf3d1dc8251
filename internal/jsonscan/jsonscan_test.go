package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

func TestEachMember(t *testing.T) {
	type member struct{ k, v string }
	for _, tc := range []struct {
		in   string
		want []member
		err  error
	}{
		{`{}`, nil, nil},
		{` { "a" : 1 , "b":[1,{"c":"]"}], "d\"e":"x}" } `, []member{{`"a"`, `1`}, {`"b"`, `[1,{"c":"]"}]`}, {`"d\"e"`, `"x}"`}}, nil},
		{`{"a":true,"a":null}`, []member{{`"a"`, `true`}, {`"a"`, `null`}}, nil},
		{`[1]`, nil, ErrNotObject},
		{`{"a":1`, []member{{`"a"`, `1`}}, ErrNotObject},
		{`{"a" 1}`, nil, ErrNotObject},
		{`{"a":"unterminated}`, nil, ErrNotObject},
		{`{"a":[1,2}`, []member{{`"a"`, `[1,2}`}}, ErrNotObject}, // not validated: brackets are only counted
		{``, nil, ErrNotObject},
	} {
		var got []member
		err := EachMember([]byte(tc.in), func(k, v []byte) error {
			got = append(got, member{string(k), string(v)})
			return nil
		})
		if !errors.Is(err, tc.err) || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: got %v, %v; want %v, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
	stop := errors.New("stop")
	n := 0
	if err := EachMember([]byte(`{"a":1,"b":2}`), func(k, v []byte) error { n++; return stop }); err != stop || n != 1 {
		t.Errorf("fn's error: got %v after %d calls, want stop after 1", err, n)
	}
}

func TestEachElement(t *testing.T) {
	var got []string
	err := EachElement([]byte(` [ 1 , "a,]" ,{"b":[2]}, null ] `), func(v []byte) error { got = append(got, string(v)); return nil })
	if want := []string{`1`, `"a,]"`, `{"b":[2]}`, `null`}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, %v; want %v", got, err, want)
	}
	for _, in := range []string{`{}`, `[1,`, `[1 2]`, ``} {
		if err := EachElement([]byte(in), func([]byte) error { return nil }); !errors.Is(err, ErrNotArray) {
			t.Errorf("%q: got %v, want ErrNotArray", in, err)
		}
	}
}

// FuzzEachMember: on any input the scan stays in bounds; on a valid object it finds the
// members encoding/json finds, in order, each value whole.
func FuzzEachMember(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1,"b":"x\"}","c":[{"d":null}],"a":2}`, `{"usage":{"prompt_tokens":3}}`,
		`[1,2]`, `{"a":`, `{"a":"\u00e9\\"}`, ` {"a" : -1.5e3 , "b" : true } `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var keys []string
		var vals [][]byte
		err := EachMember(b, func(k, v []byte) error {
			keys = append(keys, string(k))
			vals = append(vals, v)
			return nil
		})
		if !json.Valid(b) || b[SkipSpace(b, 0)] != '{' {
			return
		}
		if err != nil {
			t.Fatalf("%q: a valid object refused: %v", b, err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		if _, err := dec.Token(); err != nil {
			t.Fatal(err)
		}
		for i := 0; dec.More(); i++ {
			k, err := dec.Token()
			if err != nil {
				t.Fatal(err)
			}
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				t.Fatal(err)
			}
			if i >= len(keys) {
				t.Fatalf("%q: the scan found %d members, the decoder more", b, len(keys))
			}
			var name string
			if err := json.Unmarshal([]byte(keys[i]), &name); err != nil || name != k.(string) {
				t.Fatalf("%q: member %d named %s, the decoder %q", b, i, keys[i], k)
			}
			var want, got bytes.Buffer
			_ = json.Compact(&want, raw)
			if err := json.Compact(&got, vals[i]); err != nil || !bytes.Equal(got.Bytes(), want.Bytes()) {
				t.Fatalf("%q: member %d value %q, the decoder %q", b, i, vals[i], raw)
			}
			if i == len(keys)-1 && dec.More() {
				t.Fatalf("%q: the decoder found more than %d members", b, len(keys))
			}
		}
	})
}
