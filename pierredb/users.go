package pierredb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/uptrace/bun"

	"github.com/pierre-mcp/pierre/pierredb/internal/password"
)

// userRow is the users table as bun writes it.
type userRow struct {
	bun.BaseModel `bun:"table:users"`

	ID                string         `bun:"id,pk"`
	Email             string         `bun:"email"`
	DisplayName       sql.NullString `bun:"display_name"`
	PasswordHash      string         `bun:"password_hash"`
	Tier              string         `bun:"tier"`
	TenantID          sql.NullString `bun:"tenant_id"`
	IsActive          bool           `bun:"is_active"`
	IsAdmin           bool           `bun:"is_admin"`
	UserStatus        string         `bun:"user_status"`
	ApprovedBy        sql.NullString `bun:"approved_by"`
	ApprovedByService sql.NullString `bun:"approved_by_service"`
	ApprovedAt        dbTime         `bun:"approved_at"`
	CreatedAt         dbTime         `bun:"created_at"`
	UpdatedAt         dbTime         `bun:"updated_at"`
	LastActive        dbTime         `bun:"last_active"`
}

// userColumns is the column list every user read selects, in scanUser's order.
const userColumns = `u.id, u.email, u.display_name, u.tier, u.tenant_id, u.user_status, u.is_active,
u.is_admin, u.approved_by, u.approved_by_service, u.approved_at, u.created_at, u.updated_at, u.last_active`

type rowScanner interface{ Scan(dest ...any) error }

// userScanner reads userColumns (then extra destinations) from rows. One scanner
// serves a whole listing: its destinations are allocated once, not per row, which
// measured a quarter of a 50-row page's cost.
type userScanner struct {
	u                                          User
	display, tenant, approvedBy, approvedBySvc sql.NullString
	tier, status                               string
	approvedAt, createdAt, updatedAt, lastSeen dbTime
	dest                                       []any
}

func newUserScanner(extra ...any) *userScanner {
	s := &userScanner{}
	s.dest = append([]any{&s.u.ID, &s.u.Email, &s.display, &s.tier, &s.tenant, &s.status, &s.u.IsActive,
		&s.u.IsAdmin, &s.approvedBy, &s.approvedBySvc, &s.approvedAt, &s.createdAt, &s.updatedAt, &s.lastSeen}, extra...)
	return s
}

func (s *userScanner) scan(r rowScanner) (User, error) {
	if err := r.Scan(s.dest...); err != nil {
		return User{}, err
	}
	u := s.u
	u.DisplayName, u.TenantID, u.ApprovedBy, u.ApprovedByService = s.display.String, s.tenant.String, s.approvedBy.String, s.approvedBySvc.String
	u.Tier, u.Status = Tier(s.tier), UserStatus(s.status)
	u.ApprovedAt, u.CreatedAt, u.UpdatedAt, u.LastActive = s.approvedAt.Time, s.createdAt.Time, s.updatedAt.Time, s.lastSeen.Time
	return u, nil
}

// scanUser reads one user (then extra destinations) from a single row.
func scanUser(r rowScanner, extra ...any) (User, error) {
	return newUserScanner(extra...).scan(r)
}

// normalizeEmail trims and lower-cases an email and checks that it is one plain
// address (no display name, no list).
func normalizeEmail(email string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(email))
	if e == "" {
		return "", fmt.Errorf("%w: email is required", ErrInvalidArgument)
	}
	if len(e) > 254 {
		return "", fmt.Errorf("%w: email is longer than 254 bytes", ErrInvalidArgument)
	}
	addr, err := mail.ParseAddress(e)
	if err != nil || addr.Address != e || addr.Name != "" {
		return "", fmt.Errorf("%w: %q is not an email address", ErrInvalidArgument, shorten(e))
	}
	return e, nil
}

func validDisplayName(name string) error {
	if len(name) > 200 {
		return fmt.Errorf("%w: display name is longer than 200 bytes", ErrInvalidArgument)
	}
	if !utf8.ValidString(name) || strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return fmt.Errorf("%w: display name holds control characters or invalid UTF-8", ErrInvalidArgument)
	}
	return nil
}

func validUserTier(t Tier) (Tier, error) {
	if t == "" {
		return TierStarter, nil
	}
	if !t.validPlan() {
		return "", fmt.Errorf("%w: tier %q is not starter, professional or enterprise", ErrInvalidArgument, shorten(string(t)))
	}
	return t, nil
}

