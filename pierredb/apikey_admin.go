package pierredb

import (
	"context"
	"time"
)

// What the platform's operators (the admin API) need across tenants: a key by
// id wherever it lives, and keys listed across every tenant. Tenant-scoped
// management stays on TenantScope.APIKeys.

// Get returns the key with id in whichever tenant holds it, for an operator who
// knows only the key's id; manage it then through its tenant's scope
// (db.Tenant(ctx, key.TenantID)).
func (v APIKeyVerifier) Get(ctx context.Context, id string) (_ APIKey, err error) {
	defer v.db.wrap(&err, "get api key")
	if err := requireID("api key", id); err != nil {
		return APIKey{}, err
	}
	return readOne(ctx, v.db, "api key", "SELECT "+apiKeyColumns+" FROM api_keys k WHERE k.id = ?", []any{id}, scanAPIKey)
}

// List lists keys across every tenant, newest first, one page at a time;
// f.UserID keeps one user's keys in all their tenants, f.Active active (or
// inactive) ones.
func (v APIKeyVerifier) List(ctx context.Context, f APIKeyFilter) (_ Page[APIKey], err error) {
	defer v.db.wrap(&err, "list api keys")
	l := listing{selectFrom: "SELECT " + apiKeyColumns + " FROM api_keys k", keyset: [2]string{"k.created_at", "k.id"}, descending: true}
	if f.UserID != "" {
		if err := requireID("user", f.UserID); err != nil {
			return Page[APIKey]{}, err
		}
		l.conds, l.args = append(l.conds, "k.user_id = ?"), append(l.args, f.UserID)
	}
	if f.Active != nil {
		l.conds, l.args = append(l.conds, "k.is_active = ?"), append(l.args, *f.Active)
	}
	scanner := newAPIKeyScanner()
	return readPage(ctx, v.db, l, ListOptions{Limit: f.Limit, Cursor: f.Cursor}, scanner.scan,
		func(k APIKey) (time.Time, string) { return k.CreatedAt, k.ID })
}
