package pierredb

// Request counting in memory (WithUsageFlushInterval): a verification that
// counts takes a unit from a window kept in memory and returns; a timer writes
// what was taken to the database in one transaction per interval.

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/uptrace/bun"
)

// tallyIdle is how long a window nothing was counted in stays in memory. A
// window that was dropped is read again from the database by its next request.
const tallyIdle = time.Minute

// tallyFlushTimeout bounds one write of the pending counts (and the last one,
// at Close).
const tallyFlushTimeout = 30 * time.Second

// tally holds, for one Database, the windows of the credentials it counted
// recently and the requests it counted in them that the database does not hold
// yet. Within the process it is exact: a window's units are taken under one
// mutex, against the count the database had plus what this process took since.
type tally struct {
	db       *Database
	interval time.Duration

	mu      sync.Mutex
	windows map[tallyKey]*tallyWindow
	timer   *time.Timer // the next write, nil when none is due
	closed  bool

	flushing sync.Mutex // one write at a time
}

type tallyKey struct {
	table string // the counter table (usageTable.table)
	id    string // the credential
	start int64  // the window's start, Unix seconds
}

type tallyWindow struct {
	u        *usageTable
	tenantID string
	start    time.Time
	// base is the window's count in the database as last read or written
	// (its requests from every process up to then); pending is what this
	// process counted since and has not written yet.
	base, pending int64
	last          time.Time // when the last request was counted (the row's updated_at)
	synced        time.Time // when base was last read from the database
	used          time.Time // when a request last looked at the window
}

func newTally(db *Database, interval time.Duration) *tally {
	return &tally{db: db, interval: interval, windows: map[tallyKey]*tallyWindow{}}
}

// take counts one request in the window of credential id that starts at start,
// within limit, if the window is in memory and can answer: done false means
// that the request must be counted in the database (and the answer learnt).
// A window at its limit answers "refused" for one interval after its count was
// read; after that, a refusal is checked against the database, which may hold
// fewer requests than this process believes (a window edited by hand).
func (t *tally) take(u *usageTable, id string, start time.Time, limit int64) (n int64, ok, done bool) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.windows[tallyKey{u.table, id, start.Unix()}]
	if w == nil || t.closed {
		return 0, false, false
	}
	w.used = now
	if w.base+w.pending < limit {
		w.pending++
		w.last = t.db.now()
		t.schedule()
		return w.base + w.pending, true, true
	}
	if w.pending > 0 || now.Sub(w.synced) < t.interval {
		return 0, false, true
	}
	return 0, false, false
}

// pendingIn reports whether this process counted requests in the window of
// credential id that starts at start that the database does not hold yet.
func (t *tally) pendingIn(u *usageTable, id string, start time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.windows[tallyKey{u.table, id, start.Unix()}]
	return w != nil && w.pending > 0
}

// learn records what the database answered to a request counted there: the
// window's count after it (n), or ok false when the database refused it, which
// means that the window holds at least limit requests.
func (t *tally) learn(u *usageTable, tenantID, id string, start time.Time, limit, n int64, ok bool) {
	if !ok {
		n = limit
	}
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	key := tallyKey{u.table, id, start.Unix()}
	w := t.windows[key]
	if w == nil {
		w = &tallyWindow{u: u, tenantID: tenantID, start: start}
		t.windows[key] = w
	}
	// Counts in the database only grow within a window, so the larger of two
	// readings is the later one.
	w.base = max(w.base, n)
	w.synced, w.used = now, now
}

// schedule arranges the next write, one interval from now, unless one is due.
// t.mu is held.
func (t *tally) schedule() {
	if t.timer == nil && !t.closed {
		t.timer = time.AfterFunc(t.interval, t.flushLater)
	}
}

// flushLater is the timer's write. A failure keeps the counts for the next
// try, one interval later.
func (t *tally) flushLater() {
	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	if closed {
		return // Close writes what is left
	}
	ctx, cancel := context.WithTimeout(context.Background(), tallyFlushTimeout)
	defer cancel()
	if n, err := t.flush(ctx); err != nil {
		t.db.log.Warn("pierredb: could not write request counts; they stay in memory and are retried",
			"requests", n, "retry_in", t.interval.String(), "reason", t.db.classify(err).Error())
	}
}

// flush writes every pending count in one transaction and reads back each
// window's count, which includes what other processes wrote. On failure
// nothing is lost: the counts stay pending, and a write is scheduled. It
// returns how many requests it was to write.
func (t *tally) flush(ctx context.Context) (requests int64, err error) {
	t.flushing.Lock()
	defer t.flushing.Unlock()

	type item struct {
		key  tallyKey
		w    *tallyWindow
		n    int64
		last time.Time
	}
	var batch []item
	now := time.Now()
	t.mu.Lock()
	if t.timer != nil {
		t.timer.Stop()
		t.timer = nil
	}
	for key, w := range t.windows {
		switch {
		case w.pending > 0:
			batch = append(batch, item{key, w, w.pending, w.last})
			requests += w.pending
		case now.Sub(w.used) > tallyIdle:
			delete(t.windows, key)
		}
	}
	t.mu.Unlock()
	if len(batch) == 0 {
		return 0, nil
	}

	counts := make([]int64, len(batch))
	found := make([]bool, len(batch))
	err = t.db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		ctx = context.WithValue(ctx, txKey{t.db}, tx)
		for i, it := range batch {
			row, err := t.db.writeRow(ctx, it.w.u.addSQL, it.n, at(it.last), it.key.id, at(it.w.start))
			if err != nil {
				return err
			}
			switch err := row.Scan(&counts[i]); {
			case err == nil:
				found[i] = true
			case !isNoRows(err):
				return err
			}
		}
		return nil
	})

	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.schedule()
		return requests, fmt.Errorf("write %d request counts: %w", requests, err)
	}
	for i, it := range batch {
		it.w.pending -= it.n
		if !found[i] {
			// The credential was deleted (its windows went with it): nothing
			// to count against any more.
			if t.windows[it.key] == it.w {
				delete(t.windows, it.key)
			}
			continue
		}
		it.w.base = max(it.w.base+it.n, counts[i])
		it.w.synced = now
		if it.w.pending > 0 {
			t.schedule()
		}
	}
	return requests, nil
}

// close writes what is pending and stops counting in memory: later requests
// go to the database (and find it closed). It runs before the pools close.
func (t *tally) close() error {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), tallyFlushTimeout)
	defer cancel()
	n, err := t.flush(ctx)
	t.mu.Lock()
	if t.timer != nil {
		t.timer.Stop()
		t.timer = nil
	}
	t.mu.Unlock()
	if err != nil {
		return fmt.Errorf("pierredb: %d counted requests were not written at close: %w", n, t.db.classify(err))
	}
	return nil
}