func requireID(kind, id string) error {
	if id == "" {
		return fmt.Errorf("%w: %s id is required", ErrInvalidArgument, kind)
	}
	if len(id) > 128 {
		return fmt.Errorf("%w: %s id is longer than 128 bytes", ErrInvalidArgument, kind)
	}
	return nil
}

// hashNewPassword validates and hashes a new password, outside any transaction:
// a hash takes about 26 ms.
func (db *Database) hashNewPassword(ctx context.Context, pw string) (string, error) {
	h, err := db.hasher.Hash(ctx, pw)
	if err != nil {
		return "", passwordError(err)
	}
	return h, nil
}

// passwordError maps the password package's errors onto pierredb's, with a message
// that says what to do.
func passwordError(err error) error {
	switch {
	case errors.Is(err, password.ErrTooShort):
		return fmt.Errorf("%w: use at least %d characters", ErrPasswordTooShort, password.MinLength)
	case errors.Is(err, password.ErrTooLong):
		return fmt.Errorf("%w: use at most %d bytes", ErrPasswordTooLong, password.MaxLength)
	default:
		return err
	}
}

// prepareUser validates nu and builds the row to insert (status decided by the
// caller).
func (db *Database) prepareUser(ctx context.Context, nu NewUser) (userRow, error) {
	email, err := normalizeEmail(nu.Email)
	if err != nil {
		return userRow{}, err
	}
	if err := validDisplayName(nu.DisplayName); err != nil {
		return userRow{}, err
	}
	tier, err := validUserTier(nu.Tier)
	if err != nil {
		return userRow{}, err
	}
	hash, err := db.hashNewPassword(ctx, nu.Password)
	if err != nil {
		return userRow{}, err
	}
	now := at(db.now())
	return userRow{
		ID:           newID(),
		Email:        email,
		DisplayName:  sql.NullString{String: nu.DisplayName, Valid: nu.DisplayName != ""},
		PasswordHash: hash,
		Tier:         string(tier),
		IsActive:     true,
		UserStatus:   string(StatusPending),
		CreatedAt:    now,
		UpdatedAt:    now,
	}, nil
}

func (r userRow) user() User {
	return User{
		ID: r.ID, Email: r.Email, DisplayName: r.DisplayName.String, Tier: Tier(r.Tier),
		TenantID: r.TenantID.String, Status: UserStatus(r.UserStatus), IsActive: r.IsActive, IsAdmin: r.IsAdmin,
		ApprovedBy: r.ApprovedBy.String, ApprovedByService: r.ApprovedByService.String,
		ApprovedAt: r.ApprovedAt.Time, CreatedAt: r.CreatedAt.Time, UpdatedAt: r.UpdatedAt.Time, LastActive: r.LastActive.Time,
	}
}

// autoApprovalService is recorded as approved_by_service when auto-approval
// activates a new user.
const autoApprovalService = "auto-approval"

// applyAutoApproval makes row active when auto-approval is on.
func (db *Database) applyAutoApproval(ctx context.Context, row *userRow) error {
	on, err := db.AutoApproveUsers(ctx)
	if err != nil {
		return err
	}
	if on {
		row.UserStatus = string(StatusActive)
		row.ApprovedByService = sql.NullString{String: autoApprovalService, Valid: true}
		row.ApprovedAt = row.CreatedAt
	}
	return nil
}

// CreateUser creates a user. The email is trimmed and lower-cased; an email that
// is taken returns ErrAlreadyExists. The user is pending until approved, or active
// at once when auto-approval is on (see AutoApproveUsers). To create a user inside
// a tenant, use TenantScope.CreateUser.
func (db *Database) CreateUser(ctx context.Context, nu NewUser) (User, error) {
	row, err := db.prepareUser(ctx, nu)
	if err != nil {
		return User{}, err
	}
	if err := db.applyAutoApproval(ctx, &row); err != nil {
		return User{}, err
	}
	err = db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		_, err := tx.NewInsert().Model(&row).Exec(ctx)
		return err
	})
	if err != nil {
		return User{}, db.opError("create user", err)
	}
	return row.user(), nil
}

