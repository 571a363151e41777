package manage_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/driver/sqliteshim"

	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/manage"
)

// benchUsers is the size of the backup benchmark's database.
const benchUsers = 100_000

// benchDB is a SQLite database of benchUsers users (half pending), made once
// per process with raw inserts that share one argon2 hash.
var benchDB struct {
	once    sync.Once
	dir     string
	path    string
	key     keyring.MasterKey
	pending []string // ids of pending users, for the writer to approve
	mu      sync.Mutex
	next    int // the next of pending to approve
	err     error
}

func seedBench(b *testing.B) {
	b.Helper()
	benchDB.once.Do(func() {
		ctx := context.Background()
		dir, err := os.MkdirTemp("", "manage-bench")
		if err != nil {
			benchDB.err = err
			return
		}
		benchDB.dir, benchDB.path = dir, filepath.Join(dir, "users.db")
		benchDB.key, _ = keyring.Generate()
		db, err := pierredb.Open("sqlite:"+benchDB.path, benchDB.key)
		if err != nil {
			benchDB.err = err
			return
		}
		defer db.Close()
		tmpl, err := db.Users().Create(ctx, pierredb.NewUser{Email: "template@example.com", Password: "correct horse battery"})
		if err != nil {
			benchDB.err = err
			return
		}
		start := time.Now()
		var hash, created string
		if err := db.Bun().QueryRowContext(ctx, "SELECT password_hash, created_at FROM users WHERE id = ?", tmpl.ID).Scan(&hash, &created); err != nil {
			benchDB.err = err
			return
		}
		const perStmt = 200 // 9 values a row, well under SQLite's bound-value limit
		row := "(?, ?, ?, 'starter', 1, 0, ?, ?, ?)"
		query := "INSERT INTO users (id, email, password_hash, tier, is_active, is_admin, user_status, created_at, updated_at) VALUES " +
			strings.Repeat(row+", ", perStmt-1) + row
		benchDB.err = db.Bun().RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			stmt, err := tx.PrepareContext(ctx, query)
			if err != nil {
				return err
			}
			defer stmt.Close()
			args := make([]any, 0, perStmt*6)
			for i := range benchUsers {
				id := uuid.Must(uuid.NewV7()).String()
				status := "active"
				if i%2 == 0 {
					status = "pending"
					benchDB.pending = append(benchDB.pending, id)
				}
				args = append(args, id, fmt.Sprintf("user%06d@example.com", i), hash, status, created, created)
				if len(args) == cap(args) {
					if _, err := stmt.ExecContext(ctx, args...); err != nil {
						return err
					}
					args = args[:0]
				}
			}
			return nil
		})
		if benchDB.err == nil {
			fmt.Fprintf(os.Stderr, "seeded %d users in %s\n", benchUsers, time.Since(start).Round(time.Millisecond))
		}
	})
	if benchDB.err != nil {
		b.Fatal(benchDB.err)
	}
}

type benchConnector struct{ dsn string }

func (c benchConnector) Connect(context.Context) (driver.Conn, error) {
	return sqliteshim.Driver().Open(c.dsn)
}
func (c benchConnector) Driver() driver.Driver { return sqliteshim.Driver() }

// BenchmarkBackup backs up the 100k-user database: manage.Backup (VACUUM INTO
// through a read-only connection, fsync, integrity check, atomic rename) beside
// a bare VACUUM INTO on a plain database/sql connection (the baseline).
func BenchmarkBackup(b *testing.B) {
	seedBench(b)
	ctx := context.Background()
	env := manage.Env{Stdout: io.Discard, Stderr: io.Discard, Getenv: func(k string) string {
		if k == pierredb.EnvDatabaseURL {
			return "sqlite:" + benchDB.path
		}
		return ""
	}}
	b.Run("manage.Backup", func(b *testing.B) {
		var size int64
		for b.Loop() {
			dest := filepath.Join(benchDB.dir, "backup-"+uuid.NewString()+".db")
			res, err := manage.Backup(ctx, env, dest)
			if err != nil {
				b.Fatal(err)
			}
			size = res.Size
			_ = os.Remove(dest)
		}
		b.ReportMetric(float64(size)/(1<<20), "MiB")
	})
	b.Run("raw-VACUUM-INTO", func(b *testing.B) {
		raw := sql.OpenDB(benchConnector{dsn: "file:" + benchDB.path + "?mode=ro"})
		defer raw.Close()
		raw.SetMaxOpenConns(1)
		for b.Loop() {
			dest := filepath.Join(benchDB.dir, "raw-"+uuid.NewString()+".db")
			if _, err := raw.ExecContext(ctx, "VACUUM INTO ?", dest); err != nil {
				b.Fatal(err)
			}
			_ = os.Remove(dest)
		}
	})
}

