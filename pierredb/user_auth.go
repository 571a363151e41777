package pierredb

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pierre-mcp/pierre/pierredb/internal/password"
)

// hashNewPassword validates and hashes a new password, outside any transaction:
// a hash takes about 26 ms.
func (db *Database) hashNewPassword(ctx context.Context, pw string) (string, error) {
	h, err := db.hasher.Hash(ctx, pw)
	if err != nil {
		return "", passwordError(err)
	}
	return h, nil
}

// passwordError maps the password package's errors onto pierredb's, with a
// message that says what to do.
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

// SetPassword replaces a user's password without checking the old one (an admin
// reset). Use ChangePassword when the user changes their own.
func (u Users) SetPassword(ctx context.Context, id, newPassword string) (err error) {
	defer u.db.wrap(&err, "set password")
	if err := requireID("user", id); err != nil {
		return err
	}
	hash, err := u.db.hashNewPassword(ctx, newPassword)
	if err != nil {
		return err
	}
	n, err := rowsAffected(u.db.exec(ctx, "UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?", hash, at(u.db.now()), id))
	if err == nil && n == 0 {
		err = notFound("user")
	}
	return err
}

// ChangePassword replaces a user's password after checking the current one; a
// wrong current password returns ErrInvalidCredentials.
func (u Users) ChangePassword(ctx context.Context, id, current, newPassword string) (err error) {
	defer u.db.wrap(&err, "change password")
	if err := requireID("user", id); err != nil {
		return err
	}
	if err := password.ValidateNew(newPassword); err != nil {
		return passwordError(err)
	}
	row, err := u.db.queryRow(ctx, "SELECT password_hash FROM users WHERE id = ?", id)
	if err != nil {
		return err
	}
	var stored string
	if err := row.Scan(&stored); err != nil {
		return errOr(notFoundIfNoRows(err, "user"), err)
	}
	if _, err := u.db.hasher.Verify(ctx, current, stored); err != nil {
		if errors.Is(err, password.ErrMismatch) || errors.Is(err, password.ErrTooLong) {
			return ErrInvalidCredentials
		}
		return err
	}
	hash, err := u.db.hashNewPassword(ctx, newPassword)
	if err != nil {
		return err
	}
	// Compare-and-swap on the hash that was checked: a concurrent change wins.
	n, err := rowsAffected(u.db.exec(ctx, "UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ? AND password_hash = ?",
		hash, at(u.db.now()), id, stored))
	if err == nil && n == 0 {
		err = fmt.Errorf("%w: the password changed meanwhile; try again", ErrConflict)
	}
	return err
}

