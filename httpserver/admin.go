package httpserver

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pierre-mcp/pierre/pierredb"
)

// admin serves the admin API. Every route but the two setup routes requires
// "Authorization: Bearer <admin token>" holding the route's permission, and
// records one admin_token_usage row per action.
type admin struct {
	db       *pierredb.Database
	opts     Options
	rotation rotationJob
}

func newAdmin(db *pierredb.Database, opts Options) *admin { return &admin{db: db, opts: opts} }

// envelope is the reference server's answer: {success, message, data}.
type envelope struct {
	Success bool   `json:"success"`
	Message string `json:"message"`
	Data    any    `json:"data"`
}

func ok(w http.ResponseWriter, status int, message string, data any) {
	writeJSON(w, status, envelope{Success: true, Message: message, Data: data})
}

// adminHandler is a route handler that runs once its token is verified.
type adminHandler func(w http.ResponseWriter, r *http.Request, p pierredb.AdminPrincipal)

// statusRecorder remembers the status a handler answered with, for the audit
// row.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// guard verifies the request's admin token for need, runs h, and records the
// action (its name, the target, the outcome and its duration) against the
// token.
func (a *admin) guard(need pierredb.AdminPermission, action string, target func(*http.Request) string, h adminHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := bearer(r)
		if token == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="pierre-admin"`)
			writeError(w, http.StatusUnauthorized, CodeUnauthorized, "an admin token is required: send Authorization: Bearer <admin token>")
			return
		}
		start := time.Now()
		p, err := a.db.AdminTokens().Verify(r.Context(), token, need)
		rec := &statusRecorder{ResponseWriter: w}
		switch {
		case errors.Is(err, pierredb.ErrPermissionDenied) && p.TokenID != "":
			// A valid token without the permission: refused, and recorded.
			writeStoreError(rec, a.opts.Logger, r, err)
		case err != nil:
			w.Header().Set("WWW-Authenticate", `Bearer realm="pierre-admin", error="invalid_token"`)
			writeStoreError(w, a.opts.Logger, r, err)
			return
		default:
			h(rec, r, p)
		}
		act := pierredb.AdminAction{
			Action:           action,
			IPAddress:        a.clientIP(r),
			UserAgent:        truncate(r.UserAgent(), 500),
			RequestSizeBytes: max(r.ContentLength, 0),
			Success:          rec.status < 400,
			ResponseTime:     time.Since(start),
		}
		if target != nil {
			act.TargetResource = truncate(target(r), 200)
		}
		if !act.Success {
			act.ErrorMessage = http.StatusText(rec.status)
		}
		// The answer is sent; the audit row must not be lost to a client that
		// hung up.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
		defer cancel()
		if err := a.db.AdminTokens().RecordUsage(ctx, p.TokenID, act); err != nil {
			a.opts.Logger.Warn("httpserver: could not record an admin action", "action", action, "err", err.Error())
		}
	})
}

// clientIP is the request's remote address, or with TrustProxyHeaders the
// first address a proxy reports.
func (a *admin) clientIP(r *http.Request) string {
	if a.opts.TrustProxyHeaders {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			first, _, _ := strings.Cut(xff, ",")
			if ip := net.ParseIP(strings.TrimSpace(first)); ip != nil {
				return ip.String()
			}
		}
		if ip := net.ParseIP(strings.TrimSpace(r.Header.Get("X-Real-IP"))); ip != nil {
			return ip.String()
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.String()
	}
	return ""
}

func pathValue(name string) func(*http.Request) string {
	return func(r *http.Request) string { return r.PathValue(name) }
}

// truncate keeps at most n bytes of s, on a character boundary, and only valid
// UTF-8.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// register adds every admin route under base ("/admin" after the prefix).
func (a *admin) register(mux *http.ServeMux, base string) {
	routes := []struct {
		pattern string
		h       http.Handler
	}{
		{"POST /setup", http.HandlerFunc(a.setup)},
		{"GET /setup/status", http.HandlerFunc(a.setupStatus)},

		{"POST /provision", a.guard(pierredb.AdminProvisionKeys, "provision_api_key", nil, a.provision)},
		{"POST /revoke", a.guard(pierredb.AdminRevokeKeys, "revoke_api_key", nil, a.revokeKey)},
		{"GET /list", a.guard(pierredb.AdminListKeys, "list_api_keys", nil, a.listKeys)},

		{"GET /users", a.guard(pierredb.AdminManageUsers, "list_users", nil, a.listUsers)},
		{"GET /pending-users", a.guard(pierredb.AdminManageUsers, "list_pending_users", nil, a.pendingUsers)},
		{"POST /approve-user/{user_id}", a.guard(pierredb.AdminManageUsers, "approve_user", pathValue("user_id"), a.approveUser)},
		{"POST /suspend-user/{user_id}", a.guard(pierredb.AdminManageUsers, "suspend_user", pathValue("user_id"), a.suspendUser)},
		{"POST /reactivate-user/{user_id}", a.guard(pierredb.AdminManageUsers, "reactivate_user", pathValue("user_id"), a.reactivateUser)},
		{"POST /users/{user_id}/admin", a.guard(pierredb.AdminManageUsers, "grant_admin", pathValue("user_id"), a.grantAdmin)},
		{"DELETE /users/{user_id}/admin", a.guard(pierredb.AdminManageUsers, "revoke_admin", pathValue("user_id"), a.revokeAdmin)},
		{"DELETE /users/{user_id}", a.guard(pierredb.AdminManageUsers, "delete_user", pathValue("user_id"), a.deleteUser)},
		{"GET /settings/auto-approval", a.guard(pierredb.AdminManageUsers, "get_auto_approval", nil, a.getAutoApproval)},
		{"POST /settings/auto-approval", a.guard(pierredb.AdminManageUsers, "set_auto_approval", nil, a.setAutoApproval)},
		{"PUT /settings/auto-approval", a.guard(pierredb.AdminManageUsers, "set_auto_approval", nil, a.setAutoApproval)},

		{"POST /tokens", a.guard(pierredb.AdminManageAdminTokens, "create_admin_token", nil, a.createToken)},
		{"GET /tokens", a.guard(pierredb.AdminManageAdminTokens, "list_admin_tokens", nil, a.listTokens)},
		{"GET /tokens/{id}", a.guard(pierredb.AdminManageAdminTokens, "get_admin_token", pathValue("id"), a.getToken)},
		{"POST /tokens/{id}/revoke", a.guard(pierredb.AdminManageAdminTokens, "revoke_admin_token", pathValue("id"), a.revokeToken)},
		{"POST /tokens/{id}/rotate", a.guard(pierredb.AdminManageAdminTokens, "rotate_admin_token", pathValue("id"), a.rotateToken)},
		{"GET /tokens/{id}/usage", a.guard(pierredb.AdminViewAudit, "list_admin_token_usage", pathValue("id"), a.tokenUsage)},
		{"POST /signing-secret/rotate", a.guard(pierredb.AdminManageAdminTokens, "rotate_signing_secret", nil, a.rotateSigningSecret)},

		{"POST /tenants", a.guard(pierredb.AdminManageTenants, "create_tenant", nil, a.createTenant)},
		{"GET /tenants", a.guard(pierredb.AdminManageTenants, "list_tenants", nil, a.listTenants)},
		{"GET /tenants/{tenant_id}", a.guard(pierredb.AdminManageTenants, "get_tenant", pathValue("tenant_id"), a.getTenant)},
		{"PUT /tenants/{tenant_id}/oauth-apps/{provider}", a.guard(pierredb.AdminManageOAuthApps, "set_oauth_app", pathValue("tenant_id"), a.setOAuthApp)},
		{"DELETE /tenants/{tenant_id}/oauth-apps/{provider}", a.guard(pierredb.AdminManageOAuthApps, "delete_oauth_app", pathValue("tenant_id"), a.deleteOAuthApp)},
		{"GET /tenants/{tenant_id}/oauth-apps", a.guard(pierredb.AdminManageOAuthApps, "list_oauth_apps", pathValue("tenant_id"), a.listOAuthApps)},

		{"POST /keys/rotation", a.guard(pierredb.AdminRotateKeys, "start_key_rotation", nil, a.startRotation)},
		{"GET /keys/rotation", a.guard(pierredb.AdminRotateKeys, "key_rotation_progress", nil, a.rotationProgress)},
	}
	for _, rt := range routes {
		method, path, _ := strings.Cut(rt.pattern, " ")
		mux.Handle(method+" "+base+path, rt.h)
	}
	// Paths the admin API knows, asked with another method, get a JSON 405;
	// unknown paths fall through to the JSON 404.
	allowed := map[string][]string{}
	var order []string
	for _, rt := range routes {
		method, path, _ := strings.Cut(rt.pattern, " ")
		if _, seen := allowed[path]; !seen {
			order = append(order, path)
		}
		allowed[path] = append(allowed[path], method)
	}
	for _, path := range order {
		methods := allowed[path]
		if slices.Contains(methods, http.MethodGet) {
			methods = append(methods, http.MethodHead)
		}
		mux.Handle(base+path, methodNotAllowed(strings.Join(methods, ", ")))
	}
}
