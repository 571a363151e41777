package pierredb

// What API keys and A2A clients share: rate-limit windows, the exact usage
// counter, the throttled record of last use, the check of a hashed secret, and
// the redacting type in which a new secret is handed out.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb/internal/engine"
)

// ErrTenantInactive: the credential is right, but its tenant was deactivated
// (Tenants.Update with IsActive false); an admin must reactivate the tenant.
var ErrTenantInactive = errors.New("tenant is deactivated")

// RateLimitPeriod is the length of an API key's rate-limit window. Windows are
// aligned to calendar boundaries in UTC: an hour starts on the hour, a day at
// 00:00, a week on Monday at 00:00 (ISO 8601 weeks), a month at 00:00 on its
// first day. A quota is whole again when its window ends.
type RateLimitPeriod string

// The rate-limit periods; PeriodMonth is the default.
const (
	PeriodHour  RateLimitPeriod = "hour"
	PeriodDay   RateLimitPeriod = "day"
	PeriodWeek  RateLimitPeriod = "week"
	PeriodMonth RateLimitPeriod = "month"
)

func (p RateLimitPeriod) valid() bool {
	return p == PeriodHour || p == PeriodDay || p == PeriodWeek || p == PeriodMonth
}

// Window returns the window of period p that holds t: its start (inclusive) and
// end (exclusive), in UTC. An unknown period is treated as PeriodMonth.
func (p RateLimitPeriod) Window(t time.Time) (start, end time.Time) {
	t = t.UTC()
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	switch p {
	case PeriodHour:
		start = t.Truncate(time.Hour)
		return start, start.Add(time.Hour)
	case PeriodDay:
		return day, day.AddDate(0, 0, 1)
	case PeriodWeek:
		start = day.AddDate(0, 0, -((int(t.Weekday()) + 6) % 7)) // back to Monday
		return start, start.AddDate(0, 0, 7)
	default:
		start = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 1, 0)
	}
}

// fixedWindow returns the window of length d (whole seconds, at least one)
// that holds t, aligned to the Unix epoch: a one-hour window starts on the hour
// and a one-day window at 00:00 UTC.
func fixedWindow(d time.Duration, t time.Time) (start, end time.Time) {
	secs := int64(d / time.Second)
	if secs < 1 {
		secs = 1
	}
	u := t.Unix()
	s := u - ((u%secs)+secs)%secs
	start = time.Unix(s, 0).UTC()
	return start, start.Add(time.Duration(secs) * time.Second)
}

// UsageWindow is the number of requests a credential made in one rate-limit
// window.
type UsageWindow struct {
	// Start is when the window began (see RateLimitPeriod for the alignment).
	Start time.Time
	// Requests is how many requests were counted in the window: refused requests
	// (over the quota) are not counted.
	Requests int64
	// UpdatedAt is when the last request of the window was counted.
	UpdatedAt time.Time
}

// UsageOptions pages through a credential's usage windows, oldest first.
type UsageOptions struct {
	// Since keeps the windows that start at or after it; zero keeps all.
	Since time.Time
	// Limit is the page size: default 50, at most 1000.
	Limit int
	// Cursor continues a listing where the previous page ended (Page.Next).
	Cursor string
}

// maxRateLimit bounds an explicit limit: rate_limit_requests is a 32-bit
// INTEGER on PostgreSQL (a quota larger than this is RateLimit.Unlimited in all
// but name).
const maxRateLimit = 1<<31 - 1

// unlimited is the bound the counter is given for a credential without a
// limit: the same statement counts, and never refuses.
const unlimited = math.MaxInt64

