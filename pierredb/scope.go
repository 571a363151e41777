package pierredb

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

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

// Tenant returns the scope of tenant id. An empty id is ErrInvalidArgument and an
// id that names no tenant is ErrNotFound: never a missing filter.
func (db *Database) Tenant(ctx context.Context, id string) (*TenantScope, error) {
	if err := requireID("tenant", id); err != nil {
		return nil, err
	}
	if err := db.checkOpen(); err != nil {
		return nil, err
	}
	row, err := db.queryRow(ctx, "SELECT count(*) FROM tenants WHERE id = ?", id)
	if err != nil {
		return nil, db.opError("open tenant scope", err)
	}
	var n int
	if err := row.Scan(&n); err != nil {
		return nil, db.opError("open tenant scope", err)
	}
	if n == 0 {
		return nil, fmt.Errorf("pierredb: open tenant scope: %w: no tenant has that id", ErrNotFound)
	}
	return &TenantScope{db: db, id: id}, nil
}

// ID is the tenant this scope is bound to.
func (s *TenantScope) ID() string { return s.id }

// Get returns the tenant itself.
func (s *TenantScope) Get(ctx context.Context) (Tenant, error) {
	return s.db.GetTenant(ctx, s.id)
}

func validRole(r Role) error {
	if !r.valid() {
		return fmt.Errorf("%w: role %q is not owner, admin, member or viewer", ErrInvalidArgument, shorten(string(r)))
	}
	return nil
}

// CreateUser creates a user and its membership in this tenant (NewUser.Role,
// default RoleMember) in one transaction; this tenant becomes the user's home
// tenant. See Database.CreateUser for the rules on email, password and approval.
func (s *TenantScope) CreateUser(ctx context.Context, nu NewUser) (User, error) {
	role := nu.Role
	if role == "" {
		role = RoleMember
	}
	if err := validRole(role); err != nil {
		return User{}, err
	}
	row, err := s.db.prepareUser(ctx, nu)
	if err != nil {
		return User{}, err
	}
	if err := s.db.applyAutoApproval(ctx, &row); err != nil {
		return User{}, err
	}
	row.TenantID = sql.NullString{String: s.id, Valid: true}
	err = s.db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(&row).Exec(ctx); err != nil {
			return err
		}
		m := memberRow{TenantID: s.id, UserID: row.ID, Role: string(role), CreatedAt: row.CreatedAt, UpdatedAt: row.CreatedAt}
		_, err := tx.NewInsert().Model(&m).Exec(ctx)
		return err
	})
	if err != nil {
		return User{}, s.db.opError("create user in tenant", err)
	}
	return row.user(), nil
}

// GetUser returns a member of this tenant; a user who is not a member is
// ErrNotFound.
func (s *TenantScope) GetUser(ctx context.Context, userID string) (User, error) {
	if err := requireID("user", userID); err != nil {
		return User{}, err
	}
	if err := s.db.checkOpen(); err != nil {
		return User{}, err
	}
	row, err := s.db.queryRow(ctx, "SELECT "+userColumns+" FROM users u JOIN tenant_users m ON m.user_id = u.id"+
		" WHERE m.tenant_id = ? AND u.id = ?", s.id, userID)
	if err != nil {
		return User{}, s.db.opError("get tenant user", err)
	}
	u, err := scanUser(row)
	if err != nil {
		return User{}, s.db.opError("get tenant user", err)
	}
	return u, nil
}

// ListUsers lists this tenant's members as users (f.TenantID is ignored).
func (s *TenantScope) ListUsers(ctx context.Context, f UserFilter) (Page[User], error) {
	return s.db.listUsers(ctx, f, s.id)
}

// CountUsers counts this tenant's members that f selects.
func (s *TenantScope) CountUsers(ctx context.Context, f UserFilter) (int, error) {
	return s.db.countUsers(ctx, f, s.id)
}

