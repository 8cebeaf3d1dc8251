package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/open-autoglm/autoglm/internal/config"
)

// jwtVerifier checks JWTs against the configured keys and maps their claims to a principal.
// It is immutable after construction.
type jwtVerifier struct {
	cfg    config.JWT
	roles  *Roles
	secret []byte
	// rsaKeys and ecKeys hold the public keys by kid; keys from PEM files have an empty kid.
	rsaKeys []namedKey
	ecKeys  []namedKey
	parser  *jwt.Parser

	mu       sync.RWMutex
	verified map[[32]byte]verifiedToken // by SHA-256 of the token
}

// maxVerifiedTokens bounds the cache of verified tokens. When it is full it is emptied: a
// burst of distinct tokens costs some signature checks again, and nothing more.
const maxVerifiedTokens = 8192

// verifiedToken is a token whose signature and claims checked out, kept until it expires so
// that a client reusing its token (the usual case) pays for an RSA or ECDSA verification
// once, not on every request. Nothing else about a JWT can change before it expires: tokens
// cannot be revoked, and the configuration is fixed for the verifier's lifetime.
type verifiedToken struct {
	principal *Principal
	until     time.Time
}

type namedKey struct {
	kid string
	key crypto.PublicKey
}

// newJWTVerifier loads the configured keys. It returns nil when no JWT key is configured.
func newJWTVerifier(cfg config.JWT, roles *Roles, now func() time.Time) (*jwtVerifier, error) {
	if !cfg.Configured() {
		return nil, nil
	}
	v := &jwtVerifier{cfg: cfg, roles: roles, verified: map[[32]byte]verifiedToken{}}
	if cfg.Secret != "" {
		v.secret = []byte(cfg.Secret)
	}
	for i, path := range cfg.PublicKeys {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("auth.jwt.public_keys[%d]: %w", i, err)
		}
		keys, err := parsePEMPublicKeys(data)
		if err != nil {
			return nil, fmt.Errorf("auth.jwt.public_keys[%d]: %s: %w", i, path, err)
		}
		for _, k := range keys {
			v.add("", k)
		}
	}
	if cfg.JWKSFile != "" {
		data, err := os.ReadFile(cfg.JWKSFile)
		if err != nil {
			return nil, fmt.Errorf("auth.jwt.jwks_file: %w", err)
		}
		keys, err := parseJWKS(data)
		if err != nil {
			return nil, fmt.Errorf("auth.jwt.jwks_file: %s: %w", cfg.JWKSFile, err)
		}
		for _, k := range keys {
			v.add(k.kid, k.key)
		}
	}
	var methods []string
	if v.secret != nil {
		methods = append(methods, "HS256")
	}
	if len(v.rsaKeys) > 0 {
		methods = append(methods, "RS256")
	}
	if len(v.ecKeys) > 0 {
		methods = append(methods, "ES256")
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		jwt.WithLeeway(cfg.Leeway.D()),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(now),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

func (v *jwtVerifier) add(kid string, k crypto.PublicKey) {
	switch k := k.(type) {
	case *rsa.PublicKey:
		v.rsaKeys = append(v.rsaKeys, namedKey{kid, k})
	case *ecdsa.PublicKey:
		v.ecKeys = append(v.ecKeys, namedKey{kid, k})
	}
}

// keyFunc chooses the verification keys for a token by its algorithm, never by anything
// else the token says: an HS256 token is only ever checked with the shared secret, an RS256
// one only with RSA keys, an ES256 one only with P-256 keys. A "kid" narrows the choice.
func (v *jwtVerifier) keyFunc(t *jwt.Token) (any, error) {
	var pool []namedKey
	switch t.Method.Alg() {
	case "HS256":
		if v.secret == nil {
			return nil, errors.New("HS256 tokens are not accepted")
		}
		return v.secret, nil
	case "RS256":
		pool = v.rsaKeys
	case "ES256":
		pool = v.ecKeys
	default:
		return nil, fmt.Errorf("algorithm %q is not accepted", t.Method.Alg())
	}
	// A token naming a kid is checked with the keys of that kid only; when none has it (or it
	// names none), with the keys that have no kid (PEM files).
	kid, _ := t.Header["kid"].(string)
	var set jwt.VerificationKeySet
	if kid != "" {
		for _, k := range pool {
			if k.kid == kid {
				set.Keys = append(set.Keys, k.key)
			}
		}
	}
	if len(set.Keys) == 0 {
		for _, k := range pool {
			if k.kid == "" || kid == "" {
				set.Keys = append(set.Keys, k.key)
			}
		}
	}
	if len(set.Keys) == 0 {
		return nil, fmt.Errorf("no %s key matches kid %q", t.Method.Alg(), kid)
	}
	if len(set.Keys) == 1 {
		return set.Keys[0], nil
	}
	return set, nil
}

// verify checks token and returns its principal. The error's text is safe to show.
func (v *jwtVerifier) verify(token string, now time.Time) (*Principal, error) {
	sum := hashToken(token)
	v.mu.RLock()
	hit, ok := v.verified[sum]
	v.mu.RUnlock()
	if ok && now.Before(hit.until) {
		return hit.principal, nil
	}
	claims := jwt.MapClaims{}
	if _, err := v.parser.ParseWithClaims(token, claims, v.keyFunc); err != nil {
		return nil, publicJWTError(err)
	}
	if err := v.checkLifetime(claims, now); err != nil {
		return nil, err
	}
	p, err := v.principal(claims)
	if err != nil {
		return nil, err
	}
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
		v.mu.Lock()
		if len(v.verified) >= maxVerifiedTokens {
			clear(v.verified)
		}
		v.verified[sum] = verifiedToken{principal: p, until: exp.Add(v.cfg.Leeway.D())}
		v.mu.Unlock()
	}
	return p, nil
}

