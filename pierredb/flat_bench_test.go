package pierredb_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

// BenchmarkScale measures pierre against hand-written prepared database/sql on
// the same database and the same connection pool, in the same run, at 10k and
// 100k users (BENCHMARKS.md, "Users at 10k and 100k"):
//
//	Scale/<engine>/Read/<case>/<size>/{pierre...,paired-scope,raw-prepared}
//	                                                              point reads, scoped and not
//	Scale/<engine>/List/<case>/<size>/{pierre,raw-prepared}       a page of 50 of every listing
//	Scale/<engine>/Count/<case>/<size>/{pierre,raw-prepared,raw-count}
//	Scale/sqlite/ConnSpeed/connN/<size>                           one lookup on separate connections
//	Scale/<engine>/Throttle/{due,skip}/seen-N/<size>              Touch with N other users seen
//	Scale/<engine>/Write/<case>/<size>/{pierre,raw-prepared,paired}
//	                                                              the hot writes
//	Scale/<engine>/Throughput/<size>/{pierre,raw-prepared}        concurrent Touch writers
//
// Each engine and size is seeded once per process (raw multi-row inserts, one
// shared argon2id hash, then ANALYZE; VACUUM ANALYZE on PostgreSQL). Every
// case then runs on each size and each side in turn, PIERREDB_BENCH_ROUNDS
// times, so that ratios can be taken between samples seconds apart.
// PIERREDB_BENCH_SIZES (default "10000,100000") changes the sizes;
// PIERREDB_BENCH_ROUNDS (default 1) runs each case's sides in turn that many
// times; PIERREDB_BENCH_PG_PARAMS (e.g. "synchronous_commit=off") adds startup
// parameters to the PostgreSQL world's connections.
//
//	PIERREDB_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres \
//	  PIERREDB_BENCH_ROUNDS=5 go test -run '^$' -bench 'BenchmarkScale' -benchtime 0.2s -benchmem ./pierredb/
//
// The baselines run on pierre's own pools (the reader pool for reads, the
// writer pool for writes), so that both sides pay the same pool and connection
// settings; and on modernc, where a connection keeps one of two speeds for its
// whole life (ConnSpeed), both sides of a read then run on the same connection:
// database/sql hands a sequential caller its most recently used connection.
// The baselines scan the same columns into plain Go values (timestamps as text
// on SQLite), one fresh struct per row, as hand-written code would.
func BenchmarkScale(b *testing.B) {
	for _, e := range storetest.Engines() {
		b.Run(string(e.Backend), func(b *testing.B) {
			e.Require(b)
			var worlds []*world
			for _, n := range benchSizes(b) {
				w := newWorld(b, e, n)
				w.benchRead(b)
				w.benchList(b)
				w.benchCount(b)
				w.benchConnSpeed(b)
				w.benchThrottle(b)
				w.benchWrite(b)
				w.benchThroughput(b)
				worlds = append(worlds, w)
			}
			// Each case runs on every size in turn, round after round, so that
			// a change of machine load falls on every size and side alike.
			for i, c := range worlds[0].cases {
				b.Run(c.name, func(b *testing.B) {
					for range benchRounds() {
						for _, w := range worlds {
							b.Run(sizeName(w.n), w.cases[i].run)
						}
					}
				})
			}
		})
	}
}

// benchCase is one case of BenchmarkScale on one world: a function that runs
// the case's sides as sub-benchmarks, or a benchmark itself.
type benchCase struct {
	name string
	run  func(b *testing.B)
}

// add registers a case; the bench* methods set up what their cases share with
// the engine's benchmark, which outlives them all.
func (w *world) add(name string, run func(b *testing.B)) {
	w.cases = append(w.cases, benchCase{name, run})
}

// benchRounds is PIERREDB_BENCH_ROUNDS (default 1): how many times each case
// runs on every size and side in turn (BenchmarkScale), or each engine's rows
// (BenchmarkOpen). Repeated names get Go's #01, #02 suffixes.
func benchRounds() int {
	n, err := strconv.Atoi(os.Getenv("PIERREDB_BENCH_ROUNDS"))
	if err != nil || n < 1 {
		return 1
	}
	return n
}

// rounds runs a case (a function that runs its sides as sub-benchmarks)
// benchRounds times.
func rounds(f func(b *testing.B)) func(b *testing.B) {
	return func(b *testing.B) {
		for range benchRounds() {
			f(b)
		}
	}
}

