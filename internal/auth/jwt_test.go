package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/config"
)

const testSecret = "0123456789abcdef0123456789abcdef-test"

var (
	rsaOnce         sync.Once
	rsaKey, rsaKey2 *rsa.PrivateKey
)

// testRSAKeys generates two RSA keys once per test binary (generation is slow under -race).
func testRSAKeys(t testing.TB) (*rsa.PrivateKey, *rsa.PrivateKey) {
	rsaOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if rsaKey2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return rsaKey, rsaKey2
}

func writePEM(t *testing.T, dir, name string, pub any) (string, []byte) {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, data
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func writeJWKS(t *testing.T, dir string, rsaPub *rsa.PublicKey, ecPub *ecdsa.PublicKey) string {
	t.Helper()
	point, err := ecPub.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	doc := map[string]any{"keys": []map[string]string{
		{"kty": "RSA", "kid": "rsa-1", "use": "sig", "n": b64(rsaPub.N.Bytes()), "e": b64(big.NewInt(int64(rsaPub.E)).Bytes())},
		{"kty": "EC", "kid": "ec-1", "crv": "P-256", "x": b64(point[1:33]), "y": b64(point[33:])},
		{"kty": "oct", "kid": "ignored", "k": "c2VjcmV0"},
	}}
	data, _ := json.Marshal(doc)
	path := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func sign(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestJWT(t *testing.T) {
	dir := t.TempDir()
	rk, rk2 := testRSAKeys(t)
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ek2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pemPath, pemBytes := writePEM(t, dir, "rsa.pem", &rk.PublicKey)
	jwksPath := writeJWKS(t, dir, &rk2.PublicKey, &ek.PublicKey)

	cfg := config.Auth{
		Enabled: true,
		JWT: config.JWT{
			Secret: testSecret, PublicKeys: []string{pemPath}, JWKSFile: jwksPath,
			Issuer: "https://issuer.test", Audience: "autoglm",
			UserClaim: "sub", RoleClaim: "role", ModelsClaim: "models",
			Leeway: config.Duration(5 * time.Second),
		},
		Roles: map[string][]string{"auditor": {"admin.audit"}},
	}
	a, err := New(Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	// An authenticator with only RSA keys, for algorithm confusion with no secret at all.
	rsaOnly := cfg
	rsaOnly.JWT.Secret, rsaOnly.JWT.JWKSFile = "", ""
	aRSA, err := New(Options{Config: rsaOnly})
	if err != nil {
		t.Fatal(err)
	}

	now := time.Now()
	good := func() jwt.MapClaims {
		return jwt.MapClaims{"sub": "alice", "role": "user", "iss": "https://issuer.test", "aud": "autoglm",
			"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "nbf": now.Add(-time.Minute).Unix()}
	}
	with := func(k string, v any) jwt.MapClaims {
		c := good()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	noneToken := func(c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodNone, c).SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	tests := []struct {
		name  string
		auth  *Authenticator
		token string
		want  string // substring of the public error; "" means accepted
		check func(*testing.T, *Principal)
	}{
		{name: "HS256 good", token: sign(t, jwt.SigningMethodHS256, []byte(testSecret), good(), nil),
			check: func(t *testing.T, p *Principal) {
				if p.UserID != "alice" || p.Role != "user" || p.Method != MethodJWT || !p.Can(ModelsUse) || p.Can(AdminKeys) {
					t.Errorf("principal %+v", p)
				}
			}},
		{name: "RS256 good (PEM, no kid)", token: sign(t, jwt.SigningMethodRS256, rk, good(), nil)},
		{name: "RS256 good (JWKS kid)", token: sign(t, jwt.SigningMethodRS256, rk2, good(), map[string]any{"kid": "rsa-1"})},
		{name: "ES256 good (JWKS kid)", token: sign(t, jwt.SigningMethodES256, ek, good(), map[string]any{"kid": "ec-1"})},
		{name: "custom role and models claim", token: sign(t, jwt.SigningMethodHS256, []byte(testSecret), with("role", "auditor"), nil),
			check: func(t *testing.T, p *Principal) {
				if !p.Can(AdminAudit) || p.Can(ModelsList) {
					t.Errorf("auditor perms wrong: %+v", p)
				}
			}},
		{name: "models claim", token: sign(t, jwt.SigningMethodHS256, []byte(testSecret), with("models", []string{"a", "b"}), nil),
			check: func(t *testing.T, p *Principal) {
				if !p.AllowsModel("a") || p.AllowsModel("c") {
					t.Errorf("allow-list %v", p.Models)
				}
			}},
		{name: "empty models claim allows nothing", token: sign(t, jwt.SigningMethodHS256, []byte(testSecret), with("models", []string{}), nil),
			check: func(t *testing.T, p *Principal) {
				if p.AllowsModel("a") {
					t.Errorf("allow-list %v", p.Models)
				}
			}},

		{name: "alg none", token: noneToken(good()), want: "signature or algorithm"},
		{name: "alg none with empty signature against RSA-only", auth: aRSA, token: noneToken(good()), want: "signature or algorithm"},
		{name: "HS256 wrong secret", token: sign(t, jwt.SigningMethodHS256, []byte("another-secret-of-enough-length!!"), good(), nil), want: "signature"},
		{name: "confusion: HS256 keyed with the RSA public key PEM", token: sign(t, jwt.SigningMethodHS256, pemBytes, good(), nil), want: "signature"},
		{name: "confusion: HS256 against an RSA-only server", auth: aRSA, token: sign(t, jwt.SigningMethodHS256, pemBytes, good(), nil), want: "signature or algorithm"},
		{name: "RS512 not accepted", token: sign(t, jwt.SigningMethodRS512, rk, good(), nil), want: "signature or algorithm"},
		{name: "RS256 unknown key", token: sign(t, jwt.SigningMethodRS256, mustRSA(t), good(), nil), want: "signature"},
		{name: "RS256 kid of another key", token: sign(t, jwt.SigningMethodRS256, rk, good(), map[string]any{"kid": "rsa-1"}), want: "signature"},
		{name: "RS256 unknown kid", token: sign(t, jwt.SigningMethodRS256, rk2, good(), map[string]any{"kid": "nope"}), want: "signature or algorithm"},
		{name: "ES256 wrong key", token: sign(t, jwt.SigningMethodES256, ek2, good(), nil), want: "signature"},
		{name: "ES256 with kid of the RSA key", token: sign(t, jwt.SigningMethodES256, ek, good(), map[string]any{"kid": "rsa-1"}), want: "signature or algorithm"},
		{name: "expired", token: sign(t, jwt.SigningMethodHS256, []byte(testSecret), with("exp", now.Add(-time.Hour).Unix()), nil), want: "expired"},
		{name: "expired beyond leeway", token: sign(t, jwt.SigningMethodHS256, []byte(testSecret), with("exp", now.Add(-10*time.Second).Unix()), nil), want: "expired"},
		{name: "missing exp", token: sign(t, jwt.SigningMethodHS256, []byte(testSecret), with("exp", nil), nil), want: "required claim (exp"},
		{name: "not yet valid", token: sign(t, jwt.SigningMethodHS256, []byte(testSecret), with("nbf", now.Add(time.Hour).Unix()), nil), want: "not valid yet"},
		{name: "wrong issuer", token: sign(t, jwt.SigningMethodHS256, []byte(testSecret), with("iss", "https://evil.test"), nil), want: "issuer"},
		{name: "missing issuer", token: sign(t, jwt.SigningMethodHS256, []byte(testSecret), with("iss", nil), nil), want: "required claim"},
		{name: "wrong audience", token: sign(t, jwt.SigningMethodHS256, []byte(testSecret), with("aud", "someone-else"), nil), want: "audience"},
		{name: "missing audience", token: sign(t, jwt.SigningMethodHS256, []byte(testSecret), with("aud", nil), nil), want: "required claim"},
		{name: "audience list containing ours", token: sign(t, jwt.SigningMethodHS256, []byte(testSecret), with("aud", []string{"x", "autoglm"}), nil)},
		{name: "missing user", token: sign(t, jwt.SigningMethodHS256, []byte(testSecret), with("sub", nil), nil), want: `"sub"`},
		{name: "missing role, no default", token: sign(t, jwt.SigningMethodHS256, []byte(testSecret), with("role", nil), nil), want: `"role"`},
		{name: "unknown role", token: sign(t, jwt.SigningMethodHS256, []byte(testSecret), with("role", "root"), nil), want: "unknown"},
		{name: "role not a string", token: sign(t, jwt.SigningMethodHS256, []byte(testSecret), with("role", []string{"admin"}), nil), want: "not a string"},
		{name: "models not strings", token: sign(t, jwt.SigningMethodHS256, []byte(testSecret), with("models", []int{1}), nil), want: "array of strings"},
		{name: "tampered payload", token: tamper(sign(t, jwt.SigningMethodHS256, []byte(testSecret), good(), nil)), want: "signature"},
		{name: "garbage", token: "eyJhbGciOiJIUzI1NiJ9.!!!.x", want: "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			au := tt.auth
			if au == nil {
				au = a
			}
			p, err := au.AuthenticateCredential(Credential{Kind: JWT, Token: tt.token})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if tt.check != nil {
					tt.check(t, p)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted %+v, want refusal containing %q", p, tt.want)
			}
			if apierr.KindOf(err) != apierr.Unauthenticated {
				t.Errorf("kind = %v, want unauthenticated", apierr.KindOf(err))
			}
			if msg := apierr.From(err).PublicMessage(); !strings.Contains(msg, tt.want) {
				t.Errorf("message %q does not contain %q", msg, tt.want)
			}
		})
	}
}

func TestJWTDefaultRoleAndNoJWT(t *testing.T) {
	cfg := config.Auth{Enabled: true, JWT: config.JWT{Secret: testSecret, UserClaim: "email", RoleClaim: "role", DefaultRole: "guest"}}
	a, err := New(Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	tok := sign(t, jwt.SigningMethodHS256, []byte(testSecret), jwt.MapClaims{"email": "bob@example.com", "exp": time.Now().Add(time.Hour).Unix()}, nil)
	p, err := a.AuthenticateCredential(Credential{Kind: JWT, Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	if p.UserID != "bob@example.com" || p.Role != RoleGuest || p.Can(ModelsUse) || !p.Can(ModelsList) {
		t.Errorf("principal %+v", p)
	}
	noJWT, _ := New(Options{Config: config.Auth{Enabled: true}})
	if _, err := noJWT.AuthenticateCredential(Credential{Kind: JWT, Token: tok}); apierr.KindOf(err) != apierr.Unauthenticated {
		t.Errorf("server without JWT keys: err = %v", err)
	}
}

func TestJWTKeyFiles(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.pem")
	os.WriteFile(bad, []byte("not pem"), 0o600)
	ek, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384, _ := writePEM(t, dir, "p384.pem", &ek.PublicKey)
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	weakPath, _ := writePEM(t, dir, "weak.pem", &weak.PublicKey)
	for _, tc := range []struct {
		name string
		jwt  config.JWT
		want string
	}{
		{"missing file", config.JWT{PublicKeys: []string{filepath.Join(dir, "nope.pem")}}, "public_keys[0]"},
		{"not PEM", config.JWT{PublicKeys: []string{bad}}, "no PEM public key"},
		{"P-384", config.JWT{PublicKeys: []string{p384}}, "P-256"},
		{"weak RSA", config.JWT{PublicKeys: []string{weakPath}}, "too short"},
		{"bad JWKS", config.JWT{JWKSFile: bad}, "not a JWKS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Options{Config: config.Auth{JWT: tc.jwt}})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// mustRSA returns a key the server does not know.
func mustRSA(t *testing.T) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// tamper flips the payload to claim the admin role, keeping the original signature.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	payload = []byte(strings.Replace(string(payload), `"role":"user"`, `"role":"admin"`, 1))
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	return strings.Join(parts, ".")
}

func TestJWTVerifiedCache(t *testing.T) {
	var clock atomic.Pointer[time.Time]
	start := time.Now()
	clock.Store(&start)
	cfg := config.Auth{Enabled: true, JWT: config.JWT{Secret: testSecret, UserClaim: "sub", RoleClaim: "role", Leeway: config.Duration(time.Second)}}
	a, err := New(Options{Config: cfg, Now: func() time.Time { return *clock.Load() }})
	if err != nil {
		t.Fatal(err)
	}
	tok := sign(t, jwt.SigningMethodHS256, []byte(testSecret), jwt.MapClaims{"sub": "u", "role": "user", "exp": start.Add(time.Minute).Unix()}, nil)
	p1, err := a.AuthenticateCredential(Credential{Kind: JWT, Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	p2, err := a.AuthenticateCredential(Credential{Kind: JWT, Token: tok})
	if err != nil || p1 != p2 {
		t.Fatalf("second use not served from the cache: %p %p %v", p1, p2, err)
	}
	later := start.Add(2 * time.Minute)
	clock.Store(&later)
	if _, err := a.AuthenticateCredential(Credential{Kind: JWT, Token: tok}); apierr.KindOf(err) != apierr.Unauthenticated {
		t.Fatalf("cached token accepted after expiry: %v", err)
	}
}

func BenchmarkJWT(b *testing.B) {
	rk, _ := testRSAKeys(b)
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	dir := b.TempDir()
	der, _ := x509.MarshalPKIXPublicKey(&rk.PublicKey)
	rsaPath := filepath.Join(dir, "rsa.pem")
	os.WriteFile(rsaPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600)
	der, _ = x509.MarshalPKIXPublicKey(&ek.PublicKey)
	ecPath := filepath.Join(dir, "ec.pem")
	os.WriteFile(ecPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600)
	cfg := config.Auth{Enabled: true, JWT: config.JWT{Secret: testSecret, PublicKeys: []string{rsaPath, ecPath}, UserClaim: "sub", RoleClaim: "role"}}
	a, err := New(Options{Config: cfg})
	if err != nil {
		b.Fatal(err)
	}
	claims := func() jwt.MapClaims {
		return jwt.MapClaims{"sub": "u", "role": "user", "exp": time.Now().Add(time.Hour).Unix()}
	}
	for _, bc := range []struct {
		name   string
		method jwt.SigningMethod
		key    any
	}{{"HS256", jwt.SigningMethodHS256, []byte(testSecret)}, {"RS256", jwt.SigningMethodRS256, rk}, {"ES256", jwt.SigningMethodES256, ek}} {
		tok, err := jwt.NewWithClaims(bc.method, claims()).SignedString(bc.key)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name+"/verify", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.jwt.parser.ParseWithClaims(tok, jwt.MapClaims{}, a.jwt.keyFunc); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"/cached", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.AuthenticateCredential(Credential{Kind: JWT, Token: tok}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestJWTMaxLifetime: with auth.jwt.max_lifetime set, a token whose exp lies further than that
// after its iat, or after now when iat is absent or in the future, is refused; a short one
// passes. Without the option any lifetime passes.
func TestJWTMaxLifetime(t *testing.T) {
	now := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	limited := config.Auth{Enabled: true, JWT: config.JWT{Secret: testSecret, UserClaim: "sub", RoleClaim: "role",
		Leeway: config.Duration(30 * time.Second), MaxLifetime: config.Duration(time.Hour)}}
	a, err := New(Options{Config: limited, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	unlimited := limited
	unlimited.JWT.MaxLifetime = 0
	u, err := New(Options{Config: unlimited, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	at := func(d time.Duration) int64 { return now.Add(d).Unix() }
	for _, tc := range []struct {
		name   string
		claims jwt.MapClaims
		ok     bool
	}{
		{"one hour from iat", jwt.MapClaims{"iat": at(-10 * time.Minute), "exp": at(50 * time.Minute)}, true},
		{"no iat, expires within the hour", jwt.MapClaims{"exp": at(59 * time.Minute)}, true},
		{"exp-iat over the limit", jwt.MapClaims{"iat": at(-2 * time.Hour), "exp": at(10 * time.Minute)}, false},
		{"no iat, expires in a year", jwt.MapClaims{"exp": at(365 * 24 * time.Hour)}, false},
		{"iat in the future hides a long life", jwt.MapClaims{"iat": at(23 * time.Hour), "exp": at(24 * time.Hour)}, false},
		{"exp just past the limit and the leeway", jwt.MapClaims{"exp": at(time.Hour + 31*time.Second)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.claims["sub"], tc.claims["role"] = "alice", "user"
			tok := sign(t, jwt.SigningMethodHS256, []byte(testSecret), tc.claims, nil)
			_, err := a.AuthenticateCredential(Credential{Kind: JWT, Token: tok})
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok %v", err, tc.ok)
			}
			if err != nil && (apierr.KindOf(err) != apierr.Unauthenticated || !strings.Contains(err.(*apierr.Error).Message, "lifetime exceeds the 1h0m0s")) &&
				!strings.Contains(err.Error(), "not valid yet") {
				t.Errorf("refusal: %v", err)
			}
			if tc.name != "iat in the future hides a long life" {
				if _, err := u.AuthenticateCredential(Credential{Kind: JWT, Token: tok}); err != nil {
					t.Errorf("without max_lifetime: %v", err)
				}
			}
		})
	}
}
