package pierredb

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"
)

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

func (r tenantRow) tenant() Tenant {
	return Tenant{ID: r.ID, Name: r.Name, Slug: r.Slug, Plan: Tier(r.Plan), OwnerUserID: r.OwnerUserID,
		IsActive: r.IsActive, CreatedAt: r.CreatedAt.Time, UpdatedAt: r.UpdatedAt.Time}
}

type memberRow struct {
	bun.BaseModel `bun:"table:tenant_users"`

	TenantID  string `bun:"tenant_id,pk"`
	UserID    string `bun:"user_id,pk"`
	Role      string `bun:"role"`
	CreatedAt dbTime `bun:"created_at"`
	UpdatedAt dbTime `bun:"updated_at"`
}

func (r memberRow) membership() Membership {
	return Membership{TenantID: r.TenantID, UserID: r.UserID, Role: Role(r.Role), CreatedAt: r.CreatedAt.Time, UpdatedAt: r.UpdatedAt.Time}
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

func validTenantName(name string) error {
	if strings.TrimSpace(name) == "" {
		return fmt.Errorf("%w: tenant name is required", ErrInvalidArgument)
	}
	return validDisplayName(name)
}

func validPlan(p Tier) (Tier, error) {
	if p == "" {
		return TierStarter, nil
	}
	if !p.validPlan() {
		return "", fmt.Errorf("%w: plan %q is not starter, professional or enterprise", ErrInvalidArgument, shorten(string(p)))
	}
	return p, nil
}

// CreateTenant creates a tenant and, in the same transaction, its owner's
// membership with RoleOwner. The owner becomes the tenant's primary owner and, if
// the user has no home tenant yet, this becomes it. A taken slug returns
// ErrAlreadyExists; an owner that does not exist returns ErrNotFound.
func (db *Database) CreateTenant(ctx context.Context, nt NewTenant) (Tenant, error) {
	slug, err := normalizeSlug(nt.Slug)
	if err != nil {
		return Tenant{}, err
	}
	if err := validTenantName(nt.Name); err != nil {
		return Tenant{}, err
	}
	plan, err := validPlan(nt.Plan)
	if err != nil {
		return Tenant{}, err
	}
	if err := requireID("owner user", nt.OwnerUserID); err != nil {
		return Tenant{}, err
	}
	now := at(db.now())
	row := tenantRow{ID: newID(), Name: nt.Name, Slug: slug, Plan: string(plan), OwnerUserID: nt.OwnerUserID,
		IsActive: true, CreatedAt: now, UpdatedAt: now}
	err = db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if ok, err := userExists(ctx, tx, nt.OwnerUserID); err != nil || !ok {
			return errOr(err, fmt.Errorf("%w: owner user does not exist", ErrNotFound))
		}
		if _, err := tx.NewInsert().Model(&row).Exec(ctx); err != nil {
			return err
		}
		m := memberRow{TenantID: row.ID, UserID: nt.OwnerUserID, Role: string(RoleOwner), CreatedAt: now, UpdatedAt: now}
		if _, err := tx.NewInsert().Model(&m).Exec(ctx); err != nil {
			return err
		}
		_, err := tx.NewUpdate().Table("users").Set("tenant_id = ?", row.ID).
			Where("id = ? AND tenant_id IS NULL", nt.OwnerUserID).Exec(ctx)
		return err
	})
	if err != nil {
		return Tenant{}, db.opError("create tenant", err)
	}
	return row.tenant(), nil
}

const tenantColumns = "t.id, t.name, t.slug, t.plan, t.owner_user_id, t.is_active, t.created_at, t.updated_at"

func scanTenant(r rowScanner, extra ...any) (Tenant, error) {
	var t Tenant
	var plan string
	var created, updated dbTime
	dest := append([]any{&t.ID, &t.Name, &t.Slug, &plan, &t.OwnerUserID, &t.IsActive, &created, &updated}, extra...)
	if err := r.Scan(dest...); err != nil {
		return Tenant{}, err
	}
	t.Plan, t.CreatedAt, t.UpdatedAt = Tier(plan), created.Time, updated.Time
	return t, nil
}

func (db *Database) getTenant(ctx context.Context, op, where string, arg string) (Tenant, error) {
	if err := db.checkOpen(); err != nil {
		return Tenant{}, err
	}
	row, err := db.queryRow(ctx, "SELECT "+tenantColumns+" FROM tenants t WHERE "+where, arg)
	if err != nil {
		return Tenant{}, db.opError(op, err)
	}
	t, err := scanTenant(row)
	if err != nil {
		return Tenant{}, db.opError(op, err)
	}
	return t, nil
}

// GetTenant returns the tenant with id, or ErrNotFound.
func (db *Database) GetTenant(ctx context.Context, id string) (Tenant, error) {
	if err := requireID("tenant", id); err != nil {
		return Tenant{}, err
	}
	return db.getTenant(ctx, "get tenant", "t.id = ?", id)
}

