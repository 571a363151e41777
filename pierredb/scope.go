package pierredb

import "context"

// TenantScope is a handle on one tenant's data, and the only way to reach it:
// every query it runs filters by its tenant id, and data of another tenant answers
// ErrNotFound. Get one with Database.Tenant; it is cheap, immutable and safe for
// concurrent use.
//
// What belongs to a tenant: memberships, API keys, A2A clients, OAuth app
// configurations and its members' OAuth tokens. What is global, on Database:
// users (an email is unique across tenants), tenants themselves, admin tokens and
// system settings.
type TenantScope struct {
	db *Database
	id string
}

// Tenant returns the scope of tenant id. An empty or malformed id is
// ErrInvalidArgument: never a missing filter. Making a scope runs no query; an id
// that names no tenant (or a tenant deleted since, by any instance) makes each
// operation of the scope answer ErrNotFound, because each one filters by the
// tenant and checks it exists when its own query finds nothing.
func (db *Database) Tenant(ctx context.Context, id string) (_ *TenantScope, err error) {
	defer db.wrap(&err, "open tenant scope")
	if err := requireID("tenant", id); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := db.checkOpen(); err != nil {
		return nil, err
	}
	return &TenantScope{db: db, id: id}, nil
}

// ID is the tenant this scope is bound to.
func (s *TenantScope) ID() string { return s.id }

// Get returns the tenant itself, or ErrNotFound when it does not exist.
func (s *TenantScope) Get(ctx context.Context) (Tenant, error) {
	return s.db.Tenants().Get(ctx, s.id)
}
