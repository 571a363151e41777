package pierredb_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

// planAdminToken and planAdminUsage are the admin token tables as the plan
// seed writes them.
type planAdminToken struct {
	bun.BaseModel `bun:"table:admin_tokens"`
	ID            string `bun:"id,pk"`
	ServiceName   string `bun:"service_name"`
	TokenHash     string `bun:"token_hash"`
	TokenPrefix   string `bun:"token_prefix"`
	JWTSecretHash string `bun:"jwt_secret_hash"`
	Permissions   string `bun:"permissions"`
	IsSuperAdmin  bool   `bun:"is_super_admin"`
	CreatedAt     string `bun:"created_at"`
}

type planAdminUsage struct {
	bun.BaseModel `bun:"table:admin_token_usage"`
	ID            string `bun:"id,pk"`
	AdminTokenID  string `bun:"admin_token_id"`
	Timestamp     string `bun:"timestamp"`
	Action        string `bun:"action"`
	Success       bool   `bun:"success"`
}

var (
	// admin_jwt_secret (alias s) is not listed: it holds one row at most
	// (CHECK id = 1), and SQLite reads it by a scan that costs as much.
	adminSQLiteScan = regexp.MustCompile(`^SCAN (admin_tokens|admin_token_usage|t|u)\b`)
	adminPGScan     = regexp.MustCompile(`Seq Scan on (admin_tokens|admin_token_usage)\b|\bSort\b`)
	adminPlanned    = regexp.MustCompile(`(?is)^\s*(SELECT|UPDATE|DELETE|INSERT)\b.*\b(admin_tokens|admin_token_usage|admin_jwt_secret)\b`)
	// adminWholeTable are the statements allowed to read every admin token:
	// counting the usable super-admins, in the rare transactions that issue the
	// first token or revoke a super-admin (admin tokens are few; see
	// usableSuperAdmins).
	adminWholeTable = regexp.MustCompile(`^SELECT count\(\*\) FROM admin_tokens WHERE is_super_admin`)
)

