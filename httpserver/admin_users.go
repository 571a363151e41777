package httpserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/pierre-mcp/pierre/pierredb"
)

// timeJSON formats a timestamp as RFC 3339 in UTC, or null when zero.
func timeJSON(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339Nano)
	return &s
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// userSummary is a user as the admin API lists it: the reference server's
// fields (with its capitalised tier) and the approval workflow's.
type userSummary struct {
	ID          string  `json:"id"`
	Email       string  `json:"email"`
	DisplayName *string `json:"display_name"`
	Tier        string  `json:"tier"`
	CreatedAt   *string `json:"created_at"`
	LastActive  *string `json:"last_active"`
	Status      string  `json:"user_status"`
	IsAdmin     bool    `json:"is_admin"`
	TenantID    *string `json:"tenant_id"`
	ApprovedBy  *string `json:"approved_by"`
	ApprovedAt  *string `json:"approved_at"`
}

func summarize(u pierredb.User) userSummary {
	tier := string(u.Tier)
	if tier != "" {
		tier = strings.ToUpper(tier[:1]) + tier[1:]
	}
	approvedBy := u.ApprovedBy
	if approvedBy == "" {
		approvedBy = u.ApprovedByService
	}
	return userSummary{
		ID: u.ID, Email: u.Email, DisplayName: optional(u.DisplayName), Tier: tier,
		CreatedAt: timeJSON(u.CreatedAt), LastActive: timeJSON(u.LastActive), Status: string(u.Status),
		IsAdmin: u.IsAdmin, TenantID: optional(u.TenantID), ApprovedBy: optional(approvedBy), ApprovedAt: timeJSON(u.ApprovedAt),
	}
}

type setupRequest struct {
	Email       string `json:"email"`
	Password    string `json:"password"`
	DisplayName string `json:"display_name"`
}

// setup creates the first admin user and a super-admin token, exactly once: the
// user and the token are written in one transaction, and the first-admin check
// runs under a lock, so racing requests get one 201 and 409s.
func (a *admin) setup(w http.ResponseWriter, r *http.Request) {
	var req setupRequest
	if !decodeBody(w, r, &req) {
		return
	}
	// Once an admin exists every setup request is a 409, answered before the
	// password is hashed: this route is public, and a hash costs about 26 ms
	// and 20 MB, inside the transaction below (on SQLite, the database's write
	// lock). The transaction still decides the race for the first admin.
	if a.adminExists(w, r) {
		return
	}
	var user pierredb.User
	var token pierredb.CreatedAdminToken
	err := a.db.RunInTx(r.Context(), func(ctx context.Context, _ bun.Tx) error {
		var err error
		user, err = a.db.Users().CreateFirstAdmin(ctx, pierredb.NewUser{Email: req.Email, Password: req.Password, DisplayName: req.DisplayName})
		if err != nil {
			return err
		}
		token, err = a.db.AdminTokens().CreateFirst(ctx, pierredb.NewAdminToken{
			ServiceName: "initial_admin_setup", Description: "Initial admin setup token",
			SuperAdmin: true, ExpiresAt: time.Now().AddDate(1, 0, 0),
		})
		return err
	})
	if errors.Is(err, pierredb.ErrAlreadyExists) && a.adminExists(w, r) {
		return
	}
	if err != nil {
		writeStoreError(w, a.opts.Logger, r, err)
		return
	}
	ok(w, http.StatusCreated, fmt.Sprintf("Admin user %s created successfully with token", user.Email),
		map[string]any{"user_id": user.ID, "admin_token": token.Token.Reveal()})
}

// adminExists answers 409 and returns true when an admin user exists.
func (a *admin) adminExists(w http.ResponseWriter, r *http.Request) bool {
	yes := true
	if n, err := a.db.Users().Count(r.Context(), pierredb.UserFilter{IsAdmin: &yes}); err != nil || n == 0 {
		return false
	}
	writeError(w, http.StatusConflict, CodeConflict, "Admin user already exists. Use admin token management instead.")
	return true
}

// setupStatus says whether POST /admin/setup would create the first admin:
// only while no admin user exists, whatever its status (a suspended admin
// keeps setup closed; reactivate it instead).
func (a *admin) setupStatus(w http.ResponseWriter, r *http.Request) {
	yes := true
	n, err := a.db.Users().Count(r.Context(), pierredb.UserFilter{IsAdmin: &yes})
	if err != nil {
		writeStoreError(w, a.opts.Logger, r, err)
		return
	}
	var msg *string
	if n == 0 {
		msg = optional("No admin exists yet: POST /admin/setup with {email, password, display_name} to create the first one")
	}
	writeJSON(w, http.StatusOK, map[string]any{"needs_setup": n == 0, "admin_user_exists": n > 0, "message": msg})
}