// usageTable is a per-window counter table (api_key_usage, a2a_client_usage)
// and the credential table whose rows it counts.
type usageTable struct {
	what     string // "API key", "A2A client": for messages
	table    string // the counter table
	owner    string // its column naming the credential
	parent   string // the credential table
	parentID string // the credential table's key column
	total    bool   // the credential table keeps a running total (usage_count)
	// countSQL counts one request in a window unless the window's count has
	// reached the limit, in one statement: it inserts the window's row or adds
	// one to it, and returns the new count, or no row when the limit stood in
	// the way. The database's own row lock makes it exact under any
	// concurrency, across processes: two requests never both take the last unit.
	// It is a template: {one} is the engine's RelaxedCommitOne when the statement
	// runs on its own (Database.countSQL), and 1 inside a transaction, whose
	// commit it must not change.
	countSQL string
	// addSQL adds the requests counted in memory to a window's row, and returns
	// the window's count (no row when the row is gone). insertSQL writes them
	// as a new row, when aliveSQL (the credential's rows: 0 or 1) says that
	// the credential is still there.
	addSQL, insertSQL, aliveSQL string
	// touchSQL records the last use (and, where the credential keeps one, the
	// running total) unless another process recorded it within the interval.
	touchSQL string
	// existsSQL counts the credential's rows in a tenant (0 or 1).
	existsSQL string
}

func newUsageTable(what, table, owner, parent, parentID string, keepsTotal bool) *usageTable {
	u := &usageTable{what: what, table: table, owner: owner, parent: parent, parentID: parentID, total: keepsTotal}
	u.countSQL = "INSERT INTO " + table + " (tenant_id, " + owner + ", window_start, request_count, updated_at) VALUES (?, ?, ?, {one}, ?)" +
		" ON CONFLICT (" + owner + ", window_start) DO UPDATE SET request_count = " + table + ".request_count + 1, updated_at = excluded.updated_at" +
		" WHERE " + table + ".request_count < ? RETURNING request_count"
	u.addSQL = "UPDATE " + table + " SET request_count = request_count + ?, updated_at = ? WHERE " + owner + " = ? AND window_start = ? RETURNING request_count"
	u.insertSQL = "INSERT INTO " + table + " (tenant_id, " + owner + ", window_start, request_count, updated_at) VALUES (?, ?, ?, ?, ?)" +
		" ON CONFLICT (" + owner + ", window_start) DO UPDATE SET request_count = " + table + ".request_count + excluded.request_count, updated_at = excluded.updated_at" +
		" RETURNING request_count"
	u.aliveSQL = "SELECT count(*) FROM " + parent + " WHERE " + parentID + " = ?"
	set := "last_used_at = ?"
	if keepsTotal {
		// The total is recomputed from the windows (one probe of their primary
		// key per window the credential ever used), so it is exact as of the
		// write, costs no extra write per request, and loses nothing when a
		// process stops; the price is a sum over the credential's windows once
		// per interval.
		set += ", usage_count = (SELECT COALESCE(SUM(w.request_count), 0) FROM " + table + " w WHERE w." + owner + " = ?)"
	}
	u.touchSQL = "UPDATE " + parent + " SET " + set + " WHERE " + parentID + " = ? AND (last_used_at IS NULL OR last_used_at < ?)"
	u.existsSQL = "SELECT count(*) FROM " + parent + " WHERE tenant_id = ? AND " + parentID + " = ?"
	return u
}

// countStatements returns the counting statements of every usage table for an
// engine whose relaxed commit is relaxedOne: table -> [on its own, in a transaction].
func countStatements(relaxedOne string) map[string][2]string {
	m := map[string][2]string{}
	for _, u := range []*usageTable{apiKeyUsage, a2aUsage} {
		m[u.table] = [2]string{
			strings.Replace(u.countSQL, "{one}", relaxedOne, 1),
			strings.Replace(u.countSQL, "{one}", "1", 1),
		}
	}
	return m
}

// count counts one request of credential id (of tenant) in the window [start,
// end), within limit (unlimited for none). It returns the window's count after
// this request, or ok false when the quota was used up. Where the Database
// counts in memory (WithUsageFlushInterval), the window answers from memory
// once its count was read from the database; inside RunInTx the request is
// counted in the host's transaction, and goes or stays with it.
func (u *usageTable) count(ctx context.Context, db *Database, tenantID, id string, start, end time.Time, limit int64) (n int64, ok bool, err error) {
	if limit <= 0 { // a limit of zero (set by hand: the API refuses it) allows nothing
		return 0, false, nil
	}
	_, inTx := db.txFrom(ctx)
	loading := false
	if db.tally != nil && !inTx {
		for {
			n, ok, done, wait := db.tally.take(u, id, start, end, limit)
			if done {
				return n, ok, nil
			}
			if wait == nil {
				loading = true
				break
			}
			select {
			case <-wait:
			case <-ctx.Done():
				return 0, false, ctx.Err()
			}
		}
	}
	n, ok, err = u.countInDB(ctx, db, tenantID, id, start, limit, inTx)
	if loading {
		if err != nil {
			db.tally.abandon(u, id, start)
		} else {
			db.tally.learn(u, tenantID, id, start, limit, n, ok)
		}
	}
	return n, ok, err
}

