package pierredb

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// UserStatus is where a user stands in the admin approval workflow.
type UserStatus string

// The user statuses. New users are pending until an admin approves them (or
// auto-approval is on); suspended users cannot log in.
const (
	StatusPending   UserStatus = "pending"
	StatusActive    UserStatus = "active"
	StatusSuspended UserStatus = "suspended"
)

func (s UserStatus) valid() bool {
	return s == StatusPending || s == StatusActive || s == StatusSuspended
}

// Tier is a subscription tier of a user, a tenant plan or an API key.
type Tier string

// The tiers. TierTrial applies to API keys only.
const (
	TierTrial        Tier = "trial"
	TierStarter      Tier = "starter"
	TierProfessional Tier = "professional"
	TierEnterprise   Tier = "enterprise"
)

// User is a person's account. Users are global (an email is unique across the
// whole database) and belong to tenants through memberships. The password hash is
// never part of a User.
type User struct {
	ID          string
	Email       string
	DisplayName string
	Tier        Tier
	// TenantID is the user's home tenant, "" when none.
	TenantID string
	Status   UserStatus
	// IsActive is false while the account is suspended.
	IsActive bool
	IsAdmin  bool
	// ApprovedBy is the id of the admin who approved the user, or "".
	ApprovedBy string
	// ApprovedByService names the service that approved the user ("auto-approval",
	// an admin token's service, ...), or "".
	ApprovedByService string
	ApprovedAt        time.Time
	CreatedAt         time.Time
	UpdatedAt         time.Time
	// LastActive is when the user was last seen, to within the throttle interval
	// (see WithLastActiveInterval); zero if never.
	LastActive time.Time
}

// NewUser is what Users.Create needs.
type NewUser struct {
	// Email is trimmed, NFC-normalised and lower-cased before it is stored.
	Email string
	// Password is hashed with argon2id; it must have at least 8 characters and at
	// most 4096 bytes.
	Password    string
	DisplayName string
	// Tier defaults to TierStarter.
	Tier Tier
	// Role is the membership role when the user is created through
	// Members.CreateUser; it defaults to RoleMember. Users.Create ignores it.
	Role Role
}

// UserUpdate changes a user's profile; nil fields are left alone.
type UserUpdate struct {
	// DisplayName replaces the display name; "" clears it.
	DisplayName *string
	// Tier replaces the subscription tier (starter, professional or enterprise).
	Tier *Tier
}

// UserFilter selects users for Users.List and Users.Count. Zero fields do not
// filter.
type UserFilter struct {
	Status UserStatus
	// TenantID keeps members of that tenant (Users only; Members always filters
	// by its own tenant). The page is then in membership order, oldest first.
	TenantID string
	// IsAdmin keeps admins (true) or non-admins (false) when set.
	IsAdmin *bool
	// Limit is the page size: default 50, at most 1000.
	Limit int
	// Cursor continues a listing where the previous page ended (Page.Next).
	Cursor string
}

// userRow is the users table. bun writes it; the prepared reads scan into it
// through userMap, so its tags are the one list of the table's columns.
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

// userMap reads every column but the password hash.
var userMap = mapRow[userRow]("password_hash")

var (
	userColumns  = userMap.columns("u")
	userReturned = userMap.columns("") // RETURNING lists may not use an alias
)

func (r *userRow) user() User {
	return User{
		ID: r.ID, Email: r.Email, DisplayName: r.DisplayName.String, Tier: Tier(r.Tier),
		TenantID: r.TenantID.String, Status: UserStatus(r.UserStatus), IsActive: r.IsActive, IsAdmin: r.IsAdmin,
		ApprovedBy: r.ApprovedBy.String, ApprovedByService: r.ApprovedByService.String,
		ApprovedAt: r.ApprovedAt.Time, CreatedAt: r.CreatedAt.Time, UpdatedAt: r.UpdatedAt.Time, LastActive: r.LastActive.Time,
	}
}