// BootstrapFirstAdmin creates the first admin, active at once, exactly once: when
// any admin exists, or another call is creating one at the same moment, it
// returns ErrAlreadyExists. (If every admin is later lost, for example through SQL
// outside pierre, it works again.)
func (db *Database) BootstrapFirstAdmin(ctx context.Context, nu NewUser) (User, error) {
	row, err := db.prepareUser(ctx, nu)
	if err != nil {
		return User{}, err
	}
	row.IsAdmin = true
	row.UserStatus = string(StatusActive)
	row.ApprovedByService = sql.NullString{String: "bootstrap", Valid: true}
	row.ApprovedAt = row.CreatedAt
	err = db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		// Serialise racing bootstraps (and admin revocations): the second waits,
		// then counts the first one's admin and gives up.
		if err := db.lockAdmins(ctx, tx); err != nil {
			return err
		}
		var admins int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM users WHERE is_admin = ?", true).Scan(&admins); err != nil {
			return err
		}
		if admins > 0 {
			return fmt.Errorf("%w: an admin exists already", ErrAlreadyExists)
		}
		_, err := tx.NewInsert().Model(&row).Exec(ctx)
		return err
	})
	if err != nil {
		return User{}, db.opError("bootstrap first admin", err)
	}
	return row.user(), nil
}

// GetUser returns the user with id, or ErrNotFound.
func (db *Database) GetUser(ctx context.Context, id string) (User, error) {
	if err := requireID("user", id); err != nil {
		return User{}, err
	}
	if err := db.checkOpen(); err != nil {
		return User{}, err
	}
	row, err := db.queryRow(ctx, "SELECT "+userColumns+" FROM users u WHERE u.id = ?", id)
	if err != nil {
		return User{}, db.opError("get user", err)
	}
	u, err := scanUser(row)
	if err != nil {
		return User{}, db.opError("get user", err)
	}
	return u, nil
}

// GetUserByEmail returns the user with email (trimmed and lower-cased first), or
// ErrNotFound. It is the login path's lookup and runs as one prepared statement.
func (db *Database) GetUserByEmail(ctx context.Context, email string) (User, error) {
	e, err := normalizeEmail(email)
	if err != nil {
		return User{}, err
	}
	if err := db.checkOpen(); err != nil {
		return User{}, err
	}
	row, err := db.queryRow(ctx, "SELECT "+userColumns+" FROM users u WHERE u.email = ?", e)
	if err != nil {
		return User{}, db.opError("get user by email", err)
	}
	u, err := scanUser(row)
	if err != nil {
		return User{}, db.opError("get user by email", err)
	}
	return u, nil
}

