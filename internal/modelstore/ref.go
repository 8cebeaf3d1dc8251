package modelstore

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/open-autoglm/autoglm/internal/hub"
)

// Ref names a model file of a repository: "owner/name" (the repository's one GGUF file, or
// its Q4_K_M file when it has several), "owner/name:Q8_0" (by quantisation) or
// "owner/name:file.gguf" (by path).
type Ref struct {
	Repo  string
	File  string // exact path inside the repository, or ""
	Quant string // quantisation label in upper case ("Q4_K_M"), or ""
}

// quantRe matches the quantisation labels GGUF files are named with.
var quantRe = regexp.MustCompile(`(?i)^(i?q[1-8](_[a-z0-9]+)*|f16|f32|bf16)$`)

// ParseRef parses REPO[:FILE|:QUANT]. A suffix containing '.' or '/' is a file path; one
// that looks like a quantisation label (Q4_K_M, IQ2_XS, Q8_0, F16, BF16) is a quantisation.
func ParseRef(s string) (Ref, error) {
	repo, suffix, hasSuffix := strings.Cut(s, ":")
	if !hub.ValidRepo(repo) {
		return Ref{}, fmt.Errorf("%q: the repository must be owner/name (letters, digits, '-', '_', '.')", s)
	}
	r := Ref{Repo: repo}
	switch {
	case !hasSuffix:
	case strings.ContainsAny(suffix, "./"):
		if !hub.ValidPath(suffix) || suffix == manifestName {
			return Ref{}, fmt.Errorf("%q: %q is not a valid file path", s, suffix)
		}
		r.File = suffix
	case quantRe.MatchString(suffix):
		r.Quant = strings.ToUpper(suffix)
	default:
		return Ref{}, fmt.Errorf("%q: %q is neither a file name (with its extension) nor a quantisation such as Q4_K_M", s, suffix)
	}
	return r, nil
}

// String writes the reference back in the form ParseRef reads.
func (r Ref) String() string {
	switch {
	case r.File != "":
		return r.Repo + ":" + r.File
	case r.Quant != "":
		return r.Repo + ":" + r.Quant
	}
	return r.Repo
}

// QuantOf returns the quantisation label in a GGUF file name ("Qwen2.5-0.5B-Instruct-Q4_K_M.gguf"
// → "Q4_K_M"), or "".
func QuantOf(file string) string {
	base := file[strings.LastIndexByte(file, '/')+1:]
	lower := strings.ToLower(base)
	if !strings.HasSuffix(lower, ".gguf") {
		return ""
	}
	base = base[:len(base)-len(".gguf")]
	i := strings.LastIndexAny(base, "-.")
	if q := base[i+1:]; quantRe.MatchString(q) {
		return strings.ToUpper(q)
	}
	return ""
}

// splitRe matches the parts of a GGUF split across files ("-00001-of-00003.gguf").
var splitRe = regexp.MustCompile(`(?i)-\d{5}-of-\d{5}\.gguf$`)

// defaultQuants is the order in which a repository with several GGUF files is chosen from
// when the reference names none: the usual quality/size compromise first.
var defaultQuants = []string{"Q4_K_M", "Q4_K_S", "Q5_K_M", "Q4_0", "Q8_0"}

// pick chooses the file r names among files.
func (r Ref) pick(files []hub.File) (hub.File, error) {
	if r.File != "" {
		for _, f := range files {
			if f.Path == r.File {
				return f, nil
			}
		}
		return hub.File{}, fmt.Errorf("%s has no file %q%s", r.Repo, r.File, choices(r.Repo, files))
	}
	var ggufs []hub.File
	for _, f := range files {
		if strings.HasSuffix(strings.ToLower(f.Path), ".gguf") {
			ggufs = append(ggufs, f)
		}
	}
	if len(ggufs) == 0 {
		return hub.File{}, fmt.Errorf("%s has no GGUF file", r.Repo)
	}
	want := r.Quant
	if want == "" {
		if len(ggufs) == 1 {
			return checkSplit(r, ggufs[0])
		}
		for _, q := range defaultQuants {
			if n := countQuant(ggufs, q); n > 0 {
				want = q
				break
			}
		}
		if want == "" {
			return hub.File{}, fmt.Errorf("%s has several GGUF files; name one%s", r.Repo, choices(r.Repo, files))
		}
	}
	var match []hub.File
	for _, f := range ggufs {
		if QuantOf(f.Path) == want {
			match = append(match, f)
		}
	}
	switch len(match) {
	case 0:
		return hub.File{}, fmt.Errorf("%s has no %s file%s", r.Repo, want, choices(r.Repo, files))
	case 1:
		return checkSplit(r, match[0])
	}
	return hub.File{}, fmt.Errorf("%s has several %s files; name one%s", r.Repo, want, choices(r.Repo, match))
}

func checkSplit(r Ref, f hub.File) (hub.File, error) {
	if splitRe.MatchString(f.Path) {
		return hub.File{}, fmt.Errorf("%s: %s is one part of a GGUF split across files, which the engine does not load; merge the parts first (llama-gguf-split --merge)", r.Repo, f.Path)
	}
	return f, nil
}

func countQuant(files []hub.File, q string) int {
	n := 0
	for _, f := range files {
		if QuantOf(f.Path) == q {
			n++
		}
	}
	return n
}

// choices lists the GGUF files as references a user can type.
func choices(repo string, files []hub.File) string {
	var refs []string
	for _, f := range files {
		if !strings.HasSuffix(strings.ToLower(f.Path), ".gguf") {
			continue
		}
		ref := repo + ":" + f.Path
		if q := QuantOf(f.Path); q != "" && countQuant(files, q) == 1 {
			ref = repo + ":" + q
		}
		refs = append(refs, ref)
	}
	if len(refs) == 0 {
		return ""
	}
	sort.Strings(refs)
	refs = slices.Compact(refs)
	if len(refs) > 20 {
		refs = append(refs[:20], "...")
	}
	return ": " + strings.Join(refs, ", ")
}
