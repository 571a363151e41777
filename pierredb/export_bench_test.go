package pierredb

import (
	"context"
	"time"
)

// Hooks for the benchmarks and the boundedness tests (package pierredb_test).

// InsertUserWithHash is Users.Create without the password hash: it validates nu
// as Create does, then runs Create's insert (one prepared statement that also
// decides auto-approval) with hash as the stored password hash.
func InsertUserWithHash(ctx context.Context, db *Database, nu NewUser, hash string) (_ User, err error) {
	defer db.wrap(&err, "create user")
	row, err := db.userRowFor(nu, hash)
	if err != nil {
		return User{}, err
	}
	if err := db.insertUser(ctx, nil, &row); err != nil {
		return User{}, err
	}
	return row.user(), nil
}

// ThrottleSee records id in db's last_active throttle as seen at now, as a
// write of last_active would, and reports whether a write would have been due.
// It runs no query: the benchmarks fill the throttle with it.
func ThrottleSee(db *Database, id string, now time.Time) bool { return db.lastActive.due(id, now) }

// FetchSizeCount is how many distinct LIMITs a listing query is prepared with
// (len(fetchSizes)).
func FetchSizeCount() int { return len(fetchSizes) }