// BenchmarkWriteLatencyDuringBackup measures what a server sees while a
// backup runs: a writer approving users one by one (a single-statement write)
// and a writer creating users (argon2 then an insert), through a second
// Database on the same file; latencies of the operations that started while
// the backup ran, against the same operations in an equal window without a
// backup.
func BenchmarkWriteLatencyDuringBackup(b *testing.B) {
	seedBench(b)
	ctx := context.Background()
	server, err := pierredb.Open("sqlite:"+benchDB.path, benchDB.key)
	if err != nil {
		b.Fatal(err)
	}
	defer server.Close()
	env := manage.Env{Stdout: io.Discard, Stderr: io.Discard, Getenv: func(k string) string {
		if k == pierredb.EnvDatabaseURL {
			return "sqlite:" + benchDB.path
		}
		return ""
	}}
	nextPending := func() string {
		benchDB.mu.Lock()
		defer benchDB.mu.Unlock()
		id := benchDB.pending[benchDB.next%len(benchDB.pending)]
		benchDB.next++ // across runs (-count): each pending user is approved once
		return id
	}
	type sample struct {
		start time.Time
		took  time.Duration
	}
	// window runs the writers for d, or until during returns, and returns
	// the samples of both.
	window := func(d time.Duration, during func() time.Duration) (approve, create []sample, backup time.Duration) {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var amu, cmu sync.Mutex
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				id := nextPending()
				t0 := time.Now()
				_, err := server.Users().Approve(ctx, id, pierredb.ByService("bench"))
				took := time.Since(t0)
				if err != nil && !errors.Is(err, pierredb.ErrConflict) {
					b.Error(err)
					return
				}
				if err == nil {
					amu.Lock()
					approve = append(approve, sample{t0, took})
					amu.Unlock()
				}
			}
		})
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				t0 := time.Now()
				_, err := server.Users().Create(ctx, pierredb.NewUser{Email: "new-" + uuid.NewString() + "@example.com", Password: "correct horse battery"})
				took := time.Since(t0)
				if err != nil {
					b.Error(err)
					return
				}
				cmu.Lock()
				create = append(create, sample{t0, took})
				cmu.Unlock()
			}
		})
		time.Sleep(200 * time.Millisecond) // warm
		startAt := time.Now()
		if during != nil {
			backup = during()
		} else {
			time.Sleep(d)
		}
		endAt := time.Now()
		close(stop)
		wg.Wait()
		keep := func(s []sample) []sample {
			var out []sample
			for _, x := range s {
				// Every operation that ran while the window was open, also
				// one that started before and was held up by it.
				if x.start.Before(endAt) && x.start.Add(x.took).After(startAt) {
					out = append(out, x)
				}
			}
			return out
		}
		return keep(approve), keep(create), backup
	}
	pct := func(s []sample, p float64) float64 {
		if len(s) == 0 {
			return 0
		}
		d := make([]time.Duration, len(s))
		for i, x := range s {
			d[i] = x.took
		}
		slices.Sort(d)
		return float64(d[min(len(d)-1, int(p*float64(len(d))))].Microseconds())
	}
	for b.Loop() {
		a1, c1, took := window(0, func() time.Duration {
			dest := filepath.Join(benchDB.dir, "during-"+uuid.NewString()+".db")
			defer os.Remove(dest)
			t0 := time.Now()
			if _, err := manage.Backup(ctx, env, dest); err != nil {
				b.Fatal(err)
			}
			return time.Since(t0)
		})
		a0, c0, _ := window(took, nil)
		b.ReportMetric(float64(took.Milliseconds()), "backup-ms")
		b.ReportMetric(pct(a0, 0.5), "approve-p50-idle-µs")
		b.ReportMetric(pct(a0, 0.99), "approve-p99-idle-µs")
		b.ReportMetric(pct(a1, 0.5), "approve-p50-backup-µs")
		b.ReportMetric(pct(a1, 0.99), "approve-p99-backup-µs")
		b.ReportMetric(float64(len(a0)), "approves-idle")
		b.ReportMetric(float64(len(a1)), "approves-backup")
		b.ReportMetric(pct(c0, 0.5)/1000, "create-p50-idle-ms")
		b.ReportMetric(pct(c0, 0.99)/1000, "create-p99-idle-ms")
		b.ReportMetric(pct(c1, 0.5)/1000, "create-p50-backup-ms")
		b.ReportMetric(pct(c1, 0.99)/1000, "create-p99-backup-ms")
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchDB.dir != "" {
		_ = os.RemoveAll(benchDB.dir)
	}
	os.Exit(code)
}
