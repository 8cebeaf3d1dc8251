package auth_test

import (
	"fmt"

	"github.com/open-autoglm/autoglm/internal/auth"
)

func ExampleParseCredential() {
	for _, h := range []string{
		"Bearer agk-3q2-7wEjUjBX0WQ8uUSKrG9n2x0xVZ5l0bRWm6tKgqE",
		"Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl",
		"Basic dXNlcjpwYXNz",
	} {
		c, err := auth.ParseCredential(h, "")
		fmt.Println(c.Kind, err)
	}
	// Output:
	// api_key <nil>
	// jwt <nil>
	// none the Authorization header must be "Bearer <token>"
}

func ExampleRoles_Allows() {
	roles, _ := auth.NewRoles(map[string][]string{"auditor": {"admin.audit"}})
	perm := auth.ModelsUse // the permission of POST /v1/chat/completions
	for _, role := range []string{"guest", "user", "auditor", "admin"} {
		fmt.Println(role, perm, roles.Allows(role, perm))
	}
	// Output:
	// guest models.use false
	// user models.use true
	// auditor models.use false
	// admin models.use true
}

func ExampleNewKey() {
	key := auth.NewKey() // show once; store only the hash and the prefix
	fmt.Println(len(key), key[:4], len(auth.HashKey(key)), len(auth.DisplayPrefix(key)))
	// Output: 47 agk- 32 12
}
