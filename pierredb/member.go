package pierredb

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// Role is a user's role in a tenant.
type Role string

// The tenant roles, from most to least privileged. A tenant always keeps at least
// one owner.
const (
	RoleOwner  Role = "owner"
	RoleAdmin  Role = "admin"
	RoleMember Role = "member"
	RoleViewer Role = "viewer"
)

func (r Role) valid() bool {
	return r == RoleOwner || r == RoleAdmin || r == RoleMember || r == RoleViewer
}

func validRole(r Role) error {
	if !r.valid() {
		return fmt.Errorf("%w: role %q is not owner, admin, member or viewer", ErrInvalidArgument, shorten(string(r)))
	}
	return nil
}

// Membership is a user's place in a tenant.
type Membership struct {
	TenantID  string
	UserID    string
	Role      Role
	CreatedAt time.Time
	UpdatedAt time.Time
}

// TenantMembership is a tenant a user belongs to, with the user's role in it.
type TenantMembership struct {
	Tenant Tenant
	Role   Role
}

type memberRow struct {
	bun.BaseModel `bun:"table:tenant_users"`

	TenantID  string `bun:"tenant_id,pk"`
	UserID    string `bun:"user_id,pk"`
	Role      string `bun:"role"`
	CreatedAt dbTime `bun:"created_at"`
	UpdatedAt dbTime `bun:"updated_at"`
}

var (
	memberMap     = mapRow[memberRow]()
	memberColumns = memberMap.columns("m")
)

func (r *memberRow) membership() Membership {
	return Membership{TenantID: r.TenantID, UserID: r.UserID, Role: Role(r.Role), CreatedAt: r.CreatedAt.Time, UpdatedAt: r.UpdatedAt.Time}
}

func scanMember(r rowScanner) (Membership, error) {
	var row memberRow
	if err := r.Scan(memberMap.dest(&row)...); err != nil {
		return Membership{}, err
	}
	return row.membership(), nil
}

// insertMember adds a membership inside tx.
func insertMember(ctx context.Context, db *Database, tx bun.Tx, tenantID, userID string, role Role, now dbTime) error {
	m := memberRow{TenantID: tenantID, UserID: userID, Role: string(role), CreatedAt: now, UpdatedAt: now}
	_, err := tx.NewInsert().Model(&m).Exec(ctx)
	return db.reword(err, ErrAlreadyExists, "the user is a member of this tenant already")
}

// tenantExists fails with ErrNotFound when no tenant has id. Scoped operations
// call it only when their own query came back empty, to tell "no such tenant"
// from "nothing there", so a scope costs no query of its own.
func tenantExists(ctx context.Context, db *Database, id string) error {
	n, err := scanCount(ctx, db, "SELECT count(*) FROM tenants WHERE id = ?", id)
	if err == nil && n == 0 {
		err = notFound("tenant")
	}
	return err
}

// Members is the handle on one tenant's memberships, from TenantScope.Members.
// Every query it runs filters by the scope's tenant.
type Members struct{ s *TenantScope }

// Members returns the handle on this tenant's memberships.
func (s *TenantScope) Members() Members { return Members{s: s} }

// Add adds an existing user to this tenant with role. A user who does not exist
// is ErrNotFound; one who is a member already is ErrAlreadyExists.
func (m Members) Add(ctx context.Context, userID string, role Role) (_ Membership, err error) {
	db := m.s.db
	defer db.wrap(&err, "add member")
	if err := requireID("user", userID); err != nil {
		return Membership{}, err
	}
	if err := validRole(role); err != nil {
		return Membership{}, err
	}
	now := at(db.now())
	err = db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if _, err := lockTenant(ctx, db, tx, m.s.id); err != nil {
			return err
		}
		if err := userExists(ctx, tx, userID, "the user"); err != nil {
			return err
		}
		return insertMember(ctx, db, tx, m.s.id, userID, role, now)
	})
	if err != nil {
		return Membership{}, err
	}
	return Membership{TenantID: m.s.id, UserID: userID, Role: role, CreatedAt: now.Time, UpdatedAt: now.Time}, nil
}

