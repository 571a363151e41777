package storetest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/pierredb"
)

// isolationWorld is two tenants side by side. Everything the matrix seeds lives
// in tenant A; every probe goes through tenant B's scope.
type isolationWorld struct {
	db             *pierredb.Database
	a, b           *pierredb.TenantScope
	ownerA, ownerB pierredb.User
	memberA        pierredb.User // a member of A only
	memberB        pierredb.User // a member of B only
}

// scopedOp is one tenant-scoped operation of the isolation matrix. seed creates a
// row in tenant A and returns its key; each probe tries to reach that row through
// tenant B and must fail with ErrNotFound (list must not show it); check confirms
// afterwards that the row in A is intact. A nil probe is an action the operation
// does not have. Each domain registers its own operations with isolate.
type scopedOp struct {
	name   string
	seed   func(ctx context.Context, t *testing.T, w *isolationWorld) string
	get    func(ctx context.Context, s *pierredb.TenantScope, key string) error
	update func(ctx context.Context, s *pierredb.TenantScope, key string) error
	delete func(ctx context.Context, s *pierredb.TenantScope, key string) error
	list   func(ctx context.Context, s *pierredb.TenantScope) ([]string, error)
	check  func(ctx context.Context, t *testing.T, w *isolationWorld, key string)
}

var isolationOps []scopedOp

// isolate adds an operation to the tenant-isolation matrix.
func isolate(op scopedOp) bool {
	isolationOps = append(isolationOps, op)
	return true
}

func newIsolationWorld(t *testing.T, db *pierredb.Database) *isolationWorld {
	w := &isolationWorld{db: db, ownerA: activeUser(t, db, "owner-a"), ownerB: activeUser(t, db, "owner-b")}
	_, w.a = newTenant(t, db, w.ownerA)
	_, w.b = newTenant(t, db, w.ownerB)
	w.memberA = member(t, db, w.a, "member-a", pierredb.RoleMember)
	w.memberB = member(t, db, w.b, "member-b", pierredb.RoleMember)
	return w
}

// The generated isolation matrix: every tenant-scoped operation times every
// action (get, update, delete, list), on every engine.
var _ = register("Isolation", "Matrix", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		w := newIsolationWorld(t, e.Open(t))
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
})

// isForeignKeyError recognises a foreign key violation from either driver.
func isForeignKeyError(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23503"
	}
	return err != nil && strings.Contains(err.Error(), "FOREIGN KEY constraint failed")
}

// The schema itself refuses a row of tenant B that points at a user who is a
// member of tenant A only, and a usage row that points at another tenant's API
// key, whatever code writes it.
var _ = register("Isolation", "CrossTenantReferencesRefused", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		w := newIsolationWorld(t, db)
		raw := db.Bun()
		now := "2026-11-30T12:00:00.000000Z"
		envelope := []byte{1, 1, 0, 0, 0, 1}

		// The same statement with tenant A succeeds, so the refusals below are
		// about the tenant and nothing else.
		insertKey := "INSERT INTO api_keys (id, tenant_id, user_id, name, key_prefix, key_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'h', ?, ?)"
		_, err := raw.ExecContext(ctx, insertKey, "key-a", w.a.ID(), w.memberA.ID, "k", "pk_live_a", now, now)
		require.NoError(t, err)

		for _, tc := range []struct {
			name  string
			query string
			args  []any
		}{
			{"api key for a member of another tenant", insertKey, []any{"key-b", w.b.ID(), w.memberA.ID, "k", "pk_live_b", now, now}},
			{"oauth token for a member of another tenant",
				"INSERT INTO user_oauth_tokens (id, tenant_id, user_id, provider, access_token_encrypted, created_at, updated_at) VALUES (?, ?, ?, 'strava', ?, ?, ?)",
				[]any{"tok-b", w.b.ID(), w.memberA.ID, envelope, now, now}},
			{"usage of another tenant's api key",
				"INSERT INTO api_key_usage (tenant_id, api_key_id, window_start, request_count, updated_at) VALUES (?, 'key-a', ?, 1, ?)",
				[]any{w.b.ID(), now, now}},
			{"oauth config of a tenant that does not exist",
				"INSERT INTO tenant_oauth_configs (id, tenant_id, provider, client_id, client_secret_encrypted, redirect_uri, created_at, updated_at) VALUES ('cfg', 'no-such-tenant', 'strava', 'id', ?, 'https://x', ?, ?)",
				[]any{envelope, now, now}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := raw.ExecContext(ctx, tc.query, tc.args...)
				require.Error(t, err)
				assert.True(t, isForeignKeyError(err), "refused by a foreign key: %v", err)
			})
		}
	})
})

