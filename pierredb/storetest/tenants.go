package storetest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/pierredb"
)

func tenantIDs(ts []pierredb.Tenant) []string {
	return ids(ts, func(t pierredb.Tenant) string { return t.ID })
}

// missingID is a well-formed id that names nothing.
const missingID = "01940000-0000-7000-8000-000000000000"

var _ = register("Tenants", "Create", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		owner := activeUser(t, db, "owner")

		tn, err := db.Tenants().Create(ctx, pierredb.NewTenant{Name: "Acme Running Club", Slug: " Acme-Run ", OwnerUserID: owner.ID})
		require.NoError(t, err)
		assert.Equal(t, "acme-run", tn.Slug, "slug is trimmed and lower-cased")
		assert.Equal(t, pierredb.TierStarter, tn.Plan)
		assert.Equal(t, owner.ID, tn.OwnerUserID)
		assert.True(t, tn.IsActive)

		// The owner membership was created in the same transaction, and the
		// tenant became the owner's home tenant.
		scope, err := db.Tenant(ctx, tn.ID)
		require.NoError(t, err)
		m, err := scope.Members().Get(ctx, owner.ID)
		require.NoError(t, err)
		assert.Equal(t, pierredb.RoleOwner, m.Role)
		u, err := db.Users().Get(ctx, owner.ID)
		require.NoError(t, err)
		assert.Equal(t, tn.ID, u.TenantID)

		got, err := db.Tenants().GetBySlug(ctx, "ACME-RUN")
		require.NoError(t, err)
		assert.Equal(t, tn, got)
		got, err = db.Tenants().Get(ctx, tn.ID)
		require.NoError(t, err)
		assert.Equal(t, tn, got)
		got, err = scope.Get(ctx)
		require.NoError(t, err)
		assert.Equal(t, tn, got)

		_, err = db.Tenants().Create(ctx, pierredb.NewTenant{Name: "Other", Slug: "acme-run", OwnerUserID: owner.ID})
		assert.ErrorIs(t, err, pierredb.ErrAlreadyExists)
		onePrefix(t, err)
		assert.Equal(t, `pierredb: create tenant: already exists: slug "acme-run" is taken; choose another`, err.Error())

		for _, tc := range []struct {
			name string
			nt   pierredb.NewTenant
			want error
		}{
			{"missing owner", pierredb.NewTenant{Name: "X", Slug: "ghost-owner", OwnerUserID: missingID}, pierredb.ErrNotFound},
			{"empty owner", pierredb.NewTenant{Name: "X", Slug: "no-owner"}, pierredb.ErrInvalidArgument},
			{"owner id with NUL", pierredb.NewTenant{Name: "X", Slug: "nul-owner", OwnerUserID: "a\x00b"}, pierredb.ErrInvalidArgument},
			{"empty name", pierredb.NewTenant{Name: " ", Slug: "no-name", OwnerUserID: owner.ID}, pierredb.ErrInvalidArgument},
			{"name with a bidi override", pierredb.NewTenant{Name: "Acme\u202eevil", Slug: "bidi", OwnerUserID: owner.ID}, pierredb.ErrInvalidArgument},
			{"name with invalid UTF-8", pierredb.NewTenant{Name: "Acme\xff", Slug: "badutf", OwnerUserID: owner.ID}, pierredb.ErrInvalidArgument},
			{"name with a terminal escape", pierredb.NewTenant{Name: "Acme\x1b[31m", Slug: "escape", OwnerUserID: owner.ID}, pierredb.ErrInvalidArgument},
			{"bad plan", pierredb.NewTenant{Name: "X", Slug: "bad-plan", Plan: "platinum", OwnerUserID: owner.ID}, pierredb.ErrInvalidArgument},
			{"one char slug", pierredb.NewTenant{Name: "X", Slug: "a", OwnerUserID: owner.ID}, pierredb.ErrInvalidArgument},
			{"leading dash", pierredb.NewTenant{Name: "X", Slug: "-acme", OwnerUserID: owner.ID}, pierredb.ErrInvalidArgument},
			{"trailing dash", pierredb.NewTenant{Name: "X", Slug: "acme-", OwnerUserID: owner.ID}, pierredb.ErrInvalidArgument},
			{"underscore", pierredb.NewTenant{Name: "X", Slug: "acme_run", OwnerUserID: owner.ID}, pierredb.ErrInvalidArgument},
			{"unicode", pierredb.NewTenant{Name: "X", Slug: "acmé", OwnerUserID: owner.ID}, pierredb.ErrInvalidArgument},
			{"zero-width space", pierredb.NewTenant{Name: "X", Slug: "acme\u200brun", OwnerUserID: owner.ID}, pierredb.ErrInvalidArgument},
			{"reserved", pierredb.NewTenant{Name: "X", Slug: "default", OwnerUserID: owner.ID}, pierredb.ErrInvalidArgument},
			{"too long", pierredb.NewTenant{Name: "X", Slug: string(make([]byte, 64)), OwnerUserID: owner.ID}, pierredb.ErrInvalidArgument},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := db.Tenants().Create(ctx, tc.nt)
				require.ErrorIs(t, err, tc.want)
				onePrefix(t, err)
			})
		}
		page, err := db.Tenants().List(ctx, pierredb.TenantFilter{})
		require.NoError(t, err)
		assert.Len(t, page.Items, 1, "failed creations leave nothing behind")

		// A name is kept in NFC: "é" typed as e + U+0301 is stored composed.
		tn2, err := db.Tenants().Create(ctx, pierredb.NewTenant{Name: "Caf\u0065\u0301", Slug: "cafe", OwnerUserID: owner.ID})
		require.NoError(t, err)
		assert.Equal(t, "Caf\u00e9", tn2.Name)
	})
})