// checkLifetime refuses a token that lives longer than auth.jwt.max_lifetime: exp more than
// that after iat, or more than that (plus the leeway) after now, whatever iat claims.
func (v *jwtVerifier) checkLifetime(claims jwt.MapClaims, now time.Time) error {
	max := v.cfg.MaxLifetime.D()
	if max <= 0 {
		return nil
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return errors.New("the token lacks a valid exp claim")
	}
	tooLong := fmt.Errorf("the token's lifetime exceeds the %s this server accepts", max)
	iat, err := claims.GetIssuedAt()
	if err != nil {
		return errors.New("the token's iat claim is not a number")
	}
	if iat != nil && exp.Sub(iat.Time) > max {
		return tooLong
	}
	if exp.Sub(now) > max+v.cfg.Leeway.D() {
		return tooLong
	}
	return nil
}

// principal maps verified claims to a principal.
func (v *jwtVerifier) principal(claims jwt.MapClaims) (*Principal, error) {
	user, _ := claims[v.cfg.UserClaim].(string)
	if user == "" {
		return nil, fmt.Errorf("the token has no %q claim", v.cfg.UserClaim)
	}
	role := v.cfg.DefaultRole
	if c, ok := claims[v.cfg.RoleClaim]; ok {
		s, isString := c.(string)
		if !isString {
			return nil, fmt.Errorf("the token's %q claim is not a string", v.cfg.RoleClaim)
		}
		role = s
	}
	if role == "" {
		return nil, fmt.Errorf("the token has no %q claim", v.cfg.RoleClaim)
	}
	if !v.roles.Has(role) {
		return nil, fmt.Errorf("the token's role %s is unknown", quote(role))
	}
	p := &Principal{Method: MethodJWT, UserID: user, Role: role, perms: v.roles.sets[role]}
	if v.cfg.ModelsClaim != "" {
		if c, ok := claims[v.cfg.ModelsClaim]; ok {
			list, ok := c.([]any)
			if !ok {
				return nil, fmt.Errorf("the token's %q claim is not an array of strings", v.cfg.ModelsClaim)
			}
			for _, m := range list {
				s, ok := m.(string)
				if !ok {
					return nil, fmt.Errorf("the token's %q claim is not an array of strings", v.cfg.ModelsClaim)
				}
				p.Models = append(p.Models, s)
			}
			if len(p.Models) == 0 {
				// An explicit empty list means no model, not every model.
				p.Models = []string{""}
			}
		}
	}
	return p, nil
}

