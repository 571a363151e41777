package pierredb_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

// countingHook counts the statements a Database runs through bun.
type countingHook struct{ n *atomic.Int64 }

func (h countingHook) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context { return ctx }
func (h countingHook) AfterQuery(context.Context, *bun.QueryEvent)                        { h.n.Add(1) }

// Making a tenant scope runs no statement at all, for a tenant that exists
// and for one that does not: a scoped read costs what its own query costs.
func TestTenantScopeRunsNoQuery(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		tenantID := seedBoundedTenant(t, db, 3)
		var n atomic.Int64
		pierredb.TraceReads(db, func(string, []any) { n.Add(1) })
		pierredb.HookQueries(db, countingHook{&n})
		for _, id := range []string{tenantID, "0190b6c4-0000-7000-8000-000000000000"} {
			scope, err := db.Tenant(ctx, id)
			require.NoError(t, err)
			require.Equal(t, id, scope.ID())
			_ = scope.Members()
		}
		require.Zero(t, n.Load(), "db.Tenant ran a statement")
		// The counters do see statements: a scoped read runs exactly its own.
		scope, err := db.Tenant(ctx, tenantID)
		require.NoError(t, err)
		_, err = scope.Members().List(ctx, pierredb.ListOptions{Limit: 2})
		require.NoError(t, err)
		require.Equal(t, int64(1), n.Load())
	})
}
