package pierredb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/uptrace/bun"
)

// Approver says who approves a user: an active admin user, or a named service
// (trusted code: an admin token's service, a provisioning job). Exactly one field
// is set.
type Approver struct {
	UserID  string
	Service string
}

// ByUser is an Approver that is an admin user. The user must be an active admin
// and cannot approve themselves.
func ByUser(id string) Approver { return Approver{UserID: id} }

// ByService is an Approver that is a service (an admin token, a provisioning job).
func ByService(name string) Approver { return Approver{Service: name} }

func (a Approver) clean() (Approver, error) {
	if (a.UserID == "") == (a.Service == "") {
		return a, fmt.Errorf("%w: an approver is either a user or a service", ErrInvalidArgument)
	}
	if a.UserID != "" {
		return a, requireID("approving user", a.UserID)
	}
	svc, err := cleanServiceName(a.Service)
	return Approver{Service: svc}, err
}

// autoApprovalService is recorded as approved_by_service when auto-approval
// activates a new user.
const autoApprovalService = "auto-approval"

// insertUserSQLTemplate inserts a user and decides its status in the same statement: the
// override argument (given once per CASE) overrides auto-approval (NULL: use the
// stored setting), so creating a user costs one statement, not a settings read
// plus an insert. It is an INSERT … VALUES: the same decision written as an
// INSERT … SELECT from a subquery cost 1.14-1.25x a plain insert on SQLite,
// this form 1.03-1.07x.
const insertUserSQLTemplate = `INSERT INTO users (id, email, display_name, password_hash, tier, tenant_id,
  is_active, is_admin, created_at, updated_at, user_status, approved_by_service, approved_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
  CASE WHEN ` + autoApprovedSQL + ` THEN 'active' ELSE 'pending' END,
  CASE WHEN ` + autoApprovedSQL + ` THEN '` + autoApprovalService + `' END,
  CASE WHEN ` + autoApprovedSQL + ` THEN {time} END)
RETURNING user_status`

// autoApprovedSQL is whether a new user is approved on creation: the override
// argument, else the stored setting, else no.
const autoApprovedSQL = `COALESCE(CAST(? AS BOOLEAN),
  (SELECT lower(value) IN ('1', 't', 'true') FROM system_settings WHERE key = '` + settingAutoApprove + `'), FALSE)`

// newUserRow validates nu and hashes its password (outside any transaction: a
// hash takes about 26 ms).
func (db *Database) newUserRow(ctx context.Context, nu NewUser) (userRow, error) {
	if _, err := db.userRowFor(nu, ""); err != nil { // refuse bad input before paying for a hash
		return userRow{}, err
	}
	hash, err := db.hashNewPassword(ctx, nu.Password)
	if err != nil {
		return userRow{}, err
	}
	return db.userRowFor(nu, hash)
}

// userRowFor validates nu and builds its row with hash as the stored password
// hash.
func (db *Database) userRowFor(nu NewUser, hash string) (userRow, error) {
	email, err := normalizeEmail(nu.Email)
	if err != nil {
		return userRow{}, err
	}
	name, err := cleanDisplayName(nu.DisplayName)
	if err != nil {
		return userRow{}, err
	}
	tier, err := validUserTier(nu.Tier)
	if err != nil {
		return userRow{}, err
	}
	now := at(db.now())
	return userRow{
		ID: newID(), Email: email, DisplayName: sql.NullString{String: name, Valid: name != ""},
		PasswordHash: hash, Tier: string(tier), IsActive: true, UserStatus: string(StatusPending),
		CreatedAt: now, UpdatedAt: now,
	}, nil
}

// insertUser writes r with insertUserSQL through q (a transaction, or nil for
// the prepared writer statement) and records the status the database chose.
func (db *Database) insertUser(ctx context.Context, tx bun.IDB, r *userRow) error {
	var override any
	if db.autoApprove != nil {
		override = *db.autoApprove
	}
	args := []any{r.ID, r.Email, r.DisplayName, r.PasswordHash, r.Tier, r.TenantID, r.IsActive, r.IsAdmin,
		r.CreatedAt, r.UpdatedAt, override, override, override, r.CreatedAt}
	var row *sql.Row
	if tx != nil {
		row = tx.QueryRowContext(ctx, db.insertUserSQL, args...)
	} else {
		var err error
		if row, err = db.writeRow(ctx, db.insertUserSQL, args...); err != nil {
			return err
		}
	}
	if err := row.Scan(&r.UserStatus); err != nil {
		return db.reword(err, ErrAlreadyExists, "email already registered; sign in, or use another email")
	}
	if r.UserStatus == string(StatusActive) {
		r.ApprovedByService = sql.NullString{String: autoApprovalService, Valid: true}
		r.ApprovedAt = r.CreatedAt
	}
	return nil
}