func benchSizes(b *testing.B) []int {
	spec := os.Getenv("PIERREDB_BENCH_SIZES")
	if spec == "" {
		return []int{10_000, 100_000}
	}
	var out []int
	for _, f := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		// Below about 6000 users there are fewer than a page of admins.
		if err != nil || n < 6000 {
			b.Fatalf("PIERREDB_BENCH_SIZES: %q is not a size of at least 6000", f)
		}
		out = append(out, n)
	}
	return out
}

func sizeName(n int) string {
	if n%1000 == 0 {
		return strconv.Itoa(n/1000) + "k"
	}
	return strconv.Itoa(n)
}

// The seeded world's fixed shapes: whatever the number of users, the measured
// tenant has bigTenantSize members spread over the whole users table, one user
// belongs to multiTenants tenants and one owns ownedTenants tenants; every other
// user is in a tenant of tenantSize members.
const (
	bigTenantSize = 200
	multiTenants  = 8
	ownedTenants  = 60
	tenantSize    = 20
	pageSize      = 50
)

var benchBase = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func benchStamp(i int) string {
	return benchBase.Add(time.Duration(i) * time.Second).Format(benchTimeLayout)
}

// world is one seeded database of n users.
type world struct {
	e       storetest.Engine
	backend pierredb.Backend
	url     string
	n       int
	db      *pierredb.Database
	hash    string
	clk     *clock  // the clock of every Database the write benchmarks open
	reader  *sql.DB // pierre's reader pool: the read baselines run on it
	writer  *sql.DB // pierre's writer pool

	users      []string // ids, oldest first (created_at = benchStamp(i))
	emails     []string // every email, shuffled
	pending    []string // users seeded pending, shuffled
	active     []string // users seeded active and not admin, shuffled
	big        string   // the measured tenant
	bigMembers []string // its members, shuffled
	multi      string   // a user in multiTenants tenants
	owner      string   // a user who owns ownedTenants tenants (and is in one more)
	mid        int      // the index of the user a deep page starts after
	midCursor  string   // Users.List's cursor after users[mid]

	cases []benchCase
}

type benchTenantRow struct {
	bun.BaseModel `bun:"table:tenants"`

	ID          string `bun:"id,pk"`
	Name        string `bun:"name"`
	Slug        string `bun:"slug"`
	Plan        string `bun:"plan"`
	OwnerUserID string `bun:"owner_user_id"`
	IsActive    bool   `bun:"is_active"`
	CreatedAt   string `bun:"created_at"`
	UpdatedAt   string `bun:"updated_at"`
}

