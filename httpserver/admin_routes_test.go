package httpserver_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/httpserver"
	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

// route is one guarded admin route.
type route struct {
	method, path string // path with {user}, {token}, {tenant}, {provider} placeholders
	perm         pierredb.AdminPermission
	action       string // what admin_token_usage records
	body         string // "" for no body; "required" or "optional"
}

// adminRoutes lists every guarded route of the admin API.
var adminRoutes = []route{
	{"POST", "/admin/provision", pierredb.AdminProvisionKeys, "provision_api_key", "required"},
	{"POST", "/admin/revoke", pierredb.AdminRevokeKeys, "revoke_api_key", "required"},
	{"GET", "/admin/list", pierredb.AdminListKeys, "list_api_keys", ""},
	{"GET", "/admin/users", pierredb.AdminManageUsers, "list_users", ""},
	{"GET", "/admin/pending-users", pierredb.AdminManageUsers, "list_pending_users", ""},
	{"POST", "/admin/approve-user/{user}", pierredb.AdminManageUsers, "approve_user", "optional"},
	{"POST", "/admin/suspend-user/{user}", pierredb.AdminManageUsers, "suspend_user", "optional"},
	{"POST", "/admin/reactivate-user/{user}", pierredb.AdminManageUsers, "reactivate_user", "optional"},
	{"POST", "/admin/users/{user}/admin", pierredb.AdminManageUsers, "grant_admin", "optional"},
	{"DELETE", "/admin/users/{user}/admin", pierredb.AdminManageUsers, "revoke_admin", "optional"},
	{"DELETE", "/admin/users/{user}", pierredb.AdminManageUsers, "delete_user", "optional"},
	{"GET", "/admin/settings/auto-approval", pierredb.AdminManageUsers, "get_auto_approval", ""},
	{"POST", "/admin/settings/auto-approval", pierredb.AdminManageUsers, "set_auto_approval", "required"},
	{"PUT", "/admin/settings/auto-approval", pierredb.AdminManageUsers, "set_auto_approval", "required"},
	{"POST", "/admin/tokens", pierredb.AdminManageAdminTokens, "create_admin_token", "required"},
	{"GET", "/admin/tokens", pierredb.AdminManageAdminTokens, "list_admin_tokens", ""},
	{"GET", "/admin/tokens/{token}", pierredb.AdminManageAdminTokens, "get_admin_token", ""},
	{"POST", "/admin/tokens/{token}/revoke", pierredb.AdminManageAdminTokens, "revoke_admin_token", ""},
	{"POST", "/admin/tokens/{token}/rotate", pierredb.AdminManageAdminTokens, "rotate_admin_token", ""},
	{"GET", "/admin/tokens/{token}/usage", pierredb.AdminViewAudit, "list_admin_token_usage", ""},
	{"POST", "/admin/signing-secret/rotate", pierredb.AdminManageAdminTokens, "rotate_signing_secret", ""},
	{"POST", "/admin/tenants", pierredb.AdminManageTenants, "create_tenant", "required"},
	{"GET", "/admin/tenants", pierredb.AdminManageTenants, "list_tenants", ""},
	{"GET", "/admin/tenants/{tenant}", pierredb.AdminManageTenants, "get_tenant", ""},
	{"PUT", "/admin/tenants/{tenant}/oauth-apps/{provider}", pierredb.AdminManageOAuthApps, "set_oauth_app", "required"},
	{"DELETE", "/admin/tenants/{tenant}/oauth-apps/{provider}", pierredb.AdminManageOAuthApps, "delete_oauth_app", ""},
	{"GET", "/admin/tenants/{tenant}/oauth-apps", pierredb.AdminManageOAuthApps, "list_oauth_apps", ""},
	{"POST", "/admin/keys/rotation", pierredb.AdminRotateKeys, "start_key_rotation", "optional"},
	{"GET", "/admin/keys/rotation", pierredb.AdminRotateKeys, "key_rotation_progress", ""},
}

// ids fills a route's placeholders.
type ids struct{ user, token, tenant, provider string }

func (r route) at(v ids) string {
	return strings.NewReplacer("{user}", v.user, "{token}", v.token, "{tenant}", v.tenant, "{provider}", v.provider).Replace(r.path)
}

func (r route) name() string { return r.method + " " + r.path }

