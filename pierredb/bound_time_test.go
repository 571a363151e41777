package pierredb_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

// A time bound outside the years 1 to 9999 is refused before any query:
// SQLite compares timestamps as text, where year 10000 sorts before every
// stored year, so the engines would otherwise give different answers.
func TestTimeBoundsOutsideStoredYearsAreRefused(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		const id = "0190b6c4-0000-7000-8000-000000000001"
		scope, err := db.Tenant(ctx, "0190b6c4-0000-7000-8000-000000000000")
		require.NoError(t, err)
		for _, bound := range []time.Time{
			time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
			time.Date(0, 12, 31, 0, 0, 0, 0, time.UTC),
		} {
			_, err := scope.APIKeys().Usage(ctx, id, pierredb.UsageOptions{Since: bound})
			require.ErrorIs(t, err, pierredb.ErrInvalidArgument, "API key usage since %v", bound)
			_, err = scope.A2AClients().Usage(ctx, "a2a_"+id, pierredb.UsageOptions{Since: bound})
			require.ErrorIs(t, err, pierredb.ErrInvalidArgument, "A2A usage since %v", bound)
			_, err = db.AdminTokens().ListUsage(ctx, id, pierredb.AdminUsageFilter{Since: bound})
			require.ErrorIs(t, err, pierredb.ErrInvalidArgument, "admin token usage since %v", bound)
			_, err = scope.OAuthTokens().ListExpiring(ctx, bound, pierredb.ListOptions{})
			require.ErrorIs(t, err, pierredb.ErrInvalidArgument, "tokens expiring before %v", bound)
		}
	})
}
