package httpserver_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/httpserver"
	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

// TestAdminFlow drives the admin API end to end, the way an operator's
// scripts written for the reference server do, and checks each answer's
// shape against the reference's field names.
func TestAdminFlow(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		h := newHarness(t, e, httpserver.Options{})
		ctx := context.Background()
		call := func(method, path, token string, body any) *result {
			t.Helper()
			return h.do(request{method: method, path: path, token: token, body: body})
		}

		// Setup: status, the first admin, status again, and no second setup.
		m := call("GET", "/admin/setup/status", "", nil).expect(http.StatusOK).json()
		assert.Equal(t, true, m["needs_setup"])
		assert.Equal(t, false, m["admin_user_exists"])
		hasFields(t, m, "needs_setup", "admin_user_exists", "message")

		adminID, root := h.setup()
		res := call("GET", "/admin/setup/status", "", nil).expect(http.StatusOK)
		assert.Equal(t, map[string]any{"needs_setup": false, "admin_user_exists": true, "message": nil}, res.json())
		pw2 := "another long password"
		h.secret("second setup password", pw2)
		m = call("POST", "/admin/setup", "", map[string]any{"email": "second@example.com", "password": pw2}).
			expectError(http.StatusConflict, httpserver.CodeConflict)
		assert.Equal(t, "Admin user already exists. Use admin token management instead.", m["message"])
		// A password that is too short is refused without echoing it.
		call("POST", "/admin/setup", "", map[string]any{"email": "third@example.com", "password": "short1"}).expect(http.StatusConflict)
		admin, err := h.db.Users().Get(ctx, adminID)
		require.NoError(t, err)
		assert.True(t, admin.IsAdmin)
		assert.Equal(t, pierredb.StatusActive, admin.Status)
		assert.Equal(t, "Root", admin.DisplayName)

		var (
			bob   = h.user("bob@example.com", false) // pending, in no tenant
			carol = h.user("carol@example.com", true)
			dave  = h.user("dave@example.com", true)
		)
		carolHome, err := h.db.Tenants().Create(ctx, pierredb.NewTenant{Name: "Carol Co", Slug: "carol-co", OwnerUserID: carol.ID})
		require.NoError(t, err)
		shared, err := h.db.Tenants().Create(ctx, pierredb.NewTenant{Name: "Shared", Slug: "shared", OwnerUserID: dave.ID})
		require.NoError(t, err)
		sharedScope, err := h.db.Tenant(ctx, shared.ID)
		require.NoError(t, err)
		_, err = sharedScope.Members().Add(ctx, carol.ID, pierredb.RoleMember)
		require.NoError(t, err)

		provision := func(body map[string]any) (data map[string]any, key string) {
			t.Helper()
			res := call("POST", "/admin/provision", root, body).expect(http.StatusCreated)
			m := res.json()
			assert.Equal(t, "API key provisioned successfully for "+body["user_email"].(string), m["message"])
			data = res.data()
			hasFields(t, data, "success", "api_key_id", "api_key", "user_id", "tier", "expires_at", "rate_limit")
			assert.Equal(t, true, data["success"])
			return data, h.takeSecret(res, "API key", str(t, data["api_key"]))
		}

		var bobKeyID, bobTenant string
		t.Run("provision", func(t *testing.T) {
			defer h.use(t)()
			// A user in no tenant gets a personal one, which becomes home.
			d, key := provision(map[string]any{"user_email": "bob@example.com", "tier": "starter"})
			assert.True(t, strings.HasPrefix(key, pierredb.APIKeyLivePrefix), key)
			assert.Equal(t, bob.ID, d["user_id"])
			assert.Equal(t, "starter", d["tier"])
			assert.Nil(t, d["expires_at"])
			assert.Equal(t, map[string]any{"requests": float64(10000), "period": "month"}, d["rate_limit"])
			bobKeyID, bobTenant = str(t, d["api_key_id"]), str(t, d["tenant_id"])
			u, err := h.db.Users().Get(ctx, bob.ID)
			require.NoError(t, err)
			assert.Equal(t, bobTenant, u.TenantID, "the personal tenant is bob's home")
			tn, err := h.db.Tenants().Get(ctx, bobTenant)
			require.NoError(t, err)
			assert.Equal(t, bob.ID, tn.OwnerUserID)
			k, err := h.db.APIKeys().Get(ctx, bobKeyID)
			require.NoError(t, err)
			assert.Equal(t, "API key provisioned by initial_admin_setup", k.Name)
			assert.Equal(t, "Provisioned by admin service: initial_admin_setup", k.Description)

			// Again: the home tenant, a numbered name, no second tenant.
			d, _ = provision(map[string]any{"user_email": "BOB@example.com", "tier": "Professional",
				"rate_limit_requests": 50, "rate_limit_period": "Day", "expires_in_days": 3})
			assert.Equal(t, bobTenant, d["tenant_id"])
			assert.Equal(t, "professional", d["tier"])
			assert.Equal(t, map[string]any{"requests": float64(50), "period": "day"}, d["rate_limit"])
			exp, err := time.Parse(time.RFC3339Nano, str(t, d["expires_at"]))
			require.NoError(t, err)
			assert.WithinDuration(t, time.Now().Add(72*time.Hour), exp, time.Minute)
			k, err = h.db.APIKeys().Get(ctx, str(t, d["api_key_id"]))
			require.NoError(t, err)
			assert.Equal(t, "API key provisioned by initial_admin_setup (2)", k.Name)
			page, err := h.db.Tenants().List(ctx, pierredb.TenantFilter{OwnerUserID: bob.ID})
			require.NoError(t, err)
			assert.Len(t, page.Items, 1)

			// A user with a home tenant: there. A named tenant: there.
			d, _ = provision(map[string]any{"user_email": "carol@example.com", "tier": "trial", "description": "carol's laptop"})
			assert.Equal(t, carolHome.ID, d["tenant_id"])
			assert.True(t, strings.HasPrefix(str(t, d["api_key"]), pierredb.APIKeyTrialPrefix))
			exp, err = time.Parse(time.RFC3339Nano, str(t, d["expires_at"]))
			require.NoError(t, err)
			assert.WithinDuration(t, time.Now().Add(pierredb.TrialKeyLifetime), exp, time.Minute)
			d, _ = provision(map[string]any{"user_email": "carol@example.com", "tier": "enterprise", "tenant_id": shared.ID})
			assert.Equal(t, shared.ID, d["tenant_id"])
			assert.Equal(t, map[string]any{"requests": nil, "period": "month"}, d["rate_limit"])
			// The same description twice in one tenant: a numbered name, on
			// both engines (PostgreSQL aborts a transaction at its first error).
			d, _ = provision(map[string]any{"user_email": "carol@example.com", "tier": "trial", "description": "carol's laptop"})
			k, err = h.db.APIKeys().Get(ctx, str(t, d["api_key_id"]))
			require.NoError(t, err)
			assert.Equal(t, "carol's laptop (2)", k.Name)

			for _, tc := range []struct {
				name string
				body map[string]any
				code int
			}{
				{"unknown user", map[string]any{"user_email": "nobody@example.com", "tier": "starter"}, http.StatusNotFound},
				{"bad email", map[string]any{"user_email": "not an email", "tier": "starter"}, http.StatusBadRequest},
				{"no tier", map[string]any{"user_email": "bob@example.com"}, http.StatusBadRequest},
				{"bad tier", map[string]any{"user_email": "bob@example.com", "tier": "gold"}, http.StatusBadRequest},
				{"bad period", map[string]any{"user_email": "bob@example.com", "tier": "starter", "rate_limit_requests": 5, "rate_limit_period": "fortnight"}, http.StatusBadRequest},
				{"period alone", map[string]any{"user_email": "bob@example.com", "tier": "starter", "rate_limit_period": "day"}, http.StatusBadRequest},
				{"zero requests", map[string]any{"user_email": "bob@example.com", "tier": "starter", "rate_limit_requests": 0}, http.StatusBadRequest},
				{"negative requests", map[string]any{"user_email": "bob@example.com", "tier": "starter", "rate_limit_requests": -1}, http.StatusBadRequest},
				{"zero days", map[string]any{"user_email": "bob@example.com", "tier": "starter", "expires_in_days": 0}, http.StatusBadRequest},
				{"days that overflow", map[string]any{"user_email": "bob@example.com", "tier": "starter", "expires_in_days": 213504}, http.StatusBadRequest},
				{"hostile description", map[string]any{"user_email": "bob@example.com", "tier": "starter", "description": "a\x00b"}, http.StatusBadRequest},
				{"not a member of the named tenant", map[string]any{"user_email": "bob@example.com", "tier": "starter", "tenant_id": shared.ID}, http.StatusNotFound},
				{"unknown tenant", map[string]any{"user_email": "bob@example.com", "tier": "starter", "tenant_id": "00000000-0000-7000-8000-000000000000"}, http.StatusNotFound},
				{"hostile tenant", map[string]any{"user_email": "bob@example.com", "tier": "starter", "tenant_id": "a\u200bb"}, http.StatusBadRequest},
			} {
				t.Run(tc.name, func(t *testing.T) {
					defer h.use(t)()
					call("POST", "/admin/provision", root, tc.body).expectError(tc.code, "")
				})
			}
			// None of the refusals left a key or a tenant behind.
			page, err = h.db.Tenants().List(ctx, pierredb.TenantFilter{OwnerUserID: bob.ID})
			require.NoError(t, err)
			assert.Len(t, page.Items, 1)
		})

		t.Run("list and revoke keys", func(t *testing.T) {
			defer h.use(t)()
			res := call("GET", "/admin/list", root, nil).expect(http.StatusOK)
			d := res.data()
			hasFields(t, d, "filters", "keys", "count")
			assert.Equal(t, "Found 5 API keys", res.json()["message"])
			assert.Equal(t, float64(5), d["count"])
			filters := obj(t, d["filters"])
			hasFields(t, filters, "user_email", "active_only", "limit", "offset")
			assert.Equal(t, true, filters["active_only"])
			for _, k := range list(t, d["keys"]) {
				k := obj(t, k)
				hasFields(t, k, "id", "user_id", "name", "description", "tier", "rate_limit", "is_active", "created_at",
					"last_used_at", "expires_at", "usage_count")
				hasFields(t, obj(t, k["rate_limit"]), "requests", "window")
				assert.NotContains(t, k, "api_key")
				assert.NotContains(t, k, "key_hash")
			}
			d = call("GET", "/admin/list?user_email=bob@example.com", root, nil).expect(http.StatusOK).data()
			assert.Equal(t, float64(2), d["count"])
			assert.Equal(t, "bob@example.com", obj(t, d["filters"])["user_email"])
			// Newest first.
			assert.NotEqual(t, bobKeyID, obj(t, list(t, d["keys"])[0])["id"])
			assert.Equal(t, bobKeyID, obj(t, list(t, d["keys"])[1])["id"])
			first := obj(t, list(t, d["keys"])[1])
			assert.Equal(t, map[string]any{"requests": float64(10000), "window": float64(2592000), "period": "month"}, first["rate_limit"])

			res = call("POST", "/admin/revoke", root, map[string]any{"api_key_id": bobKeyID, "reason": "lost laptop"}).expect(http.StatusOK)
			assert.Equal(t, fmt.Sprintf("API key %s revoked successfully", bobKeyID), res.json()["message"])
			assert.Equal(t, map[string]any{"api_key_id": bobKeyID, "revoked_by": "initial_admin_setup", "reason": "lost laptop"}, res.data())
			d = call("POST", "/admin/revoke", root, map[string]any{"api_key_id": bobKeyID}).expect(http.StatusOK).data()
			assert.Equal(t, "Admin revocation", d["reason"], "revoking twice is 200, as in the reference")
			call("POST", "/admin/revoke", root, map[string]any{"api_key_id": "00000000-0000-7000-8000-000000000000"}).expectError(http.StatusNotFound, httpserver.CodeNotFound)
			call("POST", "/admin/revoke", root, map[string]any{}).expectError(http.StatusBadRequest, httpserver.CodeBadRequest)

			d = call("GET", "/admin/list?user_email=bob@example.com", root, nil).expect(http.StatusOK).data()
			assert.Equal(t, float64(1), d["count"])
			d = call("GET", "/admin/list?user_email=bob@example.com&active_only=false", root, nil).expect(http.StatusOK).data()
			assert.Equal(t, float64(2), d["count"])
			for _, k := range list(t, d["keys"]) {
				if k := obj(t, k); k["id"] == bobKeyID {
					assert.Equal(t, false, k["is_active"])
				}
			}
			// Pages.
			d = call("GET", "/admin/list?limit=2", root, nil).expect(http.StatusOK).data()
			assert.Equal(t, float64(2), d["count"])
			next := str(t, d["next_cursor"])
			d = call("GET", "/admin/list?limit=2&cursor="+url.QueryEscape(next), root, nil).expect(http.StatusOK).data()
			assert.Equal(t, float64(2), d["count"])
			for _, q := range []string{"user_email=nobody@example.com", "active_only=maybe", "limit=abc", "limit=-1", "limit=100000",
				"offset=0", "cursor=garbage", "user_email=%00"} {
				res := call("GET", "/admin/list?"+q, root, nil)
				assert.Contains(t, []int{http.StatusBadRequest, http.StatusNotFound}, res.Code, "%s: %s", q, res.Body)
				res.expectError(res.Code, "")
			}
		})

		var pending []pierredb.User
		t.Run("users and pending users", func(t *testing.T) {
			defer h.use(t)()
			pending = []pierredb.User{bob, h.user("erin@example.com", false), h.user("frank@example.com", false)}
			res := call("GET", "/admin/pending-users?limit=2", root, nil).expect(http.StatusOK)
			assert.Equal(t, "Retrieved 2 pending users", res.json()["message"])
			d := res.data()
			hasFields(t, d, "count", "users")
			assert.Equal(t, float64(3), d["count"], "count is the total")
			var got []string
			for _, u := range list(t, d["users"]) {
				u := obj(t, u)
				hasFields(t, u, "id", "email", "display_name", "tier", "created_at", "last_active")
				assert.Equal(t, "Starter", u["tier"])
				got = append(got, str(t, u["id"]))
			}
			d = call("GET", "/admin/pending-users?limit=2&cursor="+url.QueryEscape(str(t, d["next_cursor"])), root, nil).expect(http.StatusOK).data()
			assert.Equal(t, float64(3), d["count"])
			assert.Nil(t, d["next_cursor"])
			for _, u := range list(t, d["users"]) {
				got = append(got, str(t, obj(t, u)["id"]))
			}
			assert.ElementsMatch(t, []string{pending[0].ID, pending[1].ID, pending[2].ID}, got)

			res = call("GET", "/admin/users", root, nil).expect(http.StatusOK)
			d = res.data()
			hasFields(t, d, "users", "total")
			assert.Equal(t, float64(3), d["total"], "root, carol and dave are active")
			d = call("GET", "/admin/users?status=pending&limit=1", root, nil).expect(http.StatusOK).data()
			assert.Equal(t, float64(3), d["total"])
			assert.Len(t, list(t, d["users"]), 1)
			call("GET", "/admin/users?status=bogus", root, nil).expectError(http.StatusBadRequest, httpserver.CodeBadRequest)
			call("GET", "/admin/users?offset=10", root, nil).expectError(http.StatusBadRequest, httpserver.CodeBadRequest)
		})

		t.Run("approve suspend reactivate admin delete", func(t *testing.T) {
			defer h.use(t)()
			erin, frank := pending[1], pending[2]
			res := call("POST", "/admin/approve-user/"+erin.ID, root, map[string]any{"create_default_tenant": true, "reason": "ok"}).expect(http.StatusOK)
			assert.Equal(t, "User approved successfully", res.json()["message"])
			d := res.data()
			hasFields(t, d, "user", "tenant_created", "reason")
			u := obj(t, d["user"])
			hasFields(t, u, "id", "email", "user_status", "approved_by", "approved_at")
			assert.Equal(t, "active", u["user_status"])
			assert.Equal(t, "initial_admin_setup", u["approved_by"])
			assert.Equal(t, "ok", d["reason"])
			tc := obj(t, d["tenant_created"])
			hasFields(t, tc, "tenant_id", "name", "slug", "plan")
			assert.Equal(t, "erin@example.com's Organization", tc["name"])
			got, err := h.db.Users().Get(ctx, erin.ID)
			require.NoError(t, err)
			assert.Equal(t, tc["tenant_id"], got.TenantID)

			// Approving twice, or someone unknown, or with a slug in use.
			call("POST", "/admin/approve-user/"+erin.ID, root, nil).expectError(http.StatusConflict, httpserver.CodeConflict)
			call("POST", "/admin/approve-user/"+erin.ID, root, map[string]any{"create_default_tenant": true}).expectError(http.StatusConflict, httpserver.CodeConflict)
			call("POST", "/admin/approve-user/00000000-0000-7000-8000-000000000000", root, "{}").expectError(http.StatusNotFound, httpserver.CodeNotFound)
			call("POST", "/admin/approve-user/"+frank.ID, root, map[string]any{"create_default_tenant": true, "tenant_slug": "carol-co"}).
				expectError(http.StatusConflict, httpserver.CodeConflict)
			got, err = h.db.Users().Get(ctx, frank.ID)
			require.NoError(t, err)
			assert.Equal(t, pierredb.StatusPending, got.Status, "a failed tenant leaves the user pending")
			d = call("POST", "/admin/approve-user/"+frank.ID, root, map[string]any{"create_default_tenant": true,
				"tenant_name": "Frank's Garage", "tenant_slug": "Franks-Garage"}).expect(http.StatusOK).data()
			assert.Equal(t, map[string]any{"tenant_id": obj(t, d["tenant_created"])["tenant_id"], "name": "Frank's Garage",
				"slug": "franks-garage", "plan": "starter"}, d["tenant_created"])
			assert.Equal(t, "No reason provided", d["reason"])
			// Without a tenant, and with no body at all.
			d = call("POST", "/admin/approve-user/"+bob.ID, root, nil).expect(http.StatusOK).data()
			assert.Nil(t, d["tenant_created"])

			// Suspend, twice, reactivate, twice.
			res = call("POST", "/admin/suspend-user/"+erin.ID, root, map[string]any{"reason": "abuse"}).expect(http.StatusOK)
			assert.Equal(t, "User suspended successfully", res.json()["message"])
			d = res.data()
			assert.Equal(t, "suspended", obj(t, d["user"])["user_status"])
			hasFields(t, obj(t, d["user"]), "id", "email", "user_status")
			assert.Equal(t, "abuse", d["reason"])
			call("POST", "/admin/suspend-user/"+erin.ID, root, "{}").expectError(http.StatusConflict, httpserver.CodeConflict)
			d = call("POST", "/admin/reactivate-user/"+erin.ID, root, nil).expect(http.StatusOK).data()
			assert.Equal(t, "active", obj(t, d["user"])["user_status"])
			call("POST", "/admin/reactivate-user/"+erin.ID, root, nil).expectError(http.StatusConflict, httpserver.CodeConflict)

			// Grant and revoke admin; the last admin stays.
			d = call("POST", "/admin/users/"+erin.ID+"/admin", root, nil).expect(http.StatusOK).data()
			assert.Equal(t, true, obj(t, d["user"])["is_admin"])
			d = call("POST", "/admin/users/"+erin.ID+"/admin", root, nil).expect(http.StatusOK).data()
			assert.Equal(t, true, obj(t, d["user"])["is_admin"], "granting twice changes nothing")
			d = call("DELETE", "/admin/users/"+erin.ID+"/admin", root, nil).expect(http.StatusOK).data()
			assert.Equal(t, false, obj(t, d["user"])["is_admin"])
			call("DELETE", "/admin/users/"+adminID+"/admin", root, nil).expectError(http.StatusConflict, httpserver.CodeConflict)
			call("DELETE", "/admin/users/"+adminID, root, nil).expectError(http.StatusConflict, httpserver.CodeConflict)

			// Delete.
			res = call("DELETE", "/admin/users/"+frank.ID, root, map[string]any{"reason": "left"}).expect(http.StatusOK)
			assert.Equal(t, "User deleted successfully", res.json()["message"])
			assert.Equal(t, map[string]any{"deleted_user": map[string]any{"id": frank.ID, "email": "frank@example.com"}, "reason": "left"}, res.data())
			call("DELETE", "/admin/users/"+frank.ID, root, nil).expectError(http.StatusNotFound, httpserver.CodeNotFound)
			_, err = h.db.Users().Get(ctx, frank.ID)
			assert.ErrorIs(t, err, pierredb.ErrNotFound)
		})

		t.Run("auto-approval", func(t *testing.T) {
			defer h.use(t)()
			res := call("GET", "/admin/settings/auto-approval", root, nil).expect(http.StatusOK)
			assert.Equal(t, "Auto-approval setting retrieved", res.json()["message"])
			d := res.data()
			assert.Equal(t, false, d["enabled"])
			assert.NotEmpty(t, d["description"])
			res = call("POST", "/admin/settings/auto-approval", root, map[string]any{"enabled": true}).expect(http.StatusOK)
			assert.Equal(t, "Auto-approval has been enabled", res.json()["message"])
			assert.Equal(t, true, call("GET", "/admin/settings/auto-approval", root, nil).expect(http.StatusOK).data()["enabled"])
			on, err := h.db.Settings().AutoApproveUsers(ctx)
			require.NoError(t, err)
			assert.True(t, on)
			res = call("PUT", "/admin/settings/auto-approval", root, map[string]any{"enabled": false}).expect(http.StatusOK)
			assert.Equal(t, "Auto-approval has been disabled", res.json()["message"])
			assert.Equal(t, false, res.data()["enabled"])
			call("PUT", "/admin/settings/auto-approval", root, map[string]any{}).expectError(http.StatusBadRequest, httpserver.CodeBadRequest)
			call("PUT", "/admin/settings/auto-approval", root, `{"enabled": null}`).expectError(http.StatusBadRequest, httpserver.CodeBadRequest)
		})

		var opsID, ops string
		t.Run("admin tokens", func(t *testing.T) {
			defer h.use(t)()
			res := call("POST", "/admin/tokens", root, map[string]any{"service_name": "ops", "service_description": "the ops team",
				"permissions": []string{"list_keys", "revoke_keys", "manage_admin_tokens"}}).expect(http.StatusCreated)
			assert.Equal(t, "Admin token created successfully", res.json()["message"])
			d := res.data()
			hasFields(t, d, "token_id", "service_name", "jwt_token", "token_prefix", "is_super_admin", "expires_at")
			assert.Equal(t, false, d["is_super_admin"])
			assert.Nil(t, d["expires_at"])
			opsID, ops = str(t, d["token_id"]), h.takeSecret(res, "ops token", str(t, d["jwt_token"]))

			// A non-super token issues only subsets of its own permissions, and
			// no super-admin token.
			m := call("POST", "/admin/tokens", ops, map[string]any{"service_name": "x", "is_super_admin": true}).expectError(http.StatusForbidden, httpserver.CodeForbidden)
			assert.Contains(t, m["message"], "super-admin")
			call("POST", "/admin/tokens", ops, map[string]any{"service_name": "x", "permissions": []string{"manage_users"}}).expectError(http.StatusForbidden, httpserver.CodeForbidden)
			subID, _ := h.newToken(ops, map[string]any{"service_name": "sub", "permissions": []string{"list_keys"}, "expires_in_days": 30})
			call("POST", "/admin/tokens", root, map[string]any{"service_name": "x", "permissions": []string{"bogus"}}).expectError(http.StatusBadRequest, httpserver.CodeBadRequest)
			call("POST", "/admin/tokens", root, map[string]any{"permissions": []string{"list_keys"}}).expectError(http.StatusBadRequest, httpserver.CodeBadRequest)
			// A day count that would wrap round to minutes, or a negative one.
			for _, days := range []int{213504, 106752, -1} {
				call("POST", "/admin/tokens", root, map[string]any{"service_name": "x", "permissions": []string{"list_keys"}, "expires_in_days": days}).
					expectError(http.StatusBadRequest, httpserver.CodeBadRequest)
			}
			superID, super := h.newToken(root, map[string]any{"service_name": "backup-root", "is_super_admin": true})
			// The default permission set is the reference's.
			defID, _ := h.newToken(root, map[string]any{"service_name": "defaults"})

			res = call("GET", "/admin/tokens", root, nil).expect(http.StatusOK)
			d = res.data()
			hasFields(t, d, "count", "tokens")
			byID := map[string]map[string]any{}
			for _, tk := range list(t, d["tokens"]) {
				tk := obj(t, tk)
				hasFields(t, tk, "id", "service_name", "service_description", "token_prefix", "permissions", "is_super_admin",
					"is_active", "created_at", "expires_at", "last_used_at", "usage_count")
				assert.NotContains(t, tk, "jwt_token")
				byID[str(t, tk["id"])] = tk
			}
			assert.Equal(t, float64(len(byID)), d["count"])
			require.Contains(t, byID, opsID)
			assert.Equal(t, map[string]any{"permissions": []any{"list_keys", "revoke_keys", "manage_admin_tokens"}}, byID[opsID]["permissions"])
			assert.Equal(t, "the ops team", byID[opsID]["service_description"])
			assert.Equal(t, map[string]any{"permissions": []any{"provision_keys", "list_keys", "revoke_keys"}}, byID[defID]["permissions"])
			assert.NotNil(t, byID[subID]["expires_at"])
			assert.Equal(t, true, byID[superID]["is_super_admin"])

			d = call("GET", "/admin/tokens/"+opsID, root, nil).expect(http.StatusOK).data()
			assert.Equal(t, opsID, d["id"])
			assert.Equal(t, "ops", d["service_name"])
			assert.Equal(t, float64(3), d["usage_count"], "ops made two refused requests and issued one token")
			call("GET", "/admin/tokens/00000000-0000-7000-8000-000000000000", root, nil).expectError(http.StatusNotFound, httpserver.CodeNotFound)

			// Revoke: effective at once; listed only with include_inactive.
			res = call("POST", "/admin/tokens/"+subID+"/revoke", ops, nil).expect(http.StatusOK)
			assert.Equal(t, map[string]any{"token_id": subID}, res.data())
			d = call("GET", "/admin/tokens", root, nil).expect(http.StatusOK).data()
			for _, tk := range list(t, d["tokens"]) {
				assert.NotEqual(t, subID, obj(t, tk)["id"])
			}
			d = call("GET", "/admin/tokens?include_inactive=true", root, nil).expect(http.StatusOK).data()
			assert.True(t, slices.ContainsFunc(list(t, d["tokens"]), func(tk any) bool { return obj(t, tk)["id"] == subID }))
			// A non-super token cannot revoke a super one.
			call("POST", "/admin/tokens/"+superID+"/revoke", ops, nil).expectError(http.StatusForbidden, httpserver.CodeForbidden)

			// Rotate: the old token stops, the new one keeps the permissions.
			res = call("POST", "/admin/tokens/"+opsID+"/rotate", root, nil).expect(http.StatusOK)
			assert.Equal(t, "Admin token rotated successfully", res.json()["message"])
			d = res.data()
			assert.Equal(t, opsID, d["old_token_id"])
			nt := obj(t, d["new_token"])
			hasFields(t, nt, "token_id", "service_name", "jwt_token", "token_prefix", "expires_at")
			newOps := h.takeSecret(res, "rotated ops token", str(t, nt["jwt_token"]))
			call("GET", "/admin/list", ops, nil).expectError(http.StatusUnauthorized, httpserver.CodeUnauthorized)
			call("GET", "/admin/list", newOps, nil).expect(http.StatusOK)
			call("GET", "/admin/users", newOps, nil).expectError(http.StatusForbidden, httpserver.CodeForbidden)
			call("POST", "/admin/tokens/"+opsID+"/rotate", root, nil).expectError(http.StatusConflict, httpserver.CodeConflict)
			ops, opsID = newOps, str(t, nt["token_id"])

			// The last usable super-admin token cannot go.
			call("POST", "/admin/tokens/"+superID+"/revoke", root, nil).expect(http.StatusOK)
			call("POST", "/admin/tokens/"+h.tokenIDOf(root)+"/revoke", root, nil).expectError(http.StatusConflict, httpserver.CodeConflict)
			call("GET", "/admin/list", super, nil).expectError(http.StatusUnauthorized, httpserver.CodeUnauthorized)

			// Usage: one row per action, failures included.
			res = call("GET", "/admin/tokens/"+opsID+"/usage", root, nil).expect(http.StatusOK)
			rows := list(t, res.data()["usage"])
			require.Len(t, rows, 2)
			r0, r1 := obj(t, rows[0]), obj(t, rows[1])
			hasFields(t, r0, "id", "admin_token_id", "timestamp", "action", "target_resource", "ip_address", "user_agent",
				"request_size_bytes", "success", "error_message", "response_time_ms")
			assert.Equal(t, "list_api_keys", r0["action"])
			assert.Equal(t, true, r0["success"])
			assert.Equal(t, "192.0.2.7", r0["ip_address"])
			assert.Equal(t, "list_users", r1["action"])
			assert.Equal(t, false, r1["success"])
			assert.Equal(t, "Forbidden", r1["error_message"])
			call("GET", "/admin/tokens/00000000-0000-7000-8000-000000000000/usage", root, nil).expectError(http.StatusNotFound, httpserver.CodeNotFound)
		})

		var tenantID string
		t.Run("tenants and OAuth apps", func(t *testing.T) {
			defer h.use(t)()
			res := call("POST", "/admin/tenants", root, map[string]any{"name": "Globex", "slug": "globex", "plan": "professional",
				"owner_email": "dave@example.com"}).expect(http.StatusCreated)
			d := res.data()
			hasFields(t, d, "id", "name", "slug", "plan", "owner_user_id", "is_active", "created_at", "updated_at")
			assert.Equal(t, dave.ID, d["owner_user_id"])
			assert.Equal(t, "professional", d["plan"])
			tenantID = str(t, d["id"])
			call("POST", "/admin/tenants", root, map[string]any{"name": "Globex 2", "slug": "GLOBEX", "owner_user_id": dave.ID}).expectError(http.StatusConflict, httpserver.CodeConflict)
			call("POST", "/admin/tenants", root, map[string]any{"name": "X", "slug": "x-corp", "owner_email": "nobody@example.com"}).expectError(http.StatusNotFound, httpserver.CodeNotFound)
			call("POST", "/admin/tenants", root, map[string]any{"name": "X", "slug": "x-corp", "owner_user_id": "00000000-0000-7000-8000-000000000000"}).expectError(http.StatusNotFound, httpserver.CodeNotFound)
			call("POST", "/admin/tenants", root, map[string]any{"name": "X", "slug": "-bad-", "owner_user_id": dave.ID}).expectError(http.StatusBadRequest, httpserver.CodeBadRequest)
			call("POST", "/admin/tenants", root, map[string]any{"name": "X", "slug": "x-corp"}).expectError(http.StatusBadRequest, httpserver.CodeBadRequest)

			d = call("GET", "/admin/tenants/"+tenantID, root, nil).expect(http.StatusOK).data()
			assert.Equal(t, "globex", d["slug"])
			d = call("GET", "/admin/tenants?limit=2", root, nil).expect(http.StatusOK).data()
			assert.Len(t, list(t, d["tenants"]), 2)
			all := len(list(t, d["tenants"]))
			for next, _ := d["next_cursor"].(string); next != ""; next, _ = d["next_cursor"].(string) {
				d = call("GET", "/admin/tenants?limit=2&cursor="+url.QueryEscape(next), root, nil).expect(http.StatusOK).data()
				all += len(list(t, d["tenants"]))
			}
			assert.Equal(t, 5, all, "bob's, carol's, shared, erin's and globex (frank's went with him)")
			d = call("GET", "/admin/tenants?owner_user_id="+dave.ID, root, nil).expect(http.StatusOK).data()
			assert.Len(t, list(t, d["tenants"]), 2)

			secret := "strava-client-secret-0123456789"
			h.secret("OAuth client secret", secret)
			app := map[string]any{"client_id": "12345", "client_secret": secret, "redirect_uri": "https://globex.example.com/oauth/callback",
				"scopes": []string{"read", "activity:read_all"}, "rate_limit_per_day": 1000}
			res = call("PUT", "/admin/tenants/"+tenantID+"/oauth-apps/strava", root, app).expect(http.StatusOK)
			d = res.data()
			hasFields(t, d, "provider", "client_id", "has_client_secret", "redirect_uri", "scopes", "rate_limit_per_day", "is_active")
			assert.Equal(t, true, d["has_client_secret"])
			assert.NotContains(t, d, "client_secret")
			app["client_id"] = "67890"
			call("PUT", "/admin/tenants/"+tenantID+"/oauth-apps/strava", root, app).expect(http.StatusOK)
			app["redirect_uri"] = "http://evil.example.com/cb"
			call("PUT", "/admin/tenants/"+tenantID+"/oauth-apps/fitbit", root, app).expectError(http.StatusBadRequest, httpserver.CodeBadRequest)
			app["redirect_uri"] = "https://globex.example.com/oauth/callback"
			call("PUT", "/admin/tenants/"+tenantID+"/oauth-apps/fitbit", root, app).expect(http.StatusOK)
			call("PUT", "/admin/tenants/"+tenantID+"/oauth-apps/myspace", root, app).expectError(http.StatusBadRequest, httpserver.CodeBadRequest)
			delete(app, "client_secret")
			call("PUT", "/admin/tenants/"+tenantID+"/oauth-apps/garmin", root, app).expectError(http.StatusBadRequest, httpserver.CodeBadRequest)

			d = call("GET", "/admin/tenants/"+tenantID+"/oauth-apps", root, nil).expect(http.StatusOK).data()
			apps := list(t, d["apps"])
			require.Len(t, apps, 2)
			assert.Equal(t, "67890", obj(t, apps[1])["client_id"])
			call("GET", "/admin/tenants/"+bobTenant+"/oauth-apps", root, nil).expect(http.StatusOK)

			d = call("DELETE", "/admin/tenants/"+tenantID+"/oauth-apps/fitbit", root, nil).expect(http.StatusOK).data()
			assert.Equal(t, map[string]any{"tenant_id": tenantID, "provider": "fitbit"}, d)
			call("DELETE", "/admin/tenants/"+tenantID+"/oauth-apps/fitbit", root, nil).expectError(http.StatusNotFound, httpserver.CodeNotFound)
			call("DELETE", "/admin/tenants/"+bobTenant+"/oauth-apps/strava", root, nil).expectError(http.StatusNotFound, httpserver.CodeNotFound)
		})

		t.Run("data key rotation", func(t *testing.T) {
			defer h.use(t)()
			before := h.db.Keyring().PrimaryVersion(keyring.PurposeEncryption)
			d := call("GET", "/admin/keys/rotation", root, nil).expect(http.StatusOK).data()
			hasFields(t, d, "primary_version", "versions", "remaining", "this_instance")
			assert.Equal(t, float64(before), d["primary_version"])
			assert.Equal(t, float64(0), d["remaining"])

			call("POST", "/admin/keys/rotation", root, map[string]any{"batch_size": -1}).expectError(http.StatusBadRequest, httpserver.CodeBadRequest)
			call("POST", "/admin/keys/rotation", root, map[string]any{"pause_ms": -5}).expectError(http.StatusBadRequest, httpserver.CodeBadRequest)
			assert.Equal(t, before, h.db.Keyring().PrimaryVersion(keyring.PurposeEncryption), "a refused request rotates nothing")

			res := call("POST", "/admin/keys/rotation", root, map[string]any{"retire": true, "batch_size": 1, "pause_ms": 100}).expect(http.StatusAccepted)
			d = res.data()
			assert.Equal(t, float64(before+1), d["new_version"])
			// One rotation at a time: a second one is refused before it rotates.
			call("POST", "/admin/keys/rotation", root, nil).expectError(http.StatusConflict, httpserver.CodeConflict)
			assert.Equal(t, before+1, h.db.Keyring().PrimaryVersion(keyring.PurposeEncryption))
			deadline := time.Now().Add(time.Minute)
			for {
				d = call("GET", "/admin/keys/rotation", root, nil).expect(http.StatusOK).data()
				if obj(t, d["this_instance"])["running"] == false {
					break
				}
				require.True(t, time.Now().Before(deadline), "rotation did not finish: %v", d)
				time.Sleep(20 * time.Millisecond)
			}
			run := obj(t, d["this_instance"])
			assert.Nil(t, run["error"])
			assert.NotNil(t, run["finished_at"])
			assert.GreaterOrEqual(t, run["rewritten"], float64(2), "the OAuth app's secret and the signing secret")
			assert.Equal(t, []any{float64(before)}, run["retired_versions"])
			assert.Equal(t, float64(0), d["remaining"])
			assert.Equal(t, float64(before+1), d["primary_version"])

			// Everything sealed still opens, under the new key.
			scope, err := h.db.Tenant(ctx, tenantID)
			require.NoError(t, err)
			app, err := scope.OAuthApps().Get(ctx, pierredb.ProviderStrava)
			require.NoError(t, err)
			assert.Equal(t, "strava-client-secret-0123456789", app.ClientSecret.Reveal())
			call("GET", "/admin/list", ops, nil).expect(http.StatusOK)
			hd := h.do(request{method: "GET", path: "/api/health"}).expect(http.StatusOK).json()
			assert.Equal(t, float64(before+1), obj(t, hd["encryption"])["data_key_version"])
		})

		t.Run("signing secret rotation", func(t *testing.T) {
			defer h.use(t)()
			res := call("POST", "/admin/signing-secret/rotate", root, nil).expect(http.StatusOK)
			nt := obj(t, res.data()["new_token"])
			newRoot := h.takeSecret(res, "root token after the signing secret rotation", str(t, nt["jwt_token"]))
			call("GET", "/admin/list", root, nil).expectError(http.StatusUnauthorized, httpserver.CodeUnauthorized)
			call("GET", "/admin/list", ops, nil).expectError(http.StatusUnauthorized, httpserver.CodeUnauthorized)
			call("GET", "/admin/list", newRoot, nil).expect(http.StatusOK)
		})
	})
}
