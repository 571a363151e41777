package pierredb_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/pierredb"
)

// fixturePassword is the password of every user the fixtures create.
const fixturePassword = "correct horse battery staple"

var fixtureSeq atomic.Int64

// mustUser creates an active user with a unique email.
func mustUser(t testing.TB, db *pierredb.Database, name string) pierredb.User {
	t.Helper()
	ctx := context.Background()
	u, err := db.CreateUser(ctx, pierredb.NewUser{
		Email:       fmt.Sprintf("%s-%d@example.com", name, fixtureSeq.Add(1)),
		Password:    fixturePassword,
		DisplayName: name,
	})
	require.NoError(t, err)
	u, err = db.ApproveUser(ctx, u.ID, pierredb.ByService("fixture"))
	require.NoError(t, err)
	return u
}

// mustTenant creates a tenant owned by owner with a unique slug.
func mustTenant(t testing.TB, db *pierredb.Database, slug string, owner pierredb.User) (pierredb.Tenant, *pierredb.TenantScope) {
	t.Helper()
	ctx := context.Background()
	tn, err := db.CreateTenant(ctx, pierredb.NewTenant{
		Name:        "Tenant " + slug,
		Slug:        fmt.Sprintf("%s-%d", slug, fixtureSeq.Add(1)),
		OwnerUserID: owner.ID,
	})
	require.NoError(t, err)
	scope, err := db.Tenant(ctx, tn.ID)
	require.NoError(t, err)
	return tn, scope
}