// TestAdminRoutesRefuse runs every guarded route through the refusals that
// come before the route's work: missing or malformed credentials (401),
// unknown, expired and revoked tokens (401), a token without the route's
// permission (403, recorded against that token), bad JSON, unknown fields and
// oversized bodies (400, 400, 413), wrong methods (405) and unknown paths
// (404), every answer JSON.
func TestAdminRoutesRefuse(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		h := newHarness(t, e, httpserver.Options{})
		ctx := context.Background()
		adminID, root := h.setup()
		tenant, err := h.db.Tenants().Create(ctx, pierredb.NewTenant{Name: "Acme", Slug: "acme", OwnerUserID: adminID})
		require.NoError(t, err)

		// Tokens that lack a route's permission: list_keys lacks all but
		// /admin/list, view_audit lacks /admin/list.
		lkID, lk := h.newToken(root, map[string]any{"service_name": "lister", "permissions": []string{"list_keys"}})
		vaID, va := h.newToken(root, map[string]any{"service_name": "auditor", "permissions": []string{"view_audit"}})
		expID, expiring := h.newToken(root, map[string]any{"service_name": "expiring", "is_super_admin": true, "expires_in_days": 1})
		revID, revoked := h.newToken(root, map[string]any{"service_name": "revoked", "is_super_admin": true})
		h.do(request{method: "POST", path: "/admin/tokens/" + revID + "/revoke", token: root}).expect(http.StatusOK)

		v := ids{user: adminID, token: expID, tenant: tenant.ID, provider: "strava"}

		t.Run("missing or malformed credentials", func(t *testing.T) {
			defer h.use(t)()
			for _, rt := range adminRoutes {
				for _, hdr := range []string{"", "Bearer", "Bearer ", "Basic cm9vdDpwdw==", "Token " + root, root, "Bearer not-a-token",
					"Bearer " + strings.Repeat("A", 20000), "Bearer pk_live_abcdefghijklmnopqrstuvwx"} {
					req := request{method: rt.method, path: rt.at(v), header: http.Header{}}
					if hdr != "" {
						req.header.Set("Authorization", hdr)
					}
					if rt.body != "" {
						req.body = "{}"
					}
					res := h.do(req)
					res.expectError(http.StatusUnauthorized, httpserver.CodeUnauthorized)
					assert.Contains(t, res.Header.Get("WWW-Authenticate"), "Bearer", rt.name())
				}
			}
		})

		t.Run("token without the permission", func(t *testing.T) {
			defer h.use(t)()
			want := map[string][]string{}
			for _, rt := range adminRoutes {
				tok, id := lk, lkID
				if rt.perm == pierredb.AdminListKeys {
					tok, id = va, vaID
				}
				req := request{method: rt.method, path: rt.at(v), token: tok}
				if rt.body != "" {
					req.body = "{}"
				}
				m := h.do(req).expectError(http.StatusForbidden, httpserver.CodeForbidden)
				assert.Contains(t, m["message"], string(rt.perm), rt.name())
				want[id] = append(want[id], rt.action)
			}
			// Every refusal is recorded against the token that was refused.
			for id, actions := range want {
				var got []string
				for _, u := range h.usage(id) {
					assert.False(t, u.Success, "refused %s recorded as a success", u.Action)
					assert.Equal(t, "Forbidden", u.ErrorMessage)
					assert.Equal(t, "192.0.2.7", u.IPAddress)
					got = append(got, u.Action)
				}
				slices.Sort(got)
				slices.Sort(actions)
				assert.Equal(t, actions, got, "admin_token_usage of %s", id)
			}
		})

		t.Run("bad bodies", func(t *testing.T) {
			defer h.use(t)()
			big := `{"reason": "` + strings.Repeat("x", 70<<10) + `"}`
			for _, rt := range adminRoutes {
				if rt.body == "" {
					continue
				}
				for _, tc := range []struct {
					name, body string
					code       int
					errCode    string
				}{
					{"bad JSON", `{"email": `, http.StatusBadRequest, httpserver.CodeBadRequest},
					{"not an object", `[1, 2]`, http.StatusBadRequest, httpserver.CodeBadRequest},
					{"trailing data", `{} {}`, http.StatusBadRequest, httpserver.CodeBadRequest},
					{"unknown field", `{"no_such_field": 1}`, http.StatusBadRequest, httpserver.CodeBadRequest},
					{"wrong type", `{"reason": 5, "enabled": "yes", "user_email": 5, "name": 5, "client_id": 5, "service_name": 5, "retire": "x"}`, http.StatusBadRequest, httpserver.CodeBadRequest},
					{"oversized", big, http.StatusRequestEntityTooLarge, httpserver.CodeBodyTooLarge},
				} {
					m := h.do(request{method: rt.method, path: rt.at(v), token: root, body: tc.body}).expectError(tc.code, tc.errCode)
					if tc.name == "unknown field" {
						assert.Contains(t, m["message"], "no_such_field", rt.name())
					}
				}
			}
			// A required body cannot be left out.
			for _, rt := range adminRoutes {
				if rt.body == "required" {
					h.do(request{method: rt.method, path: rt.at(v), token: root}).expectError(http.StatusBadRequest, httpserver.CodeBadRequest)
				}
			}
		})

		t.Run("wrong method", func(t *testing.T) {
			defer h.use(t)()
			paths := map[string][]string{"/admin/setup": {"POST"}, "/admin/setup/status": {"GET", "HEAD"}}
			for _, rt := range adminRoutes {
				p := rt.at(v)
				paths[p] = append(paths[p], rt.method)
				if rt.method == "GET" {
					paths[p] = append(paths[p], "HEAD")
				}
			}
			for p, allowed := range paths {
				for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
					if slices.Contains(allowed, m) {
						continue
					}
					res := h.do(request{method: m, path: p, token: root})
					res.expectError(http.StatusMethodNotAllowed, httpserver.CodeMethodNotAllowed)
					got := strings.Split(res.Header.Get("Allow"), ", ")
					slices.Sort(got)
					want := slices.Clone(allowed)
					slices.Sort(want)
					assert.Equal(t, want, got, "Allow of %s %s", m, p)
				}
			}
		})

		t.Run("unknown path", func(t *testing.T) {
			defer h.use(t)()
			for _, p := range []string{"/", "/admin", "/admin/", "/admin/nope", "/admin/users/x/y/z", "/admin/tokens/x/y",
				"/api", "/api/health/x", "/health", "/admin/setup/status/x", "/ADMIN/users"} {
				for _, m := range []string{"GET", "POST"} {
					h.do(request{method: m, path: p, token: root}).expectError(http.StatusNotFound, httpserver.CodeNotFound)
				}
			}
		})

		// Last: the store's clock moves past the expiring token's expiry.
		t.Run("expired and revoked tokens", func(t *testing.T) {
			defer h.use(t)()
			h.clock.add(49 * time.Hour)
			for _, rt := range adminRoutes {
				for _, tok := range []string{expiring, revoked} {
					req := request{method: rt.method, path: rt.at(v), token: tok}
					if rt.body != "" {
						req.body = "{}"
					}
					res := h.do(req)
					m := res.expectError(http.StatusUnauthorized, httpserver.CodeUnauthorized)
					assert.Contains(t, res.Header.Get("WWW-Authenticate"), `error="invalid_token"`)
					if tok == expiring {
						assert.Contains(t, m["message"], "expired", rt.name())
					} else {
						assert.Contains(t, m["message"], "revoked", rt.name())
					}
				}
			}
		})
	})
}

