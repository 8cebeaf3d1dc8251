package config

// Cache is the "cache" section. It is filled in with its subsystem; every field's comment states its
// default.
type Cache struct{}

// withDefaults returns a copy with empty fields set to their defaults.
func (x Cache) withDefaults() Cache { return x }

// validate reports each bad field through bad, naming it by its full path ("cache.…").
func (x Cache) validate(bad func(path, format string, args ...any)) {}
