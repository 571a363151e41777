package pierredb_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

// The OAuth operations join a host's RunInTx transaction: what they write
// inside it is seen by what they read inside it (Update's row lock and
// Refresh's compare-and-swap included), and a rollback undoes it.
func TestOAuthInHostTransaction(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		db := e.Open(t)
		owner, err := db.Users().CreateFirstAdmin(ctx, pierredb.NewUser{Email: "owner@example.com", Password: "correct horse battery"})
		require.NoError(t, err)
		tn, err := db.Tenants().Create(ctx, pierredb.NewTenant{Name: "T", Slug: "tx-test", OwnerUserID: owner.ID})
		require.NoError(t, err)
		scope, err := db.Tenant(ctx, tn.ID)
		require.NoError(t, err)
		errRollback := errors.New("roll back")
		err = db.RunInTx(ctx, func(ctx context.Context, _ bun.Tx) error {
			tokens := scope.OAuthTokens()
			_, err := tokens.Put(ctx, pierredb.OAuthToken{UserID: owner.ID, Provider: pierredb.ProviderStrava,
				AccessToken: pierredb.NewOAuthSecret("in-tx")})
			if err != nil {
				return err
			}
			if _, err := tokens.Get(ctx, owner.ID, pierredb.ProviderStrava); err != nil {
				return err
			}
			_, err = tokens.Update(ctx, owner.ID, pierredb.ProviderStrava, func(old pierredb.OAuthToken) (pierredb.OAuthToken, error) {
				old.AccessToken = pierredb.NewOAuthSecret("updated-in-tx")
				return old, nil
			})
			if err != nil {
				return err
			}
			got, err := tokens.Refresh(ctx, owner.ID, pierredb.ProviderStrava, func(_ context.Context, old pierredb.OAuthToken) (pierredb.OAuthToken, error) {
				old.AccessToken = pierredb.NewOAuthSecret("refreshed-in-tx")
				return old, nil
			})
			if err != nil {
				return err
			}
			if got.AccessToken.Reveal() != "refreshed-in-tx" {
				t.Errorf("the refresh inside the transaction stored %v", got.AccessToken)
			}
			if _, err := scope.OAuthApps().Set(ctx, pierredb.ProviderStrava, pierredb.OAuthAppConfig{ClientID: "c",
				ClientSecret: pierredb.NewOAuthSecret("s"), RedirectURI: "https://x.example/cb"}); err != nil {
				return err
			}
			return errRollback
		})
		require.ErrorIs(t, err, errRollback)
		_, err = scope.OAuthTokens().Get(ctx, owner.ID, pierredb.ProviderStrava)
		require.ErrorIs(t, err, pierredb.ErrNotFound, "rolled back")
		_, err = scope.OAuthApps().Get(ctx, pierredb.ProviderStrava)
		require.ErrorIs(t, err, pierredb.ErrNotFound, "rolled back")
	})
}
