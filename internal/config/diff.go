package config

import (
	"bytes"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Diff is what changed between the configuration in force and a new one, sorted by what a
// running server can do about it. docs/CONFIG.md has the table of what reloads.
type Diff struct {
	// Models is set when the models section changed (reloads: the model table is swapped).
	Models bool
	// Plugins is set when the plugin chain changed (reloads).
	Plugins bool
	// LogLevel is set when log.level changed (reloads).
	LogLevel bool
	// RateLimits is set when the limits of ratelimit (roles, keys, users,
	// default_max_tokens) changed (reloads).
	RateLimits bool
	// Restart lists the changed settings that take effect only on a restart, as YAML paths
	// ("server.addr", "store", "ratelimit.redis"), in file order.
	Restart []string
}

// Reloadable lists the changed settings that a reload puts in force, as YAML paths.
func (d Diff) Reloadable() []string {
	var out []string
	if d.LogLevel {
		out = append(out, "log.level")
	}
	if d.Models {
		out = append(out, "models")
	}
	if d.RateLimits {
		out = append(out, "ratelimit")
	}
	if d.Plugins {
		out = append(out, "plugins")
	}
	return out
}

// Empty reports whether nothing changed.
func (d Diff) Empty() bool {
	return !d.Models && !d.Plugins && !d.LogLevel && !d.RateLimits && len(d.Restart) == 0
}

// Compare returns what differs from old to new. Both must have had WithDefaults applied
// (Parse does), so that a default written out is no change.
func Compare(old, new *Config) Diff {
	var d Diff
	ov, nv := reflect.ValueOf(*old), reflect.ValueOf(*new)
	t := ov.Type()
	for i := range t.NumField() {
		key := yamlKey(t.Field(i))
		a, b := ov.Field(i).Interface(), nv.Field(i).Interface()
		if reflect.DeepEqual(a, b) {
			continue
		}
		if key == "plugins" && pluginsEqual(old.Plugins, new.Plugins) {
			continue // the same sections, at other lines of the file
		}
		switch key {
		case "models":
			d.Models = true
		case "plugins":
			d.Plugins = true
		case "log":
			d.LogLevel = old.Log.Level != new.Log.Level
			d.Restart = append(d.Restart, changedKeys("log", old.Log, new.Log, "level")...)
		case "ratelimit":
			d.RateLimits = !reflect.DeepEqual(old.RateLimit.limits(), new.RateLimit.limits())
			d.Restart = append(d.Restart, changedKeys("ratelimit", old.RateLimit, new.RateLimit,
				"roles", "keys", "users", "default_max_tokens")...)
		default:
			d.Restart = append(d.Restart, changedKeys(key, a, b)...)
		}
	}
	return d
}

// limits is the part of the ratelimit section that applies per request and can change at
// run time.
func (r RateLimit) limits() RateLimit {
	return RateLimit{Roles: r.Roles, Keys: r.Keys, Users: r.Users, DefaultMaxTokens: r.DefaultMaxTokens}
}

// changedKeys lists the fields of struct values a and b that differ, as "section.key",
// leaving out the keys in skip; a section that is not a struct is reported whole.
func changedKeys(section string, a, b any, skip ...string) []string {
	av, bv := reflect.ValueOf(a), reflect.ValueOf(b)
	if av.Kind() != reflect.Struct {
		if reflect.DeepEqual(a, b) {
			return nil
		}
		return []string{section}
	}
	var out []string
	t := av.Type()
	for i := range t.NumField() {
		k := yamlKey(t.Field(i))
		if k == "" || slices.Contains(skip, k) {
			continue
		}
		if !reflect.DeepEqual(av.Field(i).Interface(), bv.Field(i).Interface()) {
			out = append(out, section+"."+k)
		}
	}
	return out
}

func yamlKey(f reflect.StructField) string {
	k, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if k == "-" || !f.IsExported() {
		return ""
	}
	return k
}

// pluginsEqual compares plugin chains by what they say, not where in the file they say it
// (a plugin's own section is kept as a YAML node, which records its line).
func pluginsEqual(a, b []Plugin) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Type != y.Type || x.Name != y.Name || x.OnError != y.OnError || x.Timeout != y.Timeout {
			return false
		}
		xb, err1 := yaml.Marshal(&x.Config)
		yb, err2 := yaml.Marshal(&y.Config)
		if err1 != nil || err2 != nil || !bytes.Equal(xb, yb) {
			return false
		}
	}
	return true
}