// userScanner reads userColumns (then extra destinations) into one reused row, so
// a listing allocates its destinations once, not per row.
type userScanner struct {
	row  userRow
	dest []any
}

func newUserScanner(extra ...any) *userScanner {
	s := &userScanner{}
	s.dest = userMap.dest(&s.row, extra...)
	return s
}

func (s *userScanner) scan(r rowScanner) (User, error) {
	s.row = userRow{}
	if err := r.Scan(s.dest...); err != nil {
		return User{}, err
	}
	return s.row.user(), nil
}

func scanUser(r rowScanner) (User, error) { return newUserScanner().scan(r) }

// Users is the handle on user accounts, from Database.Users. Users are global:
// an email is unique across every tenant. It is a small value; get it whenever
// needed.
type Users struct{ db *Database }

// Users returns the handle on user accounts.
func (db *Database) Users() Users { return Users{db: db} }

// Get returns the user with id, or ErrNotFound.
func (u Users) Get(ctx context.Context, id string) (_ User, err error) {
	defer u.db.wrap(&err, "get user")
	if err := requireID("user", id); err != nil {
		return User{}, err
	}
	return readOne(ctx, u.db, "user", "SELECT "+userColumns+" FROM users u WHERE u.id = ?", []any{id}, scanUser)
}

// GetByEmail returns the user with email (normalised as Create does), or
// ErrNotFound.
func (u Users) GetByEmail(ctx context.Context, email string) (_ User, err error) {
	defer u.db.wrap(&err, "get user by email")
	e, err := normalizeEmail(email)
	if err != nil {
		return User{}, err
	}
	user, err := readOne(ctx, u.db, "user", "SELECT "+userColumns+" FROM users u WHERE u.email = ?", []any{e}, scanUser)
	if isNotFound(err) {
		err = fmt.Errorf("%w: no user has that email", ErrNotFound)
	}
	return user, err
}

// List lists users, oldest first, one page at a time. With f.TenantID it lists
// that tenant's members in membership order (see Members.ListUsers).
func (u Users) List(ctx context.Context, f UserFilter) (_ Page[User], err error) {
	defer u.db.wrap(&err, "list users")
	if f.TenantID != "" {
		if err := requireID("tenant", f.TenantID); err != nil {
			return Page[User]{}, err
		}
		return listMemberUsers(ctx, u.db, f.TenantID, f)
	}
	conds, args, err := userConds(f, "u")
	if err != nil {
		return Page[User]{}, err
	}
	scanner := newUserScanner()
	return readPage(ctx, u.db,
		listing{selectFrom: "SELECT " + userColumns + " FROM users u", conds: conds, args: args, keyset: [2]string{"u.created_at", "u.id"}},
		ListOptions{Limit: f.Limit, Cursor: f.Cursor}, scanner.scan,
		func(u User) (time.Time, string) { return u.CreatedAt, u.ID })
}

// userConds turns a filter's status and admin fields into conditions on alias.
func userConds(f UserFilter, alias string) ([]string, []any, error) {
	var conds []string
	var args []any
	if f.Status != "" {
		if !f.Status.valid() {
			return nil, nil, fmt.Errorf("%w: status %q is not pending, active or suspended", ErrInvalidArgument, shorten(string(f.Status)))
		}
		conds = append(conds, alias+".user_status = ?")
		args = append(args, string(f.Status))
	}
	if f.IsAdmin != nil {
		conds = append(conds, alias+".is_admin = ?")
		args = append(args, *f.IsAdmin)
	}
	return conds, args, nil
}