// Get returns a user's membership in this tenant, or ErrNotFound.
func (m Members) Get(ctx context.Context, userID string) (_ Membership, err error) {
	defer m.s.db.wrap(&err, "get member")
	if err := requireID("user", userID); err != nil {
		return Membership{}, err
	}
	mb, err := readOne(ctx, m.s.db, "member", "SELECT "+memberColumns+" FROM tenant_users m WHERE m.tenant_id = ? AND m.user_id = ?",
		[]any{m.s.id, userID}, scanMember)
	if isNotFound(err) {
		err = fmt.Errorf("%w: the user is not a member of this tenant", ErrNotFound)
	}
	return mb, err
}

// List lists this tenant's memberships, oldest first, one page at a time.
func (m Members) List(ctx context.Context, o ListOptions) (_ Page[Membership], err error) {
	defer m.s.db.wrap(&err, "list members")
	page, err := readPage(ctx, m.s.db,
		listing{selectFrom: "SELECT " + memberColumns + " FROM tenant_users m", conds: []string{"m.tenant_id = ?"}, args: []any{m.s.id},
			keyset: [2]string{"m.created_at", "m.user_id"}},
		o, scanMember, func(mb Membership) (time.Time, string) { return mb.CreatedAt, mb.UserID })
	if err == nil && len(page.Items) == 0 && o.Cursor == "" {
		err = tenantExists(ctx, m.s.db, m.s.id) // every tenant has its owner
	}
	return page, err
}

// SetRole changes a member's role. A user who is not a member is ErrNotFound.
// Demoting the last owner, or the primary owner (see TransferOwnership), is
// ErrConflict.
func (m Members) SetRole(ctx context.Context, userID string, role Role) (_ Membership, err error) {
	db := m.s.db
	defer db.wrap(&err, "set member role")
	if err := requireID("user", userID); err != nil {
		return Membership{}, err
	}
	if err := validRole(role); err != nil {
		return Membership{}, err
	}
	var out memberRow
	err = db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		primary, err := lockTenant(ctx, db, tx, m.s.id)
		if err != nil {
			return err
		}
		if out, err = m.member(ctx, tx, userID); err != nil || out.Role == string(role) {
			return err
		}
		if out.Role == string(RoleOwner) {
			if userID == primary {
				return fmt.Errorf("%w: this user is the tenant's primary owner; transfer ownership first", ErrConflict)
			}
			if err := anotherOwnerRemains(ctx, tx, m.s.id); err != nil {
				return err
			}
		}
		out.Role, out.UpdatedAt = string(role), at(db.now())
		_, err = tx.NewUpdate().Model(&out).Column("role", "updated_at").WherePK().Exec(ctx)
		return err
	})
	if err != nil {
		return Membership{}, err
	}
	return out.membership(), nil
}

// member reads a membership of this tenant inside tx.
func (m Members) member(ctx context.Context, tx bun.Tx, userID string) (memberRow, error) {
	var r memberRow
	err := tx.NewSelect().Model(&r).Where("tenant_id = ? AND user_id = ?", m.s.id, userID).Scan(ctx)
	if isNoRows(err) {
		err = fmt.Errorf("%w: the user is not a member of this tenant", ErrNotFound)
	}
	return r, err
}

