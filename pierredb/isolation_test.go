package pierredb_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

// isolationWorld is two tenants side by side. Everything the matrix seeds lives
// in tenant A; every probe goes through tenant B's scope.
type isolationWorld struct {
	db             *pierredb.Database
	a, b           *pierredb.TenantScope
	ownerA, ownerB pierredb.User
	memberA        pierredb.User // a member of A only
}

// scopedOp is one tenant-scoped operation of the isolation matrix. seed creates a
// row in tenant A and returns its key; each probe tries to reach that row through
// tenant B and must fail with ErrNotFound (list must not show it); check confirms
// afterwards that the row in A is intact. A nil probe is an action the operation
// does not have. Later stores (API keys, A2A clients, OAuth configurations and
// tokens) add their operations to isolationOps.
type scopedOp struct {
	name   string
	seed   func(ctx context.Context, t *testing.T, w *isolationWorld) string
	get    func(ctx context.Context, s *pierredb.TenantScope, key string) error
	update func(ctx context.Context, s *pierredb.TenantScope, key string) error
	delete func(ctx context.Context, s *pierredb.TenantScope, key string) error
	list   func(ctx context.Context, s *pierredb.TenantScope) ([]string, error)
	check  func(ctx context.Context, t *testing.T, w *isolationWorld, key string)
}

var isolationOps = []scopedOp{
	{
		name: "membership",
		seed: func(_ context.Context, _ *testing.T, w *isolationWorld) string { return w.memberA.ID },
		get: func(ctx context.Context, s *pierredb.TenantScope, key string) error {
			_, err := s.Member(ctx, key)
			return err
		},
		update: func(ctx context.Context, s *pierredb.TenantScope, key string) error {
			_, err := s.SetMemberRole(ctx, key, pierredb.RoleAdmin)
			return err
		},
		delete: func(ctx context.Context, s *pierredb.TenantScope, key string) error {
			return s.RemoveMember(ctx, key)
		},
		list: func(ctx context.Context, s *pierredb.TenantScope) ([]string, error) {
			page, err := s.Members(ctx, pierredb.ListOptions{Limit: 1000})
			var ids []string
			for _, m := range page.Items {
				ids = append(ids, m.UserID)
			}
			return ids, err
		},
		check: func(ctx context.Context, t *testing.T, w *isolationWorld, key string) {
			m, err := w.a.Member(ctx, key)
			require.NoError(t, err)
			assert.Equal(t, pierredb.RoleMember, m.Role)
		},
	},
	{
		name: "role",
		seed: func(_ context.Context, _ *testing.T, w *isolationWorld) string { return w.memberA.ID },
		get: func(ctx context.Context, s *pierredb.TenantScope, key string) error {
			_, err := s.Role(ctx, key)
			return err
		},
		check: func(ctx context.Context, t *testing.T, w *isolationWorld, key string) {
			role, err := w.a.Role(ctx, key)
			require.NoError(t, err)
			assert.Equal(t, pierredb.RoleMember, role)
		},
	},
	{
		name: "tenant user",
		seed: func(_ context.Context, _ *testing.T, w *isolationWorld) string { return w.memberA.ID },
		get: func(ctx context.Context, s *pierredb.TenantScope, key string) error {
			_, err := s.GetUser(ctx, key)
			return err
		},
		list: func(ctx context.Context, s *pierredb.TenantScope) ([]string, error) {
			page, err := s.ListUsers(ctx, pierredb.UserFilter{Limit: 1000})
			var ids []string
			for _, u := range page.Items {
				ids = append(ids, u.ID)
			}
			return ids, err
		},
		check: func(ctx context.Context, t *testing.T, w *isolationWorld, key string) {
			_, err := w.a.GetUser(ctx, key)
			require.NoError(t, err)
		},
	},
	{
		name: "user created in tenant",
		seed: func(ctx context.Context, t *testing.T, w *isolationWorld) string {
			u, err := w.a.CreateUser(ctx, pierredb.NewUser{Email: fmt.Sprintf("made-in-a-%d@example.com", fixtureSeq.Add(1)), Password: fixturePassword})
			require.NoError(t, err)
			return u.ID
		},
		get: func(ctx context.Context, s *pierredb.TenantScope, key string) error {
			_, err := s.GetUser(ctx, key)
			return err
		},
		update: func(ctx context.Context, s *pierredb.TenantScope, key string) error {
			_, err := s.TransferOwnership(ctx, key)
			return err
		},
		delete: func(ctx context.Context, s *pierredb.TenantScope, key string) error {
			return s.RemoveMember(ctx, key)
		},
		list: func(ctx context.Context, s *pierredb.TenantScope) ([]string, error) {
			page, err := s.ListUsers(ctx, pierredb.UserFilter{Status: pierredb.StatusPending, Limit: 1000})
			var ids []string
			for _, u := range page.Items {
				ids = append(ids, u.ID)
			}
			return ids, err
		},
		check: func(ctx context.Context, t *testing.T, w *isolationWorld, key string) {
			u, err := w.a.GetUser(ctx, key)
			require.NoError(t, err)
			assert.Equal(t, w.a.ID(), u.TenantID)
			tn, err := w.b.Get(ctx)
			require.NoError(t, err)
			assert.Equal(t, w.ownerB.ID, tn.OwnerUserID, "B's ownership did not move to A's user")
		},
	},
	{
		name: "owner of A",
		seed: func(_ context.Context, _ *testing.T, w *isolationWorld) string { return w.ownerA.ID },
		get: func(ctx context.Context, s *pierredb.TenantScope, key string) error {
			_, err := s.Member(ctx, key)
			return err
		},
		update: func(ctx context.Context, s *pierredb.TenantScope, key string) error {
			_, err := s.SetMemberRole(ctx, key, pierredb.RoleViewer)
			return err
		},
		delete: func(ctx context.Context, s *pierredb.TenantScope, key string) error {
			return s.RemoveMember(ctx, key)
		},
		check: func(ctx context.Context, t *testing.T, w *isolationWorld, key string) {
			role, err := w.a.Role(ctx, key)
			require.NoError(t, err)
			assert.Equal(t, pierredb.RoleOwner, role)
		},
	},
}