// TestAdminRoutesHostilePaths puts hostile spellings and other kinds' ids in
// every path value: the answer is 400 or 404 (JSON), never a 500, and nothing
// changes.
func TestAdminRoutesHostilePaths(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		h := newHarness(t, e, httpserver.Options{})
		ctx := context.Background()
		adminID, root := h.setup()
		rootID := h.tokenIDOf(root)
		tenant, err := h.db.Tenants().Create(ctx, pierredb.NewTenant{Name: "Acme", Slug: "acme", OwnerUserID: adminID})
		require.NoError(t, err)
		other, err := h.db.Tenants().Create(ctx, pierredb.NewTenant{Name: "Other", Slug: "other", OwnerUserID: adminID})
		require.NoError(t, err)
		scopeB, err := h.db.Tenant(ctx, other.ID)
		require.NoError(t, err)
		_, err = scopeB.OAuthApps().Set(ctx, pierredb.ProviderGarmin, pierredb.OAuthAppConfig{ClientID: "b-client",
			ClientSecret: pierredb.NewOAuthSecret("b-client-secret-value"), RedirectURI: "https://b.example.com/cb"})
		require.NoError(t, err)
		h.secret("tenant B client secret", "b-client-secret-value")
		key, err := scopeB.APIKeys().Create(ctx, pierredb.NewAPIKey{UserID: adminID, Name: "k"})
		require.NoError(t, err)
		h.secret("API key", key.Key.Reveal())

		hostile := []string{
			"%00", "a%00b", "%ff", "%C0%AF", "%E2%80%8B", "%0A", "%20", "%09x", "x%2Fy", "%25", "%3Cscript%3E",
			strings.Repeat("a", 300), "'%20OR%201=1--", "%F0%9F%98%80",
			url.PathEscape(key.Key.Reveal()), // a secret where an id goes: never echoed
			url.PathEscape(root),
			"00000000-0000-7000-8000-000000000000",
		}
		// Another kind's real ids in each slot.
		crossed := []ids{
			{user: tenant.ID, token: adminID, tenant: adminID, provider: "garmin"},
			{user: key.ID, token: key.ID, tenant: rootID, provider: "strava"},
		}
		for _, rt := range adminRoutes {
			if !strings.Contains(rt.path, "{") {
				continue
			}
			withProvider := strings.Contains(rt.path, "{provider}")
			var cases []ids
			for _, s := range hostile {
				cases = append(cases, ids{user: s, token: s, tenant: s, provider: "strava"})
				if withProvider {
					cases = append(cases, ids{tenant: tenant.ID, provider: s})
				}
			}
			cases = append(cases, crossed...)
			if withProvider && rt.method != "PUT" {
				// Tenant B's app, asked for under tenant A.
				cases = append(cases, ids{tenant: tenant.ID, provider: "garmin"})
			}
			for _, v := range cases {
				req := request{method: rt.method, path: rt.at(v), token: root}
				switch {
				case strings.Contains(rt.path, "oauth-apps/"):
					req.body = `{"client_id": "c", "client_secret": "s3cret-s3cret", "redirect_uri": "https://a.example.com/cb"}`
					h.secret("client secret in a hostile request", "s3cret-s3cret")
				case rt.body != "":
					req.body = "{}"
				}
				res := h.do(req)
				if !assert.Contains(t, []int{http.StatusBadRequest, http.StatusNotFound}, res.Code, "%s %s: %s", rt.method, req.path, res.Body) {
					continue
				}
				res.expectError(res.Code, "")
			}
		}
		// Tenant B's app is intact, and the admin user and tokens are.
		app, err := scopeB.OAuthApps().Get(ctx, pierredb.ProviderGarmin)
		require.NoError(t, err)
		assert.Equal(t, "b-client-secret-value", app.ClientSecret.Reveal())
		u, err := h.db.Users().Get(ctx, adminID)
		require.NoError(t, err)
		assert.Equal(t, pierredb.StatusActive, u.Status)
		assert.True(t, u.IsAdmin)
		h.do(request{method: "GET", path: "/admin/tokens", token: root}).expect(http.StatusOK)
		// The hostile targets were recorded (the secrets among them redacted:
		// checkSecrets reads the usage listing's answer).
		h.do(request{method: "GET", path: "/admin/tokens/" + rootID + "/usage?limit=1000", token: root}).expect(http.StatusOK)
	})
}