// Remove removes a user from this tenant; with the membership go the user's API
// keys, A2A clients and OAuth tokens in this tenant. A user who is not a member
// is ErrNotFound; the primary owner, or the last owner, is ErrConflict.
func (m Members) Remove(ctx context.Context, userID string) (err error) {
	db := m.s.db
	defer db.wrap(&err, "remove member")
	if err := requireID("user", userID); err != nil {
		return err
	}
	return db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		primary, err := lockTenant(ctx, db, tx, m.s.id)
		if err != nil {
			return err
		}
		r, err := m.member(ctx, tx, userID)
		if err != nil {
			return err
		}
		if userID == primary {
			return fmt.Errorf("%w: this user is the tenant's primary owner; transfer ownership first", ErrConflict)
		}
		if r.Role == string(RoleOwner) {
			if err := anotherOwnerRemains(ctx, tx, m.s.id); err != nil {
				return err
			}
		}
		if _, err := tx.NewDelete().Model(&r).WherePK().Exec(ctx); err != nil {
			return err
		}
		_, err = tx.NewUpdate().Table("users").Set("tenant_id = NULL").
			Where("id = ? AND tenant_id = ?", userID, m.s.id).Exec(ctx)
		return err
	})
}

// TransferOwnership makes a member the tenant's primary owner (and an owner, if
// not already). The previous primary owner keeps RoleOwner. A user who is not a
// member is ErrNotFound.
func (m Members) TransferOwnership(ctx context.Context, userID string) (_ Tenant, err error) {
	db := m.s.db
	defer db.wrap(&err, "transfer ownership")
	if err := requireID("user", userID); err != nil {
		return Tenant{}, err
	}
	var out tenantRow
	err = db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if _, err := lockTenant(ctx, db, tx, m.s.id); err != nil {
			return err
		}
		r, err := m.member(ctx, tx, userID)
		if err != nil {
			return err
		}
		now := at(db.now())
		if r.Role != string(RoleOwner) {
			r.Role, r.UpdatedAt = string(RoleOwner), now
			if _, err := tx.NewUpdate().Model(&r).Column("role", "updated_at").WherePK().Exec(ctx); err != nil {
				return err
			}
		}
		out = tenantRow{ID: m.s.id, OwnerUserID: userID, UpdatedAt: now}
		if _, err := tx.NewUpdate().Model(&out).Column("owner_user_id", "updated_at").WherePK().Exec(ctx); err != nil {
			return err
		}
		return tx.NewSelect().Model(&out).WherePK().Scan(ctx)
	})
	if err != nil {
		return Tenant{}, err
	}
	return out.tenant(), nil
}

// CreateUser creates a user and its membership in this tenant (NewUser.Role,
// default RoleMember) in one transaction; this tenant becomes the user's home
// tenant. See Users.Create for the rules on email, password and approval.
func (m Members) CreateUser(ctx context.Context, nu NewUser) (_ User, err error) {
	db := m.s.db
	defer db.wrap(&err, "create user in tenant")
	role := nu.Role
	if role == "" {
		role = RoleMember
	}
	if err := validRole(role); err != nil {
		return User{}, err
	}
	row, err := db.newUserRow(ctx, nu)
	if err != nil {
		return User{}, err
	}
	row.TenantID = sql.NullString{String: m.s.id, Valid: true}
	err = db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if _, err := lockTenant(ctx, db, tx, m.s.id); err != nil {
			return err
		}
		if err := db.insertUser(ctx, tx, &row); err != nil {
			return err
		}
		return insertMember(ctx, db, tx, m.s.id, row.ID, role, row.CreatedAt)
	})
	if err != nil {
		return User{}, err
	}
	return row.user(), nil
}

// GetUser returns a member of this tenant; a user who is not a member is
// ErrNotFound.
func (m Members) GetUser(ctx context.Context, userID string) (_ User, err error) {
	defer m.s.db.wrap(&err, "get tenant user")
	if err := requireID("user", userID); err != nil {
		return User{}, err
	}
	u, err := readOne(ctx, m.s.db, "user", "SELECT "+userColumns+" FROM tenant_users m JOIN users u ON u.id = m.user_id"+
		" WHERE m.tenant_id = ? AND m.user_id = ?", []any{m.s.id, userID}, scanUser)
	if isNotFound(err) {
		err = fmt.Errorf("%w: the user is not a member of this tenant", ErrNotFound)
	}
	return u, err
}

