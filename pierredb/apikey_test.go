package pierredb_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/internal/credential"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

// statementLog records the hand-written statements a Database runs.
type statementLog struct {
	mu     sync.Mutex
	reads  []string
	writes []string
}

func traceStatements(db *pierredb.Database) *statementLog {
	l := &statementLog{}
	pierredb.TraceReads(db, func(q string, _ []any) { l.mu.Lock(); l.reads = append(l.reads, q); l.mu.Unlock() })
	pierredb.TraceWrites(db, func(q string, _ []any) { l.mu.Lock(); l.writes = append(l.writes, q); l.mu.Unlock() })
	return l
}

func (l *statementLog) take() (reads, writes []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	reads, writes, l.reads, l.writes = l.reads, l.writes, nil, nil
	return reads, writes
}

// keyFixture is a database with one tenant, one member and one key.
type keyFixture struct {
	db     *pierredb.Database
	scope  *pierredb.TenantScope
	userID string
	key    pierredb.CreatedAPIKey
}

func newKeyFixture(t testing.TB, e storetest.Engine, opts ...pierredb.Option) *keyFixture {
	t.Helper()
	ctx := context.Background()
	db := e.Open(t, append([]pierredb.Option{pierredb.WithAutoApproveUsers(true)}, opts...)...)
	u, err := pierredb.InsertUserWithHash(ctx, db, pierredb.NewUser{Email: "key-owner@example.com"}, "$argon2id$not-used")
	require.NoError(t, err)
	tn, err := db.Tenants().Create(ctx, pierredb.NewTenant{Name: "Keys", Slug: "keys", OwnerUserID: u.ID})
	require.NoError(t, err)
	scope, err := db.Tenant(ctx, tn.ID)
	require.NoError(t, err)
	k, err := scope.APIKeys().Create(ctx, pierredb.NewAPIKey{UserID: u.ID, Name: "fixture", Tier: pierredb.TierEnterprise})
	require.NoError(t, err)
	return &keyFixture{db: db, scope: scope, userID: u.ID, key: k}
}

// The hot path is one prepared read (the key with its user and tenant) and, to
// count in the database, one prepared write, or none when counting in memory;
// a malformed key runs no statement at all; the last use is written once per
// interval.
func TestAPIKeyVerifyStatements(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := t.Context()
		f := newKeyFixture(t, e, pierredb.WithUsageFlushInterval(0))
		plain := f.key.Key.Reveal()
		log := traceStatements(f.db)

		// Verify counts, a write: its lookup runs on the writer pool with the
		// counter (see lookupCredential), in one statement where the engine
		// allows it; Check reads on the reader pool.
		verifyWrites := []string{pierredb.VerifyAPIKeySQL, pierredb.CountAPIKeyUsageSQL(f.db)}
		if both := pierredb.VerifyCountAPIKeySQL(f.db); both != "" {
			verifyWrites = []string{both}
		}
		_, err := f.db.APIKeys().Verify(ctx, plain)
		require.NoError(t, err)
		reads, writes := log.take()
		assert.Empty(t, reads)
		require.Len(t, writes, len(verifyWrites)+1, "the lookup and the counter, and the first last-use write")
		assert.Equal(t, verifyWrites, writes[:len(verifyWrites)])
		assert.True(t, strings.HasPrefix(writes[len(verifyWrites)], "UPDATE api_keys SET last_used_at"), writes[len(verifyWrites)])

		for range 3 {
			_, err = f.db.APIKeys().Verify(ctx, plain)
			require.NoError(t, err)
			reads, writes = log.take()
			assert.Empty(t, reads)
			assert.Equal(t, verifyWrites, writes, "the lookup and the counter")

			_, err = f.db.APIKeys().Check(ctx, plain)
			require.NoError(t, err)
			reads, writes = log.take()
			assert.Equal(t, []string{pierredb.VerifyAPIKeySQL}, reads, "one read")
			assert.Empty(t, writes, "Check writes nothing within the interval")
		}

		// Counting in memory: the first request of the window is counted in
		// the database, the others are one read.
		mem := newKeyFixture(t, e, pierredb.WithUsageFlushInterval(time.Hour))
		memLog := traceStatements(mem.db)
		_, err = mem.db.APIKeys().Verify(ctx, mem.key.Key.Reveal())
		require.NoError(t, err)
		reads, writes = memLog.take()
		assert.Equal(t, []string{pierredb.VerifyAPIKeySQL}, reads)
		require.Len(t, writes, 2, "the counter, and the first last-use write")
		assert.Equal(t, pierredb.CountAPIKeyUsageSQL(mem.db), writes[0])
		for range 3 {
			_, err = mem.db.APIKeys().Verify(ctx, mem.key.Key.Reveal())
			require.NoError(t, err)
			reads, writes = memLog.take()
			assert.Equal(t, []string{pierredb.VerifyAPIKeySQL}, reads, "one read")
			assert.Empty(t, writes, "and no write")
		}

		for _, bad := range []string{"", "pk_live_", plain[:len(plain)-1], plain + "0", strings.ToUpper(plain), "pk_live_" + strings.Repeat("A", 28),
			"\x00" + plain[1:], plain[:9] + "\u00e9" + plain[11:], strings.Repeat("x", 1<<16)} {
			for _, verify := range []func(context.Context, string) (pierredb.APIKeyPrincipal, error){f.db.APIKeys().Verify, f.db.APIKeys().Check} {
				_, err := verify(ctx, bad)
				require.ErrorIs(t, err, pierredb.ErrInvalidCredential)
				reads, writes := log.take()
				assert.Empty(t, reads, "a malformed key reaches no query")
				assert.Empty(t, writes)
			}
			_, err := f.db.A2AClients().Verify(ctx, "a2a_"+strings.Repeat("A", 22), bad)
			require.ErrorIs(t, err, pierredb.ErrInvalidCredential)
			reads, writes := log.take()
			assert.Empty(t, reads, "a malformed secret reaches no query")
			assert.Empty(t, writes)
		}

		// A well-formed unknown key costs the one lookup and nothing else.
		unknown, _ := credential.New("pk_live")
		_, err = f.db.APIKeys().Verify(ctx, unknown)
		require.ErrorIs(t, err, pierredb.ErrInvalidCredential)
		reads, writes = log.take()
		assert.Equal(t, verifyWrites[:1], append(reads, writes...))
		assert.Less(t, f.db.Stats().PreparedStatements, 40, "the statement caches stay small")
	})
}

// Verify is safe for concurrent use by many goroutines on many keys, and its
// counts add up.
func TestAPIKeyVerifyConcurrentKeys(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := t.Context()
		f := newKeyFixture(t, e)
		keys := []string{f.key.Key.Reveal()}
		for i := range 3 {
			k, err := f.scope.APIKeys().Create(ctx, pierredb.NewAPIKey{UserID: f.userID, Name: "k" + string(rune('a'+i)),
				RateLimit: &pierredb.RateLimit{Requests: 1000}})
			require.NoError(t, err)
			keys = append(keys, k.Key.Reveal())
		}
		var wg sync.WaitGroup
		errs := make(chan error, 8*25)
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 25 {
					if _, err := f.db.APIKeys().Verify(ctx, keys[(g+i)%len(keys)]); err != nil {
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		page, err := f.scope.APIKeys().List(ctx, pierredb.APIKeyFilter{})
		require.NoError(t, err)
		var total int64
		for _, k := range page.Items {
			u, err := f.scope.APIKeys().Usage(ctx, k.ID, pierredb.UsageOptions{})
			require.NoError(t, err)
			for _, w := range u.Items {
				total += w.Requests
			}
		}
		assert.EqualValues(t, 200, total)
	})
}

// Windows that ended leave memory even when nothing is ever written from it: a
// key used once per window (each request counted in the database) keeps the
// windows in memory bounded.
func TestUsageTallyStaysBounded(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := t.Context()
		var mu sync.Mutex
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		f := newKeyFixture(t, e, pierredb.WithClock(clock), pierredb.WithUsageFlushInterval(time.Hour))
		k, err := f.scope.APIKeys().Create(ctx, pierredb.NewAPIKey{UserID: f.userID, Name: "hourly",
			RateLimit: &pierredb.RateLimit{Requests: 10, Period: pierredb.PeriodHour}})
		require.NoError(t, err)
		for range 1500 {
			_, err := f.db.APIKeys().Verify(ctx, k.Key.Reveal())
			require.NoError(t, err)
			mu.Lock()
			now = now.Add(time.Hour)
			mu.Unlock()
		}
		assert.Positive(t, pierredb.TallyWindows(f.db))
		assert.LessOrEqual(t, pierredb.TallyWindows(f.db), 1025, "ended windows are dropped")
	})
}
