package httpserver

import (
	"fmt"
	"net/http"

	"github.com/pierre-mcp/pierre/pierredb"
)

// tenantJSON is a tenant as the admin API shows it.
type tenantJSON struct {
	ID          string  `json:"id"`
	Name        string  `json:"name"`
	Slug        string  `json:"slug"`
	Plan        string  `json:"plan"`
	OwnerUserID string  `json:"owner_user_id"`
	IsActive    bool    `json:"is_active"`
	CreatedAt   *string `json:"created_at"`
	UpdatedAt   *string `json:"updated_at"`
}

func tenantOut(t pierredb.Tenant) tenantJSON {
	return tenantJSON{ID: t.ID, Name: t.Name, Slug: t.Slug, Plan: string(t.Plan), OwnerUserID: t.OwnerUserID,
		IsActive: t.IsActive, CreatedAt: timeJSON(t.CreatedAt), UpdatedAt: timeJSON(t.UpdatedAt)}
}

type createTenantRequest struct {
	Name        string `json:"name"`
	Slug        string `json:"slug"`
	Plan        string `json:"plan"`
	OwnerUserID string `json:"owner_user_id"`
	OwnerEmail  string `json:"owner_email"`
}

// createTenant creates a tenant for an owner named by id or by email.
func (a *admin) createTenant(w http.ResponseWriter, r *http.Request, _ pierredb.AdminPrincipal) {
	var req createTenantRequest
	if !decodeBody(w, r, &req) {
		return
	}
	owner := req.OwnerUserID
	if owner == "" && req.OwnerEmail != "" {
		u, err := a.db.Users().GetByEmail(r.Context(), req.OwnerEmail)
		if err != nil {
			writeStoreError(w, a.opts.Logger, r, err)
			return
		}
		owner = u.ID
	}
	t, err := a.db.Tenants().Create(r.Context(), pierredb.NewTenant{Name: req.Name, Slug: req.Slug, Plan: pierredb.Tier(req.Plan), OwnerUserID: owner})
	if err != nil {
		writeStoreError(w, a.opts.Logger, r, err)
		return
	}
	ok(w, http.StatusCreated, "Tenant created successfully", tenantOut(t))
}

func (a *admin) listTenants(w http.ResponseWriter, r *http.Request, _ pierredb.AdminPrincipal) {
	o, err := listOptions(r)
	if err != nil {
		writeStoreError(w, a.opts.Logger, r, err)
		return
	}
	page, err := a.db.Tenants().List(r.Context(), pierredb.TenantFilter{OwnerUserID: r.URL.Query().Get("owner_user_id"), Limit: o.Limit, Cursor: o.Cursor})
	if err != nil {
		writeStoreError(w, a.opts.Logger, r, err)
		return
	}
	out := make([]tenantJSON, len(page.Items))
	for i, t := range page.Items {
		out[i] = tenantOut(t)
	}
	ok(w, http.StatusOK, fmt.Sprintf("Retrieved %d tenants", len(out)), map[string]any{"tenants": out, "next_cursor": optional(page.Next)})
}

func (a *admin) getTenant(w http.ResponseWriter, r *http.Request, _ pierredb.AdminPrincipal) {
	t, err := a.db.Tenants().Get(r.Context(), r.PathValue("tenant_id"))
	if err != nil {
		writeStoreError(w, a.opts.Logger, r, err)
		return
	}
	ok(w, http.StatusOK, "Tenant retrieved successfully", tenantOut(t))
}

// oauthAppJSON is a tenant's OAuth app as the admin API shows it: never the
// client secret, only whether one is stored.
type oauthAppJSON struct {
	Provider        string   `json:"provider"`
	ClientID        string   `json:"client_id"`
	HasClientSecret bool     `json:"has_client_secret"`
	RedirectURI     string   `json:"redirect_uri"`
	Scopes          []string `json:"scopes"`
	RateLimitPerDay int      `json:"rate_limit_per_day"`
	IsActive        bool     `json:"is_active"`
	CreatedAt       *string  `json:"created_at"`
	UpdatedAt       *string  `json:"updated_at"`
}

func oauthAppOut(app pierredb.OAuthApp) oauthAppJSON {
	scopes := app.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	return oauthAppJSON{Provider: string(app.Provider), ClientID: app.ClientID, HasClientSecret: !app.ClientSecret.IsZero(),
		RedirectURI: app.RedirectURI, Scopes: scopes, RateLimitPerDay: app.RateLimitPerDay, IsActive: app.IsActive,
		CreatedAt: timeJSON(app.CreatedAt), UpdatedAt: timeJSON(app.UpdatedAt)}
}

type oauthAppRequest struct {
	ClientID        string   `json:"client_id"`
	ClientSecret    string   `json:"client_secret"`
	RedirectURI     string   `json:"redirect_uri"`
	Scopes          []string `json:"scopes"`
	RateLimitPerDay int      `json:"rate_limit_per_day"`
	Disabled        bool     `json:"disabled"`
}

func (a *admin) scope(w http.ResponseWriter, r *http.Request) (*pierredb.TenantScope, bool) {
	s, err := a.db.Tenant(r.Context(), r.PathValue("tenant_id"))
	if err != nil {
		writeStoreError(w, a.opts.Logger, r, err)
		return nil, false
	}
	return s, true
}

// setOAuthApp stores (creates or replaces) a tenant's app at a provider. The
// answer never holds the secret.
func (a *admin) setOAuthApp(w http.ResponseWriter, r *http.Request, _ pierredb.AdminPrincipal) {
	var req oauthAppRequest
	if !decodeBody(w, r, &req) {
		return
	}
	s, found := a.scope(w, r)
	if !found {
		return
	}
	app, err := s.OAuthApps().Set(r.Context(), pierredb.Provider(r.PathValue("provider")), pierredb.OAuthAppConfig{
		ClientID: req.ClientID, ClientSecret: pierredb.NewOAuthSecret(req.ClientSecret), RedirectURI: req.RedirectURI,
		Scopes: req.Scopes, RateLimitPerDay: req.RateLimitPerDay, Disabled: req.Disabled,
	})
	if err != nil {
		writeStoreError(w, a.opts.Logger, r, err)
		return
	}
	ok(w, http.StatusOK, "OAuth app stored", oauthAppOut(app))
}

func (a *admin) deleteOAuthApp(w http.ResponseWriter, r *http.Request, _ pierredb.AdminPrincipal) {
	s, found := a.scope(w, r)
	if !found {
		return
	}
	if err := s.OAuthApps().Delete(r.Context(), pierredb.Provider(r.PathValue("provider"))); err != nil {
		writeStoreError(w, a.opts.Logger, r, err)
		return
	}
	ok(w, http.StatusOK, "OAuth app deleted", map[string]any{"tenant_id": s.ID(), "provider": r.PathValue("provider")})
}

func (a *admin) listOAuthApps(w http.ResponseWriter, r *http.Request, _ pierredb.AdminPrincipal) {
	s, found := a.scope(w, r)
	if !found {
		return
	}
	apps, err := s.OAuthApps().List(r.Context())
	if err != nil {
		writeStoreError(w, a.opts.Logger, r, err)
		return
	}
	out := make([]oauthAppJSON, len(apps))
	for i, app := range apps {
		out[i] = oauthAppOut(app)
	}
	ok(w, http.StatusOK, fmt.Sprintf("Retrieved %d OAuth apps", len(out)), map[string]any{"tenant_id": s.ID(), "apps": out})
}