// Authenticate checks an email and password and returns the user. Every failure
// that could tell an attacker whether the email exists is ErrInvalidCredentials,
// and an unknown email costs as much as a real login. A right password on a
// pending or suspended account returns ErrUserPending or ErrUserSuspended. After a
// successful login a hash below the current policy (or an imported bcrypt hash) is
// replaced; if that fails, the login still succeeds.
func (db *Database) Authenticate(ctx context.Context, email, pw string) (_ User, err error) {
	defer db.wrap(&err, "authenticate")
	db.floorOnce.Do(func() { db.raisePasswordFloor(ctx) })
	e, err := normalizeEmail(email)
	if err != nil {
		_ = db.hasher.DummyVerify(ctx, pw)
		return User{}, ErrInvalidCredentials
	}
	row, err := db.queryRow(ctx, "SELECT "+userColumns+", u.password_hash FROM users u WHERE u.email = ?", e)
	if err != nil {
		return User{}, err
	}
	var stored string
	u, err := newUserScanner(&stored).scan(row)
	if isNoRows(err) {
		if err := db.hasher.DummyVerify(ctx, pw); ctxErr(err) != nil {
			return User{}, err
		}
		return User{}, ErrInvalidCredentials
	}
	if err != nil {
		return User{}, err
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

// bcryptVariants are the bcrypt prefixes an imported hash may start with; each
// is searched separately so that the cost digits compare in order.
var bcryptVariants = []string{"$2a$", "$2b$", "$2y$"}

// raisePasswordFloor finds the costliest kind of password hash the database still
// holds (a bcrypt import at cost 12 costs ten times an argon2id hash at policy)
// and makes every login, and every unknown email, cost as much: otherwise the
// time of a failed login would tell an imported account apart. Each variant is
// one probe of idx_users_hash_kind. It runs once, at the first login, so that
// Open does not pay for timing a hash; hashes imported later raise the floor as
// logins meet them.
func (db *Database) raisePasswordFloor(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	for _, v := range bcryptVariants {
		row, err := db.queryRow(ctx, "SELECT substr(password_hash, 1, 7) FROM users"+
			" WHERE substr(password_hash, 1, 7) >= ? AND substr(password_hash, 1, 7) < ?"+
			" ORDER BY substr(password_hash, 1, 7) DESC LIMIT 1", v, v[:3]+"%")
		var header string
		if err == nil {
			err = row.Scan(&header)
		}
		if isNoRows(err) {
			continue
		}
		if err == nil {
			_, err = db.hasher.RaiseFloor(ctx, header)
		}
		if err != nil {
			db.log.Warn("pierredb: could not read the costliest stored password hash; logins of imported accounts may take longer than others",
				"reason", db.classify(err).Error())
		}
	}
}

// rehash replaces a user's password hash with one at the current policy, unless
// the stored hash changed meanwhile. Failure is logged, never returned.
func (db *Database) rehash(ctx context.Context, id, pw, stored string) {
	hash, err := db.hasher.Hash(ctx, pw)
	if err == nil {
		_, err = db.exec(ctx, "UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ? AND password_hash = ?",
			hash, at(db.now()), id, stored)
	}
	if err != nil {
		db.log.Warn("pierredb: password rehash failed; the login went ahead", "user_id", id, "reason", db.classify(err).Error())
	}
}

// Touch records that a user was active now. Writes are throttled: within the
// interval of the previous write for that user (WithLastActiveInterval, default
// one minute) it does nothing, so a busy user does not write on every request.
func (u Users) Touch(ctx context.Context, id string) (err error) {
	defer u.db.wrap(&err, "touch user")
	if err := requireID("user", id); err != nil {
		return err
	}
	_, err = u.db.touch(ctx, id)
	return err
}

// touch writes last_active unless it was written within the interval, by this
// process (the in-memory throttle) or by another (the conditional UPDATE). It
// returns the time written, or zero when it skipped.
func (db *Database) touch(ctx context.Context, id string) (time.Time, error) {
	now := db.now()
	// Inside RunInTx the throttle is neither read nor marked: a rollback would
	// undo the write but not the mark, and the UPDATE's own condition throttles.
	if _, inTx := db.txFrom(ctx); !inTx && !db.lastActive.due(id, now) {
		return time.Time{}, nil
	}
	stamp := at(now)
	threshold := at(now.Add(-db.lastActive.interval))
	n, err := rowsAffected(db.exec(ctx, "UPDATE users SET last_active = ? WHERE id = ? AND (last_active IS NULL OR last_active < ?)",
		stamp, id, threshold))
	if err != nil {
		db.lastActive.forget(id)
		return time.Time{}, err
	}
	if n == 0 { // another instance wrote within the interval (or no such user)
		return time.Time{}, nil
	}
	return stamp.Time, nil
}

// maxThrottleEntries bounds the throttle's memory: past it, a generation ends
// early (at worst a user is written once more than needed).
const maxThrottleEntries = 1 << 20

// throttle remembers when recently written ids were last written. It keeps two
// generations of ids, each spanning one interval: an id written in the current
// or the previous generation within the interval is skipped. Each call is O(1),
// and memory holds at most the ids seen in two intervals (and at most twice
// maxThrottleEntries).
type throttle struct {
	interval time.Duration
	max      int // entries per generation; 0 means maxThrottleEntries

	mu       sync.Mutex
	start    time.Time // when the current generation began
	cur, old map[string]time.Time
}

// due reports whether id should be written at now, and if so records now.
func (t *throttle) due(id string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	limit := t.max
	if limit <= 0 {
		limit = maxThrottleEntries
	}
	if t.cur == nil || now.Sub(t.start) >= t.interval || len(t.cur) >= limit || now.Before(t.start) {
		// A new generation. Entries of the generation before last are older than
		// the interval and dropped whole.
		t.old, t.cur, t.start = t.cur, make(map[string]time.Time), now
	}
	last, ok := t.cur[id]
	if !ok {
		last, ok = t.old[id]
	}
	if ok && now.Sub(last) < t.interval && !now.Before(last) {
		return false
	}
	t.cur[id] = now
	return true
}

func (t *throttle) forget(id string) {
	t.mu.Lock()
	delete(t.cur, id)
	delete(t.old, id)
	t.mu.Unlock()
}

// size is how many ids the throttle holds.
func (t *throttle) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.cur) + len(t.old)
}
