package config

// Auth is the "auth" section. It is filled in with its subsystem; every field's comment states its
// default.
type Auth struct{}

// withDefaults returns a copy with empty fields set to their defaults.
func (x Auth) withDefaults() Auth { return x }

// validate reports each bad field through bad, naming it by its full path ("auth.…").
func (x Auth) validate(bad func(path, format string, args ...any)) {}
