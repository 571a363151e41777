package pierredb_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

func TestCreateTenant(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		owner := mustUser(t, db, "owner")

		tn, err := db.CreateTenant(ctx, pierredb.NewTenant{Name: "Acme Running Club", Slug: " Acme-Run ", OwnerUserID: owner.ID})
		require.NoError(t, err)
		assert.Equal(t, "acme-run", tn.Slug, "slug is trimmed and lower-cased")
		assert.Equal(t, pierredb.TierStarter, tn.Plan)
		assert.Equal(t, owner.ID, tn.OwnerUserID)
		assert.True(t, tn.IsActive)

		// The owner membership was created in the same transaction, and the
		// tenant became the owner's home tenant.
		scope, err := db.Tenant(ctx, tn.ID)
		require.NoError(t, err)
		role, err := scope.Role(ctx, owner.ID)
		require.NoError(t, err)
		assert.Equal(t, pierredb.RoleOwner, role)
		u, err := db.GetUser(ctx, owner.ID)
		require.NoError(t, err)
		assert.Equal(t, tn.ID, u.TenantID)

		got, err := db.GetTenantBySlug(ctx, "ACME-RUN")
		require.NoError(t, err)
		assert.Equal(t, tn, got)
		got, err = db.GetTenant(ctx, tn.ID)
		require.NoError(t, err)
		assert.Equal(t, tn, got)

		_, err = db.CreateTenant(ctx, pierredb.NewTenant{Name: "Other", Slug: "acme-run", OwnerUserID: owner.ID})
		assert.ErrorIs(t, err, pierredb.ErrAlreadyExists)

		for _, tc := range []struct {
			name string
			nt   pierredb.NewTenant
			want error
		}{
			{"missing owner", pierredb.NewTenant{Name: "X", Slug: "ghost-owner", OwnerUserID: "01940000-0000-7000-8000-000000000000"}, pierredb.ErrNotFound},
			{"empty owner", pierredb.NewTenant{Name: "X", Slug: "no-owner"}, pierredb.ErrInvalidArgument},
			{"empty name", pierredb.NewTenant{Name: " ", Slug: "no-name", OwnerUserID: owner.ID}, pierredb.ErrInvalidArgument},
			{"bad plan", pierredb.NewTenant{Name: "X", Slug: "bad-plan", Plan: "platinum", OwnerUserID: owner.ID}, pierredb.ErrInvalidArgument},
			{"one char slug", pierredb.NewTenant{Name: "X", Slug: "a", OwnerUserID: owner.ID}, pierredb.ErrInvalidArgument},
			{"leading dash", pierredb.NewTenant{Name: "X", Slug: "-acme", OwnerUserID: owner.ID}, pierredb.ErrInvalidArgument},
			{"trailing dash", pierredb.NewTenant{Name: "X", Slug: "acme-", OwnerUserID: owner.ID}, pierredb.ErrInvalidArgument},
			{"underscore", pierredb.NewTenant{Name: "X", Slug: "acme_run", OwnerUserID: owner.ID}, pierredb.ErrInvalidArgument},
			{"unicode", pierredb.NewTenant{Name: "X", Slug: "acmé", OwnerUserID: owner.ID}, pierredb.ErrInvalidArgument},
			{"reserved", pierredb.NewTenant{Name: "X", Slug: "default", OwnerUserID: owner.ID}, pierredb.ErrInvalidArgument},
			{"too long", pierredb.NewTenant{Name: "X", Slug: string(make([]byte, 64)), OwnerUserID: owner.ID}, pierredb.ErrInvalidArgument},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := db.CreateTenant(ctx, tc.nt)
				require.ErrorIs(t, err, tc.want)
			})
		}
		page, err := db.ListTenants(ctx, pierredb.TenantFilter{})
		require.NoError(t, err)
		assert.Len(t, page.Items, 1, "failed creations leave nothing behind")
	})
}