// Create creates a user. The email is normalised; an email that is taken returns
// ErrAlreadyExists. The user is pending until approved, or active at once when
// auto-approval is on (see Settings.AutoApproveUsers). To create a user inside a
// tenant, use Members.CreateUser.
func (u Users) Create(ctx context.Context, nu NewUser) (_ User, err error) {
	defer u.db.wrap(&err, "create user")
	row, err := u.db.newUserRow(ctx, nu)
	if err != nil {
		return User{}, err
	}
	if err := u.db.insertUser(ctx, nil, &row); err != nil {
		return User{}, err
	}
	return row.user(), nil
}

// CreateFirstAdmin creates the first admin, active at once, exactly once: when
// any admin exists, or another call is creating one at the same moment, it
// returns ErrAlreadyExists. (If every admin is later lost, for example through SQL
// outside pierre, it works again.)
func (u Users) CreateFirstAdmin(ctx context.Context, nu NewUser) (_ User, err error) {
	defer u.db.wrap(&err, "create first admin")
	row, err := u.db.newUserRow(ctx, nu)
	if err != nil {
		return User{}, err
	}
	row.IsAdmin = true
	row.UserStatus = string(StatusActive)
	row.ApprovedByService = sql.NullString{String: "bootstrap", Valid: true}
	row.ApprovedAt = row.CreatedAt
	err = u.db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		admins, err := lockAdmins(ctx, u.db, tx)
		if err != nil {
			return err
		}
		if admins > 0 {
			return fmt.Errorf("%w: an admin exists already; sign in as that admin", ErrAlreadyExists)
		}
		_, err = tx.NewInsert().Model(&row).Exec(ctx)
		return u.db.reword(err, ErrAlreadyExists, "email already registered")
	})
	if err != nil {
		return User{}, err
	}
	return row.user(), nil
}

// Approve moves a pending user to active and records who approved it. The
// approver is an active admin (ByUser), who cannot approve themselves, or a
// service (ByService). Approving a user who is not pending returns ErrConflict;
// an approver who is not an active admin returns ErrPermissionDenied.
func (u Users) Approve(ctx context.Context, id string, by Approver) (_ User, err error) {
	defer u.db.wrap(&err, "approve user")
	if err := requireID("user", id); err != nil {
		return User{}, err
	}
	if by, err = by.clean(); err != nil {
		return User{}, err
	}
	if by.UserID == id {
		return User{}, fmt.Errorf("%w: a user cannot approve themselves", ErrPermissionDenied)
	}
	now := at(u.db.now())
	sets := []string{"user_status = 'active'", "approved_by = ?", "approved_by_service = ?", "approved_at = ?"}
	args := []any{sql.NullString{String: by.UserID, Valid: by.UserID != ""}, sql.NullString{String: by.Service, Valid: by.Service != ""}, now}
	cond, condArgs := "user_status = 'pending'", []any(nil)
	if by.UserID != "" {
		// The approver's standing is checked by the same statement that approves,
		// so an admin demoted meanwhile cannot slip an approval through.
		cond += " AND EXISTS (SELECT 1 FROM users a WHERE a.id = ? AND a.is_admin = ? AND a.user_status = 'active')"
		condArgs = []any{by.UserID, true}
	}
	return u.db.changeUser(ctx, id, sets, args, cond, condArgs, func(cur *userRow) error {
		if cur.UserStatus != string(StatusPending) {
			return fmt.Errorf("%w: user is %s, not pending", ErrConflict, cur.UserStatus)
		}
		if by.UserID == "" {
			return nil
		}
		approver, err := u.db.currentUser(ctx, by.UserID)
		if isNotFound(err) {
			return fmt.Errorf("%w: the approving user does not exist", ErrNotFound)
		}
		if err == nil && (!approver.IsAdmin || approver.UserStatus != string(StatusActive)) {
			return fmt.Errorf("%w: the approving user is not an active admin", ErrPermissionDenied)
		}
		return err
	})
}

