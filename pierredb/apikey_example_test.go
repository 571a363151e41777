package pierredb_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb"
)

// Issue an API key for a member of a tenant, verify it on a request, and revoke
// it.
func ExampleAPIKeys_Create() {
	ctx := context.Background()
	key, err := keyring.Generate()
	if err != nil {
		panic(err)
	}
	db, err := pierredb.Open("sqlite::memory:", key, pierredb.WithAutoApproveUsers(true))
	if err != nil {
		panic(err)
	}
	defer db.Close()
	ada, err := db.Users().Create(ctx, pierredb.NewUser{Email: "ada@example.com", Password: "analytical engine"})
	if err != nil {
		panic(err)
	}
	tn, err := db.Tenants().Create(ctx, pierredb.NewTenant{Name: "Engines", Slug: "engines", OwnerUserID: ada.ID})
	if err != nil {
		panic(err)
	}
	scope, err := db.Tenant(ctx, tn.ID)
	if err != nil {
		panic(err)
	}

	created, err := scope.APIKeys().Create(ctx, pierredb.NewAPIKey{UserID: ada.ID, Name: "laptop",
		RateLimit: &pierredb.RateLimit{Requests: 100, Period: pierredb.PeriodDay}})
	if err != nil {
		panic(err)
	}
	plaintext := created.Key.Reveal() // hand it to Ada now: it is not stored
	fmt.Println(strings.HasPrefix(plaintext, "pk_live_"), created.Key)

	// On each request:
	p, err := db.APIKeys().Verify(ctx, plaintext)
	if err != nil {
		panic(err)
	}
	fmt.Println(p.Email, p.Tenant.ID() == tn.ID, p.Tier, p.Remaining)

	if _, err := scope.APIKeys().Revoke(ctx, created.ID); err != nil {
		panic(err)
	}
	_, err = db.APIKeys().Verify(ctx, plaintext)
	fmt.Println(errors.Is(err, pierredb.ErrRevoked))
	_, err = db.APIKeys().Verify(ctx, "pk_live_not-a-key")
	fmt.Println(err)
	// Output:
	// true [REDACTED]
	// ada@example.com true starter 99
	// true
	// pierredb: verify API key: invalid credential
}
