package pierredb_test

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

type planUser struct {
	bun.BaseModel `bun:"table:users"`
	ID            string `bun:"id,pk"`
	Email         string `bun:"email"`
	PasswordHash  string `bun:"password_hash"`
	IsAdmin       bool   `bun:"is_admin"`
	UserStatus    string `bun:"user_status"`
	CreatedAt     string `bun:"created_at"`
	UpdatedAt     string `bun:"updated_at"`
}

type planTenant struct {
	bun.BaseModel `bun:"table:tenants"`
	ID            string `bun:"id,pk"`
	Name          string `bun:"name"`
	Slug          string `bun:"slug"`
	OwnerUserID   string `bun:"owner_user_id"`
	CreatedAt     string `bun:"created_at"`
	UpdatedAt     string `bun:"updated_at"`
}

type planMember struct {
	bun.BaseModel `bun:"table:tenant_users"`
	TenantID      string `bun:"tenant_id,pk"`
	UserID        string `bun:"user_id,pk"`
	Role          string `bun:"role"`
	CreatedAt     string `bun:"created_at"`
	UpdatedAt     string `bun:"updated_at"`
}

// seedPlanWorld writes users users (every 50th an admin, a third pending) and
// tenants tenants of 20 members each straight into the tables, then gathers
// statistics, so that the planner sees a table shaped like production's.
func seedPlanWorld(t *testing.T, db *pierredb.Database, users, tenants int) {
	t.Helper()
	ctx := t.Context()
	w := pierredb.EngineOf(db).Writer
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	stamp := func(i int) string {
		return base.Add(time.Duration(i) * time.Second).Format("2006-01-02T15:04:05.000000Z")
	}
	us := make([]planUser, users)
	for i := range us {
		status := "active"
		if i%3 == 0 {
			status = "pending"
		}
		us[i] = planUser{ID: fmt.Sprintf("u%06d", i), Email: fmt.Sprintf("seed%06d@example.com", i), PasswordHash: "$argon2id$seed",
			IsAdmin: i%50 == 0, UserStatus: status, CreatedAt: stamp(i), UpdatedAt: stamp(i)}
	}
	for start := 0; start < len(us); start += 500 {
		_, err := w.NewInsert().Model(ptrTo(us[start:min(start+500, len(us))])).Exec(ctx)
		require.NoError(t, err)
	}
	var ts []planTenant
	var ms []planMember
	for i := range tenants {
		id := fmt.Sprintf("t%04d", i)
		owner := us[i*20+1].ID
		if i%2 == 0 {
			owner = us[0].ID // one user owns half the tenants
		}
		ts = append(ts, planTenant{ID: id, Name: "T", Slug: fmt.Sprintf("seed-%d", i), OwnerUserID: owner, CreatedAt: stamp(i), UpdatedAt: stamp(i)})
		ms = append(ms, planMember{TenantID: id, UserID: owner, Role: "owner", CreatedAt: stamp(i * 20), UpdatedAt: stamp(i * 20)})
		for j := 2; j < 21; j++ {
			ms = append(ms, planMember{TenantID: id, UserID: us[i*20+j].ID, Role: "member", CreatedAt: stamp(i*20 + j), UpdatedAt: stamp(i*20 + j)})
		}
	}
	_, err := w.NewInsert().Model(&ts).Exec(ctx)
	require.NoError(t, err)
	for start := 0; start < len(ms); start += 500 {
		_, err := w.NewInsert().Model(ptrTo(ms[start:min(start+500, len(ms))])).Exec(ctx)
		require.NoError(t, err)
	}
	_, err = w.ExecContext(ctx, "ANALYZE")
	require.NoError(t, err)
}

func ptrTo[T any](v T) *T { return &v }

// planStatement is one statement pierre ran, with what it ran with.
type planStatement struct {
	query string // as the engine receives it
	args  []any
}

// statementRecorder collects every distinct statement a Database runs: the
// prepared reads (their '?' text and arguments) and bun's statements (values
// written into the text).
type statementRecorder struct {
	mu   sync.Mutex
	seen map[string]planStatement
}

