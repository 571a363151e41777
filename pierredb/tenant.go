package pierredb

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"
)

// Tenant is an organisation that owns API keys, OAuth configurations, A2A clients
// and its members' OAuth tokens.
type Tenant struct {
	ID   string
	Name string
	// Slug is the tenant's unique URL-safe name.
	Slug string
	Plan Tier
	// OwnerUserID is the tenant's primary owner; it always holds RoleOwner.
	OwnerUserID string
	IsActive    bool
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// NewTenant is what Tenants.Create needs.
type NewTenant struct {
	Name string
	// Slug: 2 to 63 characters of a-z, 0-9 and '-', starting and ending with a
	// letter or digit; lower-cased before it is checked.
	Slug string
	// Plan defaults to TierStarter.
	Plan        Tier
	OwnerUserID string
}

// TenantUpdate changes a tenant; nil fields are left alone. The slug never changes.
type TenantUpdate struct {
	Name     *string
	Plan     *Tier
	IsActive *bool
}

// TenantFilter selects tenants for Tenants.List.
type TenantFilter struct {
	// OwnerUserID keeps tenants whose primary owner is that user.
	OwnerUserID string
	// Limit is the page size: default 50, at most 1000.
	Limit  int
	Cursor string
}

type tenantRow struct {
	bun.BaseModel `bun:"table:tenants"`

	ID          string `bun:"id,pk"`
	Name        string `bun:"name"`
	Slug        string `bun:"slug"`
	Plan        string `bun:"plan"`
	OwnerUserID string `bun:"owner_user_id"`
	IsActive    bool   `bun:"is_active"`
	CreatedAt   dbTime `bun:"created_at"`
	UpdatedAt   dbTime `bun:"updated_at"`
}

var (
	tenantMap     = mapRow[tenantRow]()
	tenantColumns = tenantMap.columns("t")
)

func (r *tenantRow) tenant() Tenant {
	return Tenant{ID: r.ID, Name: r.Name, Slug: r.Slug, Plan: Tier(r.Plan), OwnerUserID: r.OwnerUserID,
		IsActive: r.IsActive, CreatedAt: r.CreatedAt.Time, UpdatedAt: r.UpdatedAt.Time}
}

func scanTenant(r rowScanner) (Tenant, error) {
	var row tenantRow
	if err := r.Scan(tenantMap.dest(&row)...); err != nil {
		return Tenant{}, err
	}
	return row.tenant(), nil
}

// reservedSlugs would read as something other than a tenant in URLs and logs; the
// reference server leaked data through a fallback "default" tenant.
var reservedSlugs = map[string]bool{"default": true, "admin": true, "api": true, "system": true, "www": true, "null": true}

func normalizeSlug(slug string) (string, error) {
	s := strings.ToLower(strings.TrimSpace(slug))
	if len(s) < 2 || len(s) > 63 {
		return "", fmt.Errorf("%w: slug must have 2 to 63 characters", ErrInvalidArgument)
	}
	for i, c := range s {
		alnum := (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
		if !alnum && (c != '-' || i == 0 || i == len(s)-1) {
			return "", fmt.Errorf("%w: slug %q may hold only a-z, 0-9 and inner '-'", ErrInvalidArgument, shorten(s))
		}
	}
	if reservedSlugs[s] {
		return "", fmt.Errorf("%w: slug %q is reserved", ErrInvalidArgument, s)
	}
	return s, nil
}

func cleanTenantName(name string) (string, error) {
	n, err := cleanName("tenant name", name, 200)
	if err == nil && strings.TrimSpace(n) == "" {
		err = fmt.Errorf("%w: tenant name is required", ErrInvalidArgument)
	}
	return n, err
}

func validPlan(p Tier) (Tier, error) { return checkTier("plan", p, TierStarter, planTiers...) }

// Tenants is the handle on tenants, from Database.Tenants. Tenants are global;
// what a tenant owns is reached through its TenantScope (Database.Tenant).
type Tenants struct{ db *Database }

// Tenants returns the handle on tenants.
func (db *Database) Tenants() Tenants { return Tenants{db: db} }

// Create creates a tenant and, in the same transaction, its owner's membership
// with RoleOwner. The owner becomes the tenant's primary owner and, if the user
// has no home tenant yet, this becomes it. A taken slug returns ErrAlreadyExists;
// an owner that does not exist returns ErrNotFound.
func (ts Tenants) Create(ctx context.Context, nt NewTenant) (_ Tenant, err error) {
	defer ts.db.wrap(&err, "create tenant")
	slug, err := normalizeSlug(nt.Slug)
	if err != nil {
		return Tenant{}, err
	}
	name, err := cleanTenantName(nt.Name)
	if err != nil {
		return Tenant{}, err
	}
	plan, err := validPlan(nt.Plan)
	if err != nil {
		return Tenant{}, err
	}
	if err := requireID("owner user", nt.OwnerUserID); err != nil {
		return Tenant{}, err
	}
	now := at(ts.db.now())
	row := tenantRow{ID: newID(), Name: name, Slug: slug, Plan: string(plan), OwnerUserID: nt.OwnerUserID,
		IsActive: true, CreatedAt: now, UpdatedAt: now}
	err = ts.db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := userExists(ctx, tx, nt.OwnerUserID, "the owner user"); err != nil {
			return err
		}
		if _, err := tx.NewInsert().Model(&row).Exec(ctx); err != nil {
			return ts.db.reword(err, ErrAlreadyExists, fmt.Sprintf("slug %q is taken; choose another", slug))
		}
		if err := insertMember(ctx, ts.db, tx, row.ID, nt.OwnerUserID, RoleOwner, now); err != nil {
			return err
		}
		_, err := tx.NewUpdate().Table("users").Set("tenant_id = ?", row.ID).
			Where("id = ? AND tenant_id IS NULL", nt.OwnerUserID).Exec(ctx)
		return err
	})
	if err != nil {
		return Tenant{}, err
	}
	return row.tenant(), nil
}

