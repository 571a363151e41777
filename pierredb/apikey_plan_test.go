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

type planAPIKey struct {
	bun.BaseModel `bun:"table:api_keys"`
	ID            string `bun:"id,pk"`
	TenantID      string `bun:"tenant_id"`
	UserID        string `bun:"user_id"`
	Name          string `bun:"name"`
	KeyPrefix     string `bun:"key_prefix"`
	KeyHash       string `bun:"key_hash"`
	IsActive      bool   `bun:"is_active"`
	CreatedAt     string `bun:"created_at"`
	UpdatedAt     string `bun:"updated_at"`
}

type planA2AClient struct {
	bun.BaseModel    `bun:"table:a2a_clients"`
	ClientID         string `bun:"client_id,pk"`
	TenantID         string `bun:"tenant_id"`
	UserID           string `bun:"user_id"`
	Name             string `bun:"name"`
	ClientSecretHash string `bun:"client_secret_hash"`
	IsActive         bool   `bun:"is_active"`
	CreatedAt        string `bun:"created_at"`
	UpdatedAt        string `bun:"updated_at"`
}

type planUsage struct {
	bun.BaseModel `bun:"table:api_key_usage"`
	TenantID      string `bun:"tenant_id"`
	APIKeyID      string `bun:"api_key_id"`
	WindowStart   string `bun:"window_start"`
	RequestCount  int64  `bun:"request_count"`
	UpdatedAt     string `bun:"updated_at"`
}

// seedCredentials writes, on top of seedPlanWorld's users and tenants, keys and
// clients for every member of every tenant (half of them inactive), three
// monthly usage windows for every key, and 2000 hourly windows for one.
func seedCredentials(t *testing.T, db *pierredb.Database, tenants int) {
	t.Helper()
	ctx := t.Context()
	w := pierredb.EngineOf(db).Writer
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	stamp := func(t time.Time) string { return t.Format("2006-01-02T15:04:05.000000Z") }
	var keys []planAPIKey
	var clients []planA2AClient
	var usage []planUsage
	for ti := range tenants {
		tenant := fmt.Sprintf("t%04d", ti)
		for j := 2; j < 21; j++ {
			user := fmt.Sprintf("u%06d", ti*20+j)
			for k := range 3 {
				n := len(keys)
				keys = append(keys, planAPIKey{ID: fmt.Sprintf("k%06d", n), TenantID: tenant, UserID: user, Name: fmt.Sprintf("key %d", k),
					KeyPrefix: fmt.Sprintf("pk_live_%012d", n), KeyHash: "h", IsActive: n%2 == 0,
					CreatedAt: stamp(base.Add(time.Duration(n) * time.Second)), UpdatedAt: stamp(base)})
				clients = append(clients, planA2AClient{ClientID: fmt.Sprintf("a2a_%022d", n), TenantID: tenant, UserID: user, Name: "c",
					ClientSecretHash: "h", IsActive: n%2 == 0, CreatedAt: stamp(base.Add(time.Duration(n) * time.Second)), UpdatedAt: stamp(base)})
			}
		}
	}
	for i := range 2000 { // hourly windows of one key
		usage = append(usage, planUsage{TenantID: "t0003", APIKeyID: keys[3*19*3].ID, WindowStart: stamp(base.Add(time.Duration(i) * time.Hour)),
			RequestCount: 1, UpdatedAt: stamp(base)})
	}
	for _, k := range keys { // and a few months of every other key
		if k.ID == keys[3*19*3].ID {
			continue
		}
		for m := range 3 {
			usage = append(usage, planUsage{TenantID: k.TenantID, APIKeyID: k.ID, WindowStart: stamp(base.AddDate(0, m, 0)), RequestCount: 1, UpdatedAt: stamp(base)})
		}
	}
	for start := 0; start < len(keys); start += 500 {
		_, err := w.NewInsert().Model(ptrTo(keys[start:min(start+500, len(keys))])).Exec(ctx)
		require.NoError(t, err)
		_, err = w.NewInsert().Model(ptrTo(clients[start:min(start+500, len(clients))])).Exec(ctx)
		require.NoError(t, err)
	}
	for start := 0; start < len(usage); start += 500 {
		_, err := w.NewInsert().Model(ptrTo(usage[start:min(start+500, len(usage))])).Exec(ctx)
		require.NoError(t, err)
	}
	_, err := w.ExecContext(ctx, "ANALYZE")
	require.NoError(t, err)
}

