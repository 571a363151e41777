package pierredb

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/keyring"
)

func TestFixedWindow(t *testing.T) {
	for _, tc := range []struct {
		d          time.Duration
		at         time.Time
		start, end time.Time
	}{
		{time.Hour, time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC), time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), time.Date(2026, 3, 1, 13, 0, 0, 0, time.UTC)},
		{24 * time.Hour, time.Date(2026, 3, 1, 23, 59, 59, 0, time.FixedZone("X", 3600)), time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)},
		{90 * time.Second, time.Date(2026, 3, 1, 12, 1, 29, 999, time.UTC), time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), time.Date(2026, 3, 1, 12, 1, 30, 0, time.UTC)},
		// Before the epoch, windows still align (the remainder is taken towards -inf).
		{time.Hour, time.Date(1969, 12, 31, 23, 30, 0, 0, time.UTC), time.Date(1969, 12, 31, 23, 0, 0, 0, time.UTC), time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)},
		{0, time.Date(2026, 3, 1, 12, 0, 0, 500, time.UTC), time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), time.Date(2026, 3, 1, 12, 0, 1, 0, time.UTC)},
	} {
		s, e := fixedWindow(tc.d, tc.at)
		assert.True(t, tc.start.Equal(s), "%s at %s: start %s", tc.d, tc.at, s)
		assert.True(t, tc.end.Equal(e), "%s at %s: end %s", tc.d, tc.at, e)
	}
}

// A key deleted between its lookup and its count is an invalid credential,
// not a foreign key error.
func TestCountOfDeletedKey(t *testing.T) {
	ctx := t.Context()
	key, err := keyring.Generate()
	require.NoError(t, err)
	db, err := OpenContext(ctx, "sqlite:"+filepath.Join(t.TempDir(), "p.db"), key, WithAutoApproveUsers(true))
	require.NoError(t, err)
	defer db.Close()
	u, err := db.Users().Create(ctx, NewUser{Email: "gone@example.com", Password: "correct horse battery"})
	require.NoError(t, err)
	tn, err := db.Tenants().Create(ctx, NewTenant{Name: "T", Slug: "gone", OwnerUserID: u.ID})
	require.NoError(t, err)
	scope, err := db.Tenant(ctx, tn.ID)
	require.NoError(t, err)
	k, err := scope.APIKeys().Create(ctx, NewAPIKey{UserID: u.ID, Name: "k"})
	require.NoError(t, err)
	require.NoError(t, scope.APIKeys().Delete(ctx, k.ID))
	start, end := PeriodMonth.Window(db.now())
	_, ok, err := apiKeyUsage.count(ctx, db, tn.ID, k.ID, start, end, 10)
	assert.False(t, ok)
	require.ErrorIs(t, err, ErrInvalidCredential)
	_, ok, err = apiKeyUsage.count(ctx, db, tn.ID, k.ID, start, end, 0)
	assert.False(t, ok, "a limit of zero allows nothing")
	require.NoError(t, err)
}
