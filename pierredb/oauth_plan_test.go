package pierredb_test

import (
	"context"
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

// planToken is user_oauth_tokens as the plan and benchmark seeds write it.
type planToken struct {
	bun.BaseModel `bun:"table:user_oauth_tokens"`
	ID            string `bun:"id,pk"`
	TenantID      string `bun:"tenant_id"`
	UserID        string `bun:"user_id"`
	Provider      string `bun:"provider"`
	Access        []byte `bun:"access_token_encrypted"`
	Refresh       []byte `bun:"refresh_token_encrypted"`
	TokenType     string `bun:"token_type"`
	ExpiresAt     string `bun:"expires_at"`
	CreatedAt     string `bun:"created_at"`
	UpdatedAt     string `bun:"updated_at"`
}

// builtinProviders are pierre's own providers.
var builtinProviders = []pierredb.Provider{pierredb.ProviderStrava, pierredb.ProviderFitbit, pierredb.ProviderGarmin,
	pierredb.ProviderWhoop, pierredb.ProviderTerra, pierredb.ProviderPolar, pierredb.ProviderOura,
	pierredb.ProviderCoros, pierredb.ProviderSuunto}

// sealedToken builds a token row with real envelopes, as OAuthTokens.Put
// stores it, without going through Put.
func sealedToken(t testing.TB, db *pierredb.Database, id, tenantID, userID, provider string, expires time.Time) planToken {
	t.Helper()
	seal := func(column, plain string) []byte {
		env, err := db.Keyring().Encrypt([]byte(plain), pierredb.OAuthTokenContext(tenantID, userID, provider, column))
		require.NoError(t, err)
		return env
	}
	stamp := expires.UTC().Format("2006-01-02T15:04:05.000000Z")
	return planToken{ID: id, TenantID: tenantID, UserID: userID, Provider: provider,
		Access:    seal("access_token_encrypted", "access-"+id+"-0123456789abcdefghijklmnopqrstuvwxyz-0123456789abcdefghijklmnop"),
		Refresh:   seal("refresh_token_encrypted", "refresh-"+id+"-0123456789abcdefghijklmnopqrstuvwxyz"),
		TokenType: "Bearer", ExpiresAt: stamp, CreatedAt: stamp, UpdatedAt: stamp}
}

// insertTokens writes rows in chunks through the writer.
func insertTokens(t testing.TB, db *pierredb.Database, rows []planToken) {
	t.Helper()
	for start := 0; start < len(rows); start += 500 {
		chunk := rows[start:min(start+500, len(rows))]
		_, err := pierredb.EngineOf(db).Writer.NewInsert().Model(&chunk).Exec(context.Background())
		require.NoError(t, err)
	}
}

var (
	// SQLite: a SCAN of an OAuth table (or its alias), or a temporary sort.
	oauthSQLiteScan = regexp.MustCompile(`^SCAN (user_oauth_tokens|tenant_oauth_configs|o|c)\b`)
	// PostgreSQL: a sequential scan of an OAuth table, or a sort.
	oauthPGScan  = regexp.MustCompile(`Seq Scan on (user_oauth_tokens|tenant_oauth_configs)\b|\bSort\b`)
	oauthPlanned = regexp.MustCompile(`(?is)^\s*(SELECT|UPDATE|DELETE|INSERT)\b.*\b(user_oauth_tokens|tenant_oauth_configs)\b`)
)

// Every statement of the OAuth apps and tokens domains is EXPLAINed on both
// engines over a tenant among many, with tokens for every member and
// provider: none may read a whole OAuth table (or users, tenant_users,
// tenants), nor sort. On PostgreSQL sequential scans and sorts are priced out,
// so a plan that keeps one has no index to use.
func TestOAuthPlansStayFlat(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		seedPlanWorld(t, db, 1000, 20)
		providers := builtinProviders
		var rows []planToken
		base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for ti := range 20 {
			tenant := fmt.Sprintf("t%04d", ti)
			var members []string
			require.NoError(t, pierredb.EngineOf(db).Reader.NewRaw("SELECT user_id FROM tenant_users WHERE tenant_id = ?", tenant).Scan(ctx, &members))
			for mi, m := range members {
				for pi, p := range providers {
					rows = append(rows, sealedToken(t, db, fmt.Sprintf("tok-%s-%s-%s", tenant, m, p), tenant, m, string(p),
						base.Add(time.Duration(mi*9+pi)*time.Minute)))
				}
			}
		}
		insertTokens(t, db, rows)
		for ti := range 20 {
			scope, err := db.Tenant(ctx, fmt.Sprintf("t%04d", ti))
			require.NoError(t, err)
			for _, p := range providers {
				_, err := scope.OAuthApps().Set(ctx, p, pierredb.OAuthAppConfig{ClientID: "c", ClientSecret: pierredb.NewOAuthSecret("s"),
					RedirectURI: "https://x.example/cb"})
				require.NoError(t, err)
			}
		}
		_, err := pierredb.EngineOf(db).Writer.ExecContext(ctx, "ANALYZE")
		require.NoError(t, err)

		rec := &statementRecorder{seen: map[string]planStatement{}}
		pierredb.TraceReads(db, func(q string, args []any) { rec.add(pierredb.Rebind(db, q), args) })
		pierredb.TraceOAuthWrites(db, func(q string, args []any) { rec.add(pierredb.Rebind(db, q), args) })
		pierredb.HookQueries(db, rec)
		exerciseOAuthPlans(t, db, base)

		conn := pierredb.EngineOf(db).Writer.DB
		bad := func(query string, plan []string) []string {
			var out []string
			for _, line := range plan {
				switch {
				case e.Backend == pierredb.SQLite && (strings.Contains(line, "USE TEMP B-TREE") || oauthSQLiteScan.MatchString(line)):
					out = append(out, line)
				case e.Backend == pierredb.Postgres && oauthPGScan.MatchString(line):
					out = append(out, strings.TrimSpace(line))
				}
			}
			if e.Backend == pierredb.SQLite {
				return append(out, sqliteBad(query, plan)...)
			}
			return append(out, pgBad(query, plan)...)
		}
		explainFn := func(q string, args []any) ([]string, error) {
			return explain(ctx, conn, "EXPLAIN QUERY PLAN ", q, args)
		}
		if e.Backend == pierredb.Postgres {
			c, err := conn.Conn(ctx)
			require.NoError(t, err)
			defer c.Close()
			for _, set := range []string{"SET enable_seqscan = off", "SET enable_sort = off"} {
				_, err = c.ExecContext(ctx, set)
				require.NoError(t, err)
			}
			explainFn = func(q string, args []any) ([]string, error) { return explain(ctx, c, "EXPLAIN ", q, args) }
		}
		n := 0
		for _, st := range rec.seen {
			if !oauthPlanned.MatchString(st.query) && !strings.Contains(st.query, "tenant_users WHERE tenant_id") {
				continue
			}
			plan, err := explainFn(st.query, st.args)
			require.NoError(t, err, "explain %s", st.query)
			if b := bad(st.query, plan); len(b) > 0 {
				t.Errorf("a plan reads a whole table:\n  query: %s\n  plan: %s\n  offending: %s", st.query, strings.Join(plan, " | "), strings.Join(b, " | "))
			}
			n++
		}
		require.GreaterOrEqual(t, n, 15, "the test saw the statements it means to check")
		t.Logf("%d statements explained", n)
	})
}