// newWorld seeds a fresh database with n users straight into the tables (no
// argon2id per user): a third pending, one in fifty suspended, one in a hundred
// an active admin; tenants of tenantSize members, plus the measured shapes.
func newWorld(b *testing.B, e storetest.Engine, n int) *world {
	b.Helper()
	ctx := b.Context()
	start := time.Now()
	url := e.NewURL(b)
	if extra := os.Getenv("PIERREDB_BENCH_PG_PARAMS"); extra != "" && e.Backend == pierredb.Postgres {
		// Startup parameters for every connection of the world's pools, e.g.
		// synchronous_commit=off to take the commit's disk flush out of the
		// write figures (both sides run on the same pools).
		url += "&" + extra
	}
	w := &world{e: e, backend: e.Backend, url: url, n: n, db: e.OpenURL(b, url), hash: benchHash(b), clk: &clock{}}
	w.reader = pierredb.EngineOf(w.db).Reader.DB
	w.writer = pierredb.EngineOf(w.db).Writer.DB
	rng := rand.New(rand.NewPCG(uint64(n), 9))

	users := make([]benchUserRow, n)
	for i := range users {
		email := fmt.Sprintf("seed%07d@example.com", i)
		stamp := benchStamp(i)
		r := benchUserRow{
			ID: uuid.Must(uuid.NewV7()).String(), Email: email, PasswordHash: w.hash, Tier: "starter",
			DisplayName: sql.NullString{String: "Seed User", Valid: true},
			IsActive:    true, UserStatus: "active", CreatedAt: stamp, UpdatedAt: stamp,
			ApprovedByService: sql.NullString{String: "seed", Valid: true},
			ApprovedAt:        sql.NullString{String: stamp, Valid: true},
			LastActive:        sql.NullString{String: stamp, Valid: true},
		}
		switch {
		case i%100 == 1:
			r.IsAdmin = true
		case i%3 == 0:
			r.UserStatus = "pending"
			r.ApprovedByService, r.ApprovedAt, r.LastActive = sql.NullString{}, sql.NullString{}, sql.NullString{}
		case i%50 == 7:
			r.UserStatus, r.IsActive = "suspended", false
		}
		users[i] = r
		w.users = append(w.users, r.ID)
		w.emails = append(w.emails, email)
		switch {
		case r.UserStatus == "pending":
			w.pending = append(w.pending, r.ID)
		case r.UserStatus == "active" && !r.IsAdmin:
			w.active = append(w.active, r.ID)
		}
	}

	var tenants []benchTenantRow
	var members []planMember
	tenant := func(slug string, owner, at int) string {
		id := uuid.Must(uuid.NewV7()).String()
		tenants = append(tenants, benchTenantRow{ID: id, Name: "Tenant " + slug, Slug: slug, Plan: "starter",
			OwnerUserID: w.users[owner], IsActive: true, CreatedAt: benchStamp(at), UpdatedAt: benchStamp(at)})
		return id
	}
	member := func(tenantID string, user int, role string, at int) {
		members = append(members, planMember{TenantID: tenantID, UserID: w.users[user], Role: role,
			CreatedAt: benchStamp(at), UpdatedAt: benchStamp(at)})
	}
	var regular []string
	for k := 0; k*tenantSize < n; k++ {
		id := tenant(fmt.Sprintf("t-%d", k), k*tenantSize, k*tenantSize)
		regular = append(regular, id)
		for j := k * tenantSize; j < min((k+1)*tenantSize, n); j++ {
			role := "member"
			if j == k*tenantSize {
				role = "owner"
			}
			member(id, j, role, j)
		}
	}
	// The measured tenant: members spread over the whole table, joined after
	// everyone else.
	stride := n / bigTenantSize
	w.big = tenant("big", 0, n)
	for j := range bigTenantSize {
		role := "member"
		if j == 0 {
			role = "owner"
		}
		member(w.big, j*stride, role, n+j)
		w.bigMembers = append(w.bigMembers, w.users[j*stride])
	}
	// A user in multiTenants tenants: its own and the next ones.
	const multi, owner = 5, 8
	w.multi = w.users[multi]
	for j := 1; j < multiTenants; j++ {
		member(regular[j], multi, "member", n+1000+j)
	}
	// A user who owns ownedTenants tenants besides being in its own.
	w.owner = w.users[owner]
	for j := range ownedTenants {
		id := tenant(fmt.Sprintf("own-%d", j), owner, n+2000+j)
		member(id, owner, "owner", n+2000+j)
	}

	// Each batch commits on its own: in one transaction, PostgreSQL's per-row
	// trigger on the user_counts row grows a chain of row versions that every
	// later update walks (20k users took 15 s, 100k users many minutes).
	wdb := pierredb.EngineOf(w.db).Writer
	step := func(what string, err error) {
		if err != nil {
			b.Fatalf("seed %s: %v", what, err)
		}
		b.Logf("seed %s %s: %s at %v", e.Backend, sizeName(n), what, time.Since(start).Round(time.Millisecond))
	}
	step("users", insertBatches(ctx, wdb, users))
	step("tenants", insertBatches(ctx, wdb, tenants))
	step("memberships", insertBatches(ctx, wdb, members))
	// Each user's home tenant is its tenant of tenantSize (users and tenants
	// reference each other, so it is set once both exist). Statistics first,
	// or PostgreSQL plans the subquery as a scan of tenant_users per user.
	_, err := wdb.ExecContext(ctx, "ANALYZE")
	step("analyze", err)
	_, err = wdb.ExecContext(ctx, "UPDATE users SET tenant_id = (SELECT m.tenant_id FROM tenant_users m"+
		" JOIN tenants t ON t.id = m.tenant_id WHERE m.user_id = users.id AND t.slug LIKE 't-%' ORDER BY m.created_at LIMIT 1)")
	step("home tenants", err)
	analyze := "ANALYZE"
	if e.Backend == pierredb.Postgres {
		// Also VACUUM, as autovacuum would soon after such a load, so that it
		// does not start in the middle of a measurement.
		analyze = "VACUUM ANALYZE"
	}
	if _, err := w.writer.ExecContext(ctx, analyze); err != nil {
		b.Fatalf("%s: %v", analyze, err)
	}
	w.checkpoint(b, w.writer) // the reads start with an empty WAL

	// A cursor in the middle of the table, reached the way a client would.
	users1000 := w.db.Users()
	cursor := ""
	for seen := 0; seen < n/2; seen += 1000 {
		p, err := users1000.List(ctx, pierredb.UserFilter{Limit: 1000, Cursor: cursor})
		if err != nil || p.Next == "" {
			b.Fatalf("page to the middle: %v", err)
		}
		cursor = p.Next
		w.mid = seen + 999
	}
	w.midCursor = cursor

	for _, s := range [][]string{w.emails, w.pending, w.active, w.bigMembers} {
		rng.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
	}
	if got, err := w.db.Users().Count(ctx, pierredb.UserFilter{}); err != nil || got != n {
		b.Fatalf("seeded %d users (%v), want %d", got, err, n)
	}
	b.Logf("seeded %s %s in %v", e.Backend, sizeName(n), time.Since(start).Round(time.Millisecond))
	return w
}