// userWhere builds the WHERE clause and arguments of a user listing. tenantID,
// when set, restricts to members of that tenant.
func userWhere(f UserFilter, tenantID string) (string, []any, error) {
	var conds []string
	var args []any
	if tenantID != "" {
		conds = append(conds, "EXISTS (SELECT 1 FROM tenant_users m WHERE m.tenant_id = ? AND m.user_id = u.id)")
		args = append(args, tenantID)
	}
	if f.Status != "" {
		if !f.Status.valid() {
			return "", nil, fmt.Errorf("%w: status %q is not pending, active or suspended", ErrInvalidArgument, shorten(string(f.Status)))
		}
		conds = append(conds, "u.user_status = ?")
		args = append(args, string(f.Status))
	}
	if f.IsAdmin != nil {
		conds = append(conds, "u.is_admin = ?")
		args = append(args, *f.IsAdmin)
	}
	if len(conds) == 0 {
		return "", nil, nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args, nil
}

// ListUsers lists users across all tenants, oldest first, one page at a time.
func (db *Database) ListUsers(ctx context.Context, f UserFilter) (Page[User], error) {
	return db.listUsers(ctx, f, f.TenantID)
}

func (db *Database) listUsers(ctx context.Context, f UserFilter, tenantID string) (Page[User], error) {
	limit, err := pageSize(f.Limit)
	if err != nil {
		return Page[User]{}, err
	}
	cur, hasCursor, err := decodeCursor(f.Cursor)
	if err != nil {
		return Page[User]{}, err
	}
	where, args, err := userWhere(f, tenantID)
	if err != nil {
		return Page[User]{}, err
	}
	if hasCursor {
		if where == "" {
			where = " WHERE "
		} else {
			where += " AND "
		}
		where += "(u.created_at, u.id) > (?, ?)"
		args = append(args, cur.createdAt, cur.id)
	}
	scanner := newUserScanner()
	return readPage(ctx, db, "list users", limit, "SELECT "+userColumns+" FROM users u"+where+" ORDER BY u.created_at, u.id", args,
		func(r *sql.Rows) (User, error) { return scanner.scan(r) },
		func(u User) (time.Time, string) { return u.CreatedAt, u.ID })
}

// CountUsers counts the users f selects (its Limit and Cursor are ignored).
func (db *Database) CountUsers(ctx context.Context, f UserFilter) (int, error) {
	return db.countUsers(ctx, f, f.TenantID)
}

func (db *Database) countUsers(ctx context.Context, f UserFilter, tenantID string) (int, error) {
	where, args, err := userWhere(f, tenantID)
	if err != nil {
		return 0, err
	}
	if err := db.checkOpen(); err != nil {
		return 0, err
	}
	row, err := db.queryRow(ctx, "SELECT count(*) FROM users u"+where, args...)
	if err != nil {
		return 0, db.opError("count users", err)
	}
	var n int
	if err := row.Scan(&n); err != nil {
		return 0, db.opError("count users", err)
	}
	return n, nil
}

// updateUser runs change on the locked user row in a transaction and writes the
// columns it names. change may refuse with an error.
func (db *Database) updateUser(ctx context.Context, op, id string, change func(ctx context.Context, tx bun.Tx, r *userRow) ([]string, error)) (User, error) {
	if err := requireID("user", id); err != nil {
		return User{}, err
	}
	var out userRow
	err := db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var r userRow
		if err := db.locked(tx.NewSelect().Model(&r).Where("id = ?", id)).Scan(ctx); err != nil {
			return err
		}
		cols, err := change(ctx, tx, &r)
		if err != nil {
			return err
		}
		if len(cols) > 0 {
			r.UpdatedAt = at(db.now())
			cols = append(cols, "updated_at")
			if _, err := tx.NewUpdate().Model(&r).Column(cols...).WherePK().Exec(ctx); err != nil {
				return err
			}
		}
		out = r
		return nil
	})
	if err != nil {
		return User{}, db.opError(op, err)
	}
	return out.user(), nil
}

// locked adds FOR UPDATE to q on PostgreSQL. SQLite's IMMEDIATE transaction
// already holds the database's write lock (and has no FOR UPDATE).
func (db *Database) locked(q *bun.SelectQuery) *bun.SelectQuery {
	if db.eng.Backend == Postgres {
		return q.For("UPDATE")
	}
	return q
}

// ApproveUser moves a pending user to active and records who approved it.
// Approving a user that is not pending returns ErrConflict; an approving user
// that does not exist returns ErrNotFound.
func (db *Database) ApproveUser(ctx context.Context, id string, by Approver) (User, error) {
	if err := by.validate(); err != nil {
		return User{}, err
	}
	return db.updateUser(ctx, "approve user", id, func(ctx context.Context, tx bun.Tx, r *userRow) ([]string, error) {
		if r.UserStatus != string(StatusPending) {
			return nil, fmt.Errorf("%w: user is %s, not pending", ErrConflict, r.UserStatus)
		}
		if by.UserID != "" {
			if ok, err := userExists(ctx, tx, by.UserID); err != nil || !ok {
				return nil, errOr(err, fmt.Errorf("%w: approving user does not exist", ErrNotFound))
			}
		}
		r.UserStatus = string(StatusActive)
		r.ApprovedBy = sql.NullString{String: by.UserID, Valid: by.UserID != ""}
		r.ApprovedByService = sql.NullString{String: by.Service, Valid: by.Service != ""}
		r.ApprovedAt = at(db.now())
		return []string{"user_status", "approved_by", "approved_by_service", "approved_at"}, nil
	})
}

// SuspendUser suspends a pending or active user: it can no longer log in.
// Suspending a suspended user returns ErrConflict.
func (db *Database) SuspendUser(ctx context.Context, id string) (User, error) {
	return db.updateUser(ctx, "suspend user", id, func(_ context.Context, _ bun.Tx, r *userRow) ([]string, error) {
		if r.UserStatus == string(StatusSuspended) {
			return nil, fmt.Errorf("%w: user is already suspended", ErrConflict)
		}
		r.UserStatus = string(StatusSuspended)
		r.IsActive = false
		return []string{"user_status", "is_active"}, nil
	})
}

