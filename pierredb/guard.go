package pierredb

import (
	"context"
	"fmt"
	"strings"

	"github.com/uptrace/bun"
)

// The invariants that more than one operation must keep, each written once. They
// run inside a write transaction; see the package doc (# Concurrency) for how
// they stay true when operations race.

// lockAdmins serialises the operations that count admins (bootstrap, revoking
// admin rights, deleting an admin) until tx ends, and returns how many admins
// there are. Each such operation locks only its own user's row, which would not
// stop another one on another admin: the named lock does (a no-op on SQLite,
// where write transactions are serial anyway). The count comes from the counters
// that triggers keep, so it does not grow with the number of users.
func lockAdmins(ctx context.Context, db *Database, tx bun.Tx) (int, error) {
	if err := db.eng.LockName(ctx, tx, "admins"); err != nil {
		return 0, err
	}
	var n int64
	// user_status > '' lets PostgreSQL use the primary key (see Users.Count).
	err := tx.QueryRowContext(ctx, "SELECT COALESCE(SUM(n), 0) FROM user_counts WHERE user_status > '' AND is_admin = ?", true).Scan(&n)
	return int(n), err
}

// anotherAdminRemains refuses a change that would leave the platform without an
// admin.
func anotherAdminRemains(ctx context.Context, db *Database, tx bun.Tx) error {
	n, err := lockAdmins(ctx, db, tx)
	if err != nil {
		return err
	}
	if n <= 1 {
		return fmt.Errorf("%w: this is the last admin; grant admin to another user first", ErrConflict)
	}
	return nil
}

// lockTenant locks tenant id's row until tx ends, so that membership changes of
// one tenant run one at a time (and against a concurrent delete of the tenant),
// and returns its primary owner. A tenant that does not exist (any more) is
// ErrNotFound.
func lockTenant(ctx context.Context, db *Database, tx bun.Tx, id string) (owner string, err error) {
	err = tx.QueryRowContext(ctx, "SELECT owner_user_id FROM tenants WHERE id = ?"+db.eng.ForUpdate(), id).Scan(&owner)
	if isNoRows(err) {
		return "", notFound("tenant")
	}
	return owner, err
}

// anotherOwnerRemains refuses a change that would leave tenant id without an
// owner. The tenant is locked (lockTenant) by the caller.
func anotherOwnerRemains(ctx context.Context, tx bun.Tx, tenantID string) error {
	var n int
	err := tx.QueryRowContext(ctx, "SELECT count(*) FROM tenant_users WHERE tenant_id = ? AND role = ?", tenantID, string(RoleOwner)).Scan(&n)
	if err != nil {
		return err
	}
	if n <= 1 {
		return fmt.Errorf("%w: a tenant keeps at least one owner; make another member an owner first", ErrConflict)
	}
	return nil
}

// soleOwnedTenants locks the tenants whose primary owner is userID and returns
// their ids when the user is their only member; a tenant with other members is
// ErrConflict. The members are counted by a statement after the lock, so a member
// added by a transaction that held the lock first is counted (PostgreSQL's READ
// COMMITTED gives each statement a new snapshot).
func soleOwnedTenants(ctx context.Context, db *Database, tx bun.Tx, userID string) ([]string, error) {
	var owned []struct {
		ID   string `bun:"id"`
		Slug string `bun:"slug"`
	}
	err := tx.NewRaw("SELECT id, slug FROM tenants WHERE owner_user_id = ? ORDER BY created_at, id"+db.eng.ForUpdate(), userID).Scan(ctx, &owned)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(owned))
	for _, t := range owned {
		var others int
		err := tx.QueryRowContext(ctx, "SELECT count(*) FROM tenant_users WHERE tenant_id = ? AND user_id <> ?", t.ID, userID).Scan(&others)
		if err != nil {
			return nil, err
		}
		if others > 0 {
			return nil, fmt.Errorf("%w: the user owns tenant %q, which has other members; transfer its ownership first", ErrConflict, t.Slug)
		}
		ids = append(ids, t.ID)
	}
	return ids, nil
}

// userExists fails with ErrNotFound when no user has id.
func userExists(ctx context.Context, tx bun.IDB, id, who string) error {
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM users WHERE id = ?", id).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%w: %s does not exist", ErrNotFound, who)
	}
	return nil
}

// checkTier returns t, or def when t is empty, when it is one of allowed.
func checkTier(what string, t, def Tier, allowed ...Tier) (Tier, error) {
	if t == "" {
		return def, nil
	}
	for _, a := range allowed {
		if t == a {
			return t, nil
		}
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	return "", fmt.Errorf("%w: %s %q is not one of %s", ErrInvalidArgument, what, shorten(string(t)), strings.Join(names, ", "))
}

// planTiers are the tiers of users and tenant plans; API keys add TierTrial.
var planTiers = []Tier{TierStarter, TierProfessional, TierEnterprise}