func (r *statementRecorder) add(query string, args []any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.seen[query]; !ok {
		r.seen[query] = planStatement{query: query, args: args}
	}
}

func (r *statementRecorder) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context {
	return ctx
}
func (r *statementRecorder) AfterQuery(_ context.Context, e *bun.QueryEvent) {
	r.add(e.Query, nil)
}

// Every listing and count, and every other statement the user, tenant and
// membership domains run, is EXPLAINed on both engines; none may read the whole
// of users or tenant_users (a full scan, or a sort of every row), so that no
// later change can bring back a cost that grows with the table. On PostgreSQL
// sequential scans and sorts are priced out (enable_seqscan, enable_sort off),
// so a plan that keeps one has no index to use.
func TestPlansStayFlat(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		seedPlanWorld(t, db, 3000, 20)
		rec := &statementRecorder{seen: map[string]planStatement{}}
		pierredb.TraceReads(db, func(q string, args []any) { rec.add(pierredb.Rebind(db, q), args) })
		pierredb.HookQueries(db, rec)

		exercisePlans(t, db)

		conn := pierredb.EngineOf(db).Writer.DB
		if e.Backend == pierredb.Postgres {
			c, err := conn.Conn(ctx)
			require.NoError(t, err)
			defer c.Close()
			_, err = c.ExecContext(ctx, "SET enable_seqscan = off")
			require.NoError(t, err)
			_, err = c.ExecContext(ctx, "SET enable_sort = off")
			require.NoError(t, err)
			checkPlans(t, rec, func(q string, args []any) ([]string, error) { return explain(ctx, c, "EXPLAIN ", q, args) }, pgBad)
		} else {
			checkPlans(t, rec, func(q string, args []any) ([]string, error) {
				return explain(ctx, conn, "EXPLAIN QUERY PLAN ", q, args)
			}, sqliteBad)
		}
	})
}

// exercisePlans runs every read and write the plans test covers, with each
// filter combination and a second page of each listing.
func exercisePlans(t *testing.T, db *pierredb.Database) {
	ctx := t.Context()
	yes, no := true, false
	users, tenants := db.Users(), db.Tenants()
	scope, err := db.Tenant(ctx, "t0003")
	require.NoError(t, err)
	members := scope.Members()
	next := func(cursor string, err error) string {
		require.NoError(t, err)
		require.NotEmpty(t, cursor, "the listing has a second page")
		return cursor
	}
	for _, f := range []pierredb.UserFilter{{}, {Status: pierredb.StatusPending}, {IsAdmin: &yes}, {IsAdmin: &no},
		{Status: pierredb.StatusActive, IsAdmin: &no}, {TenantID: "t0003"}, {TenantID: "t0003", Status: pierredb.StatusActive}} {
		f.Limit = 5
		p, err := users.List(ctx, f)
		f.Cursor = next(p.Next, err)
		_, err = users.List(ctx, f)
		require.NoError(t, err)
		_, err = users.Count(ctx, f)
		require.NoError(t, err)
		f.Cursor = ""
		p, err = members.ListUsers(ctx, f)
		require.NoError(t, err)
		if p.Next != "" { // a filter no member matches has no second page
			f.Cursor = p.Next
			_, err = members.ListUsers(ctx, f)
			require.NoError(t, err)
		}
		_, err = members.CountUsers(ctx, f)
		require.NoError(t, err)
	}
	for _, f := range []pierredb.TenantFilter{{}, {OwnerUserID: "u000000"}} {
		f.Limit = 1
		p, err := tenants.List(ctx, f)
		f.Cursor = next(p.Next, err)
		_, err = tenants.List(ctx, f)
		require.NoError(t, err)
	}
	p, err := members.List(ctx, pierredb.ListOptions{Limit: 5})
	_, err = members.List(ctx, pierredb.ListOptions{Limit: 5, Cursor: next(p.Next, err)})
	require.NoError(t, err)
	for _, call := range []func() error{
		func() error { _, err := users.Get(ctx, "u000123"); return err },
		func() error { _, err := users.GetByEmail(ctx, "seed000123@example.com"); return err },
		func() error { _, err := users.Tenants(ctx, "u000062"); return err },
		func() error { _, err := tenants.Get(ctx, "t0003"); return err },
		func() error { _, err := tenants.GetBySlug(ctx, "seed-3"); return err },
		func() error { _, err := members.Get(ctx, "u000062"); return err },
		func() error { _, err := members.GetUser(ctx, "u000062"); return err },
		func() error { return users.Touch(ctx, "u000062") },
		func() error { _, err := users.Approve(ctx, "u000063", pierredb.ByService("plans")); return err },
		func() error { _, err := users.Suspend(ctx, "u000064"); return err },
		func() error { _, err := users.Reactivate(ctx, "u000064"); return err },
		func() error { _, err := users.SetAdmin(ctx, "u000065", true); return err },
		func() error { _, err := users.SetAdmin(ctx, "u000065", false); return err },
		func() error { _, err := members.SetRole(ctx, "u000062", pierredb.RoleAdmin); return err },
		func() error { return members.Remove(ctx, "u000062") },
		func() error { _, err := members.Add(ctx, "u000062", pierredb.RoleMember); return err },
		func() error { return users.Delete(ctx, "u002999") },
		func() error { return tenants.Delete(ctx, "t0019") },
	} {
		require.NoError(t, call())
	}
}

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// explain returns the plan of query as lines of text.
func explain(ctx context.Context, q queryer, prefix, query string, args []any) ([]string, error) {
	rows, err := q.QueryContext(ctx, prefix+query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		out = append(out, fmt.Sprint(vals[len(vals)-1])) // the detail / plan text
	}
	return out, rows.Err()
}