// ReactivateUser lifts a suspension: a user who had been approved becomes active
// again, and one suspended while still pending goes back to pending (reactivation
// never bypasses approval). Reactivating a user that is not suspended returns
// ErrConflict.
func (db *Database) ReactivateUser(ctx context.Context, id string) (User, error) {
	return db.updateUser(ctx, "reactivate user", id, func(_ context.Context, _ bun.Tx, r *userRow) ([]string, error) {
		if r.UserStatus != string(StatusSuspended) {
			return nil, fmt.Errorf("%w: user is %s, not suspended", ErrConflict, r.UserStatus)
		}
		r.UserStatus = string(StatusActive)
		if r.ApprovedAt.IsZero() {
			r.UserStatus = string(StatusPending)
		}
		r.IsActive = true
		return []string{"user_status", "is_active"}, nil
	})
}

// SetAdmin grants (true) or revokes (false) platform admin rights. Revoking the
// last admin returns ErrConflict, so the platform is never left without one.
func (db *Database) SetAdmin(ctx context.Context, id string, admin bool) (User, error) {
	return db.updateUser(ctx, "set admin", id, func(ctx context.Context, tx bun.Tx, r *userRow) ([]string, error) {
		if r.IsAdmin == admin {
			return nil, nil
		}
		if !admin {
			if err := db.lockAdmins(ctx, tx); err != nil {
				return nil, err
			}
			var admins int
			if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM users WHERE is_admin = ?", true).Scan(&admins); err != nil {
				return nil, err
			}
			if admins <= 1 {
				return nil, fmt.Errorf("%w: this is the last admin; grant admin to another user first", ErrConflict)
			}
		}
		r.IsAdmin = admin
		return []string{"is_admin"}, nil
	})
}

// lockAdmins serialises the revocations of admin rights until tx ends, so that two
// revocations of different admins cannot both count two admins and leave none.
// Each holds only its own user's row lock, which does not stop the other: on
// PostgreSQL (READ COMMITTED) a transaction-level advisory lock, keyed by schema,
// does; the count that follows it sees the other revocation once committed.
// SQLite's IMMEDIATE transactions already serialise every writer.
func (db *Database) lockAdmins(ctx context.Context, tx bun.Tx) error {
	if db.eng.Backend != Postgres {
		return nil
	}
	_, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtext('pierredb:admins:' || current_schema()))")
	return err
}

// UpdateDisplayName sets a user's display name ("" clears it).
func (db *Database) UpdateDisplayName(ctx context.Context, id, name string) (User, error) {
	if err := validDisplayName(name); err != nil {
		return User{}, err
	}
	return db.updateUser(ctx, "update display name", id, func(_ context.Context, _ bun.Tx, r *userRow) ([]string, error) {
		r.DisplayName = sql.NullString{String: name, Valid: name != ""}
		return []string{"display_name"}, nil
	})
}

// SetPassword replaces a user's password without checking the old one (an admin
// reset). Use ChangePassword when the user changes their own.
func (db *Database) SetPassword(ctx context.Context, id, newPassword string) error {
	if err := requireID("user", id); err != nil {
		return err
	}
	hash, err := db.hashNewPassword(ctx, newPassword)
	if err != nil {
		return err
	}
	_, err = db.updateUser(ctx, "set password", id, func(_ context.Context, _ bun.Tx, r *userRow) ([]string, error) {
		r.PasswordHash = hash
		return []string{"password_hash"}, nil
	})
	return err
}

