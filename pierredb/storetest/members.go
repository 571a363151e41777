package storetest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/pierredb"
)

var _ = register("Members", "Lifecycle", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		owner, alice, bob := activeUser(t, db, "owner"), activeUser(t, db, "alice"), activeUser(t, db, "bob")
		tn, scope := newTenant(t, db, owner)
		members := scope.Members()

		m, err := members.Add(ctx, alice.ID, pierredb.RoleAdmin)
		require.NoError(t, err)
		assert.Equal(t, pierredb.Membership{TenantID: tn.ID, UserID: alice.ID, Role: pierredb.RoleAdmin, CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt}, m)
		_, err = members.Add(ctx, alice.ID, pierredb.RoleMember)
		assert.ErrorIs(t, err, pierredb.ErrAlreadyExists)
		onePrefix(t, err)
		_, err = members.Add(ctx, missingID, pierredb.RoleMember)
		assert.ErrorIs(t, err, pierredb.ErrNotFound)
		_, err = members.Add(ctx, bob.ID, "superuser")
		assert.ErrorIs(t, err, pierredb.ErrInvalidArgument)
		_, err = members.Add(ctx, bob.ID, pierredb.RoleViewer)
		require.NoError(t, err)

		page, err := members.List(ctx, pierredb.ListOptions{})
		require.NoError(t, err)
		var roles []pierredb.Role
		for _, m := range page.Items {
			roles = append(roles, m.Role)
		}
		assert.Equal(t, []pierredb.Role{pierredb.RoleOwner, pierredb.RoleAdmin, pierredb.RoleViewer}, roles)
		first, err := members.List(ctx, pierredb.ListOptions{Limit: 2})
		require.NoError(t, err)
		rest, err := members.List(ctx, pierredb.ListOptions{Limit: 2, Cursor: first.Next})
		require.NoError(t, err)
		assert.Equal(t, page.Items, append(first.Items, rest.Items...))
		assert.Empty(t, rest.Next)

		m, err = members.SetRole(ctx, bob.ID, pierredb.RoleMember)
		require.NoError(t, err)
		assert.Equal(t, pierredb.RoleMember, m.Role)
		m, err = members.Get(ctx, bob.ID)
		require.NoError(t, err)
		assert.Equal(t, pierredb.RoleMember, m.Role)

		// The primary owner cannot be demoted or removed; promote someone and
		// transfer ownership first.
		_, err = members.SetRole(ctx, owner.ID, pierredb.RoleAdmin)
		assert.ErrorIs(t, err, pierredb.ErrConflict)
		assert.ErrorIs(t, members.Remove(ctx, owner.ID), pierredb.ErrConflict)
		_, err = members.TransferOwnership(ctx, missingID)
		assert.ErrorIs(t, err, pierredb.ErrNotFound)
		tn2, err := members.TransferOwnership(ctx, alice.ID)
		require.NoError(t, err)
		assert.Equal(t, alice.ID, tn2.OwnerUserID)
		m, err = members.Get(ctx, alice.ID)
		require.NoError(t, err)
		assert.Equal(t, pierredb.RoleOwner, m.Role)
		// Two owners now: the former primary owner can step down and leave.
		_, err = members.SetRole(ctx, owner.ID, pierredb.RoleMember)
		require.NoError(t, err)
		require.NoError(t, members.Remove(ctx, owner.ID))
		_, err = members.Get(ctx, owner.ID)
		assert.ErrorIs(t, err, pierredb.ErrNotFound)
		u, err := db.Users().Get(ctx, owner.ID)
		require.NoError(t, err)
		assert.Empty(t, u.TenantID, "leaving the home tenant clears it")
		assert.ErrorIs(t, members.Remove(ctx, owner.ID), pierredb.ErrNotFound)
		// The last owner cannot step down.
		_, err = members.SetRole(ctx, alice.ID, pierredb.RoleMember)
		assert.ErrorIs(t, err, pierredb.ErrConflict)

		tenants, err := db.Users().Tenants(ctx, alice.ID)
		require.NoError(t, err)
		require.Len(t, tenants, 1)
		assert.Equal(t, tn.ID, tenants[0].Tenant.ID)
		assert.Equal(t, pierredb.RoleOwner, tenants[0].Role)

		count, err := members.CountUsers(ctx, pierredb.UserFilter{})
		require.NoError(t, err)
		assert.Equal(t, 2, count)
		count, err = members.CountUsers(ctx, pierredb.UserFilter{Status: pierredb.StatusPending})
		require.NoError(t, err)
		assert.Equal(t, 0, count, "no pending members: zero, not an error")
	})
})

var _ = register("Members", "CreateUser", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		owner := activeUser(t, db, "owner")
		tn, scope := newTenant(t, db, owner)
		members := scope.Members()

		u, err := members.CreateUser(ctx, pierredb.NewUser{Email: "Runner@Example.com", Password: Password, Role: pierredb.RoleViewer})
		require.NoError(t, err)
		assert.Equal(t, "runner@example.com", u.Email)
		assert.Equal(t, tn.ID, u.TenantID)
		assert.Equal(t, pierredb.StatusPending, u.Status)
		m, err := members.Get(ctx, u.ID)
		require.NoError(t, err)
		assert.Equal(t, pierredb.RoleViewer, m.Role)
		got, err := members.GetUser(ctx, u.ID)
		require.NoError(t, err)
		assert.Equal(t, u, got)

		_, err = members.CreateUser(ctx, pierredb.NewUser{Email: "runner@example.com", Password: Password})
		assert.ErrorIs(t, err, pierredb.ErrAlreadyExists)
		onePrefix(t, err)
		_, err = members.CreateUser(ctx, pierredb.NewUser{Email: "x@example.com", Password: Password, Role: "boss"})
		assert.ErrorIs(t, err, pierredb.ErrInvalidArgument)
		n, err := members.CountUsers(ctx, pierredb.UserFilter{})
		require.NoError(t, err)
		assert.Equal(t, 2, n, "the owner and the new user; failed creations leave nothing")
	})
})