// Count counts the users f selects (its Limit and Cursor are ignored). Without a
// tenant it reads the per-status counters that the database keeps up to date
// (triggers on users), so its cost does not grow with the number of users.
func (u Users) Count(ctx context.Context, f UserFilter) (_ int, err error) {
	defer u.db.wrap(&err, "count users")
	if f.TenantID != "" {
		if err := requireID("tenant", f.TenantID); err != nil {
			return 0, err
		}
		return countMemberUsers(ctx, u.db, f.TenantID, f)
	}
	conds, args, err := userConds(f, "c")
	if err != nil {
		return 0, err
	}
	if f.Status == "" {
		// A condition on the key's first column that every row meets: on
		// PostgreSQL a bulk insert of users in one transaction leaves the six
		// counter rows' dead versions over hundreds of pages that VACUUM cannot
		// give back, and a sequential scan reads them all; with it the planner
		// can use the primary key (5 buffers instead of 607 after 100k users in
		// one transaction). An IN list of the statuses did the same, but made
		// modernc's SQLite build a temporary table on every count (12x slower).
		conds = append([]string{"c.user_status > ''"}, conds...)
	}
	q := "SELECT COALESCE(SUM(c.n), 0) FROM user_counts c"
	for i, c := range conds {
		q += map[bool]string{true: " WHERE ", false: " AND "}[i == 0] + c
	}
	return scanCount(ctx, u.db, q, args...)
}

func scanCount(ctx context.Context, db *Database, query string, args ...any) (int, error) {
	row, err := db.queryRow(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	var n int64
	err = row.Scan(&n)
	return int(n), err
}

// Update changes a user's display name or tier.
func (u Users) Update(ctx context.Context, id string, change UserUpdate) (_ User, err error) {
	defer u.db.wrap(&err, "update user")
	if err := requireID("user", id); err != nil {
		return User{}, err
	}
	var sets []string
	var args []any
	if change.DisplayName != nil {
		name, err := cleanDisplayName(*change.DisplayName)
		if err != nil {
			return User{}, err
		}
		sets, args = append(sets, "display_name = ?"), append(args, sql.NullString{String: name, Valid: name != ""})
	}
	if change.Tier != nil {
		tier, err := checkTier("tier", *change.Tier, "", planTiers...)
		if err != nil || tier == "" {
			return User{}, errOr(err, fmt.Errorf("%w: tier is empty; use starter, professional or enterprise", ErrInvalidArgument))
		}
		sets, args = append(sets, "tier = ?"), append(args, string(tier))
	}
	if len(sets) == 0 {
		return readOne(ctx, u.db, "user", "SELECT "+userColumns+" FROM users u WHERE u.id = ?", []any{id}, scanUser)
	}
	return u.db.changeUser(ctx, id, sets, args, "", nil, nil)
}

// changeUser runs one UPDATE … RETURNING on user id: it sets sets (and
// updated_at) where cond holds. When no row changes it tells why: the user does
// not exist (ErrNotFound) or refuse(current row) says what stands in the way.
func (db *Database) changeUser(ctx context.Context, id string, sets []string, args []any, cond string, condArgs []any,
	refuse func(cur *userRow) error) (User, error) {
	q := "UPDATE users SET "
	for _, s := range sets {
		q += s + ", "
	}
	q += "updated_at = ? WHERE id = ?"
	all := append(append(args, at(db.now())), id)
	if cond != "" {
		q += " AND " + cond
		all = append(all, condArgs...)
	}
	row, err := db.writeRow(ctx, q+" RETURNING "+userReturned, all...)
	if err != nil {
		return User{}, err
	}
	user, err := scanUser(row)
	if !isNoRows(err) {
		return user, err
	}
	cur, err := db.currentUser(ctx, id)
	if err != nil {
		return User{}, err
	}
	if refuse != nil {
		if err := refuse(cur); err != nil {
			return User{}, err
		}
	}
	return User{}, fmt.Errorf("%w: the user changed meanwhile; try again", ErrConflict)
}

// currentUser reads a user row through the writer (or the caller's RunInTx
// transaction), which sees every committed write: the reader pool of SQLite
// may lag by a transaction.
func (db *Database) currentUser(ctx context.Context, id string) (*userRow, error) {
	var r userRow
	err := db.writer(ctx).NewSelect().Model(&r).Where("id = ?", id).Scan(ctx)
	if isNoRows(err) {
		return nil, notFound("user")
	}
	return &r, err
}

func validUserTier(t Tier) (Tier, error) { return checkTier("tier", t, TierStarter, planTiers...) }