// ChangePassword replaces a user's password after checking the current one; a
// wrong current password returns ErrInvalidCredentials.
func (db *Database) ChangePassword(ctx context.Context, id, current, newPassword string) error {
	if err := requireID("user", id); err != nil {
		return err
	}
	if err := password.ValidateNew(newPassword); err != nil {
		return passwordError(err)
	}
	if err := db.checkOpen(); err != nil {
		return err
	}
	row, err := db.queryRow(ctx, "SELECT password_hash FROM users WHERE id = ?", id)
	if err != nil {
		return db.opError("change password", err)
	}
	var stored string
	if err := row.Scan(&stored); err != nil {
		return db.opError("change password", err)
	}
	if _, err := db.hasher.Verify(ctx, current, stored); err != nil {
		if errors.Is(err, password.ErrMismatch) || errors.Is(err, password.ErrTooLong) {
			return ErrInvalidCredentials
		}
		return fmt.Errorf("pierredb: change password: %w", err)
	}
	hash, err := db.hashNewPassword(ctx, newPassword)
	if err != nil {
		return err
	}
	_, err = db.updateUser(ctx, "change password", id, func(_ context.Context, _ bun.Tx, r *userRow) ([]string, error) {
		if r.PasswordHash != stored {
			return nil, fmt.Errorf("%w: the password changed meanwhile; try again", ErrConflict)
		}
		r.PasswordHash = hash
		return []string{"password_hash"}, nil
	})
	return err
}

// Authenticate checks an email and password and returns the user. Every failure
// that could tell an attacker whether the email exists is ErrInvalidCredentials,
// and an unknown email costs about one real password hash. A right password on a
// pending or suspended account returns ErrUserPending or ErrUserSuspended. After a
// successful login a hash below the current policy (or an imported bcrypt hash) is
// replaced; if that fails, the login still succeeds.
func (db *Database) Authenticate(ctx context.Context, email, pw string) (User, error) {
	e, err := normalizeEmail(email)
	if err != nil {
		_ = db.hasher.DummyVerify(ctx, pw)
		return User{}, ErrInvalidCredentials
	}
	if err := db.checkOpen(); err != nil {
		return User{}, err
	}
	row, err := db.queryRow(ctx, "SELECT "+userColumns+", u.password_hash FROM users u WHERE u.email = ?", e)
	if err != nil {
		return User{}, db.opError("authenticate", err)
	}
	var stored string
	u, err := scanUser(row, &stored)
	if errors.Is(err, sql.ErrNoRows) {
		if err := db.hasher.DummyVerify(ctx, pw); ctxErr(err) != nil {
			return User{}, err
		}
		return User{}, ErrInvalidCredentials
	}
	if err != nil {
		return User{}, db.opError("authenticate", err)
	}
	needsRehash, err := db.hasher.Verify(ctx, pw, stored)
	switch {
	case ctxErr(err) != nil:
		return User{}, err
	case err != nil:
		// A mismatch, an over-long password or an unusable stored hash: all look
		// the same from outside. The last one is worth an operator's attention.
		if !errors.Is(err, password.ErrMismatch) && !errors.Is(err, password.ErrTooLong) {
			db.log.Warn("pierredb: stored password hash is unusable", "user_id", u.ID, "reason", err.Error())
		}
		return User{}, ErrInvalidCredentials
	}
	switch {
	case u.Status == StatusPending:
		return User{}, ErrUserPending
	case u.Status == StatusSuspended || !u.IsActive:
		return User{}, ErrUserSuspended
	}
	if needsRehash {
		db.rehash(ctx, u.ID, pw, stored)
	}
	if t, err := db.touch(ctx, u.ID); err == nil && !t.IsZero() {
		u.LastActive = t
	}
	return u, nil
}

func ctxErr(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// rehash replaces a user's password hash with one at the current policy, unless
// the stored hash changed meanwhile. Failure is logged, never returned.
func (db *Database) rehash(ctx context.Context, id, pw, stored string) {
	hash, err := db.hasher.Hash(ctx, pw)
	if err == nil {
		err = db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
			_, err := tx.NewUpdate().Table("users").
				Set("password_hash = ?", hash).Set("updated_at = ?", at(db.now())).
				Where("id = ? AND password_hash = ?", id, stored).Exec(ctx)
			return err
		})
	}
	if err != nil {
		db.log.Warn("pierredb: password rehash failed; the login went ahead", "user_id", id, "reason", db.eng.Classify(err).Error())
	}
}

// TouchUser records that a user was active now. Writes are throttled: within the
// interval of the previous write for that user (WithLastActiveInterval, default one
// minute) it does nothing, so a busy user does not write on every request.
func (db *Database) TouchUser(ctx context.Context, id string) error {
	if err := requireID("user", id); err != nil {
		return err
	}
	_, err := db.touch(ctx, id)
	return err
}

