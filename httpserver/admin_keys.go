package httpserver

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/pierre-mcp/pierre/pierredb"
)

type provisionRequest struct {
	UserEmail         string `json:"user_email"`
	Tier              string `json:"tier"`
	Description       string `json:"description"`
	ExpiresInDays     *int   `json:"expires_in_days"`
	RateLimitRequests *int64 `json:"rate_limit_requests"`
	RateLimitPeriod   string `json:"rate_limit_period"`
	TenantID          string `json:"tenant_id"`
}

// rateLimitJSON is a quota as the reference server shows it; requests is
// null for an unlimited key. Window (seconds) is in listings only, where the
// reference shows {requests, window}.
type rateLimitJSON struct {
	Requests *int64 `json:"requests"`
	Window   *int64 `json:"window,omitempty"`
	Period   string `json:"period"`
}

func rateLimitOut(rl pierredb.RateLimit) rateLimitJSON {
	out := rateLimitJSON{Period: string(rl.Period)}
	if !rl.Unlimited {
		out.Requests = &rl.Requests
	}
	return out
}

// periodSeconds are the reference server's window lengths of the periods (a
// month is 30 days there; pierre's month windows follow the calendar).
var periodSeconds = map[pierredb.RateLimitPeriod]int64{
	pierredb.PeriodHour: 3600, pierredb.PeriodDay: 86400, pierredb.PeriodWeek: 604800, pierredb.PeriodMonth: 2592000,
}

func listedRateLimit(rl pierredb.RateLimit) rateLimitJSON {
	out := rateLimitOut(rl)
	if s, ok := periodSeconds[rl.Period]; ok {
		out.Window = &s
	}
	return out
}

// provision issues an API key for a user: in the tenant named, or the user's
// home tenant, or (for a user in no tenant, the single-user workflow) a
// personal tenant created for them in the same transaction.
func (a *admin) provision(w http.ResponseWriter, r *http.Request, p pierredb.AdminPrincipal) {
	var req provisionRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if req.Tier == "" {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "tier is required: trial, starter, professional or enterprise")
		return
	}
	nk := pierredb.NewAPIKey{Tier: pierredb.Tier(strings.ToLower(req.Tier)),
		Description: "Provisioned by admin service: " + p.ServiceName}
	if req.RateLimitRequests != nil {
		period := pierredb.RateLimitPeriod(strings.ToLower(req.RateLimitPeriod))
		nk.RateLimit = &pierredb.RateLimit{Requests: *req.RateLimitRequests, Period: period}
	} else if req.RateLimitPeriod != "" {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "rate_limit_period needs rate_limit_requests")
		return
	}
	if req.ExpiresInDays != nil {
		d, ok := expiryDays(*req.ExpiresInDays)
		if !ok {
			writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("expires_in_days must be between 1 and %d; leave it out for a key that does not expire", maxExpiryDays))
			return
		}
		nk.ExpiresAt = time.Now().Add(d)
	}
	var created pierredb.CreatedAPIKey
	// One transaction, so that a refused key leaves no personal tenant behind.
	// No statement in it may be expected to fail: PostgreSQL aborts a
	// transaction at its first error, so a retry after a unique violation (or
	// pierredb explaining a foreign key violation with a query) would fail too.
	// Membership and the names in use are read first instead.
	err := a.db.RunInTx(r.Context(), func(ctx context.Context, _ bun.Tx) error {
		user, err := a.db.Users().GetByEmail(ctx, req.UserEmail)
		if err != nil {
			return err
		}
		scope, err := a.keyTenant(ctx, user, req.TenantID)
		if err != nil {
			return err
		}
		nk.UserID = user.ID
		base := req.Description
		if base == "" {
			base = "API key provisioned by " + p.ServiceName
		}
		nk.Name, err = freeKeyName(ctx, scope, user.ID, base)
		if err != nil {
			return err
		}
		created, err = scope.APIKeys().Create(ctx, nk)
		return err
	})
	if err != nil {
		writeStoreError(w, a.opts.Logger, r, err)
		return
	}
	ok(w, http.StatusCreated, "API key provisioned successfully for "+req.UserEmail, map[string]any{
		"success": true, "api_key_id": created.ID, "api_key": created.Key.Reveal(), "user_id": created.UserID,
		"tenant_id": created.TenantID, "tier": created.Tier, "expires_at": timeJSON(created.ExpiresAt),
		"rate_limit": rateLimitOut(created.RateLimit),
	})
}

// keyTenant is where a provisioned key goes: the named tenant (the user must be
// a member), the user's home tenant, or a new personal one.
func (a *admin) keyTenant(ctx context.Context, user pierredb.User, tenantID string) (*pierredb.TenantScope, error) {
	if tenantID == "" {
		tenantID = user.TenantID
	}
	if tenantID != "" {
		scope, err := a.db.Tenant(ctx, tenantID)
		if err != nil {
			return nil, err
		}
		if _, err := scope.Get(ctx); err != nil {
			return nil, err
		}
		if _, err := scope.Members().Get(ctx, user.ID); err != nil {
			return nil, err
		}
		return scope, nil
	}
	name := user.Email + "'s workspace"
	if user.DisplayName != "" {
		name = user.DisplayName + "'s workspace"
	}
	t, err := a.db.Tenants().Create(ctx, pierredb.NewTenant{Name: name, Slug: "user-" + strings.ReplaceAll(user.ID, "-", "")[:20], OwnerUserID: user.ID})
	if err != nil {
		return nil, err
	}
	return a.db.Tenant(ctx, t.ID)
}