func TestListTenants(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		alice, bob := mustUser(t, db, "alice"), mustUser(t, db, "bob")
		var want []string
		for i := range 5 {
			owner := alice
			if i%2 == 1 {
				owner = bob
			}
			tn, _ := mustTenant(t, db, "club", owner)
			want = append(want, tn.ID)
		}
		var got []string
		cursor := ""
		for pages := 0; ; pages++ {
			require.Less(t, pages, 10)
			page, err := db.ListTenants(ctx, pierredb.TenantFilter{Limit: 2, Cursor: cursor})
			require.NoError(t, err)
			for _, tn := range page.Items {
				got = append(got, tn.ID)
			}
			if page.Next == "" {
				break
			}
			cursor = page.Next
		}
		assert.Equal(t, want, got, "pages concatenate to the full list in creation order")

		page, err := db.ListTenants(ctx, pierredb.TenantFilter{OwnerUserID: bob.ID})
		require.NoError(t, err)
		assert.Equal(t, []string{want[1], want[3]}, tenantIDs(page.Items))

		_, err = db.ListTenants(ctx, pierredb.TenantFilter{Cursor: "not-a-cursor"})
		assert.ErrorIs(t, err, pierredb.ErrInvalidArgument)
		_, err = db.ListTenants(ctx, pierredb.TenantFilter{Limit: 1001})
		assert.ErrorIs(t, err, pierredb.ErrInvalidArgument)
	})
}

func tenantIDs(ts []pierredb.Tenant) []string {
	out := make([]string, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.ID)
	}
	return out
}

func TestUpdateAndDeleteTenant(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		owner, member := mustUser(t, db, "owner"), mustUser(t, db, "member")
		tn, scope := mustTenant(t, db, "club", owner)
		_, err := scope.AddMember(ctx, member.ID, pierredb.RoleMember)
		require.NoError(t, err)

		name, plan, off := "Renamed", pierredb.TierEnterprise, false
		up, err := db.UpdateTenant(ctx, tn.ID, pierredb.TenantUpdate{Name: &name, Plan: &plan, IsActive: &off})
		require.NoError(t, err)
		assert.Equal(t, "Renamed", up.Name)
		assert.Equal(t, pierredb.TierEnterprise, up.Plan)
		assert.False(t, up.IsActive)
		assert.Equal(t, tn.Slug, up.Slug)
		got, err := db.GetTenant(ctx, tn.ID)
		require.NoError(t, err)
		assert.Equal(t, up, got)

		bad := pierredb.Tier("gold")
		_, err = db.UpdateTenant(ctx, tn.ID, pierredb.TenantUpdate{Plan: &bad})
		assert.ErrorIs(t, err, pierredb.ErrInvalidArgument)
		_, err = db.UpdateTenant(ctx, "missing", pierredb.TenantUpdate{Name: &name})
		assert.ErrorIs(t, err, pierredb.ErrNotFound)

		require.NoError(t, db.DeleteTenant(ctx, tn.ID))
		_, err = db.GetTenant(ctx, tn.ID)
		assert.ErrorIs(t, err, pierredb.ErrNotFound)
		_, err = db.Tenant(ctx, tn.ID)
		assert.ErrorIs(t, err, pierredb.ErrNotFound)
		memberships, err := db.UserTenants(ctx, member.ID)
		require.NoError(t, err)
		assert.Empty(t, memberships, "memberships go with the tenant")
		u, err := db.GetUser(ctx, owner.ID)
		require.NoError(t, err, "users stay")
		assert.Empty(t, u.TenantID, "the home tenant reference is cleared")
		assert.ErrorIs(t, db.DeleteTenant(ctx, tn.ID), pierredb.ErrNotFound)
	})
}

