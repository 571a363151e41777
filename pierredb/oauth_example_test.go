package pierredb_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb"
)

// exampleMember opens an in-memory database with a tenant and its owner.
func exampleMember(ctx context.Context) (*pierredb.Database, *pierredb.TenantScope, pierredb.User) {
	key, err := keyring.Generate()
	if err != nil {
		panic(err)
	}
	db, err := pierredb.Open("sqlite::memory:", key)
	if err != nil {
		panic(err)
	}
	ada, err := db.Users().CreateFirstAdmin(ctx, pierredb.NewUser{Email: "ada@example.com", Password: "analytical engine"})
	if err != nil {
		panic(err)
	}
	t, err := db.Tenants().Create(ctx, pierredb.NewTenant{Name: "Ada's club", Slug: "adas-club", OwnerUserID: ada.ID})
	if err != nil {
		panic(err)
	}
	scope, err := db.Tenant(ctx, t.ID)
	if err != nil {
		panic(err)
	}
	return db, scope, ada
}

// A tenant's OAuth app and a member's tokens: secrets are sealed at rest and
// print as placeholders; Reveal is the one way to a value.
func ExampleOAuthTokens_Put() {
	ctx := context.Background()
	db, scope, ada := exampleMember(ctx)
	defer db.Close()

	_, err := scope.OAuthApps().Set(ctx, pierredb.ProviderStrava, pierredb.OAuthAppConfig{
		ClientID:     "12345",
		ClientSecret: pierredb.NewOAuthSecret("strava-client-secret"),
		RedirectURI:  "https://mcp.example.com/oauth/strava/callback",
		Scopes:       []string{"read", "activity:read_all"},
	})
	if err != nil {
		panic(err)
	}
	tok, err := scope.OAuthTokens().Put(ctx, pierredb.OAuthToken{
		UserID:       ada.ID,
		Provider:     pierredb.ProviderStrava,
		AccessToken:  pierredb.NewOAuthSecret("access-1"),
		RefreshToken: pierredb.NewOAuthSecret("refresh-1"),
		ExpiresAt:    time.Now().Add(6 * time.Hour),
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(tok.Provider, tok.TokenType, tok.AccessToken, tok.RefreshToken)
	fmt.Println(tok.AccessToken.Reveal())

	_, err = scope.OAuthTokens().Get(ctx, ada.ID, "myspace")
	fmt.Println(errors.Is(err, pierredb.ErrInvalidArgument))
	// Output:
	// strava Bearer [REDACTED] [REDACTED]
	// access-1
	// true
}

// Refresh calls the provider outside any transaction and stores the new pair
// only if no other refresh stored one first; the loser gets ErrConflict and
// reads the winner's pair.
func ExampleOAuthTokens_Refresh() {
	ctx := context.Background()
	db, scope, ada := exampleMember(ctx)
	defer db.Close()
	tokens := scope.OAuthTokens()
	_, err := tokens.Put(ctx, pierredb.OAuthToken{UserID: ada.ID, Provider: pierredb.ProviderFitbit,
		AccessToken: pierredb.NewOAuthSecret("access-1"), RefreshToken: pierredb.NewOAuthSecret("refresh-1")})
	if err != nil {
		panic(err)
	}

	// callProvider stands for the HTTP request to the provider's token
	// endpoint with the old refresh token.
	callProvider := func(refresh string) (access, next string) {
		return "access-2", "refresh-2"
	}
	tok, err := tokens.Refresh(ctx, ada.ID, pierredb.ProviderFitbit, func(ctx context.Context, old pierredb.OAuthToken) (pierredb.OAuthToken, error) {
		access, next := callProvider(old.RefreshToken.Reveal())
		old.AccessToken, old.RefreshToken = pierredb.NewOAuthSecret(access), pierredb.NewOAuthSecret(next)
		old.ExpiresAt = time.Now().Add(8 * time.Hour)
		return old, nil
	})
	if errors.Is(err, pierredb.ErrConflict) {
		tok, err = tokens.Get(ctx, ada.ID, pierredb.ProviderFitbit) // another refresh won: use its pair
	}
	if err != nil {
		panic(err)
	}
	fmt.Println(tok.RefreshToken.Reveal())
	// Output:
	// refresh-2
}

// Rotate the data key, move every sealed value to it, and destroy the old one.
func ExampleRotation_Reencrypt() {
	ctx := context.Background()
	db, scope, ada := exampleMember(ctx)
	defer db.Close()
	_, err := scope.OAuthTokens().Put(ctx, pierredb.OAuthToken{UserID: ada.ID, Provider: pierredb.ProviderOura,
		AccessToken: pierredb.NewOAuthSecret("access"), RefreshToken: pierredb.NewOAuthSecret("refresh")})
	if err != nil {
		panic(err)
	}

	v, err := db.Keyring().Rotate(ctx, keyring.PurposeEncryption)
	if err != nil {
		panic(err)
	}
	res, err := db.Rotation().Reencrypt(ctx, pierredb.ReencryptOptions{BatchSize: 100, Pause: 10 * time.Millisecond})
	if err != nil {
		panic(err)
	}
	fmt.Println("primary:", res.Primary, "moved:", res.Rewritten, "left:", res.Remaining(), "done:", res.Done())
	fmt.Println(db.Rotation().Retire(ctx, keyring.PurposeEncryption, v-1))
	// Output:
	// primary: 2 moved: 2 left: 0 done: true
	// <nil>
}