// AddMember adds an existing user to this tenant with role. A user who does not
// exist is ErrNotFound; one who is a member already is ErrAlreadyExists.
func (s *TenantScope) AddMember(ctx context.Context, userID string, role Role) (Membership, error) {
	if err := requireID("user", userID); err != nil {
		return Membership{}, err
	}
	if err := validRole(role); err != nil {
		return Membership{}, err
	}
	now := at(s.db.now())
	m := memberRow{TenantID: s.id, UserID: userID, Role: string(role), CreatedAt: now, UpdatedAt: now}
	err := s.db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := s.lockTenant(ctx, tx); err != nil {
			return err
		}
		if ok, err := userExists(ctx, tx, userID); err != nil || !ok {
			return errOr(err, fmt.Errorf("%w: user does not exist", ErrNotFound))
		}
		_, err := tx.NewInsert().Model(&m).Exec(ctx)
		return err
	})
	if err != nil {
		return Membership{}, s.db.opError("add member", err)
	}
	return m.membership(), nil
}

// lockTenant serialises membership changes of this tenant (PostgreSQL row lock;
// SQLite's write transaction is already exclusive) and fails with ErrNotFound if
// the tenant was deleted meanwhile. It returns the tenant's primary owner.
func (s *TenantScope) lockTenant(ctx context.Context, tx bun.Tx) error {
	_, err := s.lockTenantOwner(ctx, tx)
	return err
}

func (s *TenantScope) lockTenantOwner(ctx context.Context, tx bun.Tx) (string, error) {
	var owner string
	err := tx.QueryRowContext(ctx, "SELECT owner_user_id FROM tenants WHERE id = ?"+s.db.forUpdate(), s.id).Scan(&owner)
	return owner, err
}

// member reads a membership of this tenant inside tx.
func (s *TenantScope) member(ctx context.Context, tx bun.IDB, userID string) (memberRow, error) {
	var m memberRow
	err := tx.NewSelect().Model(&m).Where("tenant_id = ? AND user_id = ?", s.id, userID).Scan(ctx)
	return m, err
}

// owners counts this tenant's owners inside tx.
func (s *TenantScope) owners(ctx context.Context, tx bun.Tx) (int, error) {
	var n int
	err := tx.QueryRowContext(ctx, "SELECT count(*) FROM tenant_users WHERE tenant_id = ? AND role = ?", s.id, string(RoleOwner)).Scan(&n)
	return n, err
}

// SetMemberRole changes a member's role. A user who is not a member is
// ErrNotFound. Demoting the last owner, or the primary owner (see
// TransferOwnership), is ErrConflict.
func (s *TenantScope) SetMemberRole(ctx context.Context, userID string, role Role) (Membership, error) {
	if err := requireID("user", userID); err != nil {
		return Membership{}, err
	}
	if err := validRole(role); err != nil {
		return Membership{}, err
	}
	var out memberRow
	err := s.db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		primary, err := s.lockTenantOwner(ctx, tx)
		if err != nil {
			return err
		}
		m, err := s.member(ctx, tx, userID)
		if err != nil {
			return err
		}
		if m.Role == string(role) {
			out = m
			return nil
		}
		if m.Role == string(RoleOwner) {
			if userID == primary {
				return fmt.Errorf("%w: this user is the tenant's primary owner; transfer ownership first", ErrConflict)
			}
			if n, err := s.owners(ctx, tx); err != nil || n <= 1 {
				return errOr(err, fmt.Errorf("%w: a tenant keeps at least one owner", ErrConflict))
			}
		}
		m.Role, m.UpdatedAt = string(role), at(s.db.now())
		if _, err := tx.NewUpdate().Model(&m).Column("role", "updated_at").WherePK().Exec(ctx); err != nil {
			return err
		}
		out = m
		return nil
	})
	if err != nil {
		return Membership{}, s.db.opError("set member role", err)
	}
	return out.membership(), nil
}