// listOptions reads limit and cursor from the query string.
func listOptions(r *http.Request) (pierredb.ListOptions, error) {
	q := r.URL.Query()
	var o pierredb.ListOptions
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return o, fmt.Errorf("%w: limit must be a number between 1 and 1000", pierredb.ErrInvalidArgument)
		}
		o.Limit = n
	}
	o.Cursor = q.Get("cursor")
	return o, nil
}

func (a *admin) listUsersWith(w http.ResponseWriter, r *http.Request, status pierredb.UserStatus, countKey, what string) {
	o, err := listOptions(r)
	if err == nil && r.URL.Query().Has("offset") {
		err = fmt.Errorf("%w: offset is not supported; pass the next_cursor of the previous page as cursor", pierredb.ErrInvalidArgument)
	}
	if err != nil {
		writeStoreError(w, a.opts.Logger, r, err)
		return
	}
	f := pierredb.UserFilter{Status: status, Limit: o.Limit, Cursor: o.Cursor}
	page, err := a.db.Users().List(r.Context(), f)
	if err != nil {
		writeStoreError(w, a.opts.Logger, r, err)
		return
	}
	total, err := a.db.Users().Count(r.Context(), f)
	if err != nil {
		writeStoreError(w, a.opts.Logger, r, err)
		return
	}
	users := make([]userSummary, len(page.Items))
	for i, u := range page.Items {
		users[i] = summarize(u)
	}
	ok(w, http.StatusOK, fmt.Sprintf("Retrieved %d %s", len(users), what),
		map[string]any{"users": users, countKey: total, "next_cursor": optional(page.Next)})
}

// listUsers lists users of one status (default active), oldest first.
func (a *admin) listUsers(w http.ResponseWriter, r *http.Request, _ pierredb.AdminPrincipal) {
	status := pierredb.UserStatus(r.URL.Query().Get("status"))
	if status == "" {
		status = pierredb.StatusActive
	}
	a.listUsersWith(w, r, status, "total", "users")
}

func (a *admin) pendingUsers(w http.ResponseWriter, r *http.Request, _ pierredb.AdminPrincipal) {
	a.listUsersWith(w, r, pierredb.StatusPending, "count", "pending users")
}

type approveRequest struct {
	Reason              string `json:"reason"`
	CreateDefaultTenant bool   `json:"create_default_tenant"`
	TenantName          string `json:"tenant_name"`
	TenantSlug          string `json:"tenant_slug"`
}

func reasonOr(reason string) string {
	if reason == "" {
		return "No reason provided"
	}
	return truncate(reason, 500)
}

// approveUser approves a pending user on behalf of the token's service and, if
// asked, creates the user's own tenant in the same transaction.
func (a *admin) approveUser(w http.ResponseWriter, r *http.Request, p pierredb.AdminPrincipal) {
	var req approveRequest
	if !decodeOptionalBody(w, r, &req) {
		return
	}
	id := r.PathValue("user_id")
	var user pierredb.User
	var tenant *pierredb.Tenant
	err := a.db.RunInTx(r.Context(), func(ctx context.Context, _ bun.Tx) error {
		// Users.Approve explains a miss (unknown user, user not pending) with a
		// read outside the transaction, which on SQLite waits forever for the
		// writer connection this transaction holds: find the miss first, with
		// a read inside it. (On SQLite nothing can change the user between this
		// read and the update; on PostgreSQL the explaining read does not block.)
		cur, err := a.db.Users().Get(ctx, id)
		if err != nil {
			return err
		}
		if cur.Status != pierredb.StatusPending {
			return fmt.Errorf("%w: user is %s, not pending", pierredb.ErrConflict, cur.Status)
		}
		if user, err = a.db.Users().Approve(ctx, id, pierredb.ByService(p.ServiceName)); err != nil || !req.CreateDefaultTenant {
			return err
		}
		name, slug := req.TenantName, req.TenantSlug
		if name == "" {
			name = user.Email + "'s Organization"
			if user.DisplayName != "" {
				name = user.DisplayName + "'s Organization"
			}
		}
		if slug == "" {
			slug = "user-" + strings.ReplaceAll(user.ID, "-", "")[:20]
		}
		t, err := a.db.Tenants().Create(ctx, pierredb.NewTenant{Name: name, Slug: slug, OwnerUserID: user.ID})
		tenant = &t
		return err
	})
	if err != nil {
		writeStoreError(w, a.opts.Logger, r, err)
		return
	}
	var created any
	if tenant != nil {
		created = map[string]any{"tenant_id": tenant.ID, "name": tenant.Name, "slug": tenant.Slug, "plan": tenant.Plan}
	}
	ok(w, http.StatusOK, "User approved successfully", map[string]any{
		"user": map[string]any{"id": user.ID, "email": user.Email, "user_status": user.Status,
			"approved_by": optional(user.ApprovedByService), "approved_at": timeJSON(user.ApprovedAt)},
		"tenant_created": created,
		"reason":         reasonOr(req.Reason),
	})
}