// freeKeyName is base, or base numbered " (2)", " (3)", ... when the user has
// a key of that name in the tenant: names are unique per user and tenant, and
// provisioning the same description again gets a numbered name rather than a
// conflict.
func freeKeyName(ctx context.Context, scope *pierredb.TenantScope, userID, base string) (string, error) {
	taken := map[string]bool{}
	f := pierredb.APIKeyFilter{UserID: userID, Limit: 1000}
	for {
		page, err := scope.APIKeys().List(ctx, f)
		if err != nil {
			return "", err
		}
		for _, k := range page.Items {
			taken[k.Name] = true
		}
		if page.Next == "" {
			break
		}
		f.Cursor = page.Next
	}
	name := base
	for n := 2; taken[name]; n++ {
		name = fmt.Sprintf("%s (%d)", base, n)
	}
	return name, nil
}

type revokeKeyRequest struct {
	APIKeyID string `json:"api_key_id"`
	Reason   string `json:"reason"`
}

// revokeKey revokes an API key, found by id in whichever tenant holds it.
func (a *admin) revokeKey(w http.ResponseWriter, r *http.Request, p pierredb.AdminPrincipal) {
	var req revokeKeyRequest
	if !decodeBody(w, r, &req) {
		return
	}
	key, err := a.db.APIKeys().Get(r.Context(), req.APIKeyID)
	if err == nil {
		var scope *pierredb.TenantScope
		if scope, err = a.db.Tenant(r.Context(), key.TenantID); err == nil {
			_, err = scope.APIKeys().Revoke(r.Context(), key.ID)
		}
	}
	if err != nil {
		writeStoreError(w, a.opts.Logger, r, err)
		return
	}
	reason := req.Reason
	if reason == "" {
		reason = "Admin revocation"
	}
	ok(w, http.StatusOK, fmt.Sprintf("API key %s revoked successfully", key.ID),
		map[string]any{"api_key_id": key.ID, "revoked_by": p.ServiceName, "reason": truncate(reason, 500)})
}

// keyJSON is an API key as listed: the reference's fields, never the key.
type keyJSON struct {
	ID          string        `json:"id"`
	UserID      string        `json:"user_id"`
	TenantID    string        `json:"tenant_id"`
	Name        string        `json:"name"`
	Description *string       `json:"description"`
	KeyPrefix   string        `json:"key_prefix"`
	Tier        string        `json:"tier"`
	RateLimit   rateLimitJSON `json:"rate_limit"`
	IsActive    bool          `json:"is_active"`
	CreatedAt   *string       `json:"created_at"`
	LastUsedAt  *string       `json:"last_used_at"`
	ExpiresAt   *string       `json:"expires_at"`
	RevokedAt   *string       `json:"revoked_at"`
	UsageCount  int64         `json:"usage_count"`
}

func keyOut(k pierredb.APIKey) keyJSON {
	return keyJSON{ID: k.ID, UserID: k.UserID, TenantID: k.TenantID, Name: k.Name, Description: optional(k.Description),
		KeyPrefix: k.Prefix, Tier: string(k.Tier), RateLimit: listedRateLimit(k.RateLimit), IsActive: k.IsActive,
		CreatedAt: timeJSON(k.CreatedAt), LastUsedAt: timeJSON(k.LastUsedAt), ExpiresAt: timeJSON(k.ExpiresAt),
		RevokedAt: timeJSON(k.RevokedAt), UsageCount: k.UsageCount}
}

// limitJSON is a page size as the reference's filters show it: null when not
// given.
func limitJSON(n int) *int {
	if n == 0 {
		return nil
	}
	return &n
}

// listKeys lists API keys across tenants, newest first: all, or one user's
// (user_email); active ones unless active_only=false.
func (a *admin) listKeys(w http.ResponseWriter, r *http.Request, _ pierredb.AdminPrincipal) {
	q := r.URL.Query()
	o, err := listOptions(r)
	if err == nil && q.Has("offset") {
		err = fmt.Errorf("%w: offset is not supported; pass the next_cursor of the previous page as cursor", pierredb.ErrInvalidArgument)
	}
	f := pierredb.APIKeyFilter{Limit: o.Limit, Cursor: o.Cursor}
	activeOnly := true
	if err == nil && q.Has("active_only") {
		if activeOnly, err = strconv.ParseBool(q.Get("active_only")); err != nil {
			err = fmt.Errorf("%w: active_only must be true or false", pierredb.ErrInvalidArgument)
		}
	}
	if activeOnly {
		f.Active = &activeOnly
	}
	email := q.Get("user_email")
	if err == nil && email != "" {
		var u pierredb.User
		if u, err = a.db.Users().GetByEmail(r.Context(), email); err == nil {
			f.UserID = u.ID
		}
	}
	var page pierredb.Page[pierredb.APIKey]
	if err == nil {
		page, err = a.db.APIKeys().List(r.Context(), f)
	}
	if err != nil {
		writeStoreError(w, a.opts.Logger, r, err)
		return
	}
	keys := make([]keyJSON, len(page.Items))
	for i, k := range page.Items {
		keys[i] = keyOut(k)
	}
	ok(w, http.StatusOK, fmt.Sprintf("Found %d API keys", len(keys)), map[string]any{
		"filters": map[string]any{"user_email": optional(email), "active_only": activeOnly, "limit": limitJSON(o.Limit), "offset": nil},
		"keys":    keys, "count": len(keys), "next_cursor": optional(page.Next),
	})
}
