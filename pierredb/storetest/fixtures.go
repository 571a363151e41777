package storetest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/pierredb"
)

// The one fixture set of the suite.

// Password is the password of every user the fixtures create. It is distinctive
// enough that finding it in an error message or a log line is a leak, never a
// coincidence.
const Password = "Zq7-storetest-Passw0rd-never-shown"

var seq atomic.Int64

// uniqueEmail returns an address no other fixture uses.
func uniqueEmail(name string) string {
	return fmt.Sprintf("%s-%d@example.com", name, seq.Add(1))
}

// pendingUser creates a user (pending unless auto-approval is on) with Password.
func pendingUser(t testing.TB, db *pierredb.Database, name string) pierredb.User {
	t.Helper()
	u, err := db.Users().Create(context.Background(), pierredb.NewUser{Email: uniqueEmail(name), Password: Password, DisplayName: name})
	require.NoError(t, err)
	return u
}

// activeUser creates a user and approves it.
func activeUser(t testing.TB, db *pierredb.Database, name string) pierredb.User {
	t.Helper()
	u := pendingUser(t, db, name)
	u, err := db.Users().Approve(context.Background(), u.ID, pierredb.ByService("fixture"))
	require.NoError(t, err)
	return u
}

// newTenant creates a tenant owned by owner, with a unique slug, and returns it
// with its scope.
func newTenant(t testing.TB, db *pierredb.Database, owner pierredb.User) (pierredb.Tenant, *pierredb.TenantScope) {
	t.Helper()
	ctx := context.Background()
	tn, err := db.Tenants().Create(ctx, pierredb.NewTenant{
		Name: "Tenant of " + owner.DisplayName, Slug: fmt.Sprintf("t-%d", seq.Add(1)), OwnerUserID: owner.ID,
	})
	require.NoError(t, err)
	scope, err := db.Tenant(ctx, tn.ID)
	require.NoError(t, err)
	return tn, scope
}

// member creates an active user and adds it to scope with role.
func member(t testing.TB, db *pierredb.Database, scope *pierredb.TenantScope, name string, role pierredb.Role) pierredb.User {
	t.Helper()
	u := activeUser(t, db, name)
	_, err := scope.Members().Add(context.Background(), u.ID, role)
	require.NoError(t, err)
	return u
}

// clock is a settable clock for pierredb.WithClock, safe for concurrent use.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

// base is the fake clocks' starting instant; its sub-microsecond part is dropped
// by the store.
var base = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

func newClock(t time.Time) *clock { return &clock{now: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// micro is t as the store keeps it: UTC, microseconds.
func micro(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// rawCount runs a count(*) query through the host's bun handle.
func rawCount(t testing.TB, db *pierredb.Database, query string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, db.Bun().QueryRowContext(context.Background(), query, args...).Scan(&n))
	return n
}

// rawTime reads a timestamp column straight from a table: TEXT on SQLite,
// TIMESTAMPTZ on PostgreSQL. NULL is the zero time.
func rawTime(t testing.TB, db *pierredb.Database, table, column, id string) time.Time {
	t.Helper()
	var v any
	require.NoError(t, db.Bun().QueryRowContext(context.Background(),
		"SELECT "+column+" FROM "+table+" WHERE id = ?", id).Scan(&v))
	switch v := v.(type) {
	case nil:
		return time.Time{}
	case time.Time:
		return v.UTC()
	case string:
		return parseTime(t, v)
	case []byte:
		return parseTime(t, string(v))
	default:
		t.Fatalf("%s.%s: unexpected type %T", table, column, v)
		return time.Time{}
	}
}

func parseTime(t testing.TB, s string) time.Time {
	t.Helper()
	for _, layout := range []string{time.RFC3339Nano, time.DateTime} {
		if p, err := time.Parse(layout, s); err == nil {
			return p.UTC()
		}
	}
	t.Fatalf("%q is not a timestamp", s)
	return time.Time{}
}

// noLeak fails if err, in any of the usual renderings, contains a secret.
// Secrets shorter than 8 bytes are too common a word to look for.
func noLeak(t testing.TB, err error, secrets ...string) {
	t.Helper()
	require.Error(t, err)
	for _, text := range []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err), fmt.Sprintf("%q", err)} {
		for _, s := range secrets {
			if len(s) >= 8 {
				assert.NotContains(t, text, s, "an error reveals a secret")
			}
		}
	}
}

// onePrefix checks that an error message names pierredb exactly once.
func onePrefix(t testing.TB, err error) {
	t.Helper()
	require.Error(t, err)
	assert.Equal(t, 1, strings.Count(err.Error(), "pierredb:"), "one prefix: %q", err.Error())
}

func ids[T any](items []T, id func(T) string) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = id(it)
	}
	return out
}

func userIDs(users []pierredb.User) []string {
	return ids(users, func(u pierredb.User) string { return u.ID })
}

func ptr[T any](v T) *T { return &v }

// sameUser compares two users field by field, timestamps by instant (a
// PostgreSQL round trip may change a time's location, never its instant).
func sameUser(t testing.TB, want, got pierredb.User) {
	t.Helper()
	for name, pair := range map[string][2]time.Time{
		"ApprovedAt": {want.ApprovedAt, got.ApprovedAt},
		"CreatedAt":  {want.CreatedAt, got.CreatedAt},
		"UpdatedAt":  {want.UpdatedAt, got.UpdatedAt},
		"LastActive": {want.LastActive, got.LastActive},
	} {
		assert.True(t, pair[0].Equal(pair[1]), "%s: want %v, got %v", name, pair[0], pair[1])
	}
	want.ApprovedAt, want.CreatedAt, want.UpdatedAt, want.LastActive = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	got.ApprovedAt, got.CreatedAt, got.UpdatedAt, got.LastActive = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	assert.Equal(t, want, got)
}

// logBuffer is a place for a slog handler to write that is safe for concurrent
// use, for tests that look at what pierre logs.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
