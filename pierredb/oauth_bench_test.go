package pierredb_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

// BenchmarkOAuth compares the OAuth tokens store with hand-written prepared
// database/sql statements on the same database, in the same run (see
// .bench/oauth.md):
//
//	TokenGet/<engine>/{pierre,raw-prepared}
//	TokenPut/<engine>/{pierre,raw-prepared}
//	Reencrypt/<engine>
//
// The database holds two tenants with the same members and the same tokens
// in user_oauth_tokens: t-bench's sealed, t-plain's in plain text (the same
// bytes before sealing). The baselines run pierre's own statement texts on
// t-plain's rows, so both sides use the same table, indexes, foreign keys
// and pool, and differ only by what pierre adds (validation, sealing or
// opening, timestamps parsed, the public type built).
//
// TokenGet reads one token by tenant, user and provider, cycling through the
// seeded tokens; raw-prepared runs the same SELECT through a *sql.Stmt
// prepared once on pierre's reader pool and scans the same 12 columns into
// plain Go values (timestamps as they come).
//
// TokenPut replaces an existing token with a new pair through Put's one
// upsert statement; raw-prepared runs the same upsert, prepared once on
// pierre's writer pool, with the plain-text pair.
//
// paired runs one pierre call and one baseline call per iteration, and
// reports both means and their ratio (the figure to compare on a loaded
// machine).
//
// Reencrypt rotates the data key and times Rotation.Reencrypt over every
// token (two sealed columns each), seeded with raw inserts of real envelopes
// (PIERREDB_BENCH_ROTATE_TOKENS, default 100000); it reports tokens/s,
// values/s and the seconds per run. Run it with -benchtime 1x.
//
//	PIERREDB_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres \
//	  go test -run '^$' -bench 'BenchmarkOAuth/Token' -benchmem -count 5 ./pierredb/
//	PIERREDB_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres \
//	  go test -run '^$' -bench 'BenchmarkOAuth/Reencrypt' -benchtime 1x -count 3 -timeout 1h ./pierredb/
func BenchmarkOAuth(b *testing.B) {
	b.Run("TokenGet", func(b *testing.B) {
		for _, e := range storetest.Engines() {
			b.Run(string(e.Backend), func(b *testing.B) {
				e.Require(b)
				f := newOAuthBench(b, e, 1000)
				scope, err := f.db.Tenant(b.Context(), f.tenant)
				if err != nil {
					b.Fatal(err)
				}
				b.Run("pierre", func(b *testing.B) {
					b.ReportAllocs()
					i := 0
					for b.Loop() {
						k := f.keys[i%len(f.keys)]
						tok, err := scope.OAuthTokens().Get(b.Context(), k.user, k.provider)
						if err != nil {
							b.Fatal(err)
						}
						if tok.AccessToken.IsZero() || tok.RefreshToken.IsZero() {
							b.Fatal("empty token")
						}
						i++
					}
				})
				b.Run("raw-prepared", func(b *testing.B) {
					stmt := f.prepare(b, pierredb.EngineOf(f.db).Reader.DB, "SELECT "+benchTokenColumns+
						" FROM user_oauth_tokens o WHERE o.tenant_id = ? AND o.user_id = ? AND o.provider = ?")
					b.ReportAllocs()
					i := 0
					for b.Loop() {
						k := f.keys[i%len(f.keys)]
						var r rawToken
						if err := stmt.QueryRowContext(b.Context(), f.plainTenant, k.user, string(k.provider)).Scan(r.dest()...); err != nil {
							b.Fatal(err)
						}
						if r.access == "" || !r.refresh.Valid {
							b.Fatal("empty token")
						}
						i++
					}
				})
				// paired runs one of each per iteration, in alternating order, and
				// reports each side's mean and their ratio: on a shared machine
				// whose load drifts, the ratio is the figure to compare.
				b.Run("paired", func(b *testing.B) {
					stmt := f.prepare(b, pierredb.EngineOf(f.db).Reader.DB, "SELECT "+benchTokenColumns+
						" FROM user_oauth_tokens o WHERE o.tenant_id = ? AND o.user_id = ? AND o.provider = ?")
					paired(b, func(i int) {
						k := f.keys[i%len(f.keys)]
						if _, err := scope.OAuthTokens().Get(b.Context(), k.user, k.provider); err != nil {
							b.Fatal(err)
						}
					}, func(i int) {
						k := f.keys[i%len(f.keys)]
						var r rawToken
						if err := stmt.QueryRowContext(b.Context(), f.plainTenant, k.user, string(k.provider)).Scan(r.dest()...); err != nil {
							b.Fatal(err)
						}
					})
				})
			})
		}
	})

	b.Run("TokenPut", func(b *testing.B) {
		for _, e := range storetest.Engines() {
			b.Run(string(e.Backend), func(b *testing.B) {
				e.Require(b)
				f := newOAuthBench(b, e, 1000)
				scope, err := f.db.Tenant(b.Context(), f.tenant)
				if err != nil {
					b.Fatal(err)
				}
				expires := time.Now().Add(6 * time.Hour)
				b.Run("pierre", func(b *testing.B) {
					b.ReportAllocs()
					i := 0
					for b.Loop() {
						k := f.keys[i%len(f.keys)]
						_, err := scope.OAuthTokens().Put(b.Context(), pierredb.OAuthToken{UserID: k.user, Provider: k.provider,
							AccessToken:  pierredb.NewOAuthSecret(benchAccess(i)),
							RefreshToken: pierredb.NewOAuthSecret(benchRefresh(i)),
							ExpiresAt:    expires, Scope: "read,activity:read_all"})
						if err != nil {
							b.Fatal(err)
						}
						i++
					}
				})
				b.Run("raw-prepared", func(b *testing.B) {
					stmt := f.prepare(b, pierredb.EngineOf(f.db).Writer.DB, benchPutPlainSQL)
					b.ReportAllocs()
					i := 0
					for b.Loop() {
						k := f.keys[i%len(f.keys)]
						now := time.Now().UTC().Format(oauthTimeLayout)
						var id string
						var createdAt any
						err := stmt.QueryRowContext(b.Context(), fmt.Sprintf("new-%d", i), f.plainTenant, k.user, string(k.provider),
							[]byte(benchAccess(i)), []byte(benchRefresh(i)), "Bearer", expires.UTC().Format(oauthTimeLayout), "read,activity:read_all", nil, now, now).
							Scan(&id, &createdAt)
						if err != nil {
							b.Fatal(err)
						}
						i++
					}
				})
				b.Run("paired", func(b *testing.B) {
					stmt := f.prepare(b, pierredb.EngineOf(f.db).Writer.DB, benchPutPlainSQL)
					paired(b, func(i int) {
						k := f.keys[i%len(f.keys)]
						_, err := scope.OAuthTokens().Put(b.Context(), pierredb.OAuthToken{UserID: k.user, Provider: k.provider,
							AccessToken:  pierredb.NewOAuthSecret(benchAccess(i)),
							RefreshToken: pierredb.NewOAuthSecret(benchRefresh(i)),
							ExpiresAt:    expires, Scope: "read,activity:read_all"})
						if err != nil {
							b.Fatal(err)
						}
					}, func(i int) {
						k := f.keys[i%len(f.keys)]
						now := time.Now().UTC().Format(oauthTimeLayout)
						var id string
						var createdAt any
						err := stmt.QueryRowContext(b.Context(), fmt.Sprintf("new-%d", i), f.plainTenant, k.user, string(k.provider),
							[]byte(benchAccess(i)), []byte(benchRefresh(i)), "Bearer", expires.UTC().Format(oauthTimeLayout), "read,activity:read_all", nil, now, now).
							Scan(&id, &createdAt)
						if err != nil {
							b.Fatal(err)
						}
					})
				})
			})
		}
	})

	b.Run("Reencrypt", func(b *testing.B) {
		tokens := 100_000
		if s := os.Getenv("PIERREDB_BENCH_ROTATE_TOKENS"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 9 {
				b.Fatalf("PIERREDB_BENCH_ROTATE_TOKENS=%q: want a number of tokens, at least 9", s)
			}
			tokens = n
		}
		for _, e := range storetest.Engines() {
			b.Run(string(e.Backend), func(b *testing.B) {
				e.Require(b)
				f := newOAuthBench(b, e, tokens)
				ctx := b.Context()
				b.ResetTimer() // the seeding is not measured
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					if _, err := f.db.Keyring().Rotate(ctx, keyring.PurposeEncryption); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					start := time.Now()
					res, err := f.db.Rotation().Reencrypt(ctx, pierredb.ReencryptOptions{})
					elapsed := time.Since(start)
					if err != nil {
						b.Fatal(err)
					}
					if res.Rewritten < int64(2*len(f.keys)) || res.Remaining() != 0 {
						b.Fatalf("rewrote %d values, %d remain; want %d and 0", res.Rewritten, res.Remaining(), 2*len(f.keys))
					}
					b.ReportMetric(float64(len(f.keys))/elapsed.Seconds(), "tokens/s")
					b.ReportMetric(float64(res.Rewritten)/elapsed.Seconds(), "values/s")
					b.ReportMetric(elapsed.Seconds(), "s/run")
				}
			})
		}
	})
}

// oauthTimeLayout is pierre's stored timestamp form (timestamp.go timeLayout).
const oauthTimeLayout = "2006-01-02T15:04:05.000000Z"

// paired runs pierre(i) and raw(i) once each per iteration, alternating
// which goes first, and reports each side's mean time and pierre's ratio to
// the baseline. Both sides meet the same load, so the ratio holds on a
// shared machine whose speed drifts between sub-benchmarks.
func paired(b *testing.B, pierre, raw func(i int)) {
	b.Helper()
	var tp, tr time.Duration
	n := 0
	for b.Loop() {
		first, second, tf, ts := pierre, raw, &tp, &tr
		if n%2 == 1 {
			first, second, tf, ts = raw, pierre, &tr, &tp
		}
		t0 := time.Now()
		first(n)
		t1 := time.Now()
		second(n)
		*ts += time.Since(t1)
		*tf += t1.Sub(t0)
		n++
	}
	b.ReportMetric(float64(tp.Nanoseconds())/float64(n), "pierre-ns/op")
	b.ReportMetric(float64(tr.Nanoseconds())/float64(n), "raw-ns/op")
	b.ReportMetric(float64(tp)/float64(tr), "ratio")
}

// benchTokenColumns is pierre's token column list (oauth_token.go), verbatim.
const benchTokenColumns = "o.id, o.tenant_id, o.user_id, o.provider, o.access_token_encrypted, o.refresh_token_encrypted," +
	" o.token_type, o.expires_at, o.scope, o.last_sync_at, o.created_at, o.updated_at"

