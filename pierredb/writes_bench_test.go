package pierredb_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun/driver/sqliteshim"

	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/internal/password"
)

// The write benchmarks of BenchmarkScale (flat_bench_test.go). Each opens a
// second Database on the seeded world with a clock it moves forward, and the
// baseline runs on that Database's writer pool (on SQLite its single writer
// connection, with the same pragmas: WAL, synchronous=NORMAL).

// lastActiveInterval is the default throttle interval (WithLastActiveInterval).
const lastActiveInterval = time.Minute

// benchUserReturned is benchUserColumns without the alias, for RETURNING.
var benchUserReturned = strings.ReplaceAll(benchUserColumns, "u.", "")

func benchHasher() *password.Hasher { return password.NewHasher(password.Policy{}) }

func textStamp(t time.Time) string { return t.UTC().Truncate(time.Microsecond).Format(benchTimeLayout) }

// shuffled returns a shuffled copy of ids.
func shuffled(ids []string, seed uint64) []string {
	out := slices.Clone(ids)
	rand.New(rand.NewPCG(seed, 3)).Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func (w *world) benchWrite(b *testing.B) {
	clk := w.clk
	wdb := w.e.OpenURL(b, w.url, pierredb.WithClock(clk.now))
	writer := pierredb.EngineOf(wdb).Writer.DB
	users := wdb.Users()

	// Touch when due: every iteration writes a different user's last_active
	// (each run first moves the clock past the interval; past the last user it
	// moves it again).
	w.add("Write/Touch", func(b *testing.B) {
		ids := shuffled(w.users, 1)
		touch := func(b *testing.B, write func(ctx context.Context, id string) error) {
			clk.advance(2 * time.Hour)
			start := textStamp(clk.now())
			w.checkpoint(b, w.writer)
			meterCPU(b)
			ctx := b.Context()
			first, n := startAt(len(ids)), 0
			for b.Loop() {
				if n > 0 && n%len(ids) == 0 {
					clk.advance(2 * time.Hour)
				}
				if err := write(ctx, ids[(first+n)%len(ids)]); err != nil {
					b.Fatal(err)
				}
				n++
			}
			var written int
			if err := writer.QueryRowContext(ctx, rebindFor(w.backend, "SELECT count(*) FROM users WHERE last_active >= ?"), start).Scan(&written); err != nil {
				b.Fatal(err)
			}
			if written < min(n, len(ids)) {
				b.Fatalf("%d users written in %d touches, want %d", written, n, min(n, len(ids)))
			}
		}
		rawTouch := func(b *testing.B) func(ctx context.Context, id string) error {
			stmt := w.prepare(b, writer, "UPDATE users SET last_active = ? WHERE id = ? AND (last_active IS NULL OR last_active < ?)")
			return func(ctx context.Context, id string) error {
				now := clk.now()
				res, err := stmt.ExecContext(ctx, textStamp(now), id, textStamp(now.Add(-lastActiveInterval)))
				if n, err := rowsOf(res, err); err != nil || n != 1 {
					return fmt.Errorf("touch wrote %d rows: %v", n, err)
				}
				return nil
			}
		}
		b.Run("pierre", func(b *testing.B) { touch(b, users.Touch) })
		b.Run("raw-prepared", func(b *testing.B) { touch(b, rawTouch(b)) })
		// Both alternately, each on its own next user.
		b.Run("paired", func(b *testing.B) {
			raw := rawTouch(b)
			clk.advance(2 * time.Hour)
			w.checkpoint(b, w.writer)
			first, n := startAt(len(ids)), 0
			next := func() string {
				if n > 0 && n%len(ids) == 0 {
					clk.advance(2 * time.Hour)
				}
				n++
				return ids[(first+n)%len(ids)]
			}
			pairedWrites(b, func(ctx context.Context) error { return users.Touch(ctx, next()) },
				func(ctx context.Context) error { return raw(ctx, next()) })
		})
	})

	// Suspend then Reactivate an active user: two UPDATE … RETURNING a run.
	w.add("Write/SuspendReactivate", func(b *testing.B) {
		ids := w.active
		b.Run("pierre", func(b *testing.B) {
			w.cycle(b, ids, func(ctx context.Context, id string) error {
				if u, err := users.Suspend(ctx, id); err != nil || u.Status != pierredb.StatusSuspended {
					return fmt.Errorf("suspend: %v %v", u.Status, err)
				}
				if u, err := users.Reactivate(ctx, id); err != nil || u.Status != pierredb.StatusActive {
					return fmt.Errorf("reactivate: %v %v", u.Status, err)
				}
				return nil
			})
		})
		b.Run("raw-prepared", func(b *testing.B) {
			suspend := w.prepare(b, writer, "UPDATE users SET user_status = 'suspended', is_active = ?, updated_at = ?"+
				" WHERE id = ? AND user_status <> 'suspended' RETURNING "+benchUserReturned)
			reactivate := w.prepare(b, writer, "UPDATE users SET user_status = CASE WHEN approved_at IS NULL THEN 'pending' ELSE 'active' END,"+
				" is_active = ?, updated_at = ? WHERE id = ? AND user_status = 'suspended' RETURNING "+benchUserReturned)
			w.cycle(b, ids, func(ctx context.Context, id string) error {
				var u rawUser
				if err := returning(ctx, suspend, u.dest(w.backend), false, textStamp(clk.now()), id); err != nil || u.Status != "suspended" {
					return fmt.Errorf("suspend: %v %v", u.Status, err)
				}
				if err := returning(ctx, reactivate, u.dest(w.backend), true, textStamp(clk.now()), id); err != nil || u.Status != "active" {
					return fmt.Errorf("reactivate: %v %v", u.Status, err)
				}
				return nil
			})
		})
	})

	// Approve a pending user (by a service); past the last pending user they are
	// all set back to pending, outside the timer.
	w.add("Write/Approve", func(b *testing.B) {
		const service = "bench-approve"
		reset := func(b *testing.B) {
			// Not b.Context(): it is cancelled before the cleanup that resets.
			_, err := writer.ExecContext(context.Background(), rebindFor(w.backend, "UPDATE users SET user_status = 'pending',"+
				" approved_by = NULL, approved_by_service = NULL, approved_at = NULL WHERE approved_by_service = ?"), service)
			if err != nil {
				b.Fatal(err)
			}
		}
		approve := func(b *testing.B, write func(ctx context.Context, id string) error) {
			reset(b)
			b.Cleanup(func() { reset(b) })
			w.checkpoint(b, w.writer)
			cpu := meterCPU(b)
			ctx := b.Context()
			i := 0
			for b.Loop() {
				if i == len(w.pending) {
					b.StopTimer()
					cpu.pause()
					reset(b)
					i = 0
					cpu.resume()
					b.StartTimer()
				}
				if err := write(ctx, w.pending[i]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		}
		b.Run("pierre", func(b *testing.B) {
			approve(b, func(ctx context.Context, id string) error {
				u, err := users.Approve(ctx, id, pierredb.ByService(service))
				if err == nil && u.Status != pierredb.StatusActive {
					err = fmt.Errorf("status %s", u.Status)
				}
				return err
			})
		})
		b.Run("raw-prepared", func(b *testing.B) {
			stmt := w.prepare(b, writer, "UPDATE users SET user_status = 'active', approved_by = ?, approved_by_service = ?, approved_at = ?,"+
				" updated_at = ? WHERE id = ? AND user_status = 'pending' RETURNING "+benchUserReturned)
			approve(b, func(ctx context.Context, id string) error {
				var u rawUser
				now := textStamp(clk.now())
				err := returning(ctx, stmt, u.dest(w.backend), sql.NullString{}, service, now, now, id)
				if err == nil && u.Status != "active" {
					err = fmt.Errorf("status %s", u.Status)
				}
				return err
			})
		})
	})

	// Change a display name: one UPDATE … RETURNING.
	w.add("Write/UpdateName", func(b *testing.B) {
		names := []string{"Renamed A", "Renamed B"}
		b.Run("pierre", func(b *testing.B) {
			w.cycle(b, w.active, func(ctx context.Context, id string) error {
				_, err := users.Update(ctx, id, pierredb.UserUpdate{DisplayName: &names[len(id)%2]})
				return err
			})
		})
		b.Run("raw-prepared", func(b *testing.B) {
			stmt := w.prepare(b, writer, "UPDATE users SET display_name = ?, updated_at = ? WHERE id = ? RETURNING "+benchUserReturned)
			w.cycle(b, w.active, func(ctx context.Context, id string) error {
				var u rawUser
				return returning(ctx, stmt, u.dest(w.backend), names[len(id)%2], textStamp(clk.now()), id)
			})
		})
	})

	// Insert a user, the password hash computed beforehand: what Users.Create
	// does after hashing (validation, then one prepared INSERT that also decides
	// auto-approval from the stored setting), against a prepared INSERT of the
	// same row.
	w.add("Write/InsertUser", func(b *testing.B) {
		b.Run("pierre", func(b *testing.B) {
			w.checkpoint(b, w.writer)
			meterCPU(b)
			ctx := b.Context()
			for b.Loop() {
				u, err := pierredb.InsertUserWithHash(ctx, wdb, pierredb.NewUser{Email: benchEmail("ins"), DisplayName: "Bench User"}, w.hash)
				if err != nil || u.Status != pierredb.StatusPending {
					b.Fatalf("%v %v", u.Status, err)
				}
			}
		})
		rawInsert := func(b *testing.B) func(ctx context.Context) error {
			stmt := w.prepare(b, writer, "INSERT INTO users (id, email, display_name, password_hash, tier, tenant_id,"+
				" is_active, is_admin, user_status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
			return func(ctx context.Context) error {
				now := textStamp(clk.now())
				_, err := stmt.ExecContext(ctx, uuid.Must(uuid.NewV7()).String(), benchEmail("ins"), "Bench User", w.hash, "starter",
					sql.NullString{}, true, false, "pending", now, now)
				return err
			}
		}
		b.Run("raw-prepared", func(b *testing.B) {
			insert := rawInsert(b)
			w.checkpoint(b, w.writer)
			meterCPU(b)
			ctx := b.Context()
			for b.Loop() {
				if err := insert(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("paired", func(b *testing.B) {
			raw := rawInsert(b)
			w.checkpoint(b, w.writer)
			pairedWrites(b, func(ctx context.Context) error {
				u, err := pierredb.InsertUserWithHash(ctx, wdb, pierredb.NewUser{Email: benchEmail("ins"), DisplayName: "Bench User"}, w.hash)
				if err == nil && u.Status != pierredb.StatusPending {
					err = fmt.Errorf("status %s", u.Status)
				}
				return err
			}, raw)
		})
	})

	// Create a user through the public API, argon2id included, and the hash
	// alone: the hash's share of Create.
	w.add("Write/CreateUser", func(b *testing.B) {
		b.Run("total", func(b *testing.B) {
			w.checkpoint(b, w.writer)
			meterCPU(b)
			for b.Loop() {
				if _, err := users.Create(b.Context(), pierredb.NewUser{Email: benchEmail("create"), Password: benchPassword}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("hash", func(b *testing.B) {
			h := benchHasher()
			meterCPU(b)
			for b.Loop() {
				if _, err := h.Hash(b.Context(), benchPassword); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// returning runs a write with RETURNING and scans its one row, then steps the
// statement to its end before closing it, as a careful hand-written caller
// does: SQLite runs its WAL hook (the autocheckpoint) only when a statement
// steps to SQLITE_DONE, so a statement that is reset after its first row, as
// QueryRow's Scan does, commits without ever checkpointing and the WAL grows
// without bound.
func returning(ctx context.Context, stmt *sql.Stmt, dest []any, args ...any) error {
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	for rows.Next() {
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return rows.Close()
}

// checkpoint empties SQLite's WAL (outside the timer), so that each side of a
// write benchmark starts from the same WAL, whatever the side before it left.
func (w *world) checkpoint(b *testing.B, pool *sql.DB) {
	if w.backend != pierredb.SQLite {
		return
	}
	b.StopTimer()
	defer b.StartTimer()
	var busy, log, done int
	if err := pool.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &log, &done); err != nil {
		b.Fatal(err)
	}
}

// alternate runs two operations alternately, one of each an iteration (which
// goes first alternates), each timed, and reports their medians (<names[0]>-ns,
// <names[1]>-ns) and the first's over the second's (ratio): both meet the same
// load and the same moment of the database's life (its WAL, its checkpoints,
// the server's flushes), which sides run one after the other do not. i is the
// iteration.
func alternate(b *testing.B, names [2]string, first, second func(ctx context.Context, i int) error) {
	ctx := b.Context()
	var d [2][]time.Duration
	ops := [2]func(context.Context, int) error{first, second}
	timed := func(k, i int) {
		start := time.Now()
		if err := ops[k](ctx, i); err != nil {
			b.Fatal(err)
		}
		d[k] = append(d[k], time.Since(start))
	}
	i := 0
	for b.Loop() {
		timed(i%2, i)
		timed(1-i%2, i)
		i++
	}
	var med [2]time.Duration
	for k := range d {
		slices.Sort(d[k])
		med[k] = d[k][len(d[k])/2]
		b.ReportMetric(float64(med[k].Nanoseconds()), names[k]+"-ns")
	}
	b.ReportMetric(float64(med[0])/float64(med[1]), "ratio")
}

// pairedWrites is alternate for pierre's write and the baseline's.
func pairedWrites(b *testing.B, pierre, raw func(ctx context.Context) error) {
	alternate(b, [2]string{"pierre", "raw"},
		func(ctx context.Context, _ int) error { return pierre(ctx) },
		func(ctx context.Context, _ int) error { return raw(ctx) })
}

// cycle runs write on ids in turn, one id an iteration.
func (w *world) cycle(b *testing.B, ids []string, write func(ctx context.Context, id string) error) {
	w.checkpoint(b, w.writer)
	meterCPU(b)
	ctx := b.Context()
	i := startAt(len(ids))
	for b.Loop() {
		if err := write(ctx, ids[i%len(ids)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func rowsOf(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

var throttleFakes = sync.OnceValue(func() []string {
	out := make([]string, 1_001_000)
	for i := range out {
		out[i] = fmt.Sprintf("seen-%08d-0000-7000-8000-000000000000", i)
	}
	return out
})

// benchThrottle: Touch with 0, 100k and 1M other user ids seen within the
// interval. "due" touches a user not seen yet (the throttle records it, then the
// UPDATE writes it); "skip" touches one seen just before (no query). The
// throttle is filled through an export hook, as Touch would fill it, but
// without a million writes.
func (w *world) benchThrottle(b *testing.B) {
	clk := w.clk
	tdb := w.e.OpenURL(b, w.url, pierredb.WithClock(clk.now))
	fakes := throttleFakes()
	// reset empties the throttle (two generations end) and fills it with seen ids.
	reset := func(b *testing.B, seen int) {
		clk.advance(2 * time.Hour)
		pierredb.ThrottleSee(tdb, "reset-a", clk.now())
		clk.advance(2 * time.Hour)
		pierredb.ThrottleSee(tdb, "reset-b", clk.now())
		now := clk.now()
		for _, id := range fakes[:seen] {
			pierredb.ThrottleSee(tdb, id, now)
		}
		runtime.GC()
		if got := pierredb.ThrottleSize(tdb); got != seen+2 {
			b.Fatalf("throttle holds %d ids, want %d", got, seen+2)
		}
	}
	ids := shuffled(w.users, 2)
	users := tdb.Users()
	const hot = 1000
	for _, seen := range []int{0, 100_000, 1_000_000} {
		label := fmt.Sprintf("seen-%s", sizeLabel(seen))
		w.add("Throttle/due/"+label, func(b *testing.B) {
			reset(b, seen)
			w.checkpoint(b, w.writer)
			// Stay well below the throttle's own bound (2^20 ids a generation).
			limit := min(len(ids), 40_000)
			cpu := meterCPU(b)
			ctx := b.Context()
			i := 0
			for b.Loop() {
				if i == limit {
					b.StopTimer()
					cpu.pause()
					reset(b, seen)
					i = 0
					cpu.resume()
					b.StartTimer()
				}
				if err := users.Touch(ctx, ids[i]); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(pierredb.ThrottleSize(tdb)), "ids-held")
		})
		w.add("Throttle/skip/"+label, func(b *testing.B) {
			reset(b, seen)
			now := clk.now()
			hotIDs := fakes[len(fakes)-hot:]
			for _, id := range hotIDs {
				pierredb.ThrottleSee(tdb, id, now)
			}
			meterCPU(b)
			ctx := b.Context()
			i := 0
			for b.Loop() {
				if err := users.Touch(ctx, hotIDs[i%hot]); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(pierredb.ThrottleSize(tdb)), "ids-held")
		})
	}
}

func sizeLabel(n int) string {
	switch {
	case n == 0:
		return "0"
	case n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	default:
		return sizeName(n)
	}
}

// benchThroughput: 8 goroutines (SetParallelism(4) on 2 CPUs) write
// last_active as fast as they can, each write for a user not written in the
// interval; reports writes/s and the latency of one write (p50, p99).
func (w *world) benchThroughput(b *testing.B) {
	clk := w.clk
	tdb := w.e.OpenURL(b, w.url, pierredb.WithClock(clk.now))
	writer := pierredb.EngineOf(tdb).Writer.DB
	ids := shuffled(w.users, 3)
	run := func(b *testing.B, write func(ctx context.Context, id string) error) {
		clk.advance(2 * time.Hour)
		base := clk.offset.Load()
		var next atomic.Int64
		// pick hands out each id once per epoch; a new epoch moves the clock past
		// the interval, so that every id is due again.
		pick := func() string {
			k := int(next.Add(1) - 1)
			epoch := int64(k / len(ids))
			for {
				cur := clk.offset.Load()
				want := base + epoch*int64(2*time.Hour)
				if cur >= want || clk.offset.CompareAndSwap(cur, want) {
					break
				}
			}
			return ids[k%len(ids)]
		}
		var mu sync.Mutex
		var lat []time.Duration
		var failed atomic.Value
		w.checkpoint(b, w.writer)
		b.SetParallelism(4)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			local := make([]time.Duration, 0, 4096)
			for pb.Next() {
				id := pick()
				t0 := time.Now()
				if err := write(ctx, id); err != nil {
					failed.Store(err)
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		})
		b.StopTimer()
		if err, _ := failed.Load().(error); err != nil {
			b.Fatal(err)
		}
		slices.Sort(lat)
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	}
	w.add("Throughput", func(b *testing.B) {
		b.Run("pierre", func(b *testing.B) {
			users := tdb.Users()
			run(b, users.Touch)
		})
		b.Run("raw-prepared", func(b *testing.B) {
			stmt := w.prepare(b, writer, "UPDATE users SET last_active = ? WHERE id = ? AND (last_active IS NULL OR last_active < ?)")
			run(b, func(ctx context.Context, id string) error {
				now := clk.now()
				_, err := stmt.ExecContext(ctx, textStamp(now), id, textStamp(now.Add(-lastActiveInterval)))
				return err
			})
		})
	})
}

// benchConnSpeed runs one prepared lookup by email on six separate connections
// to the same SQLite file, each its own pool of one: with modernc, a connection
// runs it at one of two speeds, which it keeps for its whole life.
func (w *world) benchConnSpeed(b *testing.B) {
	if w.backend != pierredb.SQLite {
		return
	}
	path := strings.TrimPrefix(w.url, "sqlite:")
	for k := range 6 {
		pool, err := sql.Open(sqliteshim.ShimName, "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)&_busy_timeout=5000")
		if err != nil {
			b.Fatal(err)
		}
		pool.SetMaxOpenConns(1)
		b.Cleanup(func() { _ = pool.Close() })
		stmt := w.prepare(b, pool, "SELECT "+benchUserColumns+" FROM users u WHERE u.email = ?")
		w.add(fmt.Sprintf("ConnSpeed/conn%d", k+1), func(b *testing.B) {
			w.rawOne(b, func(ctx context.Context, i int) error {
				var u rawUser
				return stmt.QueryRowContext(ctx, w.emails[i%len(w.emails)]).Scan(u.dest(w.backend)...)
			})
		})
	}
}
