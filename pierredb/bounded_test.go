package pierredb_test

import (
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

// Listing with every page size a caller may ask for, 1 to 1000, and a second
// page of each, prepares at most one statement per listing shape (first page,
// next page) and fetch size: the statement cache does not grow with the number
// of distinct page sizes (3000 sizes once took SQLite's RSS from 17 to 72 MB).
func TestPreparedStatementsStayBounded(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		const members = 60
		tenantID := seedBoundedTenant(t, db, members)
		scope, err := db.Tenant(ctx, tenantID)
		require.NoError(t, err)

		type page struct {
			n    int
			next string
		}
		listings := []struct {
			name string
			list func(limit int, cursor string) (page, error)
		}{
			{"Users.List", func(limit int, cursor string) (page, error) {
				p, err := db.Users().List(ctx, pierredb.UserFilter{Limit: limit, Cursor: cursor})
				return page{len(p.Items), p.Next}, err
			}},
			{"Members.ListUsers", func(limit int, cursor string) (page, error) {
				p, err := scope.Members().ListUsers(ctx, pierredb.UserFilter{Limit: limit, Cursor: cursor})
				return page{len(p.Items), p.Next}, err
			}},
		}
		before := db.Stats().PreparedStatements
		for _, l := range listings {
			// A cursor three rows before the end: a second page after it holds
			// rows whatever its size, so that every size's second page is run
			// without a table of 2000 rows.
			p, err := l.list(members-3, "")
			require.NoError(t, err)
			require.NotEmpty(t, p.next)
			tail := p.next
			for n := 1; n <= 1000; n++ {
				first, err := l.list(n, "")
				require.NoError(t, err, "%s, page size %d", l.name, n)
				require.Equal(t, min(n, members), first.n, "%s, page size %d", l.name, n)
				require.Equal(t, n < members, first.next != "", "%s, page size %d", l.name, n)
				cursor := first.next
				if cursor == "" {
					cursor = tail
				}
				second, err := l.list(n, cursor)
				require.NoError(t, err, "%s, second page of size %d", l.name, n)
				require.Positive(t, second.n, "%s, second page of size %d", l.name, n)
			}
		}
		grown := db.Stats().PreparedStatements - before
		// Two shapes (a first page, a page after a cursor) per listing, each
		// prepared once per fetch size.
		bound := len(listings) * 2 * pierredb.FetchSizeCount()
		t.Logf("%d listings x 1000 page sizes x 2 pages prepared %d statements (bound %d)", len(listings), grown, bound)
		require.LessOrEqual(t, grown, bound, "the statement cache grows with the page sizes callers ask for")
		require.Positive(t, grown)
	})
}

// seedBoundedTenant writes n users, all members of one tenant, straight into
// the tables.
func seedBoundedTenant(t *testing.T, db *pierredb.Database, n int) string {
	t.Helper()
	ctx := t.Context()
	w := db.Bun()
	users := make([]benchUserRow, n)
	var members []planMember
	tenantID := uuid.Must(uuid.NewV7()).String()
	for i := range users {
		stamp := benchStamp(i)
		users[i] = benchUserRow{ID: uuid.Must(uuid.NewV7()).String(), Email: fmt.Sprintf("bounded%03d@example.com", i),
			PasswordHash: "$argon2id$seed", Tier: "starter", IsActive: true, UserStatus: "active",
			CreatedAt: stamp, UpdatedAt: stamp}
		role := "member"
		if i == 0 {
			role = "owner"
		}
		members = append(members, planMember{TenantID: tenantID, UserID: users[i].ID, Role: role, CreatedAt: stamp, UpdatedAt: stamp})
	}
	_, err := w.NewInsert().Model(&users).Exec(ctx)
	require.NoError(t, err)
	tenant := benchTenantRow{ID: tenantID, Name: "Bounded", Slug: "bounded", Plan: "starter", OwnerUserID: users[0].ID,
		IsActive: true, CreatedAt: benchStamp(0), UpdatedAt: benchStamp(0)}
	_, err = w.NewInsert().Model(&tenant).Exec(ctx)
	require.NoError(t, err)
	_, err = w.NewInsert().Model(&members).Exec(ctx)
	require.NoError(t, err)
	return tenantID
}