func (ts Tenants) get(ctx context.Context, where, arg string) (Tenant, error) {
	return readOne(ctx, ts.db, "tenant", "SELECT "+tenantColumns+" FROM tenants t WHERE "+where, []any{arg}, scanTenant)
}

// Get returns the tenant with id, or ErrNotFound.
func (ts Tenants) Get(ctx context.Context, id string) (_ Tenant, err error) {
	defer ts.db.wrap(&err, "get tenant")
	if err := requireID("tenant", id); err != nil {
		return Tenant{}, err
	}
	return ts.get(ctx, "t.id = ?", id)
}

// GetBySlug returns the tenant with slug (lower-cased first), or ErrNotFound.
func (ts Tenants) GetBySlug(ctx context.Context, slug string) (_ Tenant, err error) {
	defer ts.db.wrap(&err, "get tenant by slug")
	s, err := normalizeSlug(slug)
	if err != nil {
		return Tenant{}, err
	}
	t, err := ts.get(ctx, "t.slug = ?", s)
	if isNotFound(err) {
		err = fmt.Errorf("%w: no tenant has slug %q", ErrNotFound, s)
	}
	return t, err
}

// List lists tenants, oldest first, one page at a time.
func (ts Tenants) List(ctx context.Context, f TenantFilter) (_ Page[Tenant], err error) {
	defer ts.db.wrap(&err, "list tenants")
	l := listing{selectFrom: "SELECT " + tenantColumns + " FROM tenants t", keyset: [2]string{"t.created_at", "t.id"}}
	if f.OwnerUserID != "" {
		if err := requireID("owner user", f.OwnerUserID); err != nil {
			return Page[Tenant]{}, err
		}
		l.conds, l.args = []string{"t.owner_user_id = ?"}, []any{f.OwnerUserID}
	}
	return readPage(ctx, ts.db, l, ListOptions{Limit: f.Limit, Cursor: f.Cursor}, scanTenant,
		func(t Tenant) (time.Time, string) { return t.CreatedAt, t.ID })
}

// Update changes a tenant's name, plan or active flag.
func (ts Tenants) Update(ctx context.Context, id string, change TenantUpdate) (_ Tenant, err error) {
	defer ts.db.wrap(&err, "update tenant")
	if err := requireID("tenant", id); err != nil {
		return Tenant{}, err
	}
	var cols []string
	var out tenantRow
	if change.Name != nil {
		n, err := cleanTenantName(*change.Name)
		if err != nil {
			return Tenant{}, err
		}
		out.Name, cols = n, append(cols, "name")
	}
	if change.Plan != nil {
		p, err := checkTier("plan", *change.Plan, "", planTiers...)
		if err != nil || p == "" {
			return Tenant{}, errOr(err, fmt.Errorf("%w: plan is empty; use starter, professional or enterprise", ErrInvalidArgument))
		}
		out.Plan, cols = string(p), append(cols, "plan")
	}
	if change.IsActive != nil {
		out.IsActive, cols = *change.IsActive, append(cols, "is_active")
	}
	if len(cols) == 0 {
		return ts.get(ctx, "t.id = ?", id)
	}
	out.ID, out.UpdatedAt = id, at(ts.db.now())
	err = ts.db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewUpdate().Model(&out).Column(append(cols, "updated_at")...).WherePK().Exec(ctx)
		if n, err := rowsAffected(res, err); err != nil || n == 0 {
			return errOr(err, notFound("tenant"))
		}
		return tx.NewSelect().Model(&out).WherePK().Scan(ctx)
	})
	if err != nil {
		return Tenant{}, err
	}
	return out.tenant(), nil
}

// Delete deletes a tenant and everything it owns: memberships, API keys, A2A
// clients, OAuth configurations and its members' OAuth tokens. Users stay.
func (ts Tenants) Delete(ctx context.Context, id string) (err error) {
	defer ts.db.wrap(&err, "delete tenant")
	if err := requireID("tenant", id); err != nil {
		return err
	}
	return ts.db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		n, err := rowsAffected(tx.NewDelete().Table("tenants").Where("id = ?", id).Exec(ctx))
		if err == nil && n == 0 {
			err = notFound("tenant")
		}
		return err
	})
}