// Every statement of the admin token domain is EXPLAINed on both engines over
// 3000 tokens and 20000 recorded actions: none may read a whole table or sort,
// but the count of usable super-admins (adminWholeTable). On PostgreSQL
// sequential scans and sorts are priced out, so a plan that keeps one has no
// index to use.
func TestAdminTokenPlansStayFlat(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		admin := db.AdminTokens()
		root, err := admin.CreateFirst(ctx, pierredb.NewAdminToken{ServiceName: "root"})
		require.NoError(t, err)
		rootP, err := admin.Verify(ctx, root.Token.Reveal(), "")
		require.NoError(t, err)

		w := pierredb.EngineOf(db).Writer
		base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		stamp := func(i int) string {
			return base.Add(time.Duration(i) * time.Second).Format("2006-01-02T15:04:05.000000Z")
		}
		toks := make([]planAdminToken, 3000)
		for i := range toks {
			toks[i] = planAdminToken{ID: fmt.Sprintf("a%05d", i), ServiceName: fmt.Sprintf("svc-%d", i%50),
				TokenHash: "hmac-sha256$v1$seed", TokenPrefix: fmt.Sprintf("p%021d", i), JWTSecretHash: "old",
				Permissions: `["list_keys"]`, IsSuperAdmin: i%100 == 0, CreatedAt: stamp(i)}
		}
		for start := 0; start < len(toks); start += 500 {
			_, err := w.NewInsert().Model(ptrTo(toks[start:min(start+500, len(toks))])).Exec(ctx)
			require.NoError(t, err)
		}
		usage := make([]planAdminUsage, 0, 20000)
		for i := range 20000 {
			usage = append(usage, planAdminUsage{ID: fmt.Sprintf("u%06d", i), AdminTokenID: toks[i%20].ID, Timestamp: stamp(i), Action: "seed", Success: true})
		}
		for start := 0; start < len(usage); start += 500 {
			_, err := w.NewInsert().Model(ptrTo(usage[start:min(start+500, len(usage))])).Exec(ctx)
			require.NoError(t, err)
		}
		_, err = w.ExecContext(ctx, "ANALYZE")
		require.NoError(t, err)

		rec := &statementRecorder{seen: map[string]planStatement{}}
		pierredb.TraceReads(db, func(q string, args []any) { rec.add(pierredb.Rebind(db, q), args) })
		pierredb.HookQueries(db, rec)

		next := func(cursor string, err error) string {
			require.NoError(t, err)
			require.NotEmpty(t, cursor, "the listing has a second page")
			return cursor
		}
		p, err := admin.List(ctx, pierredb.ListOptions{Limit: 5})
		_, err = admin.List(ctx, pierredb.ListOptions{Limit: 5, Cursor: next(p.Next, err)})
		require.NoError(t, err)
		for _, f := range []pierredb.AdminUsageFilter{{Limit: 5}, {Limit: 5, Since: base.Add(10000 * time.Second)}} {
			u, err := admin.ListUsage(ctx, "a00007", f)
			f.Cursor = next(u.Next, err)
			_, err = admin.ListUsage(ctx, "a00007", f)
			require.NoError(t, err)
		}
		_, err = admin.ListUsage(ctx, root.ID, pierredb.AdminUsageFilter{}) // empty: checks the token exists
		require.NoError(t, err)
		c, err := admin.Create(ctx, rootP, pierredb.NewAdminToken{ServiceName: "svc", Permissions: []pierredb.AdminPermission{pierredb.AdminListKeys}})
		require.NoError(t, err)
		for _, call := range []func() error{
			func() error { _, err := admin.Get(ctx, "a00123"); return err },
			func() error { _, err := admin.Verify(ctx, c.Token.Reveal(), pierredb.AdminListKeys); return err },
			func() error {
				return admin.RecordUsage(ctx, c.ID, pierredb.AdminAction{Action: "list_keys", IPAddress: "192.0.2.1"})
			},
			func() error { _, err := admin.Revoke(ctx, rootP, c.ID); return err },
			func() error { _, err := admin.Revoke(ctx, rootP, root.ID); return err },
			func() error {
				_, err := admin.CreateFirst(ctx, pierredb.NewAdminToken{ServiceName: "late"})
				return err
			},
			func() error { _, err := admin.RotateSigningSecret(ctx, rootP); return err },
		} {
			if err := call(); err != nil && !strings.Contains(err.Error(), "already exists") && !strings.Contains(err.Error(), "last usable") {
				require.NoError(t, err)
			}
		}

		conn := pierredb.EngineOf(db).Writer.DB
		explainFn := func(q string, args []any) ([]string, error) {
			return explain(ctx, conn, "EXPLAIN QUERY PLAN ", q, args)
		}
		if e.Backend == pierredb.Postgres {
			pc, err := conn.Conn(ctx)
			require.NoError(t, err)
			defer pc.Close()
			for _, set := range []string{"SET enable_seqscan = off", "SET enable_sort = off"} {
				_, err = pc.ExecContext(ctx, set)
				require.NoError(t, err)
			}
			explainFn = func(q string, args []any) ([]string, error) { return explain(ctx, pc, "EXPLAIN ", q, args) }
		}
		n := 0
		for _, st := range rec.seen {
			if !adminPlanned.MatchString(st.query) {
				continue
			}
			plan, err := explainFn(st.query, st.args)
			require.NoError(t, err, "explain %s", st.query)
			n++
			if adminWholeTable.MatchString(st.query) {
				continue
			}
			// An ordered walk of an index is allowed for a listing without any
			// condition, which stops after one page.
			unfiltered := !strings.Contains(st.query, " WHERE ") && strings.Contains(st.query, " LIMIT ")
			var bad []string
			for _, line := range plan {
				switch {
				case unfiltered && strings.Contains(line, "USING INDEX"):
				case e.Backend == pierredb.SQLite && (strings.Contains(line, "USE TEMP B-TREE") || adminSQLiteScan.MatchString(line)):
					bad = append(bad, line)
				case e.Backend == pierredb.Postgres && adminPGScan.MatchString(line):
					bad = append(bad, strings.TrimSpace(line))
				}
			}
			if len(bad) > 0 {
				t.Errorf("a plan reads a whole table:\n  query: %s\n  plan: %s\n  offending: %s", st.query, strings.Join(plan, " | "), strings.Join(bad, " | "))
			}
		}
		require.GreaterOrEqual(t, n, 12, "the test saw the statements it means to check")
		t.Logf("%d statements explained", n)
	})
}