// countInDB counts one request in the database with countSQL.
func (u *usageTable) countInDB(ctx context.Context, db *Database, tenantID, id string, start time.Time, limit int64, inTx bool) (n int64, ok bool, err error) {
	query := db.countSQL[u.table][0]
	if inTx {
		query = db.countSQL[u.table][1]
	}
	row, err := db.writeRow(ctx, query, tenantID, id, at(start), at(db.now()), limit)
	if err != nil {
		return 0, false, err
	}
	if err := row.Scan(&n); err != nil {
		switch {
		case isNoRows(err):
			return 0, false, nil
		case errors.Is(db.classify(err), ErrConflict):
			// The credential was deleted (or its user left the tenant) since it
			// was read: its counter row has nothing to point at.
			return 0, false, ErrInvalidCredential
		}
		return 0, false, err
	}
	return n, true, nil
}

// touch records that credential id was used at now, at most once per interval
// (WithLastActiveInterval, default one minute) per credential: skipped when
// this process wrote within the interval (the throttle that users' last_active
// uses, with ids kept apart by the table's name) or when another process did
// (the conditional UPDATE). A failure is not the request's: it is forgotten, so
// the next request tries again. window is the start of the credential's
// current rate-limit window.
func (u *usageTable) touch(ctx context.Context, db *Database, id string, window time.Time) {
	now := db.now()
	key := u.parent + ":" + id
	// Inside RunInTx the throttle is neither read nor marked: a rollback would
	// undo the write but not the mark, and the UPDATE's own condition throttles.
	if _, inTx := db.txFrom(ctx); !inTx && !db.lastActive.due(key, now) {
		return
	}
	if u.total && db.tally != nil && db.tally.pendingIn(u, id, window) {
		// The running total is summed from the windows in the database: write
		// the counts of the current window kept in memory first, so that it
		// includes them (at most once per interval per credential; an earlier
		// window's last second of counts waits for the next write). Inside
		// RunInTx the total lags instead: on SQLite the host's transaction
		// holds the one writer connection.
		if _, inTx := db.txFrom(ctx); !inTx {
			if _, err := db.tally.flush(ctx); err != nil {
				db.lastActive.forget(key)
				if ctxErr(err) == nil && !db.isClosed() {
					db.log.Warn("pierredb: could not write request counts; they stay in memory and are retried",
						"credential", u.what, "id", id, "reason", db.classify(err).Error())
				}
				return
			}
		}
	}
	args := []any{at(now), id, at(now.Add(-db.lastActive.interval))}
	if u.total {
		args = []any{at(now), id, id, at(now.Add(-db.lastActive.interval))}
	}
	if _, err := db.exec(ctx, u.touchSQL, args...); err != nil {
		db.lastActive.forget(key)
		if ctxErr(err) == nil && !errors.Is(err, ErrReadOnly) && !db.isClosed() {
			db.log.Warn("pierredb: could not record a credential's last use; the request went ahead",
				"credential", u.what, "id", id, "reason", db.classify(err).Error())
		}
	}
}

// forget drops credential id from the last-use throttle (after a delete).
func (u *usageTable) forget(db *Database, id string) { db.lastActive.forget(u.parent + ":" + id) }

