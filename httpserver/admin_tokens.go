package httpserver

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/uptrace/bun"

	"github.com/pierre-mcp/pierre/pierredb"
)

// tokenSummary is an admin token as listed: never the token, nor its hash.
type tokenSummary struct {
	ID                 string        `json:"id"`
	ServiceName        string        `json:"service_name"`
	ServiceDescription *string       `json:"service_description"`
	TokenPrefix        string        `json:"token_prefix"`
	Permissions        permissionSet `json:"permissions"`
	IsSuperAdmin       bool          `json:"is_super_admin"`
	IsActive           bool          `json:"is_active"`
	Superseded         bool          `json:"superseded"`
	CreatedAt          *string       `json:"created_at"`
	ExpiresAt          *string       `json:"expires_at"`
	LastUsedAt         *string       `json:"last_used_at"`
	LastUsedIP         *string       `json:"last_used_ip"`
	UsageCount         int64         `json:"usage_count"`
}

// permissionSet is a token's permissions as the reference server shows them:
// {"permissions": [...]} (its AdminPermissions struct wraps the set), so that
// its scripts read .permissions.permissions unchanged.
type permissionSet struct {
	Permissions []string `json:"permissions"`
}

func tokenOut(t pierredb.AdminToken) tokenSummary {
	perms := permissionSet{Permissions: make([]string, len(t.Permissions))}
	for i, p := range t.Permissions {
		perms.Permissions[i] = string(p)
	}
	return tokenSummary{ID: t.ID, ServiceName: t.ServiceName, ServiceDescription: optional(t.Description), TokenPrefix: t.JTI,
		Permissions: perms, IsSuperAdmin: t.SuperAdmin, IsActive: t.IsActive, Superseded: t.Superseded,
		CreatedAt: timeJSON(t.CreatedAt), ExpiresAt: timeJSON(t.ExpiresAt), LastUsedAt: timeJSON(t.LastUsedAt),
		LastUsedIP: optional(t.LastUsedIP), UsageCount: t.UsageCount}
}

// createdToken is the answer to a new token: the reference's fields, the token
// itself this once.
func createdToken(c pierredb.CreatedAdminToken) map[string]any {
	return map[string]any{"token_id": c.ID, "service_name": c.ServiceName, "jwt_token": c.Token.Reveal(),
		"token_prefix": c.JTI, "is_super_admin": c.SuperAdmin, "expires_at": timeJSON(c.ExpiresAt)}
}

type createTokenRequest struct {
	ServiceName        string   `json:"service_name"`
	ServiceDescription string   `json:"service_description"`
	IsSuperAdmin       bool     `json:"is_super_admin"`
	ExpiresInDays      *int     `json:"expires_in_days"`
	Permissions        []string `json:"permissions"`
}

// maxExpiryDays bounds expires_in_days (100 years): beyond it a day count
// times 24 hours overflows a time.Duration and wraps round.
const maxExpiryDays = 36500

// expiryDays is days as a duration, if it is 1 to maxExpiryDays.
func expiryDays(days int) (time.Duration, bool) {
	if days < 1 || days > maxExpiryDays {
		return 0, false
	}
	return time.Duration(days) * 24 * time.Hour, true
}

// defaultTokenPermissions are what a token gets when the request names none:
// the reference server's default set.
var defaultTokenPermissions = []pierredb.AdminPermission{pierredb.AdminProvisionKeys, pierredb.AdminListKeys, pierredb.AdminRevokeKeys}

func (a *admin) createToken(w http.ResponseWriter, r *http.Request, p pierredb.AdminPrincipal) {
	var req createTokenRequest
	if !decodeBody(w, r, &req) {
		return
	}
	nt := pierredb.NewAdminToken{ServiceName: req.ServiceName, Description: req.ServiceDescription, SuperAdmin: req.IsSuperAdmin}
	if req.Permissions == nil {
		nt.Permissions = defaultTokenPermissions
	}
	for _, perm := range req.Permissions {
		nt.Permissions = append(nt.Permissions, pierredb.AdminPermission(perm))
	}
	if req.ExpiresInDays != nil && *req.ExpiresInDays != 0 {
		d, ok := expiryDays(*req.ExpiresInDays)
		if !ok {
			writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("expires_in_days must be between 1 and %d; leave it out or 0 for a token that does not expire", maxExpiryDays))
			return
		}
		nt.ExpiresIn = d
	}
	created, err := a.db.AdminTokens().Create(r.Context(), p, nt)
	if err != nil {
		writeStoreError(w, a.opts.Logger, r, err)
		return
	}
	ok(w, http.StatusCreated, "Admin token created successfully", createdToken(created))
}

