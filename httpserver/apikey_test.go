package httpserver_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/httpserver"
	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

// echoPrincipal is the protected handler of these tests: it answers with the
// principal RequireAPIKey and MCPVerifier left for it.
var echoPrincipal = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	out := map[string]any{}
	if p, ok := httpserver.PrincipalFromContext(r.Context()); ok {
		out["ctx"] = map[string]any{"key_id": p.KeyID, "user_id": p.UserID, "tenant_id": p.Tenant.ID(), "email": p.Email,
			"remaining": p.Remaining}
	}
	if ti := auth.TokenInfoFromContext(r.Context()); ti != nil {
		out["token_info"] = map[string]any{"user_id": ti.UserID, "expiration": ti.Expiration.UTC().Format(time.RFC3339Nano), "scopes": ti.Scopes}
		if p, ok := httpserver.PrincipalFromTokenInfo(ti); ok {
			out["mcp"] = map[string]any{"key_id": p.KeyID, "user_id": p.UserID, "tenant_id": p.Tenant.ID(), "email": p.Email}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(out)
})

// keyFixture is a tenant with members in each state and keys in each state.
type keyFixture struct {
	ann, pat, sue pierredb.User // active owner, pending member, suspended member
	scope         *pierredb.TenantScope
	keys          map[string]pierredb.CreatedAPIKey
}

func newKeyFixture(t *testing.T, h *harness) *keyFixture {
	t.Helper()
	ctx := context.Background()
	f := &keyFixture{keys: map[string]pierredb.CreatedAPIKey{}}
	f.ann = h.user("ann@example.com", true)
	f.pat = h.user("pat@example.com", false)
	f.sue = h.user("sue@example.com", true)
	tn, err := h.db.Tenants().Create(ctx, pierredb.NewTenant{Name: "Keys", Slug: "keys", OwnerUserID: f.ann.ID})
	require.NoError(t, err)
	f.scope, err = h.db.Tenant(ctx, tn.ID)
	require.NoError(t, err)
	for _, u := range []string{f.pat.ID, f.sue.ID} {
		_, err = f.scope.Members().Add(ctx, u, pierredb.RoleMember)
		require.NoError(t, err)
	}
	idle, err := h.db.Tenants().Create(ctx, pierredb.NewTenant{Name: "Idle", Slug: "idle", OwnerUserID: f.ann.ID})
	require.NoError(t, err)
	idleScope, err := h.db.Tenant(ctx, idle.ID)
	require.NoError(t, err)

	mk := func(name string, scope *pierredb.TenantScope, nk pierredb.NewAPIKey) {
		t.Helper()
		nk.Name = name
		if nk.UserID == "" {
			nk.UserID = f.ann.ID
		}
		k, err := scope.APIKeys().Create(ctx, nk)
		require.NoError(t, err)
		h.secret("API key "+name, k.Key.Reveal())
		f.keys[name] = k
	}
	mk("quota", f.scope, pierredb.NewAPIKey{RateLimit: &pierredb.RateLimit{Requests: 3, Period: pierredb.PeriodHour}})
	mk("counted", f.scope, pierredb.NewAPIKey{RateLimit: &pierredb.RateLimit{Requests: 100, Period: pierredb.PeriodHour}})
	mk("unlimited", f.scope, pierredb.NewAPIKey{Tier: pierredb.TierEnterprise})
	mk("expiring", f.scope, pierredb.NewAPIKey{ExpiresAt: h.clock.now().Add(time.Hour)})
	mk("revoked", f.scope, pierredb.NewAPIKey{})
	mk("deactivated", f.scope, pierredb.NewAPIKey{})
	mk("deleted", f.scope, pierredb.NewAPIKey{})
	mk("pending", f.scope, pierredb.NewAPIKey{UserID: f.pat.ID})
	mk("suspended", f.scope, pierredb.NewAPIKey{UserID: f.sue.ID})
	mk("idle tenant", idleScope, pierredb.NewAPIKey{})
	_, err = f.scope.APIKeys().Revoke(ctx, f.keys["revoked"].ID)
	require.NoError(t, err)
	_, err = f.scope.APIKeys().Deactivate(ctx, f.keys["deactivated"].ID)
	require.NoError(t, err)
	require.NoError(t, f.scope.APIKeys().Delete(ctx, f.keys["deleted"].ID))
	_, err = h.db.Users().Suspend(ctx, f.sue.ID)
	require.NoError(t, err)
	no := false
	_, err = h.db.Tenants().Update(ctx, idle.ID, pierredb.TenantUpdate{IsActive: &no})
	require.NoError(t, err)
	return f
}