// GetTenantBySlug returns the tenant with slug (lower-cased first), or ErrNotFound.
func (db *Database) GetTenantBySlug(ctx context.Context, slug string) (Tenant, error) {
	s := strings.ToLower(strings.TrimSpace(slug))
	if s == "" {
		return Tenant{}, fmt.Errorf("%w: slug is required", ErrInvalidArgument)
	}
	return db.getTenant(ctx, "get tenant by slug", "t.slug = ?", s)
}

// ListTenants lists tenants, oldest first, one page at a time.
func (db *Database) ListTenants(ctx context.Context, f TenantFilter) (Page[Tenant], error) {
	limit, err := pageSize(f.Limit)
	if err != nil {
		return Page[Tenant]{}, err
	}
	cur, hasCursor, err := decodeCursor(f.Cursor)
	if err != nil {
		return Page[Tenant]{}, err
	}
	var conds []string
	var args []any
	if f.OwnerUserID != "" {
		conds = append(conds, "t.owner_user_id = ?")
		args = append(args, f.OwnerUserID)
	}
	if hasCursor {
		conds = append(conds, "(t.created_at, t.id) > (?, ?)")
		args = append(args, cur.createdAt, cur.id)
	}
	where := ""
	if len(conds) > 0 {
		where = " WHERE " + strings.Join(conds, " AND ")
	}
	return readPage(ctx, db, "list tenants", limit, "SELECT "+tenantColumns+" FROM tenants t"+where+" ORDER BY t.created_at, t.id", args,
		func(r *sql.Rows) (Tenant, error) { return scanTenant(r) },
		func(t Tenant) (time.Time, string) { return t.CreatedAt, t.ID })
}

// UpdateTenant changes a tenant's name, plan or active flag.
func (db *Database) UpdateTenant(ctx context.Context, id string, u TenantUpdate) (Tenant, error) {
	if err := requireID("tenant", id); err != nil {
		return Tenant{}, err
	}
	var cols []string
	var out tenantRow
	if u.Name != nil {
		if err := validTenantName(*u.Name); err != nil {
			return Tenant{}, err
		}
	}
	if u.Plan != nil {
		if _, err := validPlan(*u.Plan); err != nil || *u.Plan == "" {
			return Tenant{}, fmt.Errorf("%w: plan %q is not starter, professional or enterprise", ErrInvalidArgument, shorten(string(*u.Plan)))
		}
	}
	err := db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := db.locked(tx.NewSelect().Model(&out).Where("id = ?", id)).Scan(ctx); err != nil {
			return err
		}
		if u.Name != nil {
			out.Name, cols = *u.Name, append(cols, "name")
		}
		if u.Plan != nil {
			out.Plan, cols = string(*u.Plan), append(cols, "plan")
		}
		if u.IsActive != nil {
			out.IsActive, cols = *u.IsActive, append(cols, "is_active")
		}
		if len(cols) == 0 {
			return nil
		}
		out.UpdatedAt = at(db.now())
		_, err := tx.NewUpdate().Model(&out).Column(append(cols, "updated_at")...).WherePK().Exec(ctx)
		return err
	})
	if err != nil {
		return Tenant{}, db.opError("update tenant", err)
	}
	return out.tenant(), nil
}

// DeleteTenant deletes a tenant and everything it owns: memberships, API keys,
// A2A clients, OAuth configurations and its members' OAuth tokens. Users stay.
func (db *Database) DeleteTenant(ctx context.Context, id string) error {
	if err := requireID("tenant", id); err != nil {
		return err
	}
	err := db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewDelete().Table("tenants").Where("id = ?", id).Exec(ctx)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errOr(err, sql.ErrNoRows)
		}
		return nil
	})
	return db.opError("delete tenant", err)
}

func errOr(err, fallback error) error {
	if err != nil {
		return err
	}
	return fallback
}

// UserTenants lists the tenants a user belongs to, with the user's role in each,
// oldest membership first.
func (db *Database) UserTenants(ctx context.Context, userID string) ([]TenantMembership, error) {
	if err := requireID("user", userID); err != nil {
		return nil, err
	}
	if err := db.checkOpen(); err != nil {
		return nil, err
	}
	rows, err := db.queryRows(ctx, "SELECT "+tenantColumns+", m.role FROM tenant_users m JOIN tenants t ON t.id = m.tenant_id"+
		" WHERE m.user_id = ? ORDER BY m.created_at, t.id", userID)
	if err != nil {
		return nil, db.opError("list user tenants", err)
	}
	defer rows.Close()
	var out []TenantMembership
	for rows.Next() {
		var role string
		t, err := scanTenant(rows, &role)
		if err != nil {
			return nil, db.opError("list user tenants", err)
		}
		out = append(out, TenantMembership{Tenant: t, Role: Role(role)})
	}
	if err := rows.Err(); err != nil {
		return nil, db.opError("list user tenants", err)
	}
	return out, nil
}