// tokenIDOf returns the id of the admin token tok (from GET /admin/tokens).
func (h *harness) tokenIDOf(tok string) string {
	h.t.Helper()
	p, err := h.db.AdminTokens().Verify(context.Background(), tok, "")
	require.NoError(h.t, err)
	return p.TokenID
}

// TestAdminOptionalBodies: the routes whose body is optional take no body,
// an empty body sent with a length or streamed without one (chunked), and {}.
func TestAdminOptionalBodies(t *testing.T) {
	t.Parallel()
	storetest.RunOn(t, pierredb.SQLite, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		h := newHarness(t, e, httpserver.Options{})
		_, root := h.setup()
		srv := httptest.NewServer(h.h)
		defer srv.Close()
		ctx := context.Background()
		for i, body := range []func() io.Reader{
			func() io.Reader { return nil },
			func() io.Reader { return strings.NewReader("") },
			func() io.Reader { return io.MultiReader(strings.NewReader("")) }, // unknown length: chunked
			func() io.Reader { return io.MultiReader(strings.NewReader("{}")) },
		} {
			u := h.user(fmt.Sprintf("user%d@example.com", i), false)
			req, err := http.NewRequestWithContext(ctx, "POST", srv.URL+"/admin/approve-user/"+u.ID, body())
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+root)
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			raw, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			h.keep("POST approve-user", resp.StatusCode, resp.Header, raw)
			assert.Equal(t, http.StatusOK, resp.StatusCode, "body %d: %s", i, raw)
		}
	})
}