// list pages through the usage windows of credential id in tenant, oldest
// first. A credential that is not the tenant's is ErrNotFound.
func (u *usageTable) list(ctx context.Context, db *Database, tenantID, id string, o UsageOptions) (Page[UsageWindow], error) {
	if db.tally != nil {
		// Counts still in memory are written first, so that a listing shows
		// every request this process counted. Not inside RunInTx: on SQLite
		// the host's transaction holds the one writer connection.
		if _, inTx := db.txFrom(ctx); !inTx {
			if _, err := db.tally.flush(ctx); err != nil {
				return Page[UsageWindow]{}, err
			}
		}
	}
	conds := []string{"w.tenant_id = ?", "w." + u.owner + " = ?"}
	args := []any{tenantID, id}
	if !o.Since.IsZero() {
		since, err := boundTime("since", o.Since)
		if err != nil {
			return Page[UsageWindow]{}, err
		}
		conds, args = append(conds, "w.window_start >= ?"), append(args, since)
	}
	var start, updated dbTime
	var n int64
	dest := []any{&start, &n, &updated}
	page, err := readPage(ctx, db,
		listing{selectFrom: "SELECT w.window_start, w.request_count, w.updated_at FROM " + u.table + " w",
			conds: conds, args: args, keyset: [2]string{"w.window_start", "w." + u.owner}},
		ListOptions{Limit: o.Limit, Cursor: o.Cursor},
		func(r rowScanner) (UsageWindow, error) {
			if err := r.Scan(dest...); err != nil {
				return UsageWindow{}, err
			}
			return UsageWindow{Start: start.Time, Requests: n, UpdatedAt: updated.Time}, nil
		},
		func(w UsageWindow) (time.Time, string) { return w.Start, id })
	if err == nil && len(page.Items) == 0 && o.Cursor == "" {
		err = u.exists(ctx, db, tenantID, id)
	}
	return page, err
}

// exists fails with ErrNotFound unless credential id belongs to tenant.
func (u *usageTable) exists(ctx context.Context, db *Database, tenantID, id string) error {
	n, err := scanCount(ctx, db, u.existsSQL, tenantID, id)
	if err == nil && n == 0 {
		err = notFound(u.what)
	}
	return err
}

var (
	apiKeyUsage = newUsageTable("API key", "api_key_usage", "api_key_id", "api_keys", "id", true)
	a2aUsage    = newUsageTable("A2A client", "a2a_client_usage", "client_id", "a2a_clients", "client_id", false)
)

// memberRowError explains a failed insert of a row that belongs to a member of
// tenant (an API key, an A2A client): a unique violation on its name is taken,
// and a foreign key violation means that the user is not a member, or that the
// tenant does not exist.
func (db *Database) memberRowError(ctx context.Context, err error, tenantID, taken string) error {
	err = db.classify(err)
	switch {
	case errors.Is(err, ErrAlreadyExists) && slices.Contains(engine.UniqueColumns(err), "name"):
		return db.reword(err, ErrAlreadyExists, taken)
	case errors.Is(err, ErrAlreadyExists): // a random id or prefix met another: odds of 2^-71 and less
		return db.reword(err, ErrAlreadyExists, "a generated identifier collided; try again")
	case errors.Is(err, ErrConflict):
		if terr := tenantExists(ctx, db, tenantID); terr != nil {
			return terr
		}
		return fmt.Errorf("%w: the user is not a member of this tenant; add the user first (%w)", ErrNotFound, err)
	}
	return err
}

// cleanDescription checks the description of a credential: optional, at most
// 1000 bytes, nothing hidden.
func cleanDescription(d string) (sql.NullString, error) {
	n, err := cleanName("description", strings.TrimSpace(d), 1000)
	return sql.NullString{String: n, Valid: n != ""}, err
}

// lookupCredential runs the prepared read that finds a credential at
// verification. A verification that counts in the database (a write per
// request) reads on the writer pool; a Check, and a verification counted in
// memory (WithUsageFlushInterval), on the reader pool. On SQLite the difference is measured: a reader
// connection drops its page cache whenever another connection has committed, so
// behind the counter's commits each lookup re-read its pages (about a quarter of
// a counting Verify, measured); the writer connection keeps its cache across its
// own commits. On PostgreSQL both are the same pool.
func (db *Database) lookupCredential(ctx context.Context, count bool, query string, args ...any) (*sql.Row, error) {
	if count && db.tally == nil {
		return db.writeRow(ctx, query, args...)
	}
	return db.queryRow(ctx, query, args...)
}

// Keyed-hash domains: the same secret hashes differently in each.
const (
	hashDomainAPIKey    = "api_key"
	hashDomainA2ASecret = "a2a_client_secret"
)