var (
	// SQLite: a SCAN of users (alias u), tenant_users (alias m) or tenants
	// (alias t), or a temporary sort.
	sqliteScan = regexp.MustCompile(`^SCAN (users|tenant_users|tenants|u|m|t)\b`)
	// PostgreSQL: a sequential scan or a sort of those tables, or a sequential
	// scan of the user counters: a bulk insert of users in one transaction
	// leaves their dead versions over hundreds of pages that stay in the file.
	pgScan = regexp.MustCompile(`Seq Scan on (users|tenant_users|tenants|user_counts)\b|\bSort\b`)
)

// sqliteBad reports the plan lines that read a whole table. An ordered walk of
// an index is allowed only for a listing without any condition, which stops
// after one page.
func sqliteBad(query string, plan []string) []string {
	unfiltered := !strings.Contains(query, " WHERE ") && strings.Contains(query, " LIMIT ")
	var bad []string
	for _, line := range plan {
		switch {
		case strings.Contains(line, "USE TEMP B-TREE"):
			bad = append(bad, line)
		case sqliteScan.MatchString(line) && !(unfiltered && strings.Contains(line, "USING") && strings.Contains(line, "INDEX")):
			bad = append(bad, line)
		}
	}
	return bad
}

func pgBad(query string, plan []string) []string {
	unfiltered := !strings.Contains(query, " WHERE ") && strings.Contains(query, " LIMIT ")
	var bad []string
	for _, line := range plan {
		if pgScan.MatchString(line) && !(unfiltered && strings.Contains(line, "Index")) {
			bad = append(bad, strings.TrimSpace(line))
		}
	}
	return bad
}

var planned = regexp.MustCompile(`(?is)^\s*(SELECT|UPDATE|DELETE|INSERT)\b.*\b(users|tenant_users|tenants|user_counts)\b`)

func checkPlans(t *testing.T, rec *statementRecorder, explainFn func(string, []any) ([]string, error), bad func(string, []string) []string) {
	t.Helper()
	n := 0
	for _, st := range rec.seen {
		if !planned.MatchString(st.query) || strings.Contains(st.query, "pierredb_migrations") {
			continue
		}
		plan, err := explainFn(st.query, st.args)
		require.NoError(t, err, "explain %s", st.query)
		if b := bad(st.query, plan); len(b) > 0 {
			t.Errorf("a plan reads a whole table:\n  query: %s\n  plan: %s\n  offending: %s", st.query, strings.Join(plan, " | "), strings.Join(b, " | "))
		}
		n++
	}
	require.Greater(t, n, 40, "the test saw the statements it means to check")
	t.Logf("%d statements explained", n)
}
