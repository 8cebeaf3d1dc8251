package codecheck

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"go.yaml.in/yaml/v3"
)

// Versions of the parsers in go.mod; a test keeps them equal.
const (
	yamlVersion = "v3.0.6"
	tomlVersion = "v2.4.3"
)

// jsonChecker accepts one JSON value or several in sequence (JSON Lines).
type jsonChecker struct{}

func (jsonChecker) name(string) (string, string) { return "encoding/json", "go" }

func (jsonChecker) check(_ context.Context, _, src string) []Diagnostic {
	dec := json.NewDecoder(strings.NewReader(src))
	for {
		var v json.RawMessage
		err := dec.Decode(&v)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			off := int(dec.InputOffset())
			var se *json.SyntaxError
			if errors.As(err, &se) {
				off = int(se.Offset) - 1 // Offset counts the offending byte
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				off = len(src)
				err = errors.New("unexpected end of JSON input")
			}
			line, col := lineCol(src, off)
			return []Diagnostic{{Line: line, Column: col, Severity: SeverityError, Message: err.Error()}}
		}
	}
}

// yamlChecker parses every document of a YAML stream.
type yamlChecker struct{}

func (yamlChecker) name(string) (string, string) { return "go.yaml.in/yaml/v3", yamlVersion }

var yamlLine = regexp.MustCompile(`^yaml: (?:line (\d+): )?`)

func (yamlChecker) check(_ context.Context, _, src string) []Diagnostic {
	dec := yaml.NewDecoder(strings.NewReader(src))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			msg := err.Error()
			d := Diagnostic{Severity: SeverityError, Message: msg}
			if m := yamlLine.FindStringSubmatch(msg); m != nil {
				d.Message = msg[len(m[0]):]
				if m[1] != "" {
					d.Line, _ = strconv.Atoi(m[1])
				}
			}
			return []Diagnostic{d}
		}
	}
}

// tomlChecker decodes TOML into a generic document.
type tomlChecker struct{}

func (tomlChecker) name(string) (string, string) {
	return "github.com/pelletier/go-toml/v2", tomlVersion
}

func (tomlChecker) check(_ context.Context, _, src string) []Diagnostic {
	var v map[string]any
	err := toml.Unmarshal([]byte(src), &v)
	if err == nil {
		return nil
	}
	d := Diagnostic{Severity: SeverityError, Message: err.Error()}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		d.Line, d.Column = de.Position()
		d.Message = de.Error()
	}
	return []Diagnostic{d}
}