// matchSecret reports whether secret matches stored, a keyed hash in domain.
// When no row was found (found false) it computes a keyed hash all the same, so
// that an unknown credential costs what a wrong one does. A stored hash that
// cannot be used (malformed, or under a hashing key this keyring lacks) is a
// mismatch worth an operator's attention.
func (db *Database) matchSecret(ctx context.Context, domain, secret, stored string, found bool, what, id string) bool {
	if !found {
		_ = db.hashCredential(ctx, domain, []byte(secret))
		return false
	}
	ok, err := db.verifyCredential(ctx, domain, []byte(secret), stored)
	if err != nil {
		db.log.Warn("pierredb: stored credential hash is unusable", "credential", what, "id", id, "reason", err.Error())
		return false
	}
	return ok
}

// rehashSecret replaces a stored hash made under an older hashing key with one
// under the primary key, unless the stored hash changed meanwhile. It runs after
// a successful verification (the only moment the plaintext is at hand), so that
// an old hashing key can be retired once its credentials have been used. A
// failure is logged, never returned.
func (db *Database) rehashSecret(ctx context.Context, domain, secret, stored, table, idColumn, hashColumn, id string) {
	v, err := keyring.CredentialHashVersion(stored)
	if err != nil || v == db.keys.PrimaryVersion(keyring.PurposeHashing) {
		return
	}
	_, err = db.exec(ctx, "UPDATE "+table+" SET "+hashColumn+" = ? WHERE "+idColumn+" = ? AND "+hashColumn+" = ?",
		db.hashCredential(ctx, domain, []byte(secret)), id, stored)
	if err != nil && ctxErr(err) == nil {
		db.log.Warn("pierredb: could not rehash a credential under the primary hashing key; it still verifies",
			"table", table, "id", id, "reason", db.classify(err).Error())
	}
}

// holderError says why the holder of a matching credential may not use it: its
// user is pending or suspended, or its tenant is deactivated. A user who left
// the tenant has no credential there any more (the membership's foreign key
// deleted it).
func holderError(userStatus string, userActive, tenantActive bool) error {
	switch {
	case userStatus == string(StatusPending):
		return ErrUserPending
	case userStatus != string(StatusActive) || !userActive:
		return ErrUserSuspended
	case !tenantActive:
		return fmt.Errorf("%w; an admin must reactivate the tenant", ErrTenantInactive)
	}
	return nil
}

// CredentialSecret is a credential's plaintext (an API key, an A2A client
// secret), handed out once when it is made: pierre keeps only a keyed hash, so it
// cannot be shown again. It redacts itself everywhere it can be printed or
// serialised (every fmt verb, slog, JSON, encoding.TextMarshaler); Reveal is the
// one way to the value.
type CredentialSecret struct {
	// value is a func, not a string, so that reflection-based printers, which
	// cannot call the redacting methods of a value kept in a field, print an
	// address instead of the secret.
	value func() string
}

func newCredentialSecret(s string) CredentialSecret {
	return CredentialSecret{value: func() string { return s }}
}

// Reveal returns the plaintext, to hand to the credential's holder.
func (s CredentialSecret) Reveal() string {
	if s.value == nil {
		return ""
	}
	return s.value()
}

// IsZero reports a CredentialSecret that holds nothing.
func (s CredentialSecret) IsZero() bool { return s.value == nil }

// String returns "[REDACTED]" (or "[none]" for the zero value).
func (s CredentialSecret) String() string {
	if s.value == nil {
		return "[none]"
	}
	return "[REDACTED]"
}

// GoString is String, for %#v.
func (s CredentialSecret) GoString() string { return s.String() }

// Format prints String for every verb.
func (s CredentialSecret) Format(f fmt.State, verb rune) {
	out := s.String()
	if verb == 'q' {
		out = strconv.Quote(out)
	}
	_, _ = f.Write([]byte(out))
}

// LogValue implements slog.LogValuer with the redacted form.
func (s CredentialSecret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON encodes the redacted form as a JSON string.
func (s CredentialSecret) MarshalJSON() ([]byte, error) {
	return []byte(strconv.Quote(s.String())), nil
}

// MarshalText implements encoding.TextMarshaler with the redacted form.
func (s CredentialSecret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