// RemoveMember removes a user from this tenant; with the membership go the
// user's API keys, A2A clients and OAuth tokens in this tenant. A user who is not
// a member is ErrNotFound; the primary owner, or the last owner, is ErrConflict.
func (s *TenantScope) RemoveMember(ctx context.Context, userID string) error {
	if err := requireID("user", userID); err != nil {
		return err
	}
	err := s.db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		primary, err := s.lockTenantOwner(ctx, tx)
		if err != nil {
			return err
		}
		m, err := s.member(ctx, tx, userID)
		if err != nil {
			return err
		}
		if userID == primary {
			return fmt.Errorf("%w: this user is the tenant's primary owner; transfer ownership first", ErrConflict)
		}
		if m.Role == string(RoleOwner) {
			if n, err := s.owners(ctx, tx); err != nil || n <= 1 {
				return errOr(err, fmt.Errorf("%w: a tenant keeps at least one owner", ErrConflict))
			}
		}
		if _, err := tx.NewDelete().Model(&m).WherePK().Exec(ctx); err != nil {
			return err
		}
		_, err = tx.NewUpdate().Table("users").Set("tenant_id = NULL").
			Where("id = ? AND tenant_id = ?", userID, s.id).Exec(ctx)
		return err
	})
	return s.db.opError("remove member", err)
}

// Member returns a user's membership in this tenant, or ErrNotFound.
func (s *TenantScope) Member(ctx context.Context, userID string) (Membership, error) {
	if err := requireID("user", userID); err != nil {
		return Membership{}, err
	}
	if err := s.db.checkOpen(); err != nil {
		return Membership{}, err
	}
	row, err := s.db.queryRow(ctx, "SELECT tenant_id, user_id, role, created_at, updated_at FROM tenant_users"+
		" WHERE tenant_id = ? AND user_id = ?", s.id, userID)
	if err != nil {
		return Membership{}, s.db.opError("get member", err)
	}
	m, err := scanMember(row)
	if err != nil {
		return Membership{}, s.db.opError("get member", err)
	}
	return m, nil
}

// Role returns a user's role in this tenant, or ErrNotFound when the user is not
// a member.
func (s *TenantScope) Role(ctx context.Context, userID string) (Role, error) {
	m, err := s.Member(ctx, userID)
	return m.Role, err
}

func scanMember(r rowScanner) (Membership, error) {
	var m Membership
	var role string
	var created, updated dbTime
	if err := r.Scan(&m.TenantID, &m.UserID, &role, &created, &updated); err != nil {
		return Membership{}, err
	}
	m.Role, m.CreatedAt, m.UpdatedAt = Role(role), created.Time, updated.Time
	return m, nil
}

// Members lists this tenant's memberships, oldest first, one page at a time.
func (s *TenantScope) Members(ctx context.Context, o ListOptions) (Page[Membership], error) {
	limit, err := pageSize(o.Limit)
	if err != nil {
		return Page[Membership]{}, err
	}
	cur, hasCursor, err := decodeCursor(o.Cursor)
	if err != nil {
		return Page[Membership]{}, err
	}
	q := "SELECT tenant_id, user_id, role, created_at, updated_at FROM tenant_users WHERE tenant_id = ?"
	args := []any{s.id}
	if hasCursor {
		q += " AND (created_at, user_id) > (?, ?)"
		args = append(args, cur.createdAt, cur.id)
	}
	return readPage(ctx, s.db, "list members", limit, q+" ORDER BY created_at, user_id", args,
		func(r *sql.Rows) (Membership, error) { return scanMember(r) },
		func(m Membership) (time.Time, string) { return m.CreatedAt, m.UserID })
}

// TransferOwnership makes a member the tenant's primary owner (and an owner, if
// not already). The previous primary owner keeps RoleOwner. A user who is not a
// member is ErrNotFound.
func (s *TenantScope) TransferOwnership(ctx context.Context, userID string) (Tenant, error) {
	if err := requireID("user", userID); err != nil {
		return Tenant{}, err
	}
	err := s.db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := s.lockTenant(ctx, tx); err != nil {
			return err
		}
		m, err := s.member(ctx, tx, userID)
		if err != nil {
			return err
		}
		now := at(s.db.now())
		if m.Role != string(RoleOwner) {
			m.Role, m.UpdatedAt = string(RoleOwner), now
			if _, err := tx.NewUpdate().Model(&m).Column("role", "updated_at").WherePK().Exec(ctx); err != nil {
				return err
			}
		}
		_, err = tx.NewUpdate().Table("tenants").Set("owner_user_id = ?", userID).Set("updated_at = ?", now).
			Where("id = ?", s.id).Exec(ctx)
		return err
	})
	if err != nil {
		return Tenant{}, s.db.opError("transfer ownership", err)
	}
	return s.Get(ctx)
}
