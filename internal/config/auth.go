package config

import (
	"fmt"
	"regexp"
	"sort"
	"time"
)

// Auth is the "auth" section: who may call the server and what each role may do.
type Auth struct {
	// Enabled turns authentication and authorization on. Default false. Authentication is also
	// on, whatever this says, when the AUTOGLM_ADMIN_KEY environment variable is set.
	Enabled bool `yaml:"enabled"`
	// KeyRefresh is how often each replica reads changed API keys from the store into its
	// in-memory cache; a key revoked on one replica stops working on every replica within
	// about this long. Default 500ms; at most 10s.
	KeyRefresh Duration `yaml:"key_refresh"`
	// JWT configures JSON Web Token bearer credentials. Default: no JWTs accepted.
	JWT JWT `yaml:"jwt"`
	// Roles defines custom roles as sets of permissions, by name. The built-in roles guest,
	// user and admin cannot be redefined. Permission names are checked when the server
	// starts. Default: none.
	Roles map[string][]string `yaml:"roles"`
}

// JWT configures which JSON Web Tokens are accepted and how their claims map to a principal.
// Any of Secret, PublicKeys and JWKSFile may be combined; a token is checked only against keys
// of its own algorithm family, so an HS256 token is never verified with a public key.
type JWT struct {
	// Secret is the HS256 shared secret, at least 32 bytes; write it as ${ENV_VAR}. Default:
	// none (HS256 tokens refused).
	Secret string `yaml:"secret"`
	// PublicKeys are PEM files holding RSA (RS256) or ECDSA P-256 (ES256) public keys.
	// Default: none.
	PublicKeys []string `yaml:"public_keys"`
	// JWKSFile is a JSON Web Key Set file of RSA and EC public keys, chosen by the token's
	// "kid". Default: none.
	JWKSFile string `yaml:"jwks_file"`
	// Issuer, when set, must equal the token's "iss". Default: not checked.
	Issuer string `yaml:"issuer"`
	// Audience, when set, must be one of the token's "aud" values. Default: not checked.
	Audience string `yaml:"audience"`
	// UserClaim names the string claim that identifies the user. Default "sub".
	UserClaim string `yaml:"user_claim"`
	// RoleClaim names the string claim that holds the role. Default "role".
	RoleClaim string `yaml:"role_claim"`
	// ModelsClaim names an array-of-strings claim holding the model allow-list. Default ""
	// (tokens carry no allow-list: every model).
	ModelsClaim string `yaml:"models_claim"`
	// DefaultRole is the role of a token without the role claim. Default "" (such tokens
	// are refused).
	DefaultRole string `yaml:"default_role"`
	// Leeway tolerates clock skew when checking exp and nbf. Default 30s; at most 5m.
	Leeway Duration `yaml:"leeway"`
	// MaxLifetime, when set, refuses a token that lives longer: one whose exp is more than
	// this after its iat, or more than this (plus Leeway) after now, so a leaked long-lived
	// token cannot be used for long. Default 0 (no limit).
	MaxLifetime Duration `yaml:"max_lifetime"`
}

// Configured reports whether any JWT verification key is configured.
func (j JWT) Configured() bool {
	return j.Secret != "" || len(j.PublicKeys) > 0 || j.JWKSFile != ""
}

// builtinRoles are the roles every configuration has.
var builtinRoles = map[string]bool{"guest": true, "user": true, "admin": true}

var (
	roleNameRE   = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)
	permissionRE = regexp.MustCompile(`^[a-z]+(\.[a-z_]+)*$`)
)

// withDefaults returns a copy with empty fields set to their defaults.
func (x Auth) withDefaults() Auth {
	setDur(&x.KeyRefresh, 500*time.Millisecond)
	if x.JWT.UserClaim == "" {
		x.JWT.UserClaim = "sub"
	}
	if x.JWT.RoleClaim == "" {
		x.JWT.RoleClaim = "role"
	}
	setDur(&x.JWT.Leeway, 30*time.Second)
	return x
}

// validate reports each bad field through bad, naming it by its full path ("auth.…").
func (x Auth) validate(bad func(path, format string, args ...any)) {
	if d := x.KeyRefresh.D(); d < 10*time.Millisecond || d > 10*time.Second {
		bad("auth.key_refresh", "must be between 10ms and 10s, got %s", d)
	}
	names := make([]string, 0, len(x.Roles))
	for name := range x.Roles {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p := "auth.roles." + name
		switch {
		case builtinRoles[name]:
			bad(p, "redefines the built-in role %q", name)
		case !roleNameRE.MatchString(name):
			bad(p, "invalid role name %q (want lower case letters, digits, _ and -)", name)
		}
		for _, perm := range x.Roles[name] {
			if !permissionRE.MatchString(perm) {
				bad(p, "invalid permission %q (want a dotted name such as models.use)", perm)
			}
		}
	}
	j := x.JWT
	if j.Secret != "" && len(j.Secret) < 32 {
		bad("auth.jwt.secret", "must be at least 32 bytes, got %d", len(j.Secret))
	}
	for i, f := range j.PublicKeys {
		if f == "" {
			bad(fmt.Sprintf("auth.jwt.public_keys[%d]", i), "is empty")
		}
	}
	if d := j.Leeway.D(); d < 0 || d > 5*time.Minute {
		bad("auth.jwt.leeway", "must be between 0 and 5m, got %s", d)
	}
	if j.MaxLifetime < 0 {
		bad("auth.jwt.max_lifetime", "must not be negative")
	} else if j.MaxLifetime > 0 && j.MaxLifetime < Duration(time.Minute) {
		bad("auth.jwt.max_lifetime", "must be 0 (no limit) or at least 1m, got %s", j.MaxLifetime.D())
	}
	if r := j.DefaultRole; r != "" && !builtinRoles[r] && x.Roles[r] == nil {
		bad("auth.jwt.default_role", "unknown role %q", r)
	}
	if !j.Configured() && (j.Issuer != "" || j.Audience != "") {
		bad("auth.jwt", "issuer or audience is set but no secret, public_keys or jwks_file")
	}
}
