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
	sweepAt int // the number of windows past which learn drops stale ones

	flushing chan struct{} // holds a token while a write runs: one at a time
}

type tallyKey struct {
	table string // the counter table (usageTable.table)
	id    string // the credential
	start int64  // the window's start, Unix seconds
}

type tallyWindow struct {
	u          *usageTable
	tenantID   string
	start, end time.Time
	// loading is closed when the request that reads the window's count from
	// the database is done: until then the window answers nobody, so that no
	// request counts in memory on top of a count still being read.
	loading chan struct{}
	// base is the window's count in the database as last read or written
	// (its requests from every process up to then); pending is what this
	// process counted since and has not written yet.
	base, pending int64
	last          time.Time // when the last request was counted (the row's updated_at)
	synced        time.Time // when base was last read from the database
	used          time.Time // when a request last looked at the window
}

// tallySweepFloor is how many windows the tally holds before learn first drops
// stale ones (then twice as many as it kept, so that sweeping stays O(1) per
// request on average).
const tallySweepFloor = 1024

func newTally(db *Database, interval time.Duration) *tally {
	return &tally{db: db, interval: interval, windows: map[tallyKey]*tallyWindow{},
		sweepAt: tallySweepFloor, flushing: make(chan struct{}, 1)}
}

// take counts one request in the window [start, end) of credential id, within
// limit, if the window is in memory and can answer (done true). Otherwise:
//
//   - wait not nil: another request is reading the window's count from the
//     database; wait for it, then take again;
//   - wait nil: this request must count in the database, then report the
//     answer with learn (or drop with abandon); until it does, the window
//     answers nobody.
//
// A window at its limit answers "refused" for one interval after its count was
// read; after that, a refusal is read again from the database, which may hold
// fewer requests than this process believes (a window edited by hand).
func (t *tally) take(u *usageTable, id string, start, end time.Time, limit int64) (n int64, ok, done bool, wait <-chan struct{}) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return 0, false, false, nil
	}
	key := tallyKey{u.table, id, start.Unix()}
	w := t.windows[key]
	switch {
	case w == nil:
		t.windows[key] = &tallyWindow{u: u, start: start, end: end, loading: make(chan struct{}), used: now}
		return 0, false, false, nil
	case w.loading != nil:
		return 0, false, false, w.loading
	}
	w.used = now
	if w.base+w.pending < limit {
		w.pending++
		w.last = t.db.now()
		t.schedule()
		return w.base + w.pending, true, true, nil
	}
	if w.pending > 0 || now.Sub(w.synced) < t.interval {
		return 0, false, true, nil
	}
	w.loading = make(chan struct{}) // read the count again
	return 0, false, false, nil
}

// learn records what the database answered to the request that take sent
// there: the window's count after it (n), or ok false when the database
// refused it, which means that the window holds at least limit requests. No
// request counted in memory meanwhile (the window was loading), so n is the
// whole count.
func (t *tally) learn(u *usageTable, tenantID, id string, start time.Time, limit, n int64, ok bool) {
	if !ok {
		n = limit
	}
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.windows[tallyKey{u.table, id, start.Unix()}]
	if w == nil || w.loading == nil {
		return
	}
	w.tenantID, w.base, w.synced, w.used = tenantID, n, now, now
	close(w.loading)
	w.loading = nil
	if len(t.windows) > t.sweepAt {
		t.sweep(now)
		t.sweepAt = max(tallySweepFloor, 2*len(t.windows))
	}
}

// pendingIn reports whether this process counted requests in the window of
// credential id that starts at start that the database does not hold yet.
func (t *tally) pendingIn(u *usageTable, id string, start time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.windows[tallyKey{u.table, id, start.Unix()}]
	return w != nil && w.pending > 0
}

// abandon gives up the window that take sent to the database, when counting
// there failed: the next request reads it again.
func (t *tally) abandon(u *usageTable, id string, start time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	key := tallyKey{u.table, id, start.Unix()}
	w := t.windows[key]
	if w == nil || w.loading == nil {
		return
	}
	close(w.loading)
	w.loading = nil
	if w.pending == 0 {
		delete(t.windows, key)
	}
}

// sweep drops the windows with nothing pending that ended, or that nothing
// was counted in for tallyIdle. t.mu is held.
func (t *tally) sweep(now time.Time) {
	clock := t.db.now() // windows are in the store's time (WithClock)
	for key, w := range t.windows {
		if w.pending == 0 && w.loading == nil && (!clock.Before(w.end) || now.Sub(w.used) > tallyIdle) {
			delete(t.windows, key)
		}
	}
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
	select {
	case t.flushing <- struct{}{}:
		defer func() { <-t.flushing }()
	case <-ctx.Done():
		return 0, ctx.Err()
	}

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
	t.sweep(now)
	for key, w := range t.windows {
		if w.pending > 0 {
			batch = append(batch, item{key, w, w.pending, w.last})
			requests += w.pending
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
			u := it.w.u
			row, err := t.db.writeRow(ctx, u.addSQL, it.n, at(it.last), it.key.id, at(it.w.start))
			if err != nil {
				return err
			}
			switch err := row.Scan(&counts[i]); {
			case err == nil:
				found[i] = true
				continue
			case !isNoRows(err):
				return err
			}
			// No row for the window: the credential was deleted (its windows
			// went with it), or the row was (by hand). Write it back if the
			// credential is still there.
			alive, err := scanCount(ctx, t.db, u.aliveSQL, it.key.id)
			if err != nil || alive == 0 {
				if err != nil {
					return err
				}
				continue
			}
			row, err = t.db.writeRow(ctx, u.insertSQL, it.w.tenantID, it.key.id, at(it.w.start), it.n, at(it.last))
			if err != nil {
				return err
			}
			if err := row.Scan(&counts[i]); err != nil {
				return err
			}
			found[i] = true
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
			// The credential was deleted: nothing to count against any more.
			if t.windows[it.key] == it.w && it.w.loading == nil {
				delete(t.windows, it.key)
			}
			continue
		}
		// counts[i] holds this batch's requests and every other process's.
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
