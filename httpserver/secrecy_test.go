package httpserver_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/httpserver"
	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

// TestSecrecy puts secrets where a careless handler would echo or log them:
// in refused passwords, in query strings, in paths, in headers, and in
// requests that fail with the database gone. The harness then searches every
// answer, header and log line for every secret and stored hash (every other
// test of this package does the same for its own requests).
func TestSecrecy(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		h := newHarness(t, e, httpserver.Options{})
		ctx := context.Background()

		// Refused setup passwords are not echoed.
		long := strings.Repeat("p4ssw0rd", 600)
		h.secret("too long password", long)
		h.do(request{method: "POST", path: "/admin/setup", body: map[string]any{"email": "root@example.com", "password": long}}).
			expectError(http.StatusBadRequest, httpserver.CodeBadRequest)
		ctl := "password with a \x00 in it"
		h.secret("password with a control character", ctl)
		res := h.do(request{method: "POST", path: "/admin/setup", body: map[string]any{"email": "root@example.com", "password": ctl}})
		assert.Contains(t, []int{http.StatusBadRequest, http.StatusCreated}, res.Code, "%s", res.Body)
		var root, adminID string
		if res.Code == http.StatusCreated {
			adminID = str(t, res.data()["user_id"])
			root = h.takeSecret(res, "setup token", str(t, res.data()["admin_token"]))
		} else {
			adminID, root = h.setup()
		}
		tn, err := h.db.Tenants().Create(ctx, pierredb.NewTenant{Name: "T", Slug: "tt", OwnerUserID: adminID})
		require.NoError(t, err)
		scope, err := h.db.Tenant(ctx, tn.ID)
		require.NoError(t, err)
		key, err := scope.APIKeys().Create(ctx, pierredb.NewAPIKey{UserID: adminID, Name: "k"})
		require.NoError(t, err)
		apiKey := key.Key.Reveal()
		h.secret("API key", apiKey)

		// Secrets in query strings, bodies and headers of refused requests.
		for _, q := range []string{"cursor=" + url.QueryEscape(root), "user_email=" + url.QueryEscape(apiKey), "limit=" + url.QueryEscape(apiKey)} {
			res := h.do(request{method: "GET", path: "/admin/list?" + q, token: root})
			assert.Contains(t, []int{400, 404}, res.Code, "%s: %s", q, res.Body)
		}
		h.do(request{method: "POST", path: "/admin/provision", token: root, body: map[string]any{"user_email": apiKey, "tier": "starter"}}).expectError(400, "")
		h.do(request{method: "POST", path: "/admin/revoke", token: root, body: map[string]any{"api_key_id": apiKey}}).expectError(404, "")
		h.do(request{method: "POST", path: "/admin/tokens", token: root, body: map[string]any{"service_name": root}}).expectError(400, "")
		h.do(request{method: "GET", path: "/admin/users", header: http.Header{"Authorization": {"Bearer " + apiKey}}}).expectError(401, "")
		h.do(request{method: "GET", path: "/admin/users", header: http.Header{"Authorization": {"Bearer " + root + "x"}}}).expectError(401, "")
		h.do(request{method: "GET", path: "/admin/users", header: http.Header{"Authorization": {"Bearer " + root[:len(root)-2]}}}).expectError(401, "")
		h.do(request{method: "GET", path: "/admin/users", header: http.Header{"User-Agent": {apiKey}, "X-Forwarded-For": {apiKey}}, token: root}).expect(200)
		// Secrets in paths: recorded redacted, never echoed.
		h.do(request{method: "GET", path: "/admin/tokens/" + url.PathEscape(apiKey), token: root}).expectError(404, "")
		h.do(request{method: "DELETE", path: "/admin/users/" + url.PathEscape(apiKey), token: root}).expectError(404, "")
		rootID := h.tokenIDOf(root)
		res = h.do(request{method: "GET", path: "/admin/tokens/" + rootID + "/usage?limit=1000", token: root}).expect(200)
		assert.Contains(t, string(res.Body), "[REDACTED]")
		// A secret in a protected route's request, refused by the middleware.
		protected := httpserver.RequireAPIKey(h.db, h.opts)(echoPrincipal)
		_, err = scope.APIKeys().Revoke(ctx, key.ID)
		require.NoError(t, err)
		h.serve(protected, request{method: "GET", path: "/x", header: http.Header{"X-API-Key": {apiKey}}}).expectError(401, "")

		// With the database gone every request fails; what is logged about the
		// failures holds no secret either.
		h.storedSecrets()
		require.NoError(t, h.db.Close())
		for _, r := range []request{
			{method: "GET", path: "/admin/tokens/" + url.PathEscape(apiKey), token: root},
			{method: "POST", path: "/admin/approve-user/" + url.PathEscape(apiKey), token: root},
			{method: "GET", path: "/admin/list?cursor=" + url.QueryEscape(apiKey), token: root},
			{method: "POST", path: "/admin/setup", body: map[string]any{"email": "x@example.com", "password": long[:100]}},
			{method: "GET", path: "/api/health"},
		} {
			res := h.do(r)
			assert.Contains(t, []int{http.StatusServiceUnavailable, http.StatusUnauthorized}, res.Code, "%s %s: %s", r.method, r.path, res.Body)
		}
		h.serve(protected, request{method: "GET", path: "/x", header: http.Header{"X-API-Key": {apiKey}}}).expectError(503, "")
		assert.NotEmpty(t, h.logs.String())
	})
}