var (
	credSQLiteScan = regexp.MustCompile(`^SCAN (api_keys|api_key_usage|a2a_clients|a2a_client_usage|users|tenants|tenant_users|k|w|c|u|t)\b`)
	credPGScan     = regexp.MustCompile(`Seq Scan on (api_keys|api_key_usage|a2a_clients|a2a_client_usage|users|tenants|tenant_users)\b|\bSort\b`)
	credTables     = regexp.MustCompile(`(?is)^\s*(WITH|SELECT|UPDATE|DELETE|INSERT)\b.*\b(api_keys|api_key_usage|a2a_clients|a2a_client_usage)\b`)
)

// Every statement of the API key and A2A client domains (listings with each
// filter and a second page, reads, state changes, verification, counting and
// last use) is EXPLAINed on both engines; none may read a whole table or sort
// one, so each costs the same at 10k keys as at 100.
func TestCredentialPlansStayFlat(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		seedPlanWorld(t, db, 3000, 20)
		seedCredentials(t, db, 20)
		rec := &statementRecorder{seen: map[string]planStatement{}}
		pierredb.TraceReads(db, func(q string, args []any) { rec.add(pierredb.Rebind(db, q), args) })
		pierredb.TraceWrites(db, func(q string, args []any) { rec.add(pierredb.Rebind(db, q), args) })
		pierredb.HookQueries(db, rec)

		exerciseCredentialPlans(t, db)

		conn := pierredb.EngineOf(db).Writer.DB
		n := 0
		check := func(explainFn func(string, []any) ([]string, error), bad func(string) bool) {
			for _, st := range rec.seen {
				if !credTables.MatchString(st.query) {
					continue
				}
				plan, err := explainFn(st.query, st.args)
				require.NoError(t, err, "explain %s", st.query)
				var offending []string
				for _, line := range plan {
					if bad(line) {
						offending = append(offending, strings.TrimSpace(line))
					}
				}
				if len(offending) > 0 {
					t.Errorf("a plan reads a whole table:\n  query: %s\n  plan: %s\n  offending: %s", st.query, strings.Join(plan, " | "), strings.Join(offending, " | "))
				}
				n++
			}
		}
		if e.Backend == pierredb.Postgres {
			c, err := conn.Conn(ctx)
			require.NoError(t, err)
			defer c.Close()
			for _, set := range []string{"SET enable_seqscan = off", "SET enable_sort = off"} {
				_, err = c.ExecContext(ctx, set)
				require.NoError(t, err)
			}
			check(func(q string, args []any) ([]string, error) { return explain(ctx, c, "EXPLAIN ", q, args) },
				func(line string) bool { return credPGScan.MatchString(line) })
		} else {
			check(func(q string, args []any) ([]string, error) {
				return explain(ctx, conn, "EXPLAIN QUERY PLAN ", q, args)
			},
				func(line string) bool {
					return strings.Contains(line, "USE TEMP B-TREE") || credSQLiteScan.MatchString(line)
				})
		}
		require.Greater(t, n, 25, "the test saw the statements it means to check")
		t.Logf("%d statements explained", n)
	})
}