func insertBatches[T any](ctx context.Context, db *bun.DB, rows []T) error {
	for start := 0; start < len(rows); start += 500 {
		batch := rows[start:min(start+500, len(rows))]
		if _, err := db.NewInsert().Model(&batch).Exec(ctx); err != nil {
			return err
		}
	}
	return nil
}

// prepare prepares a baseline statement ('?' placeholders) on pool.
func (w *world) prepare(b *testing.B, pool *sql.DB, query string) *sql.Stmt {
	b.Helper()
	stmt, err := pool.PrepareContext(b.Context(), rebindFor(w.backend, query))
	if err != nil {
		b.Fatalf("prepare %s: %v", query, err)
	}
	b.Cleanup(func() { _ = stmt.Close() })
	return stmt
}

// rebindFor turns '?' into $1, $2, ... on PostgreSQL.
func rebindFor(backend pierredb.Backend, query string) string {
	if backend != pierredb.Postgres {
		return query
	}
	var sb strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			fmt.Fprintf(&sb, "$%d", n)
			continue
		}
		sb.WriteRune(r)
	}
	return sb.String()
}

// rawTime is a timestamp as a hand-written caller scans it: text on SQLite,
// time.Time from pgx.
type rawTime struct {
	s string
	t time.Time
}

func (r *rawTime) dest(backend pierredb.Backend) any {
	if backend == pierredb.Postgres {
		return &r.t
	}
	return &r.s
}

type rawMember struct {
	TenantID, UserID, Role string
	CreatedAt, UpdatedAt   rawTime
}

func (m *rawMember) dest(backend pierredb.Backend) []any {
	return []any{&m.TenantID, &m.UserID, &m.Role, m.CreatedAt.dest(backend), m.UpdatedAt.dest(backend)}
}

type rawTenant struct {
	ID, Name, Slug, Plan, Owner string
	IsActive                    bool
	CreatedAt, UpdatedAt        rawTime
	Role                        string
}

func (t *rawTenant) dest(backend pierredb.Backend, role bool) []any {
	d := []any{&t.ID, &t.Name, &t.Slug, &t.Plan, &t.Owner, &t.IsActive, t.CreatedAt.dest(backend), t.UpdatedAt.dest(backend)}
	if role {
		d = append(d, &t.Role)
	}
	return d
}

type rawMemberUser struct {
	rawUser
	Joined rawTime
}

const (
	benchMemberColumns = "m.tenant_id, m.user_id, m.role, m.created_at, m.updated_at"
	benchTenantColumns = "t.id, t.name, t.slug, t.plan, t.owner_user_id, t.is_active, t.created_at, t.updated_at"
)

// rawRows runs stmt on every iteration and scans each row into a fresh T, as a
// hand-written listing does; every run must return want rows.
func rawRows[T any](b *testing.B, stmt *sql.Stmt, args []any, dest func(*T) []any, want int) {
	meterCPU(b)
	ctx := b.Context()
	for b.Loop() {
		rows, err := stmt.QueryContext(ctx, args...)
		if err != nil {
			b.Fatal(err)
		}
		out := make([]T, 0, want)
		for rows.Next() {
			var r T
			if err := rows.Scan(dest(&r)...); err != nil {
				b.Fatal(err)
			}
			out = append(out, r)
		}
		if err := rows.Close(); err != nil {
			b.Fatal(err)
		}
		if err := rows.Err(); err != nil {
			b.Fatal(err)
		}
		if len(out) != want {
			b.Fatalf("got %d rows, want %d", len(out), want)
		}
	}
}