// benchPutPlainSQL is Put's upsert (oauth_token.go), verbatim.
const benchPutPlainSQL = "INSERT INTO user_oauth_tokens (id, tenant_id, user_id, provider, access_token_encrypted, refresh_token_encrypted," +
	" token_type, expires_at, scope, last_sync_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" +
	" ON CONFLICT (tenant_id, user_id, provider) DO UPDATE SET access_token_encrypted = excluded.access_token_encrypted," +
	" refresh_token_encrypted = excluded.refresh_token_encrypted, token_type = excluded.token_type," +
	" expires_at = excluded.expires_at, scope = excluded.scope, last_sync_at = excluded.last_sync_at," +
	" updated_at = excluded.updated_at RETURNING id, created_at"

func benchAccess(i int) string {
	return fmt.Sprintf("a%07d-0123456789abcdefghijklmnopqrstuvwxyz-0123456789abcdefghijklmnopqrstuvwxyz", i)
}

func benchRefresh(i int) string {
	return fmt.Sprintf("r%07d-0123456789abcdefghijklmnopqrstuvwxyz-0123456789", i)
}

// rawToken is a token row scanned into plain Go values, timestamps as text.
type rawToken struct {
	id, tenant, user, provider, access, tokenType string
	refresh, scope                                sql.NullString
	expires, synced, created, updated             any
}

func (r *rawToken) dest() []any {
	return []any{&r.id, &r.tenant, &r.user, &r.provider, &r.access, &r.refresh, &r.tokenType,
		&r.expires, &r.scope, &r.synced, &r.created, &r.updated}
}

type tokenKey struct {
	user     string
	provider pierredb.Provider
}