// TestTenantIsolation is the generated isolation matrix: every tenant-scoped
// operation times every action (get, update, delete, list), on every engine.
func TestTenantIsolation(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		w := &isolationWorld{db: db, ownerA: mustUser(t, db, "owner-a"), ownerB: mustUser(t, db, "owner-b"), memberA: mustUser(t, db, "member-a")}
		_, w.a = mustTenant(t, db, "tenant-a", w.ownerA)
		_, w.b = mustTenant(t, db, "tenant-b", w.ownerB)
		_, err := w.a.AddMember(ctx, w.memberA.ID, pierredb.RoleMember)
		require.NoError(t, err)

		for _, op := range isolationOps {
			t.Run(op.name, func(t *testing.T) {
				key := op.seed(ctx, t, w)
				probes := []struct {
					action string
					run    func(context.Context, *pierredb.TenantScope, string) error
				}{{"get", op.get}, {"update", op.update}, {"delete", op.delete}}
				for _, p := range probes {
					if p.run == nil {
						continue
					}
					t.Run(p.action, func(t *testing.T) {
						err := p.run(ctx, w.b, key)
						assert.ErrorIs(t, err, pierredb.ErrNotFound, "tenant B reached tenant A's row")
						op.check(ctx, t, w, key)
					})
				}
				if op.list != nil {
					t.Run("list", func(t *testing.T) {
						keys, err := op.list(ctx, w.b)
						require.NoError(t, err)
						assert.NotContains(t, keys, key, "tenant B lists tenant A's row")
						inA, err := op.list(ctx, w.a)
						require.NoError(t, err)
						assert.True(t, slices.Contains(inA, key), "the probe is not vacuous: tenant A lists its row")
					})
				}
			})
		}
	})
}

func TestTenantScopeRequiresATenant(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		db := e.Open(t)
		_, err := db.Tenant(t.Context(), "")
		assert.ErrorIs(t, err, pierredb.ErrInvalidArgument, "an empty tenant id is an error, never a missing filter")
		_, err = db.Tenant(t.Context(), "01940000-0000-7000-8000-000000000000")
		assert.ErrorIs(t, err, pierredb.ErrNotFound)
	})
}

// TestCrossTenantReferencesRefused: the schema itself refuses a row of tenant B
// that points at a user who is a member of tenant A only, and a usage row that
// points at another tenant's API key, whatever code writes it.
func TestCrossTenantReferencesRefused(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		ownerA, ownerB, memberA := mustUser(t, db, "owner-a"), mustUser(t, db, "owner-b"), mustUser(t, db, "member-a")
		ta, a := mustTenant(t, db, "tenant-a", ownerA)
		tb, _ := mustTenant(t, db, "tenant-b", ownerB)
		_, err := a.AddMember(ctx, memberA.ID, pierredb.RoleMember)
		require.NoError(t, err)
		w := pierredb.EngineOf(db).Writer
		now := "2026-11-30T12:00:00.000000Z"
		envelope := []byte{1, 1, 0, 0, 0, 1}

		// The same statement with tenant A succeeds, so the refusals below are
		// about the tenant and nothing else.
		insertKey := "INSERT INTO api_keys (id, tenant_id, user_id, name, key_prefix, key_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'h', ?, ?)"
		_, err = w.ExecContext(ctx, insertKey, "key-a", ta.ID, memberA.ID, "k", "pk_live_a", now, now)
		require.NoError(t, err)

		for _, tc := range []struct {
			name  string
			query string
			args  []any
		}{
			{"api key for a member of another tenant", insertKey, []any{"key-b", tb.ID, memberA.ID, "k", "pk_live_b", now, now}},
			{"oauth token for a member of another tenant",
				"INSERT INTO user_oauth_tokens (id, tenant_id, user_id, provider, access_token_encrypted, created_at, updated_at) VALUES (?, ?, ?, 'strava', ?, ?, ?)",
				[]any{"tok-b", tb.ID, memberA.ID, envelope, now, now}},
			{"a2a client for a member of another tenant",
				"INSERT INTO a2a_clients (id, tenant_id, user_id, name, public_key, client_secret_hash, created_at, updated_at) VALUES (?, ?, ?, 'c', 'pk', 'h', ?, ?)",
				[]any{"a2a-b", tb.ID, memberA.ID, now, now}},
			{"usage of another tenant's api key",
				"INSERT INTO api_key_usage (tenant_id, api_key_id, window_start, request_count, updated_at) VALUES (?, 'key-a', ?, 1, ?)",
				[]any{tb.ID, now, now}},
			{"oauth config of a tenant that does not exist",
				"INSERT INTO tenant_oauth_configs (id, tenant_id, provider, client_id, client_secret_encrypted, redirect_uri, created_at, updated_at) VALUES ('cfg', 'no-such-tenant', 'strava', 'id', ?, 'https://x', ?, ?)",
				[]any{envelope, now, now}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := w.ExecContext(ctx, tc.query, tc.args...)
				require.Error(t, err)
				assert.ErrorIs(t, pierredb.EngineOf(db).Classify(err), pierredb.ErrConflict, "refused by a foreign key: %v", err)
			})
		}
	})
}