func exerciseCredentialPlans(t *testing.T, db *pierredb.Database) {
	ctx := t.Context()
	scope, err := db.Tenant(ctx, "t0003")
	require.NoError(t, err)
	keys, clients := scope.APIKeys(), scope.A2AClients()
	yes, no := true, false
	for _, f := range []pierredb.APIKeyFilter{{}, {UserID: "u000062"}, {Active: &yes}, {Active: &no}, {UserID: "u000062", Active: &no}} {
		f.Limit = 1
		p, err := keys.List(ctx, f)
		require.NoError(t, err)
		require.NotEmpty(t, p.Next, "%+v: %d items", f, len(p.Items))
		f.Cursor = p.Next
		_, err = keys.List(ctx, f)
		require.NoError(t, err)
	}
	for _, f := range []pierredb.A2AClientFilter{{}, {UserID: "u000062"}, {Active: &yes}, {Active: &no}, {UserID: "u000062", Active: &no}} {
		f.Limit = 1
		p, err := clients.List(ctx, f)
		require.NoError(t, err)
		require.NotEmpty(t, p.Next, "%+v: %d items", f, len(p.Items))
		f.Cursor = p.Next
		_, err = clients.List(ctx, f)
		require.NoError(t, err)
	}
	k, err := keys.Create(ctx, pierredb.NewAPIKey{UserID: "u000062", Name: "plans", RateLimit: &pierredb.RateLimit{Requests: 100, Period: pierredb.PeriodHour}})
	require.NoError(t, err)
	c, err := clients.Register(ctx, pierredb.NewA2AClient{UserID: "u000062", Name: "plans"})
	require.NoError(t, err)
	heavy := "k000171" // the key with 2000 hourly windows: t0003's first
	u, err := keys.Usage(ctx, heavy, pierredb.UsageOptions{Limit: 5})
	require.NoError(t, err)
	require.NotEmpty(t, u.Next)
	for _, call := range []func() error{
		func() error {
			_, err := keys.Usage(ctx, heavy, pierredb.UsageOptions{Limit: 5, Cursor: u.Next})
			return err
		},
		func() error {
			_, err := keys.Usage(ctx, heavy, pierredb.UsageOptions{Since: time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC)})
			return err
		},
		func() error { _, err := keys.Usage(ctx, "k000172", pierredb.UsageOptions{}); return err }, // no windows: the key is checked
		func() error { _, err := db.APIKeys().Verify(ctx, k.Key.Reveal()); return err },
		func() error { _, err := db.APIKeys().Check(ctx, k.Key.Reveal()); return err },
		func() error { _, err := db.A2AClients().Verify(ctx, c.ClientID, c.Secret.Reveal()); return err },
		func() error { _, err := keys.Get(ctx, k.ID); return err },
		func() error {
			_, err := keys.Update(ctx, k.ID, pierredb.APIKeyUpdate{Name: ptrTo("renamed")})
			return err
		},
		func() error { _, err := keys.Deactivate(ctx, k.ID); return err },
		func() error { _, err := keys.Reactivate(ctx, k.ID); return err },
		func() error { _, err := keys.Revoke(ctx, k.ID); return err },
		func() error { _, err := keys.Revoke(ctx, k.ID); return err }, // the idempotent path
		func() error { return keys.Delete(ctx, k.ID) },
		func() error { _, err := clients.Get(ctx, c.ClientID); return err },
		func() error { _, err := clients.Usage(ctx, c.ClientID, pierredb.UsageOptions{}); return err },
		func() error { _, err := clients.RotateSecret(ctx, c.ClientID); return err },
		func() error { _, err := clients.Deactivate(ctx, c.ClientID); return err },
		func() error { _, err := clients.Reactivate(ctx, c.ClientID); return err },
		func() error { return clients.Delete(ctx, c.ClientID) },
	} {
		require.NoError(t, call())
	}
	// The flush of last use sums every window of a key: with 2000 windows it is
	// still one index range.
	hk, err := keys.Create(ctx, pierredb.NewAPIKey{UserID: "u000064", Name: "heavy"})
	require.NoError(t, err)
	_, err = pierredb.EngineOf(db).Writer.ExecContext(ctx, "UPDATE api_key_usage SET api_key_id = ? WHERE api_key_id = ?", hk.ID, heavy)
	require.NoError(t, err)
	_, err = db.APIKeys().Verify(ctx, hk.Key.Reveal())
	require.NoError(t, err)
}