func (a *admin) listTokens(w http.ResponseWriter, r *http.Request, _ pierredb.AdminPrincipal) {
	o, err := listOptions(r)
	if err != nil {
		writeStoreError(w, a.opts.Logger, r, err)
		return
	}
	page, err := a.db.AdminTokens().List(r.Context(), o)
	if err != nil {
		writeStoreError(w, a.opts.Logger, r, err)
		return
	}
	includeInactive := r.URL.Query().Get("include_inactive") == "true"
	now := time.Now()
	tokens := make([]tokenSummary, 0, len(page.Items))
	for _, t := range page.Items {
		if includeInactive || t.Usable(now) {
			tokens = append(tokens, tokenOut(t))
		}
	}
	ok(w, http.StatusOK, fmt.Sprintf("Retrieved %d admin tokens", len(tokens)),
		map[string]any{"count": len(tokens), "tokens": tokens, "next_cursor": optional(page.Next)})
}

func (a *admin) getToken(w http.ResponseWriter, r *http.Request, _ pierredb.AdminPrincipal) {
	t, err := a.db.AdminTokens().Get(r.Context(), r.PathValue("id"))
	if err != nil {
		writeStoreError(w, a.opts.Logger, r, err)
		return
	}
	ok(w, http.StatusOK, "Admin token retrieved successfully", tokenOut(t))
}

func (a *admin) revokeToken(w http.ResponseWriter, r *http.Request, p pierredb.AdminPrincipal) {
	t, err := a.db.AdminTokens().Revoke(r.Context(), p, r.PathValue("id"))
	if err != nil {
		writeStoreError(w, a.opts.Logger, r, err)
		return
	}
	ok(w, http.StatusOK, "Admin token revoked successfully", map[string]any{"token_id": t.ID})
}

// rotateToken replaces a token with a new one of the same service,
// description, permissions and expiry, and revokes the old one, in one
// transaction.
func (a *admin) rotateToken(w http.ResponseWriter, r *http.Request, p pierredb.AdminPrincipal) {
	id := r.PathValue("id")
	var created pierredb.CreatedAdminToken
	err := a.db.RunInTx(r.Context(), func(ctx context.Context, _ bun.Tx) error {
		old, err := a.db.AdminTokens().Get(ctx, id)
		if err != nil {
			return err
		}
		if !old.IsActive {
			return fmt.Errorf("%w: admin token %s is revoked; create a new one instead", pierredb.ErrConflict, old.ID)
		}
		nt := pierredb.NewAdminToken{ServiceName: old.ServiceName, Description: old.Description,
			Permissions: old.Permissions, SuperAdmin: old.SuperAdmin, ExpiresAt: old.ExpiresAt}
		if created, err = a.db.AdminTokens().Create(ctx, p, nt); err != nil {
			return err
		}
		_, err = a.db.AdminTokens().Revoke(ctx, p, old.ID)
		return err
	})
	if err != nil {
		writeStoreError(w, a.opts.Logger, r, err)
		return
	}
	ok(w, http.StatusOK, "Admin token rotated successfully", map[string]any{"old_token_id": id, "new_token": createdToken(created)})
}

// rotateSigningSecret replaces the JWT signing secret: every other admin token
// stops verifying at once; the caller gets a replacement for its own.
func (a *admin) rotateSigningSecret(w http.ResponseWriter, r *http.Request, p pierredb.AdminPrincipal) {
	created, err := a.db.AdminTokens().RotateSigningSecret(r.Context(), p)
	if err != nil {
		writeStoreError(w, a.opts.Logger, r, err)
		return
	}
	ok(w, http.StatusOK, "Signing secret rotated; every other admin token is now invalid", map[string]any{"new_token": createdToken(created)})
}

func (a *admin) tokenUsage(w http.ResponseWriter, r *http.Request, _ pierredb.AdminPrincipal) {
	o, err := listOptions(r)
	if err != nil {
		writeStoreError(w, a.opts.Logger, r, err)
		return
	}
	page, err := a.db.AdminTokens().ListUsage(r.Context(), r.PathValue("id"), pierredb.AdminUsageFilter{Limit: o.Limit, Cursor: o.Cursor})
	if err != nil {
		writeStoreError(w, a.opts.Logger, r, err)
		return
	}
	rows := make([]map[string]any, len(page.Items))
	for i, u := range page.Items {
		rows[i] = usageOut(u)
	}
	ok(w, http.StatusOK, fmt.Sprintf("Retrieved %d admin actions", len(rows)), map[string]any{"usage": rows, "next_cursor": optional(page.Next)})
}

func usageOut(u pierredb.AdminTokenUsage) map[string]any {
	return map[string]any{"id": u.ID, "admin_token_id": u.TokenID, "timestamp": timeJSON(u.At), "action": u.Action,
		"target_resource": optional(u.TargetResource), "ip_address": optional(u.IPAddress), "user_agent": optional(u.UserAgent),
		"request_size_bytes": u.RequestSizeBytes, "success": u.Success, "error_message": optional(u.ErrorMessage),
		"response_time_ms": u.ResponseTime.Milliseconds()}
}
