// Package humanevalx reads the HumanEval-X benchmark (164 problems in C++, Go, Java,
// JavaScript, Python and Rust, each with a prompt, a canonical solution and unit tests) from its
// gzipped JSON Lines files. The data is not part of the binary: it is read from a directory
// given at run time.
package humanevalx

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Problem is one HumanEval-X task in one language.
type Problem struct {
	TaskID            string `json:"task_id"`
	Prompt            string `json:"prompt"`
	Import            string `json:"import"`
	Declaration       string `json:"declaration"`
	CanonicalSolution string `json:"canonical_solution"`
	Test              string `json:"test"`
	TestSetup         string `json:"test_setup"`
	ExampleTest       string `json:"example_test"`
}

// Languages are the dataset's languages, by the names its files use.
var Languages = []string{"cpp", "go", "java", "js", "python", "rust"}

// CheckerLanguage maps a dataset language to the fence-tag name the code checker uses.
func CheckerLanguage(lang string) string {
	if lang == "js" {
		return "javascript"
	}
	return lang
}

// Load reads every problem of lang ("go", "js", ...) from dir.
func Load(dir, lang string) ([]Problem, error) {
	f, err := os.Open(filepath.Join(dir, "humaneval_"+lang+".jsonl.gz"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Read(f)
}

// Read parses a gzipped JSON Lines stream of problems.
func Read(r io.Reader) ([]Problem, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("humaneval-x: %w", err)
	}
	defer zr.Close()
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	var out []Problem
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var p Problem
		if err := json.Unmarshal([]byte(line), &p); err != nil {
			return nil, fmt.Errorf("humaneval-x line %d: %w", n, err)
		}
		if p.TaskID == "" {
			return nil, fmt.Errorf("humaneval-x line %d: no task_id", n)
		}
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("humaneval-x: %w", err)
	}
	return out, nil
}

// DirEnv names a directory that holds the dataset, overriding the search of TestDir.
const DirEnv = "AUTOGLM_HUMANEVALX_DIR"

// TestDir finds the dataset for a test: $AUTOGLM_HUMANEVALX_DIR, or shared/data/humaneval-x
// beside the module's root. Without it the test is skipped, and under CI=true it fails.
func TestDir(t testing.TB) string {
	t.Helper()
	dir, err := findDir()
	if err == nil {
		return dir
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("HumanEval-X data is required under CI=true: %v", err)
	}
	t.Skipf("HumanEval-X data not available: %v", err)
	return ""
}

func findDir() (string, error) {
	if d := os.Getenv(DirEnv); d != "" {
		return d, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			cand := filepath.Join(d, "..", "shared", "data", "humaneval-x")
			if _, err := os.Stat(filepath.Join(cand, "humaneval_go.jsonl.gz")); err == nil {
				return cand, nil
			}
			return "", fmt.Errorf("no ../shared/data/humaneval-x beside the module root and %s is not set", DirEnv)
		}
		if filepath.Dir(d) == d {
			return "", errors.New("module root not found")
		}
	}
}