func (f *keyFixture) key(name string) string { return f.keys[name].Key.Reveal() }

// counted sums a key's usage windows.
func (f *keyFixture) counted(t *testing.T, name string) int64 {
	t.Helper()
	page, err := f.scope.APIKeys().Usage(context.Background(), f.keys[name].ID, pierredb.UsageOptions{})
	require.NoError(t, err)
	var n int64
	for _, w := range page.Items {
		n += w.Requests
	}
	return n
}

func withKey(header, value string) http.Header {
	return http.Header{header: []string{value}}
}

func TestRequireAPIKey(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		h := newHarness(t, e, httpserver.Options{})
		f := newKeyFixture(t, h)
		protected := httpserver.RequireAPIKey(h.db, h.opts)(echoPrincipal)
		serve := func(hdr http.Header) *result {
			t.Helper()
			return h.serve(protected, request{method: http.MethodGet, path: "/tools", header: hdr})
		}
		_, hourEnd := pierredb.PeriodHour.Window(h.clock.now())

		t.Run("quota", func(t *testing.T) {
			defer h.use(t)()
			for i, hdr := range []http.Header{
				withKey("Authorization", "Bearer "+f.key("quota")),
				withKey("X-API-Key", f.key("quota")),
				withKey("Authorization", "bearer   "+f.key("quota")+"  "),
			} {
				res := serve(hdr).expect(http.StatusOK)
				assert.Equal(t, "3", res.Header.Get("X-RateLimit-Limit"))
				assert.Equal(t, strconv.Itoa(2-i), res.Header.Get("X-RateLimit-Remaining"))
				assert.Equal(t, strconv.FormatInt(hourEnd.Unix(), 10), res.Header.Get("X-RateLimit-Reset"))
				p := obj(t, res.json()["ctx"])
				assert.Equal(t, f.keys["quota"].ID, p["key_id"])
				assert.Equal(t, f.ann.ID, p["user_id"])
				assert.Equal(t, f.scope.ID(), p["tenant_id"])
				assert.Equal(t, "ann@example.com", p["email"])
				assert.Equal(t, float64(2-i), p["remaining"])
			}
			res := serve(withKey("X-API-Key", f.key("quota")))
			res.expectError(http.StatusTooManyRequests, httpserver.CodeRateLimited)
			assert.Equal(t, "3", res.Header.Get("X-RateLimit-Limit"))
			assert.Equal(t, "0", res.Header.Get("X-RateLimit-Remaining"))
			assert.Equal(t, strconv.FormatInt(hourEnd.Unix(), 10), res.Header.Get("X-RateLimit-Reset"))
			retry, err := strconv.Atoi(res.Header.Get("Retry-After"))
			require.NoError(t, err, "Retry-After %q", res.Header.Get("Retry-After"))
			assert.True(t, retry >= 1 && retry <= 3600, "Retry-After %d", retry)
			assert.Equal(t, int64(3), f.counted(t, "quota"), "the refused request is not counted")
		})

		t.Run("unlimited", func(t *testing.T) {
			defer h.use(t)()
			res := serve(withKey("X-API-Key", f.key("unlimited"))).expect(http.StatusOK)
			assert.Empty(t, res.Header.Get("X-RateLimit-Limit"), "an unlimited key has no limit to report")
			assert.Equal(t, int64(1), f.counted(t, "unlimited"), "but it is counted")
		})

		t.Run("refused", func(t *testing.T) {
			defer h.use(t)()
			good := f.key("counted")
			flipped := []byte(good)
			flipped[len(flipped)-8] ^= 1
			for _, tc := range []struct {
				name       string
				hdr        http.Header
				code       int
				errCode    string
				messageHas string
			}{
				{"no key", nil, 401, httpserver.CodeUnauthorized, "API key is required"},
				{"empty X-API-Key", withKey("X-API-Key", " "), 401, httpserver.CodeUnauthorized, ""},
				{"basic auth", withKey("Authorization", "Basic "+good), 401, httpserver.CodeUnauthorized, ""},
				{"malformed", withKey("X-API-Key", "pk_live_short"), 401, httpserver.CodeUnauthorized, "invalid credential"},
				{"garbage", withKey("Authorization", "Bearer \x00\xff"), 401, httpserver.CodeUnauthorized, "invalid credential"},
				{"checksum", withKey("X-API-Key", string(flipped)), 401, httpserver.CodeUnauthorized, "invalid credential"},
				{"unknown", withKey("X-API-Key", f.key("deleted")), 401, httpserver.CodeUnauthorized, "invalid credential"},
				{"revoked", withKey("X-API-Key", f.key("revoked")), 401, httpserver.CodeUnauthorized, "revoked"},
				{"deactivated", withKey("Authorization", "Bearer "+f.key("deactivated")), 401, httpserver.CodeUnauthorized, "deactivated"},
				{"pending user", withKey("X-API-Key", f.key("pending")), 403, httpserver.CodeForbidden, "awaiting approval"},
				{"suspended user", withKey("X-API-Key", f.key("suspended")), 403, httpserver.CodeForbidden, "suspended"},
				{"inactive tenant", withKey("X-API-Key", f.key("idle tenant")), 403, httpserver.CodeForbidden, "tenant is deactivated"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					defer h.use(t)()
					res := serve(tc.hdr)
					m := res.expectError(tc.code, tc.errCode)
					assert.Contains(t, m["message"], tc.messageHas)
					if tc.code == http.StatusUnauthorized {
						assert.Contains(t, res.Header.Get("WWW-Authenticate"), "Bearer")
					}
					assert.Empty(t, res.Header.Get("X-RateLimit-Limit"))
				})
			}
			assert.Equal(t, int64(0), f.counted(t, "counted"))
			assert.False(t, strings.Contains(h.logs.String(), `"level":"ERROR"`), "a refused key is no server error")
		})

		// Last: the store's clock passes the expiring key's expiry.
		t.Run("expired", func(t *testing.T) {
			defer h.use(t)()
			serve(withKey("X-API-Key", f.key("expiring"))).expect(http.StatusOK)
			h.clock.add(2 * time.Hour)
			m := serve(withKey("X-API-Key", f.key("expiring"))).expectError(http.StatusUnauthorized, httpserver.CodeUnauthorized)
			assert.Contains(t, m["message"], "expired")
		})
	})
}