// touch writes last_active unless it was written within the interval, by this
// process (the in-memory throttle) or by another (the conditional UPDATE). It
// returns the time written, or zero when it skipped.
func (db *Database) touch(ctx context.Context, id string) (time.Time, error) {
	now := db.now()
	if !db.lastActive.due(id, now) {
		return time.Time{}, nil
	}
	stamp := at(now)
	threshold := at(now.Add(-db.lastActive.interval))
	var written int64
	err := db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewUpdate().Table("users").Set("last_active = ?", stamp).
			Where("id = ? AND (last_active IS NULL OR last_active < ?)", id, threshold).Exec(ctx)
		if err != nil {
			return err
		}
		written, err = res.RowsAffected()
		return err
	})
	if err != nil {
		db.lastActive.forget(id)
		return time.Time{}, db.opError("touch user", err)
	}
	if written == 0 { // another instance wrote within the interval (or no such user)
		return time.Time{}, nil
	}
	return stamp.Time, nil
}

// throttle remembers when each user's last_active was last written.
type throttle struct {
	interval time.Duration
	mu       sync.Mutex
	seen     map[string]time.Time
}

// due reports whether id should be written at now, and if so records now.
func (t *throttle) due(id string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.seen == nil {
		t.seen = make(map[string]time.Time)
	}
	if last, ok := t.seen[id]; ok && now.Sub(last) < t.interval {
		return false
	}
	if len(t.seen) >= 100_000 { // bound memory: drop entries older than the interval
		for k, v := range t.seen {
			if now.Sub(v) >= t.interval {
				delete(t.seen, k)
			}
		}
	}
	t.seen[id] = now
	return true
}

func (t *throttle) forget(id string) {
	t.mu.Lock()
	delete(t.seen, id)
	t.mu.Unlock()
}

// DeleteUser deletes a user and everything the user owns: memberships, and
// through them the user's API keys, A2A clients and OAuth tokens in every tenant,
// and the tenants the user owns alone. A tenant the user owns that has other
// members returns ErrConflict (transfer its ownership first), and so does the
// last admin (grant admin to another user first).
func (db *Database) DeleteUser(ctx context.Context, id string) error {
	if err := requireID("user", id); err != nil {
		return err
	}
	err := db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var isAdmin bool
		if err := tx.QueryRowContext(ctx, "SELECT is_admin FROM users WHERE id = ?"+db.forUpdate(), id).Scan(&isAdmin); err != nil {
			return err
		}
		if isAdmin {
			if err := db.lockAdmins(ctx, tx); err != nil {
				return err
			}
			var admins int
			if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM users WHERE is_admin = ?", true).Scan(&admins); err != nil {
				return err
			}
			if admins <= 1 {
				return fmt.Errorf("%w: this is the last admin; grant admin to another user first", ErrConflict)
			}
		}
		var owned []struct {
			ID     string `bun:"id"`
			Slug   string `bun:"slug"`
			Others int    `bun:"others"`
		}
		err := tx.NewRaw(`SELECT t.id, t.slug,
			(SELECT count(*) FROM tenant_users m WHERE m.tenant_id = t.id AND m.user_id <> ?) AS others
			FROM tenants t WHERE t.owner_user_id = ?`+db.forUpdate(), id, id).Scan(ctx, &owned)
		if err != nil {
			return err
		}
		for _, t := range owned {
			if t.Others > 0 {
				return fmt.Errorf("%w: the user owns tenant %q, which has other members; transfer its ownership first", ErrConflict, t.Slug)
			}
		}
		for _, t := range owned {
			if _, err := tx.NewDelete().Table("tenants").Where("id = ?", t.ID).Exec(ctx); err != nil {
				return err
			}
		}
		_, err = tx.NewDelete().Table("users").Where("id = ?", id).Exec(ctx)
		return err
	})
	if err != nil {
		return db.opError("delete user", err)
	}
	db.lastActive.forget(id)
	return nil
}

// opError classifies a driver error (sql.ErrNoRows becomes ErrNotFound) and says
// what was being done. Errors that are already pierredb's pass through.
func (db *Database) opError(op string, err error) error {
	if err == nil {
		return nil
	}
	if ctxErr(err) != nil {
		return err
	}
	select {
	case <-db.closed:
		return fmt.Errorf("pierredb: %s: %w", op, ErrClosed)
	default:
	}
	return fmt.Errorf("pierredb: %s: %w", op, db.eng.Classify(err))
}