// exerciseOAuthPlans runs every statement of the OAuth domains on tenant
// t0003, a second page of the listing included.
func exerciseOAuthPlans(t *testing.T, db *pierredb.Database, base time.Time) {
	ctx := t.Context()
	scope, err := db.Tenant(ctx, "t0003")
	require.NoError(t, err)
	apps, tokens := scope.OAuthApps(), scope.OAuthTokens()
	var user string
	require.NoError(t, pierredb.EngineOf(db).Reader.NewRaw("SELECT user_id FROM tenant_users WHERE tenant_id = 't0003' AND role = 'member' ORDER BY user_id LIMIT 1").Scan(ctx, &user))
	refresh := func(old pierredb.OAuthToken) (pierredb.OAuthToken, error) {
		old.AccessToken = pierredb.NewOAuthSecret(old.AccessToken.Reveal() + "-refreshed")
		return old, nil
	}
	p, err := tokens.ListExpiring(ctx, base.Add(24*time.Hour), pierredb.ListOptions{Limit: 5})
	require.NoError(t, err)
	require.NotEmpty(t, p.Next)
	for _, call := range []func() error{
		func() error { _, err := apps.Get(ctx, pierredb.ProviderStrava); return err },
		func() error { _, err := apps.List(ctx); return err },
		func() error {
			_, err := apps.Set(ctx, pierredb.ProviderStrava, pierredb.OAuthAppConfig{ClientID: "c2", ClientSecret: pierredb.NewOAuthSecret("s2"),
				RedirectURI: "https://x.example/cb"})
			return err
		},
		func() error { return apps.Delete(ctx, pierredb.ProviderFitbit) },
		func() error { _, err := tokens.Get(ctx, user, pierredb.ProviderStrava); return err },
		func() error { _, err := tokens.List(ctx, user); return err },
		func() error {
			_, err := tokens.ListExpiring(ctx, base.Add(24*time.Hour), pierredb.ListOptions{Limit: 5, Cursor: p.Next})
			return err
		},
		func() error { _, err := tokens.Update(ctx, user, pierredb.ProviderStrava, refresh); return err },
		func() error {
			_, err := tokens.Refresh(ctx, user, pierredb.ProviderStrava, func(_ context.Context, old pierredb.OAuthToken) (pierredb.OAuthToken, error) {
				return refresh(old)
			})
			return err
		},
		func() error {
			_, err := tokens.Put(ctx, pierredb.OAuthToken{UserID: user, Provider: pierredb.ProviderGarmin, AccessToken: pierredb.NewOAuthSecret("a")})
			return err
		},
		func() error { return tokens.Delete(ctx, user, pierredb.ProviderGarmin) },
		func() error { _, err := tokens.DeleteAll(ctx, user); return err },
		func() error { _, err := tokens.DeleteAll(ctx, user); return err }, // none left: the membership check
		func() error { _, err := tokens.List(ctx, user); return err },      // none: the membership check
	} {
		require.NoError(t, call())
	}
}