var _ = register("Tenants", "List", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		alice, bob := activeUser(t, db, "alice"), activeUser(t, db, "bob")
		var want []string
		for i := range 5 {
			owner := alice
			if i%2 == 1 {
				owner = bob
			}
			tn, _ := newTenant(t, db, owner)
			want = append(want, tn.ID)
		}
		var got []string
		cursor := ""
		for pages := 0; ; pages++ {
			require.Less(t, pages, 10)
			page, err := db.Tenants().List(ctx, pierredb.TenantFilter{Limit: 2, Cursor: cursor})
			require.NoError(t, err)
			got = append(got, tenantIDs(page.Items)...)
			if page.Next == "" {
				break
			}
			cursor = page.Next
		}
		assert.Equal(t, want, got, "pages concatenate to the full list in creation order")

		page, err := db.Tenants().List(ctx, pierredb.TenantFilter{OwnerUserID: bob.ID})
		require.NoError(t, err)
		assert.Equal(t, []string{want[1], want[3]}, tenantIDs(page.Items))

		_, err = db.Tenants().List(ctx, pierredb.TenantFilter{Cursor: "not-a-cursor"})
		assert.ErrorIs(t, err, pierredb.ErrInvalidArgument)
		_, err = db.Tenants().List(ctx, pierredb.TenantFilter{Limit: 1001})
		assert.ErrorIs(t, err, pierredb.ErrInvalidArgument)
		_, err = db.Tenants().List(ctx, pierredb.TenantFilter{OwnerUserID: "bob\xff"})
		assert.ErrorIs(t, err, pierredb.ErrInvalidArgument)
	})
})