// pierrePage runs a pierre listing on every iteration; every page must hold
// want items and have a next page exactly when next is set.
func pierrePage[T any](b *testing.B, list func(ctx context.Context) (pierredb.Page[T], error), want int, next bool) {
	meterCPU(b)
	ctx := b.Context()
	for b.Loop() {
		p, err := list(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if len(p.Items) != want || (p.Next != "") != next {
			b.Fatalf("got %d items, next %q; want %d, next %v", len(p.Items), p.Next, want, next)
		}
	}
}

// benchRead: point reads, with a scope made for each read (as a request makes
// one), with one scope reused, and the hand-written prepared statement.
func (w *world) benchRead(b *testing.B) {
	ids := w.bigMembers
	// What making a scope costs by itself (it runs no query; see
	// TestTenantScopeRunsNoQuery).
	w.add("Read/NewScope", func(b *testing.B) {
		b.Run("pierre", func(b *testing.B) {
			meterCPU(b)
			ctx := b.Context()
			for b.Loop() {
				s, err := w.db.Tenant(ctx, w.big)
				if err != nil {
					b.Fatal(err)
				}
				_ = s.Members()
			}
		})
	})
	for _, c := range []struct {
		name string
		read func(ctx context.Context, s *pierredb.TenantScope, id string) error
		raw  string // the baseline's SELECT, by tenant and user
		dest func(backend pierredb.Backend) []any
	}{
		{"MemberGet", func(ctx context.Context, s *pierredb.TenantScope, id string) error {
			m, err := s.Members().Get(ctx, id)
			if err == nil && m.UserID != id {
				err = fmt.Errorf("got member %q", m.UserID)
			}
			return err
		}, "SELECT " + benchMemberColumns + " FROM tenant_users m WHERE m.tenant_id = ? AND m.user_id = ?",
			func(backend pierredb.Backend) []any { var m rawMember; return m.dest(backend) }},
		{"MemberGetUser", func(ctx context.Context, s *pierredb.TenantScope, id string) error {
			u, err := s.Members().GetUser(ctx, id)
			if err == nil && u.ID != id {
				err = fmt.Errorf("got user %q", u.ID)
			}
			return err
		}, "SELECT " + benchUserColumns + " FROM tenant_users m JOIN users u ON u.id = m.user_id WHERE m.tenant_id = ? AND m.user_id = ?",
			func(backend pierredb.Backend) []any { var u rawUser; return u.dest(backend) }},
	} {
		w.add("Read/"+c.name, func(b *testing.B) {
			get := func(b *testing.B, scope func() *pierredb.TenantScope) {
				meterCPU(b)
				ctx := b.Context()
				i := 0
				for b.Loop() {
					if err := c.read(ctx, scope(), ids[i%len(ids)]); err != nil {
						b.Fatal(err)
					}
					i++
				}
			}
			b.Run("pierre-new-scope", func(b *testing.B) { get(b, w.newScope(b)) })
			b.Run("pierre-same-scope", func(b *testing.B) { get(b, w.sameScope(b)) })
			b.Run("paired-scope", func(b *testing.B) { w.pairedScope(b, c.read) })
			b.Run("raw-prepared", func(b *testing.B) {
				stmt := w.prepare(b, w.reader, c.raw)
				w.rawOne(b, func(ctx context.Context, i int) error {
					return stmt.QueryRowContext(ctx, w.big, ids[i%len(ids)]).Scan(c.dest(w.backend)...)
				})
			})
		})
	}
	w.add("Read/UserGet", func(b *testing.B) {
		b.Run("pierre", func(b *testing.B) {
			meterCPU(b)
			ctx := b.Context()
			i := 0
			for b.Loop() {
				if _, err := w.db.Users().Get(ctx, ids[i%len(ids)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.Run("raw-prepared", func(b *testing.B) {
			stmt := w.prepare(b, w.reader, "SELECT "+benchUserColumns+" FROM users u WHERE u.id = ?")
			w.rawOne(b, func(ctx context.Context, i int) error {
				var u rawUser
				return stmt.QueryRowContext(ctx, ids[i%len(ids)]).Scan(u.dest(w.backend)...)
			})
		})
	})
	w.add("Read/UserGetByEmail", func(b *testing.B) {
		b.Run("pierre", func(b *testing.B) {
			meterCPU(b)
			ctx := b.Context()
			i := startAt(len(w.emails))
			for b.Loop() {
				if _, err := w.db.Users().GetByEmail(ctx, w.emails[i%len(w.emails)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.Run("raw-prepared", func(b *testing.B) {
			stmt := w.prepare(b, w.reader, "SELECT "+benchUserColumns+" FROM users u WHERE u.email = ?")
			w.rawOne(b, func(ctx context.Context, i int) error {
				var u rawUser
				return stmt.QueryRowContext(ctx, w.emails[i%len(w.emails)]).Scan(u.dest(w.backend)...)
			})
		})
	})
}

// pairedScope runs the same scoped read through a scope made for it and
// through one scope made before the loop, alternately, on the same
// member each iteration: new-ns, reused-ns and their ratio.
func (w *world) pairedScope(b *testing.B, read func(ctx context.Context, s *pierredb.TenantScope, id string) error) {
	reused, err := w.db.Tenant(b.Context(), w.big)
	if err != nil {
		b.Fatal(err)
	}
	ids, start := w.bigMembers, startAt(len(w.bigMembers))
	id := func(i int) string { return ids[(start+i)%len(ids)] }
	alternate(b, [2]string{"new", "reused"}, func(ctx context.Context, i int) error {
		s, err := w.db.Tenant(ctx, w.big)
		if err != nil {
			return err
		}
		return read(ctx, s, id(i))
	}, func(ctx context.Context, i int) error {
		return read(ctx, reused, id(i))
	})
}

// newScope makes a scope per read, as a request handler does.
func (w *world) newScope(b *testing.B) func() *pierredb.TenantScope {
	ctx := b.Context()
	return func() *pierredb.TenantScope {
		s, err := w.db.Tenant(ctx, w.big)
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
}

// sameScope makes one scope and returns it for every read.
func (w *world) sameScope(b *testing.B) func() *pierredb.TenantScope {
	s, err := w.db.Tenant(b.Context(), w.big)
	if err != nil {
		b.Fatal(err)
	}
	return func() *pierredb.TenantScope { return s }
}

func (w *world) rawOne(b *testing.B, read func(ctx context.Context, i int) error) {
	meterCPU(b)
	ctx := b.Context()
	i := startAt(len(w.emails))
	for b.Loop() {
		if err := read(ctx, i); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// startAt is where a run starts in a list of n keys it cycles through: a
// random place, so that a side never reads the pages the side before it has
// just brought into the connection's cache (both sides share the connection).
func startAt(n int) int { return rand.IntN(n) }

// benchList: the first page of 50 of every listing (and one page from the
// middle of the users table); the baseline fetches the same 51 rows (the 51st
// tells whether a next page exists).
func (w *world) benchList(b *testing.B) {
	yes := true
	users := w.db.Users()
	userRows := func(b *testing.B, query string, args ...any) {
		rawRows(b, w.prepare(b, w.reader, "SELECT "+benchUserColumns+" FROM users u"+query+" ORDER BY u.created_at, u.id LIMIT 51"),
			args, func(u *rawUser) []any { return u.dest(w.backend) }, pageSize+1)
	}
	for _, c := range []struct {
		name   string
		filter pierredb.UserFilter
		where  string
		args   []any
	}{
		{"Users", pierredb.UserFilter{}, "", nil},
		{"UsersDeep", pierredb.UserFilter{Cursor: w.midCursor}, " WHERE (u.created_at, u.id) > (?, ?)", []any{benchStamp(w.mid), w.users[w.mid]}},
		{"UsersPending", pierredb.UserFilter{Status: pierredb.StatusPending}, " WHERE u.user_status = ?", []any{"pending"}},
		{"UsersSuspended", pierredb.UserFilter{Status: pierredb.StatusSuspended}, " WHERE u.user_status = ?", []any{"suspended"}},
		{"UsersAdmin", pierredb.UserFilter{IsAdmin: &yes}, " WHERE u.is_admin = ?", []any{true}},
	} {
		w.add("List/"+c.name, func(b *testing.B) {
			b.Run("pierre", func(b *testing.B) {
				f := c.filter
				f.Limit = pageSize
				pierrePage(b, func(ctx context.Context) (pierredb.Page[pierredb.User], error) { return users.List(ctx, f) }, pageSize, true)
			})
			b.Run("raw-prepared", func(b *testing.B) { userRows(b, c.where, c.args...) })
		})
	}

	memberUsers := func(b *testing.B) {
		stmt := w.prepare(b, w.reader, "SELECT "+benchUserColumns+", m.created_at FROM tenant_users m JOIN users u ON u.id = m.user_id"+
			" WHERE m.tenant_id = ? ORDER BY m.created_at, m.user_id LIMIT 51")
		rawRows(b, stmt, []any{w.big}, func(u *rawMemberUser) []any { return append(u.dest(w.backend), u.Joined.dest(w.backend)) }, pageSize+1)
	}
	w.add("List/UsersByTenant", func(b *testing.B) {
		b.Run("pierre", func(b *testing.B) {
			pierrePage(b, func(ctx context.Context) (pierredb.Page[pierredb.User], error) {
				return users.List(ctx, pierredb.UserFilter{TenantID: w.big, Limit: pageSize})
			}, pageSize, true)
		})
		b.Run("raw-prepared", memberUsers)
	})
	w.add("List/MembersListUsers", func(b *testing.B) {
		b.Run("pierre", func(b *testing.B) {
			scope := w.newScope(b)
			pierrePage(b, func(ctx context.Context) (pierredb.Page[pierredb.User], error) {
				return scope().Members().ListUsers(ctx, pierredb.UserFilter{Limit: pageSize})
			}, pageSize, true)
		})
		b.Run("raw-prepared", memberUsers)
	})
	w.add("List/Members", func(b *testing.B) {
		b.Run("pierre", func(b *testing.B) {
			scope := w.newScope(b)
			pierrePage(b, func(ctx context.Context) (pierredb.Page[pierredb.Membership], error) {
				return scope().Members().List(ctx, pierredb.ListOptions{Limit: pageSize})
			}, pageSize, true)
		})
		b.Run("raw-prepared", func(b *testing.B) {
			stmt := w.prepare(b, w.reader, "SELECT "+benchMemberColumns+" FROM tenant_users m WHERE m.tenant_id = ? ORDER BY m.created_at, m.user_id LIMIT 51")
			rawRows(b, stmt, []any{w.big}, func(m *rawMember) []any { return m.dest(w.backend) }, pageSize+1)
		})
	})
	w.add("List/UserTenants", func(b *testing.B) {
		b.Run("pierre", func(b *testing.B) {
			meterCPU(b)
			ctx := b.Context()
			for b.Loop() {
				ts, err := users.Tenants(ctx, w.multi)
				if err != nil || len(ts) != multiTenants {
					b.Fatalf("got %d tenants (%v), want %d", len(ts), err, multiTenants)
				}
			}
		})
		b.Run("raw-prepared", func(b *testing.B) {
			stmt := w.prepare(b, w.reader, "SELECT "+benchTenantColumns+", m.role FROM tenant_users m JOIN tenants t ON t.id = m.tenant_id"+
				" WHERE m.user_id = ? ORDER BY m.created_at, m.tenant_id")
			rawRows(b, stmt, []any{w.multi}, func(t *rawTenant) []any { return t.dest(w.backend, true) }, multiTenants)
		})
	})
	w.add("List/TenantsByOwner", func(b *testing.B) {
		b.Run("pierre", func(b *testing.B) {
			pierrePage(b, func(ctx context.Context) (pierredb.Page[pierredb.Tenant], error) {
				return w.db.Tenants().List(ctx, pierredb.TenantFilter{OwnerUserID: w.owner, Limit: pageSize})
			}, pageSize, true)
		})
		b.Run("raw-prepared", func(b *testing.B) {
			stmt := w.prepare(b, w.reader, "SELECT "+benchTenantColumns+" FROM tenants t WHERE t.owner_user_id = ? ORDER BY t.created_at, t.id LIMIT 51")
			rawRows(b, stmt, []any{w.owner}, func(t *rawTenant) []any { return t.dest(w.backend, false) }, pageSize+1)
		})
	})
}

// benchCount: every count. raw-prepared reads what pierre reads (the
// trigger-kept counters, or the tenant's memberships); raw-count is the naive
// count(*) over users that the counters replace, for reference.
func (w *world) benchCount(b *testing.B) {
	yes, no := true, false
	count := func(b *testing.B, want int, stmt *sql.Stmt, args ...any) {
		meterCPU(b)
		ctx := b.Context()
		for b.Loop() {
			var n int64
			if err := stmt.QueryRowContext(ctx, args...).Scan(&n); err != nil || int(n) != want {
				b.Fatalf("count = %d (%v), want %d", n, err, want)
			}
		}
	}
	pierreCount := func(b *testing.B, fn func(ctx context.Context) (int, error)) int {
		want, err := fn(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		meterCPU(b)
		for b.Loop() {
			if n, err := fn(b.Context()); err != nil || n != want {
				b.Fatalf("count = %d (%v), want %d", n, err, want)
			}
		}
		return want
	}
	for _, c := range []struct {
		name   string
		filter pierredb.UserFilter
		where  string // on user_counts c and on users
		args   []any
	}{
		{"Users", pierredb.UserFilter{}, "", nil},
		{"UsersPending", pierredb.UserFilter{Status: pierredb.StatusPending}, " WHERE user_status = ?", []any{"pending"}},
		{"UsersAdmin", pierredb.UserFilter{IsAdmin: &yes}, " WHERE is_admin = ?", []any{true}},
		{"UsersActiveNonAdmin", pierredb.UserFilter{Status: pierredb.StatusActive, IsAdmin: &no}, " WHERE user_status = ? AND is_admin = ?", []any{"active", false}},
	} {
		w.add("Count/"+c.name, func(b *testing.B) {
			want, err := w.db.Users().Count(b.Context(), c.filter)
			if err != nil {
				b.Fatal(err)
			}
			b.Run("pierre", func(b *testing.B) {
				pierreCount(b, func(ctx context.Context) (int, error) { return w.db.Users().Count(ctx, c.filter) })
			})
			b.Run("raw-prepared", func(b *testing.B) {
				count(b, want, w.prepare(b, w.reader, "SELECT COALESCE(SUM(n), 0) FROM user_counts"+c.where), c.args...)
			})
			b.Run("raw-count", func(b *testing.B) {
				count(b, want, w.prepare(b, w.reader, "SELECT count(*) FROM users"+c.where), c.args...)
			})
		})
	}
	members := func(b *testing.B) {
		count(b, bigTenantSize, w.prepare(b, w.reader, "SELECT count(*) FROM tenant_users m WHERE m.tenant_id = ?"), w.big)
	}
	w.add("Count/UsersByTenant", func(b *testing.B) {
		b.Run("pierre", func(b *testing.B) {
			pierreCount(b, func(ctx context.Context) (int, error) {
				return w.db.Users().Count(ctx, pierredb.UserFilter{TenantID: w.big})
			})
		})
		b.Run("raw-prepared", members)
	})
	w.add("Count/MembersCountUsers", func(b *testing.B) {
		b.Run("pierre", func(b *testing.B) {
			scope := w.newScope(b)
			pierreCount(b, func(ctx context.Context) (int, error) {
				return scope().Members().CountUsers(ctx, pierredb.UserFilter{})
			})
		})
		b.Run("raw-prepared", members)
	})
	w.add("Count/MembersCountActive", func(b *testing.B) {
		scope := w.newScope(b)
		want, err := scope().Members().CountUsers(b.Context(), pierredb.UserFilter{Status: pierredb.StatusActive})
		if err != nil {
			b.Fatal(err)
		}
		b.Run("pierre", func(b *testing.B) {
			pierreCount(b, func(ctx context.Context) (int, error) {
				return scope().Members().CountUsers(ctx, pierredb.UserFilter{Status: pierredb.StatusActive})
			})
		})
		b.Run("raw-prepared", func(b *testing.B) {
			count(b, want, w.prepare(b, w.reader, "SELECT count(*) FROM tenant_users m JOIN users u ON u.id = m.user_id"+
				" WHERE m.tenant_id = ? AND u.user_status = ?"), w.big, "active")
		})
	})
}

// cpuMeter reports the CPU time the whole process spent per iteration
// (cpu-ns/op: user and system time of every thread, getrusage), beside the
// wall time of ns/op. SQLite runs inside the process, so on SQLite it counts
// all the work of an operation and, unlike wall time, hardly moves when other
// processes compete for the CPUs; on PostgreSQL it counts the client's side only.
type cpuMeter struct {
	b     *testing.B
	used  time.Duration
	since time.Duration
	on    bool
}

// meterCPU reports allocations and CPU time per iteration of the b.Loop that
// follows; pause and resume it around work that is outside the timer.
func meterCPU(b *testing.B) *cpuMeter {
	b.ReportAllocs()
	m := &cpuMeter{b: b}
	m.resume()
	b.Cleanup(m.report)
	return m
}

func (m *cpuMeter) pause() {
	if m.on {
		m.used += processCPU() - m.since
		m.on = false
	}
}

func (m *cpuMeter) resume() {
	if !m.on {
		m.since, m.on = processCPU(), true
	}
}

func (m *cpuMeter) report() {
	m.pause()
	if m.b.N > 0 && m.used > 0 {
		m.b.ReportMetric(float64(m.used.Nanoseconds())/float64(m.b.N), "cpu-ns/op")
	}
}

// clock is a settable clock for the write benchmarks: the real time plus an
// offset that a benchmark moves forward to make every user due for a
// last_active write again. One clock serves every Database opened on a world,
// so that no benchmark writes a last_active ahead of another's clock.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }
