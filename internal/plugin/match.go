package plugin

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Match selects requests. Every condition that is set must hold; a list holds when any of
// its patterns matches. Patterns are exact strings where '*' matches any run of characters.
// The zero Match matches every request.
type Match struct {
	// Models matches the model asked for.
	Models []string `yaml:"models" json:"models"`
	// Keys matches the API key's id or its display prefix.
	Keys []string `yaml:"keys" json:"keys"`
	// Users matches the user id.
	Users []string `yaml:"users" json:"users"`
	// Roles matches the caller's role.
	Roles []string `yaml:"roles" json:"roles"`
	// Routes matches the route pattern ("POST /v1/chat/completions", "task").
	Routes []string `yaml:"routes" json:"routes"`
	// Headers maps a request header to the pattern its value must match.
	Headers map[string]string `yaml:"headers" json:"headers"`
	// Metadata maps a metadata key to the pattern its value must match.
	Metadata map[string]string `yaml:"metadata" json:"metadata"`
	// MinPromptLen and MaxPromptLen bound the prompt's length in bytes (0: no bound).
	MinPromptLen int `yaml:"min_prompt_len" json:"min_prompt_len"`
	MaxPromptLen int `yaml:"max_prompt_len" json:"max_prompt_len"`
	// Time is a time-of-day window "HH:MM-HH:MM" (it may wrap past midnight), in Timezone.
	Time string `yaml:"time" json:"time"`
	// Timezone is an IANA zone name for Time. Default UTC.
	Timezone string `yaml:"timezone" json:"timezone"`

	from, to int // minutes of the day; from < 0: no window
	loc      *time.Location
}

// Compile checks the match and prepares it; call it once after decoding.
func (m *Match) Compile() error {
	m.from, m.loc = -1, time.UTC
	if m.Timezone != "" {
		loc, err := time.LoadLocation(m.Timezone)
		if err != nil {
			return fmt.Errorf("match.timezone: %v", err)
		}
		m.loc = loc
	}
	if m.Time != "" {
		a, b, ok := strings.Cut(m.Time, "-")
		from, err1 := minuteOfDay(a)
		to, err2 := minuteOfDay(b)
		if !ok || err1 != nil || err2 != nil {
			return fmt.Errorf("match.time: want HH:MM-HH:MM, got %q", m.Time)
		}
		m.from, m.to = from, to
	}
	if m.MinPromptLen < 0 || m.MaxPromptLen < 0 {
		return fmt.Errorf("match: prompt lengths must not be negative")
	}
	return nil
}

func minuteOfDay(s string) (int, error) {
	h, mm, ok := strings.Cut(strings.TrimSpace(s), ":")
	hi, err1 := strconv.Atoi(h)
	mi, err2 := strconv.Atoi(mm)
	if !ok || err1 != nil || err2 != nil || hi < 0 || hi > 24 || mi < 0 || mi > 59 || hi == 24 && mi != 0 {
		return 0, fmt.Errorf("bad time %q", s)
	}
	return hi*60 + mi, nil
}

// Matches reports whether r at time now meets every condition.
func (m *Match) Matches(r *Request, now time.Time) bool {
	if len(m.Models) > 0 && !anyGlob(m.Models, r.Model) {
		return false
	}
	if len(m.Keys) > 0 && !(r.KeyID != "" && anyGlob(m.Keys, r.KeyID) || r.KeyName != "" && anyGlob(m.Keys, r.KeyName)) {
		return false
	}
	if len(m.Users) > 0 && !anyGlob(m.Users, r.User) {
		return false
	}
	if len(m.Roles) > 0 && !anyGlob(m.Roles, r.Role) {
		return false
	}
	if len(m.Routes) > 0 && !anyGlob(m.Routes, r.Route) {
		return false
	}
	for h, p := range m.Headers {
		if r.Header == nil || !Glob(p, r.Header.Get(h)) {
			return false
		}
	}
	for k, p := range m.Metadata {
		v, ok := r.Metadata[k]
		if !ok || !Glob(p, v) {
			return false
		}
	}
	if m.MinPromptLen > 0 || m.MaxPromptLen > 0 {
		n := r.PromptLen()
		if n < m.MinPromptLen || m.MaxPromptLen > 0 && n > m.MaxPromptLen {
			return false
		}
	}
	if m.from >= 0 && m.Time != "" {
		t := now.In(m.loc)
		cur := t.Hour()*60 + t.Minute()
		if m.from <= m.to {
			if cur < m.from || cur >= m.to {
				return false
			}
		} else if cur < m.from && cur >= m.to {
			return false
		}
	}
	return true
}

func anyGlob(patterns []string, s string) bool {
	for _, p := range patterns {
		if Glob(p, s) {
			return true
		}
	}
	return false
}

// Glob reports whether s matches pattern, where '*' matches any run of characters
// (slashes included) and everything else matches itself.
func Glob(pattern, s string) bool {
	i := strings.IndexByte(pattern, '*')
	if i < 0 {
		return pattern == s
	}
	if !strings.HasPrefix(s, pattern[:i]) {
		return false
	}
	s, pattern = s[i:], pattern[i+1:]
	for {
		j := strings.IndexByte(pattern, '*')
		if j < 0 {
			return strings.HasSuffix(s, pattern)
		}
		k := strings.Index(s, pattern[:j])
		if k < 0 {
			return false
		}
		s, pattern = s[k+j:], pattern[j+1:]
	}
}