// ListUsers lists this tenant's members as users, in membership order (oldest
// first), one page at a time; f.TenantID is ignored.
func (m Members) ListUsers(ctx context.Context, f UserFilter) (_ Page[User], err error) {
	defer m.s.db.wrap(&err, "list tenant users")
	return listMemberUsers(ctx, m.s.db, m.s.id, f)
}

// CountUsers counts this tenant's members that f selects.
func (m Members) CountUsers(ctx context.Context, f UserFilter) (_ int, err error) {
	defer m.s.db.wrap(&err, "count tenant users")
	return countMemberUsers(ctx, m.s.db, m.s.id, f)
}

// memberUser is a member's user with the membership time that orders the listing.
type memberUser struct {
	user   User
	joined time.Time
}

// listMemberUsers pages through a tenant's members as users. It is driven from
// the membership side (tenant_users by tenant and join time, then each user by
// primary key), so a page costs the same however many users the database holds.
func listMemberUsers(ctx context.Context, db *Database, tenantID string, f UserFilter) (Page[User], error) {
	conds, args, err := userConds(f, "u")
	if err != nil {
		return Page[User]{}, err
	}
	var joined dbTime
	scanner := newUserScanner(&joined)
	page, err := readPage(ctx, db,
		listing{selectFrom: "SELECT " + userColumns + ", m.created_at FROM tenant_users m JOIN users u ON u.id = m.user_id",
			conds: append([]string{"m.tenant_id = ?"}, conds...), args: append([]any{tenantID}, args...),
			keyset: [2]string{"m.created_at", "m.user_id"}},
		ListOptions{Limit: f.Limit, Cursor: f.Cursor},
		func(r rowScanner) (memberUser, error) {
			u, err := scanner.scan(r)
			return memberUser{u, joined.Time}, err
		},
		func(mu memberUser) (time.Time, string) { return mu.joined, mu.user.ID })
	if err != nil {
		return Page[User]{}, err
	}
	out := Page[User]{Items: make([]User, len(page.Items)), Next: page.Next}
	for i, mu := range page.Items {
		out.Items[i] = mu.user
	}
	if len(out.Items) == 0 && f.Cursor == "" {
		return out, tenantExists(ctx, db, tenantID)
	}
	return out, nil
}

func countMemberUsers(ctx context.Context, db *Database, tenantID string, f UserFilter) (int, error) {
	conds, args, err := userConds(f, "u")
	if err != nil {
		return 0, err
	}
	q := "SELECT count(*) FROM tenant_users m"
	if len(conds) > 0 {
		q += " JOIN users u ON u.id = m.user_id"
	}
	q += " WHERE m.tenant_id = ?"
	for _, c := range conds {
		q += " AND " + c
	}
	n, err := scanCount(ctx, db, q, append([]any{tenantID}, args...)...)
	if err == nil && n == 0 {
		err = tenantExists(ctx, db, tenantID)
	}
	return n, err
}

// Tenants lists the tenants a user belongs to, with the user's role in each,
// oldest membership first.
func (u Users) Tenants(ctx context.Context, userID string) (_ []TenantMembership, err error) {
	defer u.db.wrap(&err, "list user tenants")
	if err := requireID("user", userID); err != nil {
		return nil, err
	}
	rows, err := u.db.queryRows(ctx, "SELECT "+tenantColumns+", m.role FROM tenant_users m JOIN tenants t ON t.id = m.tenant_id"+
		" WHERE m.user_id = ? ORDER BY m.created_at, m.tenant_id", userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []TenantMembership
	var row tenantRow
	var role string
	dest := tenantMap.dest(&row, &role)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		out = append(out, TenantMembership{Tenant: row.tenant(), Role: Role(role)})
	}
	return out, rows.Err()
}