type reasonRequest struct {
	Reason string `json:"reason"`
}

// userChange runs change on the path's user and answers with the user.
func (a *admin) userChange(w http.ResponseWriter, r *http.Request, message string,
	change func(ctx context.Context, id string) (pierredb.User, error)) {
	var req reasonRequest
	if !decodeOptionalBody(w, r, &req) {
		return
	}
	u, err := change(r.Context(), r.PathValue("user_id"))
	if err != nil {
		writeStoreError(w, a.opts.Logger, r, err)
		return
	}
	ok(w, http.StatusOK, message, map[string]any{"user": summarize(u), "reason": reasonOr(req.Reason)})
}

func (a *admin) suspendUser(w http.ResponseWriter, r *http.Request, _ pierredb.AdminPrincipal) {
	a.userChange(w, r, "User suspended successfully", a.db.Users().Suspend)
}

func (a *admin) reactivateUser(w http.ResponseWriter, r *http.Request, _ pierredb.AdminPrincipal) {
	a.userChange(w, r, "User reactivated successfully", a.db.Users().Reactivate)
}

func (a *admin) grantAdmin(w http.ResponseWriter, r *http.Request, _ pierredb.AdminPrincipal) {
	a.userChange(w, r, "Admin rights granted", func(ctx context.Context, id string) (pierredb.User, error) {
		return a.db.Users().SetAdmin(ctx, id, true)
	})
}

func (a *admin) revokeAdmin(w http.ResponseWriter, r *http.Request, _ pierredb.AdminPrincipal) {
	a.userChange(w, r, "Admin rights revoked", func(ctx context.Context, id string) (pierredb.User, error) {
		return a.db.Users().SetAdmin(ctx, id, false)
	})
}

func (a *admin) deleteUser(w http.ResponseWriter, r *http.Request, _ pierredb.AdminPrincipal) {
	var req reasonRequest
	if !decodeOptionalBody(w, r, &req) {
		return
	}
	id := r.PathValue("user_id")
	u, err := a.db.Users().Get(r.Context(), id)
	if err == nil {
		err = a.db.Users().Delete(r.Context(), id)
	}
	if err != nil {
		writeStoreError(w, a.opts.Logger, r, err)
		return
	}
	ok(w, http.StatusOK, "User deleted successfully", map[string]any{
		"deleted_user": map[string]any{"id": u.ID, "email": u.Email}, "reason": reasonOr(req.Reason)})
}

const autoApprovalDescription = "When enabled, new user registrations are automatically approved without admin intervention"

func (a *admin) getAutoApproval(w http.ResponseWriter, r *http.Request, _ pierredb.AdminPrincipal) {
	on, err := a.db.Settings().AutoApproveUsers(r.Context())
	if err != nil {
		writeStoreError(w, a.opts.Logger, r, err)
		return
	}
	ok(w, http.StatusOK, "Auto-approval setting retrieved", map[string]any{"enabled": on, "description": autoApprovalDescription})
}

type autoApprovalRequest struct {
	Enabled *bool `json:"enabled"`
}

func (a *admin) setAutoApproval(w http.ResponseWriter, r *http.Request, _ pierredb.AdminPrincipal) {
	var req autoApprovalRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if req.Enabled == nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, `field "enabled" (true or false) is required`)
		return
	}
	if err := a.db.Settings().SetAutoApproveUsers(r.Context(), *req.Enabled); err != nil {
		writeStoreError(w, a.opts.Logger, r, err)
		return
	}
	msg := "Auto-approval has been disabled"
	if *req.Enabled {
		msg = "Auto-approval has been enabled"
	}
	ok(w, http.StatusOK, msg, map[string]any{"enabled": *req.Enabled, "description": autoApprovalDescription})
}