var _ = register("Tenants", "UpdateAndDelete", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		owner := activeUser(t, db, "owner")
		tn, scope := newTenant(t, db, owner)
		alice := member(t, db, scope, "alice", pierredb.RoleMember)

		name, plan, off := "Renamed", pierredb.TierEnterprise, false
		up, err := db.Tenants().Update(ctx, tn.ID, pierredb.TenantUpdate{Name: &name, Plan: &plan, IsActive: &off})
		require.NoError(t, err)
		assert.Equal(t, "Renamed", up.Name)
		assert.Equal(t, pierredb.TierEnterprise, up.Plan)
		assert.False(t, up.IsActive)
		assert.Equal(t, tn.Slug, up.Slug)
		got, err := db.Tenants().Get(ctx, tn.ID)
		require.NoError(t, err)
		assert.Equal(t, up, got)

		bad, empty := pierredb.Tier("gold"), pierredb.Tier("")
		_, err = db.Tenants().Update(ctx, tn.ID, pierredb.TenantUpdate{Plan: &bad})
		assert.ErrorIs(t, err, pierredb.ErrInvalidArgument)
		_, err = db.Tenants().Update(ctx, tn.ID, pierredb.TenantUpdate{Plan: &empty})
		assert.ErrorIs(t, err, pierredb.ErrInvalidArgument)
		_, err = db.Tenants().Update(ctx, missingID, pierredb.TenantUpdate{Name: &name})
		assert.ErrorIs(t, err, pierredb.ErrNotFound)
		onePrefix(t, err)

		require.NoError(t, db.Tenants().Delete(ctx, tn.ID))
		_, err = db.Tenants().Get(ctx, tn.ID)
		assert.ErrorIs(t, err, pierredb.ErrNotFound)
		// A scope made before (or after) the delete reaches nothing.
		_, err = scope.Members().List(ctx, pierredb.ListOptions{})
		assert.ErrorIs(t, err, pierredb.ErrNotFound)
		_, err = scope.Members().Add(ctx, alice.ID, pierredb.RoleMember)
		assert.ErrorIs(t, err, pierredb.ErrNotFound)
		memberships, err := db.Users().Tenants(ctx, alice.ID)
		require.NoError(t, err)
		assert.Empty(t, memberships, "memberships go with the tenant")
		u, err := db.Users().Get(ctx, owner.ID)
		require.NoError(t, err, "users stay")
		assert.Empty(t, u.TenantID, "the home tenant reference is cleared")
		assert.ErrorIs(t, db.Tenants().Delete(ctx, tn.ID), pierredb.ErrNotFound)
	})
})

// Deleting a tenant's sole owner races a member joining the tenant: either the
// join wins (the delete fails with ErrConflict, the tenant keeps both) or the
// delete wins (the join fails with ErrNotFound); never both succeed, leaving the
// joiner in a deleted tenant.
var _ = register("Tenants", "DeleteOwnerRacesJoin", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		joiners := make([]pierredb.User, 12)
		for i := range joiners {
			joiners[i] = activeUser(t, db, "joiner")
		}
		outcomes := map[string]int{}
		for i, joiner := range joiners {
			owner := activeUser(t, db, "owner")
			tn, scope := newTenant(t, db, owner)
			var addErr, delErr error
			start := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				<-start
				_, addErr = scope.Members().Add(ctx, joiner.ID, pierredb.RoleMember)
			}()
			close(start)
			delErr = db.Users().Delete(ctx, owner.ID)
			<-done
			_, getErr := db.Tenants().Get(ctx, tn.ID)
			switch {
			case addErr == nil && delErr == nil:
				t.Fatalf("round %d: both the join and the owner's delete succeeded (tenant: %v)", i, getErr)
			case addErr == nil:
				require.ErrorIs(t, delErr, pierredb.ErrConflict, "round %d", i)
				require.NoError(t, getErr, "round %d: the tenant stays with its new member", i)
				outcomes["join won"]++
			case delErr == nil:
				require.ErrorIs(t, addErr, pierredb.ErrNotFound, "round %d", i)
				require.ErrorIs(t, getErr, pierredb.ErrNotFound, "round %d", i)
				outcomes["delete won"]++
			default:
				t.Fatalf("round %d: both failed: add %v, delete %v", i, addErr, delErr)
			}
		}
		t.Logf("outcomes: %v", outcomes)
	})
})
