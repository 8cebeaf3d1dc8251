package config

// Store is the "store" section. It is filled in with its subsystem; every field's comment states its
// default.
type Store struct{}

// withDefaults returns a copy with empty fields set to their defaults.
func (x Store) withDefaults() Store { return x }

// validate reports each bad field through bad, naming it by its full path ("store.…").
func (x Store) validate(bad func(path, format string, args ...any)) {}
