package pierredb_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	neturl "net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver of the PostgreSQL baseline
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/driver/sqliteshim"

	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/internal/password"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

// BenchmarkUsers compares the users store with a hand-written database/sql
// baseline on the same database, in the same run, on 1000 users. Its names and
// its work are those of BenchmarkUsers in the commit before the per-domain
// handles (3cb5702), so that the two trees' binaries can be run against each
// other (BENCHMARKS.md, "Users at 1000 rows, against the commit before the
// reshape"):
//
//	GetUserByEmail/<engine>/{pierre,raw-query,raw-prepared}
//	ListUsers50/<engine>/{pierre,raw-query,raw-prepared,raw-prepared-limit-arg}
//	CreateUser/<engine>/{total,hash,insert,insert-raw}
//
// The benchmarks at 10k and 100k users are BenchmarkScale (flat_bench_test.go).
//
// raw-query is QueryRowContext/QueryContext with the same SELECT text, unprepared;
// raw-prepared is the same through a *sql.Stmt prepared once. Both scan the same 14
// columns into plain Go values (no timestamp parsing, no User). On SQLite the
// baseline is its own *sql.DB (same driver, same file, mode=ro); on PostgreSQL it
// is sql.Open("pgx", url) with pgx's default settings, except that it uses TLS only
// if pierre's connection does (pierre disables it on loopback; pgx would prefer it).
//
//	PIERREDB_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres \
//	  go test -run '^$' -bench BenchmarkUsers -benchmem -count 5 ./pierredb/
func BenchmarkUsers(b *testing.B) {
	b.Run("GetUserByEmail", func(b *testing.B) {
		for _, e := range storetest.Engines() {
			b.Run(string(e.Backend), func(b *testing.B) {
				e.Require(b)
				f := newUsersBench(b, e)
				query := "SELECT " + benchUserColumns + " FROM users u WHERE u.email = ?"
				rawQuery := f.rebind(query)
				b.Run("pierre", func(b *testing.B) {
					b.ReportAllocs()
					i := 0
					for b.Loop() {
						u, err := f.db.Users().GetByEmail(b.Context(), f.emails[i%len(f.emails)])
						if err != nil {
							b.Fatal(err)
						}
						if u.ID == "" {
							b.Fatal("empty user")
						}
						i++
					}
				})
				b.Run("raw-query", func(b *testing.B) {
					b.ReportAllocs()
					i := 0
					for b.Loop() {
						var u rawUser
						if err := f.raw.QueryRowContext(b.Context(), rawQuery, f.emails[i%len(f.emails)]).Scan(u.dest(f.backend)...); err != nil {
							b.Fatal(err)
						}
						i++
					}
				})
				b.Run("raw-prepared", func(b *testing.B) {
					stmt := f.prepare(b, rawQuery)
					b.ReportAllocs()
					i := 0
					for b.Loop() {
						var u rawUser
						if err := stmt.QueryRowContext(b.Context(), f.emails[i%len(f.emails)]).Scan(u.dest(f.backend)...); err != nil {
							b.Fatal(err)
						}
						i++
					}
				})
			})
		}
	})

	b.Run("ListUsers50", func(b *testing.B) {
		for _, e := range storetest.Engines() {
			b.Run(string(e.Backend), func(b *testing.B) {
				e.Require(b)
				f := newUsersBench(b, e)
				rawQuery := "SELECT " + benchUserColumns + " FROM users u ORDER BY u.created_at, u.id LIMIT 50"
				rawQueryLimitArg := f.rebind("SELECT " + benchUserColumns + " FROM users u ORDER BY u.created_at, u.id LIMIT ?")
				b.Run("pierre", func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						page, err := f.db.Users().List(b.Context(), pierredb.UserFilter{Limit: 50})
						if err != nil {
							b.Fatal(err)
						}
						if len(page.Items) != 50 || page.Next == "" {
							b.Fatalf("got %d users, next %q", len(page.Items), page.Next)
						}
					}
				})
				list := func(b *testing.B, rows *sql.Rows, err error) {
					if err != nil {
						b.Fatal(err)
					}
					users := make([]rawUser, 0, 50)
					for rows.Next() {
						var u rawUser
						if err := rows.Scan(u.dest(f.backend)...); err != nil {
							b.Fatal(err)
						}
						users = append(users, u)
					}
					if err := rows.Close(); err != nil {
						b.Fatal(err)
					}
					if err := rows.Err(); err != nil {
						b.Fatal(err)
					}
					if len(users) != 50 {
						b.Fatalf("got %d users", len(users))
					}
				}
				b.Run("raw-query", func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						rows, err := f.raw.QueryContext(b.Context(), rawQuery)
						list(b, rows, err)
					}
				})
				b.Run("raw-prepared", func(b *testing.B) {
					stmt := f.prepare(b, rawQuery)
					b.ReportAllocs()
					for b.Loop() {
						rows, err := stmt.QueryContext(b.Context())
						list(b, rows, err)
					}
				})
				// raw-prepared-limit-arg binds the limit as pierre does (LIMIT ?). The
				// SQLite in modernc v1.46.1 (3.51.2) reads a bound LIMIT while planning
				// (sqlite3ExprIsInteger sets the parameter's bit in the statement's
				// varmask), so rebinding it expires the statement and every execution
				// re-prepares it. PostgreSQL is unaffected.
				b.Run("raw-prepared-limit-arg", func(b *testing.B) {
					stmt := f.prepare(b, rawQueryLimitArg)
					b.ReportAllocs()
					for b.Loop() {
						rows, err := stmt.QueryContext(b.Context(), 50)
						list(b, rows, err)
					}
				})
			})
		}
	})

	b.Run("CreateUser", func(b *testing.B) {
		for _, e := range storetest.Engines() {
			b.Run(string(e.Backend), func(b *testing.B) {
				e.Require(b)
				f := newUsersBench(b, e)
				// total: the public API, argon2id at the default policy included.
				b.Run("total", func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						_, err := f.db.Users().Create(b.Context(), pierredb.NewUser{
							Email:       benchEmail("create"),
							Password:    benchPassword,
							DisplayName: "Bench User",
						})
						if err != nil {
							b.Fatal(err)
						}
					}
				})
				// hash: the password hash alone, as CreateUser computes it.
				b.Run("hash", func(b *testing.B) {
					h := password.NewHasher(password.Policy{})
					b.ReportAllocs()
					for b.Loop() {
						if _, err := h.Hash(b.Context(), benchPassword); err != nil {
							b.Fatal(err)
						}
					}
				})
				// insert: what Users.Create does after hashing (validation, then its
				// one prepared INSERT that also decides auto-approval), through an
				// export hook that takes the hash precomputed. In the previous commit
				// this row mirrored that commit's insert (a bun INSERT in a write
				// transaction, without the settings read it also made).
				b.Run("insert", func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						_, err := pierredb.InsertUserWithHash(b.Context(), f.db, pierredb.NewUser{
							Email: benchEmail("insert"), DisplayName: "Bench User",
						}, f.hash)
						if err != nil {
							b.Fatal(err)
						}
					}
				})
				// insert-raw: the hand-written counterpart of insert: BEGIN, one
				// unprepared INSERT with bound arguments, COMMIT, on the same pool.
				b.Run("insert-raw", func(b *testing.B) {
					w := pierredb.EngineOf(f.db).Writer.DB
					query := f.rebind(`INSERT INTO users (id, email, display_name, password_hash, tier, tenant_id,
is_active, is_admin, user_status, approved_by, approved_by_service, approved_at, created_at, updated_at, last_active)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
					b.ReportAllocs()
					for b.Loop() {
						r := f.newRow(benchEmail("raw"), time.Now(), false)
						tx, err := w.BeginTx(b.Context(), nil)
						if err != nil {
							b.Fatal(err)
						}
						_, err = tx.ExecContext(b.Context(), query, r.ID, r.Email, r.DisplayName, r.PasswordHash, r.Tier, r.TenantID,
							r.IsActive, r.IsAdmin, r.UserStatus, r.ApprovedBy, r.ApprovedByService, r.ApprovedAt, r.CreatedAt, r.UpdatedAt, r.LastActive)
						if err != nil {
							_ = tx.Rollback()
							b.Fatal(err)
						}
						if err := tx.Commit(); err != nil {
							b.Fatal(err)
						}
					}
				})
			})
		}
	})
}

// benchUserColumns is pierre's user column list (users.go userColumns), verbatim.
const benchUserColumns = `u.id, u.email, u.display_name, u.tier, u.tenant_id, u.user_status, u.is_active,
u.is_admin, u.approved_by, u.approved_by_service, u.approved_at, u.created_at, u.updated_at, u.last_active`

const (
	benchPassword = "correct horse battery staple"
	benchSeedSize = 1000
	// benchTimeLayout is pierre's stored timestamp form (timestamp.go timeLayout).
	benchTimeLayout = "2006-01-02T15:04:05.000000Z"
)

var benchEmailSeq atomic.Int64

var benchHashOnce struct {
	sync.Once
	hash string
	err  error
}

// benchHash is one real argon2id hash at the default policy, computed once per
// process and shared by every seeded row.
func benchHash(b *testing.B) string {
	b.Helper()
	benchHashOnce.Do(func() {
		benchHashOnce.hash, benchHashOnce.err = password.NewHasher(password.Policy{}).Hash(context.Background(), benchPassword)
	})
	if benchHashOnce.err != nil {
		b.Fatal(benchHashOnce.err)
	}
	return benchHashOnce.hash
}

func benchEmail(kind string) string {
	return fmt.Sprintf("%s-%d@example.com", kind, benchEmailSeq.Add(1))
}

// usersBench is one seeded database with pierre and a baseline pool on it.
type usersBench struct {
	backend pierredb.Backend
	db      *pierredb.Database
	raw     *sql.DB // hand-written baseline: its own pool on the same database
	hash    string  // a real argon2id hash at the default policy, computed once
	emails  []string
}

// newUsersBench opens a fresh database, seeds benchSeedSize users directly through
// the writer (one argon2id hash shared by all rows, not one per user) and opens
// the baseline pool on the same database.
func newUsersBench(b *testing.B, e storetest.Engine) *usersBench {
	b.Helper()
	ctx := b.Context()
	url := e.NewURL(b)
	db := e.OpenURL(b, url)
	f := &usersBench{backend: e.Backend, db: db, hash: benchHash(b)}

	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	rows := make([]benchUserRow, benchSeedSize)
	for i := range rows {
		email := fmt.Sprintf("seed%04d@example.com", i)
		rows[i] = f.newRow(email, base.Add(time.Duration(i)*time.Second), i%2 == 0)
		f.emails = append(f.emails, email)
	}
	if _, err := pierredb.EngineOf(db).Writer.NewInsert().Model(&rows).Exec(ctx); err != nil {
		b.Fatalf("seed users: %v", err)
	}
	// Fresh statistics before measuring, so that neither side runs while an
	// autovacuum ANALYZE of the new rows is under way (the first sub-benchmark,
	// pierre's, otherwise paid for it on PostgreSQL).
	if _, err := pierredb.EngineOf(db).Writer.ExecContext(ctx, "ANALYZE"); err != nil {
		b.Fatalf("analyze: %v", err)
	}
	// Look the users up in a scattered order, so that consecutive lookups do not
	// walk neighbouring index pages.
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(f.emails), func(i, j int) {
		f.emails[i], f.emails[j] = f.emails[j], f.emails[i]
	})

	var err error
	switch e.Backend {
	case pierredb.SQLite:
		path, ok := strings.CutPrefix(url, "sqlite:")
		if !ok {
			b.Fatalf("unexpected SQLite URL %q", url)
		}
		// modernc reads _pragma, mattn reads _busy_timeout; each ignores the other.
		f.raw, err = sql.Open(sqliteshim.ShimName, "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)&_busy_timeout=5000")
		if err != nil {
			b.Fatal(err)
		}
		f.raw.SetMaxIdleConns(2) // as many as pierre's reader pool keeps
		var busy int
		if err := f.raw.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy); err != nil || busy != 5000 {
			b.Fatalf("baseline busy_timeout = %d, %v; want 5000", busy, err)
		}
	default:
		// pgx defaults to sslmode=prefer, which is TLS on a server that offers it,
		// while pierre connects to a loopback server without TLS: give the baseline
		// the same transport, and otherwise pgx's defaults.
		pierreTLS := db.Info().Settings["ssl"]
		u, err := neturl.Parse(url)
		if err != nil {
			b.Fatal(err)
		}
		if q := u.Query(); q.Get("sslmode") == "" && pierreTLS == "false" {
			q.Set("sslmode", "disable")
			u.RawQuery = q.Encode()
		}
		f.raw, err = sql.Open("pgx", u.String())
		if err != nil {
			b.Fatal(err)
		}
		var rawTLS bool
		err = f.raw.QueryRowContext(ctx, "SELECT COALESCE((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false)").Scan(&rawTLS)
		if err != nil || fmt.Sprint(rawTLS) != pierreTLS {
			b.Fatalf("baseline TLS = %v (%v), pierre's = %s", rawTLS, err, pierreTLS)
		}
	}
	b.Cleanup(func() { _ = f.raw.Close() })
	var n int
	if err := f.raw.QueryRowContext(ctx, "SELECT count(*) FROM users").Scan(&n); err != nil || n != benchSeedSize {
		b.Fatalf("baseline sees %d users (%v), want %d", n, err, benchSeedSize)
	}
	return f
}

// newRow builds a users row like CreateUser's (pending), with the precomputed
// hash; an approved row also fills the approval and last_active columns.
func (f *usersBench) newRow(email string, now time.Time, approved bool) benchUserRow {
	stamp := now.UTC().Truncate(time.Microsecond).Format(benchTimeLayout)
	r := benchUserRow{
		ID:           uuid.Must(uuid.NewV7()).String(),
		Email:        email,
		DisplayName:  sql.NullString{String: "Bench User", Valid: true},
		PasswordHash: f.hash,
		Tier:         "starter",
		IsActive:     true,
		UserStatus:   "pending",
		CreatedAt:    stamp,
		UpdatedAt:    stamp,
	}
	if approved {
		r.UserStatus = "active"
		r.ApprovedByService = sql.NullString{String: "auto-approval", Valid: true}
		r.ApprovedAt = sql.NullString{String: stamp, Valid: true}
		r.LastActive = sql.NullString{String: stamp, Valid: true}
	}
	return r
}

// rebind turns '?' into $1, $2, ... on PostgreSQL, as pierre's statement cache does.
func (f *usersBench) rebind(query string) string { return rebindFor(f.backend, query) }

func (f *usersBench) prepare(b *testing.B, query string) *sql.Stmt {
	b.Helper()
	stmt, err := f.raw.PrepareContext(b.Context(), query)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = stmt.Close() })
	return stmt
}

// benchUserRow is the users table as the seed and the insert benchmarks write it:
// timestamps in pierre's text form, which PostgreSQL casts to TIMESTAMPTZ.
type benchUserRow struct {
	bun.BaseModel `bun:"table:users"`

	ID                string         `bun:"id,pk"`
	Email             string         `bun:"email"`
	DisplayName       sql.NullString `bun:"display_name"`
	PasswordHash      string         `bun:"password_hash"`
	Tier              string         `bun:"tier"`
	TenantID          sql.NullString `bun:"tenant_id"`
	IsActive          bool           `bun:"is_active"`
	IsAdmin           bool           `bun:"is_admin"`
	UserStatus        string         `bun:"user_status"`
	ApprovedBy        sql.NullString `bun:"approved_by"`
	ApprovedByService sql.NullString `bun:"approved_by_service"`
	ApprovedAt        sql.NullString `bun:"approved_at"`
	CreatedAt         string         `bun:"created_at"`
	UpdatedAt         string         `bun:"updated_at"`
	LastActive        sql.NullString `bun:"last_active"`
}

// rawUser holds the 14 columns as a hand-written caller would scan them: text
// timestamps on SQLite, time.Time from pgx.
type rawUser struct {
	ID, Email, Tier, Status                      string
	DisplayName, TenantID, ApprovedBy, ApprovedS sql.NullString
	IsActive, IsAdmin                            bool
	ApprovedAt, LastActive                       sql.NullString
	CreatedAt, UpdatedAt                         string
	ApprovedAtT, LastActiveT                     sql.NullTime
	CreatedAtT, UpdatedAtT                       time.Time
}

func (u *rawUser) dest(backend pierredb.Backend) []any {
	if backend == pierredb.Postgres {
		return []any{&u.ID, &u.Email, &u.DisplayName, &u.Tier, &u.TenantID, &u.Status, &u.IsActive,
			&u.IsAdmin, &u.ApprovedBy, &u.ApprovedS, &u.ApprovedAtT, &u.CreatedAtT, &u.UpdatedAtT, &u.LastActiveT}
	}
	return []any{&u.ID, &u.Email, &u.DisplayName, &u.Tier, &u.TenantID, &u.Status, &u.IsActive,
		&u.IsAdmin, &u.ApprovedBy, &u.ApprovedS, &u.ApprovedAt, &u.CreatedAt, &u.UpdatedAt, &u.LastActive}
}
