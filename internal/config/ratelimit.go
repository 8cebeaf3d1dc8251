package config

// RateLimit is the "ratelimit" section. It is filled in with its subsystem; every field's comment states its
// default.
type RateLimit struct{}

// withDefaults returns a copy with empty fields set to their defaults.
func (x RateLimit) withDefaults() RateLimit { return x }

// validate reports each bad field through bad, naming it by its full path ("ratelimit.…").
func (x RateLimit) validate(bad func(path, format string, args ...any)) {}