func TestMembership(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		owner, alice, bob := mustUser(t, db, "owner"), mustUser(t, db, "alice"), mustUser(t, db, "bob")
		tn, scope := mustTenant(t, db, "club", owner)

		m, err := scope.AddMember(ctx, alice.ID, pierredb.RoleAdmin)
		require.NoError(t, err)
		assert.Equal(t, pierredb.Membership{TenantID: tn.ID, UserID: alice.ID, Role: pierredb.RoleAdmin, CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt}, m)
		_, err = scope.AddMember(ctx, alice.ID, pierredb.RoleMember)
		assert.ErrorIs(t, err, pierredb.ErrAlreadyExists)
		_, err = scope.AddMember(ctx, "01940000-0000-7000-8000-000000000000", pierredb.RoleMember)
		assert.ErrorIs(t, err, pierredb.ErrNotFound)
		_, err = scope.AddMember(ctx, bob.ID, "superuser")
		assert.ErrorIs(t, err, pierredb.ErrInvalidArgument)
		_, err = scope.AddMember(ctx, bob.ID, pierredb.RoleViewer)
		require.NoError(t, err)

		page, err := scope.Members(ctx, pierredb.ListOptions{})
		require.NoError(t, err)
		var roles []pierredb.Role
		for _, m := range page.Items {
			roles = append(roles, m.Role)
		}
		assert.Equal(t, []pierredb.Role{pierredb.RoleOwner, pierredb.RoleAdmin, pierredb.RoleViewer}, roles)
		first, err := scope.Members(ctx, pierredb.ListOptions{Limit: 2})
		require.NoError(t, err)
		rest, err := scope.Members(ctx, pierredb.ListOptions{Limit: 2, Cursor: first.Next})
		require.NoError(t, err)
		assert.Equal(t, page.Items, append(first.Items, rest.Items...))
		assert.Empty(t, rest.Next)

		m, err = scope.SetMemberRole(ctx, bob.ID, pierredb.RoleMember)
		require.NoError(t, err)
		assert.Equal(t, pierredb.RoleMember, m.Role)
		role, err := scope.Role(ctx, bob.ID)
		require.NoError(t, err)
		assert.Equal(t, pierredb.RoleMember, role)

		// The primary owner cannot be demoted or removed; promote someone and
		// transfer ownership first.
		_, err = scope.SetMemberRole(ctx, owner.ID, pierredb.RoleAdmin)
		assert.ErrorIs(t, err, pierredb.ErrConflict)
		assert.ErrorIs(t, scope.RemoveMember(ctx, owner.ID), pierredb.ErrConflict)
		_, err = scope.TransferOwnership(ctx, "01940000-0000-7000-8000-000000000000")
		assert.ErrorIs(t, err, pierredb.ErrNotFound)
		tn2, err := scope.TransferOwnership(ctx, alice.ID)
		require.NoError(t, err)
		assert.Equal(t, alice.ID, tn2.OwnerUserID)
		role, err = scope.Role(ctx, alice.ID)
		require.NoError(t, err)
		assert.Equal(t, pierredb.RoleOwner, role)
		// Two owners now: the former primary owner can step down and leave.
		_, err = scope.SetMemberRole(ctx, owner.ID, pierredb.RoleMember)
		require.NoError(t, err)
		require.NoError(t, scope.RemoveMember(ctx, owner.ID))
		_, err = scope.Member(ctx, owner.ID)
		assert.ErrorIs(t, err, pierredb.ErrNotFound)
		u, err := db.GetUser(ctx, owner.ID)
		require.NoError(t, err)
		assert.Empty(t, u.TenantID, "leaving the home tenant clears it")
		assert.ErrorIs(t, scope.RemoveMember(ctx, owner.ID), pierredb.ErrNotFound)

		tenants, err := db.UserTenants(ctx, alice.ID)
		require.NoError(t, err)
		require.Len(t, tenants, 1)
		assert.Equal(t, tn.ID, tenants[0].Tenant.ID)
		assert.Equal(t, pierredb.RoleOwner, tenants[0].Role)

		count, err := scope.CountUsers(ctx, pierredb.UserFilter{})
		require.NoError(t, err)
		assert.Equal(t, 2, count)
	})
}

func TestTenantScopeCreateUser(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		owner := mustUser(t, db, "owner")
		tn, scope := mustTenant(t, db, "club", owner)

		u, err := scope.CreateUser(ctx, pierredb.NewUser{Email: "Runner@Example.com", Password: fixturePassword, Role: pierredb.RoleViewer})
		require.NoError(t, err)
		assert.Equal(t, "runner@example.com", u.Email)
		assert.Equal(t, tn.ID, u.TenantID)
		assert.Equal(t, pierredb.StatusPending, u.Status)
		role, err := scope.Role(ctx, u.ID)
		require.NoError(t, err)
		assert.Equal(t, pierredb.RoleViewer, role)
		got, err := scope.GetUser(ctx, u.ID)
		require.NoError(t, err)
		assert.Equal(t, u, got)

		_, err = scope.CreateUser(ctx, pierredb.NewUser{Email: "runner@example.com", Password: fixturePassword})
		assert.ErrorIs(t, err, pierredb.ErrAlreadyExists)
		_, err = scope.CreateUser(ctx, pierredb.NewUser{Email: "x@example.com", Password: fixturePassword, Role: "boss"})
		assert.ErrorIs(t, err, pierredb.ErrInvalidArgument)
		n, err := scope.CountUsers(ctx, pierredb.UserFilter{})
		require.NoError(t, err)
		assert.Equal(t, 2, n, "the owner and the new user; failed creations leave nothing")
	})
}