// oauthBench is one database holding tokens tokens of one tenant's members
// (9 providers each), sealed, and for small fixtures the same tokens in plain
// text in a second tenant.
type oauthBench struct {
	backend     pierredb.Backend
	db          *pierredb.Database
	tenant      string // sealed tokens
	plainTenant string // the same tokens in plain text (fixtures of at most 10000 tokens)
	keys        []tokenKey
}

func newOAuthBench(b *testing.B, e storetest.Engine, tokens int) *oauthBench {
	b.Helper()
	ctx := b.Context()
	db := e.Open(b)
	f := &oauthBench{backend: e.Backend, db: db, tenant: "t-bench", plainTenant: "t-plain"}
	w := pierredb.EngineOf(db).Writer
	users := (tokens + len(builtinProviders) - 1) / len(builtinProviders)
	stamp := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	text := func(d time.Duration) string { return stamp.Add(d).Format(oauthTimeLayout) }
	us := make([]planUser, users)
	for i := range us {
		us[i] = planUser{ID: fmt.Sprintf("u%07d", i), Email: fmt.Sprintf("bench%07d@example.com", i), PasswordHash: "$argon2id$bench",
			UserStatus: "active", CreatedAt: text(time.Duration(i) * time.Second), UpdatedAt: text(0)}
	}
	insertChunks(b, w, us)
	if _, err := w.NewInsert().Model(&planTenant{ID: f.tenant, Name: "Bench", Slug: "bench", OwnerUserID: us[0].ID,
		CreatedAt: text(0), UpdatedAt: text(0)}).Exec(ctx); err != nil {
		b.Fatal(err)
	}
	ms := make([]planMember, users)
	for i := range ms {
		role := "member"
		if i == 0 {
			role = "owner"
		}
		ms[i] = planMember{TenantID: f.tenant, UserID: us[i].ID, Role: role, CreatedAt: text(time.Duration(i) * time.Second), UpdatedAt: text(0)}
	}
	insertChunks(b, w, ms)
	rows := make([]planToken, 0, tokens)
	for i := 0; len(rows) < tokens; i++ {
		for _, p := range builtinProviders {
			if len(rows) == tokens {
				break
			}
			rows = append(rows, sealedToken(b, db, fmt.Sprintf("tok%08d", len(rows)), f.tenant, us[i].ID, string(p), stamp.Add(time.Duration(len(rows))*time.Second)))
			f.keys = append(f.keys, tokenKey{user: us[i].ID, provider: p})
		}
	}
	insertTokens(b, db, rows)
	if tokens <= 10_000 {
		// t-plain: the same members and tokens, in plain text, for the baselines.
		if _, err := w.NewInsert().Model(&planTenant{ID: f.plainTenant, Name: "Plain", Slug: "plain", OwnerUserID: us[0].ID,
			CreatedAt: text(0), UpdatedAt: text(0)}).Exec(ctx); err != nil {
			b.Fatal(err)
		}
		for i := range ms {
			ms[i].TenantID = f.plainTenant
		}
		insertChunks(b, w, ms)
		plain := make([]planToken, len(rows))
		for i, r := range rows {
			r.ID, r.TenantID = "plain-"+r.ID, f.plainTenant
			r.Access = []byte("access-" + r.ID + "-0123456789abcdefghijklmnopqrstuvwxyz-0123456789abcdefghijklmnop")
			r.Refresh = []byte("refresh-" + r.ID + "-0123456789abcdefghijklmnopqrstuvwxyz")
			plain[i] = r
		}
		insertTokens(b, db, plain)
	}
	if _, err := w.ExecContext(ctx, "ANALYZE"); err != nil {
		b.Fatal(err)
	}
	return f
}

func insertChunks[T any](b *testing.B, w *bun.DB, rows []T) {
	b.Helper()
	for start := 0; start < len(rows); start += 500 {
		chunk := rows[start:min(start+500, len(rows))]
		if _, err := w.NewInsert().Model(&chunk).Exec(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// prepare prepares query (with '?' placeholders) on pool.
func (f *oauthBench) prepare(b *testing.B, pool *sql.DB, query string) *sql.Stmt {
	b.Helper()
	stmt, err := pool.PrepareContext(b.Context(), pierredb.Rebind(f.db, query))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = stmt.Close() })
	return stmt
}