func TestMCPVerifier(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		h := newHarness(t, e, httpserver.Options{})
		f := newKeyFixture(t, h)
		mcpOnly := auth.RequireBearerToken(httpserver.MCPVerifier(h.db), nil)(echoPrincipal)
		both := httpserver.RequireAPIKey(h.db, h.opts)(mcpOnly)
		bearer := func(name string) http.Header { return withKey("Authorization", "Bearer "+f.key(name)) }

		t.Run("verifier alone", func(t *testing.T) {
			defer h.use(t)()
			res := h.serve(mcpOnly, request{method: "POST", path: "/mcp", header: bearer("counted")}).expect(http.StatusOK)
			m := res.json()
			assert.NotContains(t, m, "ctx")
			p := obj(t, m["mcp"])
			assert.Equal(t, f.keys["counted"].ID, p["key_id"])
			assert.Equal(t, f.scope.ID(), p["tenant_id"])
			ti := obj(t, m["token_info"])
			assert.Equal(t, f.ann.ID, ti["user_id"], "TokenInfo.UserID is the key's user")
			exp, err := time.Parse(time.RFC3339Nano, str(t, ti["expiration"]))
			require.NoError(t, err)
			assert.True(t, exp.After(time.Now()), "a key without expiry gets a future Expiration")
			assert.Equal(t, int64(1), f.counted(t, "counted"))

			// A key that expires reports its expiry.
			ti = obj(t, h.serve(mcpOnly, request{method: "POST", path: "/mcp", header: bearer("expiring")}).expect(http.StatusOK).json()["token_info"])
			exp, err = time.Parse(time.RFC3339Nano, str(t, ti["expiration"]))
			require.NoError(t, err)
			assert.WithinDuration(t, f.keys["expiring"].ExpiresAt, exp, time.Millisecond)
		})

		t.Run("behind RequireAPIKey the request is counted once", func(t *testing.T) {
			defer h.use(t)()
			before := f.counted(t, "counted")
			res := h.serve(both, request{method: "POST", path: "/mcp", header: bearer("counted")}).expect(http.StatusOK)
			assert.Equal(t, before+1, f.counted(t, "counted"))
			m := res.json()
			assert.Equal(t, obj(t, m["ctx"])["key_id"], obj(t, m["mcp"])["key_id"])
			assert.Equal(t, obj(t, m["ctx"])["user_id"], obj(t, m["token_info"])["user_id"])
			assert.Equal(t, "100", res.Header.Get("X-RateLimit-Limit"))
			// X-API-Key for RequireAPIKey and another key as the bearer token:
			// each is verified (and counted) on its own.
			hdr := bearer("unlimited")
			hdr.Set("X-API-Key", f.key("counted"))
			m = h.serve(both, request{method: "POST", path: "/mcp", header: hdr}).expect(http.StatusOK).json()
			assert.Equal(t, f.keys["counted"].ID, obj(t, m["ctx"])["key_id"])
			assert.Equal(t, f.keys["unlimited"].ID, obj(t, m["mcp"])["key_id"])
			assert.Equal(t, before+2, f.counted(t, "counted"))
		})

		t.Run("refused", func(t *testing.T) {
			defer h.use(t)()
			for range 3 {
				h.serve(mcpOnly, request{method: "POST", path: "/mcp", header: bearer("quota")}).expect(http.StatusOK)
			}
			for _, tc := range []struct {
				name string
				hdr  http.Header
				code int
			}{
				{"no token", nil, 401},
				{"malformed", withKey("Authorization", "Bearer pk_live_nope"), 401},
				{"unknown", bearer("deleted"), 401},
				{"revoked", bearer("revoked"), 401},
				{"deactivated", bearer("deactivated"), 401},
				{"pending user", bearer("pending"), 401},
				{"suspended user", bearer("suspended"), 401},
				{"inactive tenant", bearer("idle tenant"), 401},
				{"quota used up", bearer("quota"), 401},
			} {
				res := h.serve(mcpOnly, request{method: "POST", path: "/mcp", header: tc.hdr})
				assert.Equal(t, tc.code, res.Code, "%s: %s", tc.name, res.Body)
			}
			// Behind RequireAPIKey, the used-up quota is a 429 with Retry-After.
			res := h.serve(both, request{method: "POST", path: "/mcp", header: bearer("quota")})
			res.expectError(http.StatusTooManyRequests, httpserver.CodeRateLimited)
			assert.NotEmpty(t, res.Header.Get("Retry-After"))
			assert.False(t, strings.Contains(h.logs.String(), `"level":"ERROR"`), "a refused key is no server error")
		})

		t.Run("PrincipalFromTokenInfo", func(t *testing.T) {
			_, ok := httpserver.PrincipalFromTokenInfo(nil)
			assert.False(t, ok)
			_, ok = httpserver.PrincipalFromTokenInfo(&auth.TokenInfo{})
			assert.False(t, ok)
			_, ok = httpserver.PrincipalFromTokenInfo(&auth.TokenInfo{Extra: map[string]any{"pierre.principal": "forged"}})
			assert.False(t, ok)
		})

		t.Run("protected resource metadata", func(t *testing.T) {
			defer h.use(t)()
			md := httpserver.ProtectedResourceMetadata("https://mcp.example.com/mcp", "Example MCP")
			res := h.serve(md, request{method: "GET", path: "/.well-known/oauth-protected-resource"})
			require.Equal(t, http.StatusOK, res.Code, "%s", res.Body)
			m := res.json()
			assert.Equal(t, "https://mcp.example.com/mcp", m["resource"])
			assert.Equal(t, "Example MCP", m["resource_name"])
			assert.Equal(t, []any{"header"}, m["bearer_methods_supported"])
		})
	})
}