// The membership domain's operations in the isolation matrix.
var (
	_ = isolate(scopedOp{
		name: "membership",
		seed: func(_ context.Context, _ *testing.T, w *isolationWorld) string { return w.memberA.ID },
		get: func(ctx context.Context, s *pierredb.TenantScope, key string) error {
			_, err := s.Members().Get(ctx, key)
			return err
		},
		update: func(ctx context.Context, s *pierredb.TenantScope, key string) error {
			_, err := s.Members().SetRole(ctx, key, pierredb.RoleAdmin)
			return err
		},
		delete: func(ctx context.Context, s *pierredb.TenantScope, key string) error {
			return s.Members().Remove(ctx, key)
		},
		list: func(ctx context.Context, s *pierredb.TenantScope) ([]string, error) {
			page, err := s.Members().List(ctx, pierredb.ListOptions{Limit: 1000})
			return ids(page.Items, func(m pierredb.Membership) string { return m.UserID }), err
		},
		check: func(ctx context.Context, t *testing.T, w *isolationWorld, key string) {
			m, err := w.a.Members().Get(ctx, key)
			require.NoError(t, err)
			assert.Equal(t, pierredb.RoleMember, m.Role)
		},
	})
	_ = isolate(scopedOp{
		name: "tenant user",
		seed: func(_ context.Context, _ *testing.T, w *isolationWorld) string { return w.memberA.ID },
		get: func(ctx context.Context, s *pierredb.TenantScope, key string) error {
			_, err := s.Members().GetUser(ctx, key)
			return err
		},
		list: func(ctx context.Context, s *pierredb.TenantScope) ([]string, error) {
			page, err := s.Members().ListUsers(ctx, pierredb.UserFilter{Limit: 1000})
			return userIDs(page.Items), err
		},
		check: func(ctx context.Context, t *testing.T, w *isolationWorld, key string) {
			_, err := w.a.Members().GetUser(ctx, key)
			require.NoError(t, err)
		},
	})
	_ = isolate(scopedOp{
		name: "user created in tenant",
		seed: func(ctx context.Context, t *testing.T, w *isolationWorld) string {
			u, err := w.a.Members().CreateUser(ctx, pierredb.NewUser{Email: uniqueEmail("made-in-a"), Password: Password})
			require.NoError(t, err)
			return u.ID
		},
		get: func(ctx context.Context, s *pierredb.TenantScope, key string) error {
			_, err := s.Members().GetUser(ctx, key)
			return err
		},
		update: func(ctx context.Context, s *pierredb.TenantScope, key string) error {
			_, err := s.Members().TransferOwnership(ctx, key)
			return err
		},
		delete: func(ctx context.Context, s *pierredb.TenantScope, key string) error {
			return s.Members().Remove(ctx, key)
		},
		list: func(ctx context.Context, s *pierredb.TenantScope) ([]string, error) {
			page, err := s.Members().ListUsers(ctx, pierredb.UserFilter{Status: pierredb.StatusPending, Limit: 1000})
			return userIDs(page.Items), err
		},
		check: func(ctx context.Context, t *testing.T, w *isolationWorld, key string) {
			u, err := w.a.Members().GetUser(ctx, key)
			require.NoError(t, err)
			assert.Equal(t, w.a.ID(), u.TenantID)
			tn, err := w.b.Get(ctx)
			require.NoError(t, err)
			assert.Equal(t, w.ownerB.ID, tn.OwnerUserID, "B's ownership did not move to A's user")
		},
	})
	_ = isolate(scopedOp{
		name: "owner of A",
		seed: func(_ context.Context, _ *testing.T, w *isolationWorld) string { return w.ownerA.ID },
		get: func(ctx context.Context, s *pierredb.TenantScope, key string) error {
			_, err := s.Members().Get(ctx, key)
			return err
		},
		update: func(ctx context.Context, s *pierredb.TenantScope, key string) error {
			_, err := s.Members().SetRole(ctx, key, pierredb.RoleViewer)
			return err
		},
		delete: func(ctx context.Context, s *pierredb.TenantScope, key string) error {
			return s.Members().Remove(ctx, key)
		},
		check: func(ctx context.Context, t *testing.T, w *isolationWorld, key string) {
			m, err := w.a.Members().Get(ctx, key)
			require.NoError(t, err)
			assert.Equal(t, pierredb.RoleOwner, m.Role)
		},
	})
)