// publicJWTError turns the library's error into a short message for the client.
func publicJWTError(err error) error {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return errors.New("the token is malformed")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return errors.New("the token's signature or algorithm is not accepted")
	case errors.Is(err, jwt.ErrTokenExpired):
		return errors.New("the token has expired")
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return errors.New("the token is not valid yet")
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return errors.New("the token's issuer is not accepted")
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return errors.New("the token's audience is not accepted")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return errors.New("the token lacks a required claim (exp, and iss and aud when the server checks them)")
	}
	return errors.New("the token is not valid")
}

// parsePEMPublicKeys reads every public key in a PEM file: PKIX "PUBLIC KEY", PKCS#1 "RSA
// PUBLIC KEY" and the key of a "CERTIFICATE". Only RSA and ECDSA P-256 keys are accepted.
func parsePEMPublicKeys(data []byte) ([]crypto.PublicKey, error) {
	var keys []crypto.PublicKey
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		var (
			k   any
			err error
		)
		switch block.Type {
		case "PUBLIC KEY":
			k, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			k, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var c *x509.Certificate
			c, err = x509.ParseCertificate(block.Bytes)
			if err == nil {
				k = c.PublicKey
			}
		default:
			return nil, fmt.Errorf("unexpected PEM block %q (want a public key or certificate)", block.Type)
		}
		if err != nil {
			return nil, err
		}
		if err := checkKey(k); err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("no PEM public key found")
	}
	return keys, nil
}

func checkKey(k any) error {
	switch k := k.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("RSA key of %d bits is too short (want at least 2048)", k.N.BitLen())
		}
		return nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return fmt.Errorf("ECDSA key on %s is not accepted (ES256 needs P-256)", k.Curve.Params().Name)
		}
		return nil
	}
	return fmt.Errorf("unsupported public key type %T (want RSA or ECDSA P-256)", k)
}

// parseJWKS reads the RSA and EC P-256 public keys of a JSON Web Key Set. Keys meant for
// encryption ("use": "enc") and key types other than RSA and EC are skipped.
func parseJWKS(data []byte) ([]namedKey, error) {
	var set struct {
		Keys []struct {
			Kty string `json:"kty"`
			Kid string `json:"kid"`
			Use string `json:"use"`
			Alg string `json:"alg"`
			N   string `json:"n"`
			E   string `json:"e"`
			Crv string `json:"crv"`
			X   string `json:"x"`
			Y   string `json:"y"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("not a JWKS document: %w", err)
	}
	var keys []namedKey
	for i, k := range set.Keys {
		if k.Use == "enc" {
			continue
		}
		switch k.Kty {
		case "RSA":
			n, err1 := base64.RawURLEncoding.DecodeString(k.N)
			e, err2 := base64.RawURLEncoding.DecodeString(k.E)
			if err := errors.Join(err1, err2); err != nil || len(e) == 0 || len(e) > 4 {
				return nil, fmt.Errorf("keys[%d]: bad RSA modulus or exponent", i)
			}
			exp := 0
			for _, b := range e {
				exp = exp<<8 | int(b)
			}
			pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: exp}
			if err := checkKey(pub); err != nil {
				return nil, fmt.Errorf("keys[%d]: %w", i, err)
			}
			keys = append(keys, namedKey{k.Kid, pub})
		case "EC":
			if k.Crv != "P-256" {
				return nil, fmt.Errorf("keys[%d]: curve %q is not accepted (want P-256)", i, k.Crv)
			}
			x, err1 := base64.RawURLEncoding.DecodeString(k.X)
			y, err2 := base64.RawURLEncoding.DecodeString(k.Y)
			if err := errors.Join(err1, err2); err != nil || len(x) != 32 || len(y) != 32 {
				return nil, fmt.Errorf("keys[%d]: bad EC point", i)
			}
			pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
			if err != nil {
				return nil, fmt.Errorf("keys[%d]: %w", i, err)
			}
			keys = append(keys, namedKey{k.Kid, pub})
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("no usable RSA or EC P-256 key")
	}
	return keys, nil
}