// Suspend suspends a pending or active user: it can no longer log in.
// Suspending a suspended user returns ErrConflict.
func (u Users) Suspend(ctx context.Context, id string) (_ User, err error) {
	defer u.db.wrap(&err, "suspend user")
	if err := requireID("user", id); err != nil {
		return User{}, err
	}
	return u.db.changeUser(ctx, id, []string{"user_status = 'suspended'", "is_active = ?"}, []any{false},
		"user_status <> 'suspended'", nil, func(*userRow) error {
			return fmt.Errorf("%w: user is already suspended", ErrConflict)
		})
}

// Reactivate lifts a suspension: a user who had been approved becomes active
// again, and one suspended while still pending goes back to pending (reactivation
// never bypasses approval). Reactivating a user who is not suspended returns
// ErrConflict.
func (u Users) Reactivate(ctx context.Context, id string) (_ User, err error) {
	defer u.db.wrap(&err, "reactivate user")
	if err := requireID("user", id); err != nil {
		return User{}, err
	}
	return u.db.changeUser(ctx, id,
		[]string{"user_status = CASE WHEN approved_at IS NULL THEN 'pending' ELSE 'active' END", "is_active = ?"}, []any{true},
		"user_status = 'suspended'", nil, func(cur *userRow) error {
			return fmt.Errorf("%w: user is %s, not suspended", ErrConflict, cur.UserStatus)
		})
}

// SetAdmin grants (true) or revokes (false) platform admin rights. Revoking the
// last admin returns ErrConflict, so the platform is never left without one.
func (u Users) SetAdmin(ctx context.Context, id string, admin bool) (_ User, err error) {
	defer u.db.wrap(&err, "set admin")
	if err := requireID("user", id); err != nil {
		return User{}, err
	}
	if admin {
		user, err := u.db.changeUser(ctx, id, []string{"is_admin = ?"}, []any{true}, "is_admin = ?", []any{false},
			func(*userRow) error { return errNoChange })
		if errors.Is(err, errNoChange) { // an admin already
			return readOne(ctx, u.db, "user", "SELECT "+userColumns+" FROM users u WHERE u.id = ?", []any{id}, scanUser)
		}
		return user, err
	}
	var out userRow
	err = u.db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := u.db.forUpdate(tx.NewSelect().Model(&out).Where("id = ?", id)).Scan(ctx); err != nil {
			return errOr(notFoundIfNoRows(err, "user"), err)
		}
		if !out.IsAdmin {
			return nil
		}
		if err := anotherAdminRemains(ctx, u.db, tx); err != nil {
			return err
		}
		out.IsAdmin, out.UpdatedAt = false, at(u.db.now())
		_, err := tx.NewUpdate().Model(&out).Column("is_admin", "updated_at").WherePK().Exec(ctx)
		return err
	})
	if err != nil {
		return User{}, err
	}
	return out.user(), nil
}

// Delete deletes a user and everything the user owns: memberships, and through
// them the user's API keys, A2A clients and OAuth tokens in every tenant, and the
// tenants the user owns alone. A tenant the user owns that has other members
// returns ErrConflict (transfer its ownership first), and so does the last admin
// (grant admin to another user first).
func (u Users) Delete(ctx context.Context, id string) (err error) {
	defer u.db.wrap(&err, "delete user")
	if err := requireID("user", id); err != nil {
		return err
	}
	err = u.db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var isAdmin bool
		err := tx.QueryRowContext(ctx, "SELECT is_admin FROM users WHERE id = ?"+u.db.eng.ForUpdate(), id).Scan(&isAdmin)
		if err != nil {
			return errOr(notFoundIfNoRows(err, "user"), err)
		}
		if isAdmin {
			if err := anotherAdminRemains(ctx, u.db, tx); err != nil {
				return err
			}
		}
		owned, err := soleOwnedTenants(ctx, u.db, tx, id)
		if err != nil {
			return err
		}
		for _, t := range owned {
			if _, err := tx.NewDelete().Table("tenants").Where("id = ?", t).Exec(ctx); err != nil {
				return err
			}
		}
		_, err = tx.NewDelete().Table("users").Where("id = ?", id).Exec(ctx)
		return err
	})
	if err != nil {
		return err
	}
	u.db.lastActive.forget(id)
	return nil
}
