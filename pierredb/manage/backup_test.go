package manage_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun/driver/sqliteshim"

	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/manage"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

// sqliteEngine is storetest's SQLite engine.
func sqliteEngine() storetest.Engine {
	for _, e := range storetest.Engines() {
		if e.Backend == pierredb.SQLite {
			return e
		}
	}
	panic("no sqlite engine")
}

// seeded is a SQLite database with an admin (from setup), a pending user and
// an approved user with an API key (a sealed secret: the admin token signing
// secret; keyed hashes: the key).
func seeded(t *testing.T) (*harness, string) {
	t.Helper()
	h := newHarness(t, sqliteEngine())
	h.stdin = "correct horse battery\n"
	h.must("setup", "--email", "admin@example.com", "--password-stdin")
	db := h.open()
	newUser(t, db, "pending@example.com")
	newUser(t, db, "user@example.com")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	h.must("users", "approve", "user@example.com")
	key := secretLine(t, h.must("api-key", "create", "user@example.com"))
	return h, key
}

func TestBackupRestoreSQLite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h, apiKey := seeded(t)
	dir := t.TempDir()

	// Backup into a directory: named after the database and the time.
	r := h.must("backup", dir+"/")
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || !strings.HasPrefix(ents[0].Name(), "pierre-") || !strings.HasSuffix(ents[0].Name(), ".db") {
		t.Fatalf("backup into a directory: %v %v", ents, r)
	}
	backup := filepath.Join(dir, ents[0].Name())
	if fi, _ := os.Stat(backup); fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup mode %v", fi.Mode())
	}
	if r.stdout != "" || !strings.Contains(r.stderr, h.key.Fingerprint()) {
		t.Fatalf("backup output: %v", r)
	}
	h.fails(manage.ExitError, []string{"exists already"}, "backup", backup)

	// Changes after the backup, undone by the restore.
	h.must("users", "approve", "pending@example.com")
	h.must("users", "make-admin", "user@example.com")

	// Restore: the backup's state is back, the API key still verifies (same
	// keyring), and the replaced database is kept.
	r = h.must("restore", backup)
	if !strings.Contains(r.stderr, "before-restore") {
		t.Fatalf("restore output: %v", r)
	}
	db := h.open()
	u, err := db.Users().GetByEmail(ctx, "pending@example.com")
	if err != nil || u.Status != pierredb.StatusPending {
		t.Fatalf("restored user: %+v %v", u, err)
	}
	if u, _ := db.Users().GetByEmail(ctx, "user@example.com"); u.IsAdmin {
		t.Fatal("a change made after the backup survived the restore")
	}
	if _, err := db.APIKeys().Verify(ctx, apiKey); err != nil {
		t.Fatalf("API key after restore: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	kept, _ := filepath.Glob(h.path() + ".before-restore-*")
	if len(kept) != 1 {
		t.Fatalf("kept: %v", kept)
	}
	old, err := pierredb.Open("sqlite:"+kept[0]+"?mode=ro", h.key)
	if err != nil {
		t.Fatal(err)
	}
	if u, _ := old.Users().GetByEmail(ctx, "user@example.com"); !u.IsAdmin {
		t.Fatal("the kept database is not the one replaced")
	}
	_ = old.Close()

	// Restore where there is no database yet.
	h2 := newHarness(t, sqliteEngine())
	h2.must("restore", backup)
	if _, err := h2.open().APIKeys().Verify(ctx, apiKey); err != nil {
		t.Fatalf("restore into an empty place: %v", err)
	}

	// Restore over a database that a crashed process left with writes still
	// in its -wal: they are kept with it, not lost and not applied to the
	// restored database.
	h3 := newHarness(t, sqliteEngine())
	live := h3.open()
	newUser(t, live, "in-the-log@example.com")
	crashed := filepath.Join(t.TempDir(), "crashed.db")
	for _, s := range []string{"", "-wal"} {
		b, err := os.ReadFile(h3.path() + s)
		if err != nil {
			t.Fatal(err)
		}
		if s == "-wal" && len(b) == 0 {
			t.Fatal("the log is empty: nothing to test")
		}
		if err := os.WriteFile(crashed+s, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	h3.env[pierredb.EnvDatabaseURL] = "sqlite:" + crashed
	r = h3.must("restore", backup)
	if !strings.Contains(r.stderr, "with its -wal") {
		t.Fatalf("restore over a crashed database: %v", r)
	}
	if _, err := os.Stat(crashed + "-wal"); err == nil {
		t.Fatal("the crashed database's log is still beside the restored database")
	}
	restored, err := pierredb.Open("sqlite:"+crashed, h.key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := restored.Users().GetByEmail(ctx, "in-the-log@example.com"); !errors.Is(err, pierredb.ErrNotFound) {
		t.Fatalf("the old log reached the restored database: %v", err)
	}
	_ = restored.Close()
	kept, _ = filepath.Glob(crashed + ".before-restore-*")
	var keptDB string
	for _, k := range kept {
		if !strings.HasSuffix(k, "-wal") && !strings.HasSuffix(k, "-shm") {
			keptDB = k
		}
	}
	old, err = pierredb.Open("sqlite:"+keptDB, h.key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Users().GetByEmail(ctx, "in-the-log@example.com"); err != nil {
		t.Fatalf("the write that was in the log is not in the kept database: %v", err)
	}
	_ = old.Close()
}

func TestRestoreRefuses(t *testing.T) {
	t.Parallel()
	h, _ := seeded(t)
	dir := t.TempDir()
	backup := filepath.Join(dir, "good.db")
	h.must("backup", backup)
	liveDir := filepath.Dir(h.path())
	before := snapshot(t, liveDir)

	corrupt := func(name string, mutate func(b []byte) []byte) string {
		b, err := os.ReadFile(backup)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, mutate(b), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	notPierre := filepath.Join(dir, "other.db")
	if out, err := exec.Command("sqlite3", notPierre, "CREATE TABLE t(x); INSERT INTO t VALUES (1);").CombinedOutput(); err != nil {
		// No sqlite3 binary: make an empty pierre-less database with pierre's
		// own driver instead.
		db, err2 := pierredb.Open("sqlite:"+filepath.Join(dir, "scratch.db"), h.key)
		if err2 != nil {
			t.Fatal(err, string(out), err2)
		}
		_ = db.Close()
		notPierre = corrupt("other.db", func(b []byte) []byte { return b[:0] })
	}
	// tamper copies the backup and runs statements on the copy.
	tamper := func(name, stmts string) string {
		p := corrupt(name, func(b []byte) []byte { return b })
		db, err := sql.Open(sqliteshim.ShimName, "file:"+p)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec(stmts); err != nil {
			t.Fatal(err)
		}
		return p
	}
	wrongKeyBackup := func() string {
		h3 := newHarness(t, sqliteEngine())
		h3.key = otherKey(t)
		h3.env[keyring.EnvMasterKey] = h3.key.EncodeBase64()
		h3.stdin = "correct horse battery\n"
		h3.must("setup", "--email", "x@example.com", "--password-stdin")
		p := filepath.Join(dir, "otherkey.db")
		h3.must("backup", p)
		return p
	}()
	cases := []struct {
		name string
		src  string
		want []string
	}{
		{"missing", filepath.Join(dir, "nope.db"), []string{"no such file"}},
		{"directory", dir, []string{"not a regular file"}},
		{"garbage", corrupt("garbage.db", func(b []byte) []byte { return []byte(strings.Repeat("not a database ", 400)) }), []string{"refusing to restore", "nothing was changed"}},
		{"truncated", corrupt("truncated.db", func(b []byte) []byte { return b[:len(b)/2] }), []string{"refusing to restore", "nothing was changed"}},
		{"flipped page", corrupt("flipped.db", func(b []byte) []byte {
			// The b-tree page headers of pages 2 to 5 (page type, cell count,
			// cell content offset): tables and indexes SQLite must read.
			c := append([]byte(nil), b...)
			for p := 1; p <= 4; p++ {
				for i := p * 4096; i < p*4096+8; i++ {
					c[i] ^= 0xa5
				}
			}
			return c
		}), []string{"refusing to restore", "nothing was changed"}},
		{"not pierre", notPierre, []string{"refusing to restore", "nothing was changed"}},
		{"wrong key", wrongKeyBackup, []string{"refusing to restore", "does not open", h.key.Fingerprint(), "nothing was changed"}},
		{"tables dropped", tamper("dropped.db", "DROP TABLE api_keys; DROP TABLE users"),
			[]string{"refusing to restore", "lacks pierre's tables api_keys, users", "nothing was changed"}},
		{"migration from a newer pierre", tamper("newer.db", "INSERT INTO pierredb_migrations (name, group_id, migrated_at) VALUES ('9999_from_the_future', 99, '2030-01-01 00:00:00')"),
			[]string{"refusing to restore", "9999_from_the_future", "does not know", "nothing was changed"}},
		{"the live database", h.path(), []string{"is the live database"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h.fails(manage.ExitError, c.want, "restore", c.src)
			sameSnapshot(t, before, snapshot(t, liveDir))
		})
	}

	// In use: another connection has the live database open.
	db := h.open()
	_ = db.Ping(context.Background())
	inUse := snapshot(t, liveDir)
	h.fails(manage.ExitError, []string{"in use", "stop it and retry", "nothing was changed"}, "restore", backup)
	sameSnapshot(t, inUse, snapshot(t, liveDir))
	h.fails(manage.ExitError, []string{"in use", "nothing was deleted"}, "fresh-start", "--yes")
	sameSnapshot(t, inUse, snapshot(t, liveDir))
	_ = db.Close()

	// In use by another process (a sqlite3 shell), when sqlite3 is installed.
	if _, err := exec.LookPath("sqlite3"); err == nil {
		cmd := exec.Command("sqlite3", h.path())
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(stdin, "SELECT count(*) FROM users;\n")
		buf := make([]byte, 16)
		_, _ = stdout.Read(buf) // the shell has opened the database
		before := snapshot(t, liveDir)
		h.fails(manage.ExitError, []string{"in use"}, "restore", backup)
		sameSnapshot(t, before, snapshot(t, liveDir))
		_ = stdin.Close()
		_ = cmd.Wait()
	}
	h.must("restore", backup)
}

// TestBackupUnderWrites takes a backup while four goroutines keep writing
// through a second Database on the same file, restores it, and checks that
// every write acknowledged before the backup began is in it.
func TestBackupUnderWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t, sqliteEngine())
	writer := h.open()

	type ack struct {
		email    string
		approved bool
		at       time.Time
	}
	var (
		mu    sync.Mutex
		acks  []ack
		stop  = make(chan struct{})
		wg    sync.WaitGroup
		fails = make(chan error, 4)
	)
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				email := fmt.Sprintf("w%d-%d@example.com", g, i)
				u, err := writer.Users().Create(ctx, pierredb.NewUser{Email: email, Password: "correct horse battery"})
				if err != nil {
					fails <- err
					return
				}
				mu.Lock()
				acks = append(acks, ack{email: email, at: time.Now()})
				mu.Unlock()
				if i%2 == 0 {
					if _, err := writer.Users().Approve(ctx, u.ID, pierredb.ByService("writer")); err != nil {
						fails <- err
						return
					}
					mu.Lock()
					acks = append(acks, ack{email: email, approved: true, at: time.Now()})
					mu.Unlock()
				}
			}
		})
	}
	waitFor := func(n int) {
		for {
			mu.Lock()
			got := len(acks)
			mu.Unlock()
			if got >= n {
				return
			}
			select {
			case err := <-fails:
				t.Fatal(err)
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	waitFor(24)
	began := time.Now()
	backup := filepath.Join(t.TempDir(), "live.db")
	r := h.run("backup", backup)
	mu.Lock()
	n := len(acks)
	mu.Unlock()
	waitFor(n + 4) // writes kept going during and after the backup
	close(stop)
	wg.Wait()
	if r.code != manage.ExitOK {
		t.Fatalf("backup under writes: %v", r)
	}
	select {
	case err := <-fails:
		t.Fatal(err)
	default:
	}

	h2 := newHarness(t, sqliteEngine())
	h2.must("restore", backup)
	restored := h2.open()
	var before, after int
	for _, a := range acks {
		if a.at.After(began) {
			after++
			continue
		}
		before++
		u, err := restored.Users().GetByEmail(ctx, a.email)
		if err != nil {
			t.Fatalf("%s, acknowledged %s before the backup began, is missing: %v", a.email, began.Sub(a.at), err)
		}
		if a.approved && u.Status != pierredb.StatusActive {
			t.Fatalf("the approval of %s, acknowledged before the backup began, is missing", a.email)
		}
	}
	total, err := restored.Users().Count(ctx, pierredb.UserFilter{})
	if err != nil || total < before/2 {
		t.Fatal(total, err)
	}
	t.Logf("%d writes acknowledged before the backup began, all restored; %d after; %d users in the backup", before, after, total)
}

func TestFreshStartSQLite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h, _ := seeded(t)
	db := h.open()
	oldID := db.Info().KeyringID
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, filepath.Dir(h.path()))
	h.fails(manage.ExitUsage, []string{"--yes", "backup"}, "fresh-start")
	sameSnapshot(t, before, snapshot(t, filepath.Dir(h.path())))

	// Fresh start needs no key (it is the way out when the key is lost).
	delete(h.env, keyring.EnvMasterKey)
	h.must("fresh-start", "--yes")
	for _, s := range []string{"", "-wal", "-shm"} {
		if _, err := os.Stat(h.path() + s); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s%s is left: %v", h.path(), s, err)
		}
	}
	r := h.must("fresh-start", "--yes")
	if !strings.Contains(r.stderr, "nothing to delete") {
		t.Fatal(r)
	}
	h.env[keyring.EnvMasterKey] = otherKey(t).EncodeBase64() // a new database takes any key
	db, err := pierredb.Open(h.url, otherKey(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n, err := db.Users().Count(ctx, pierredb.UserFilter{})
	if err != nil || n != 0 || db.Info().KeyringID == oldID {
		t.Fatalf("not fresh: %d users, keyring %s (was %s), %v", n, db.Info().KeyringID, oldID, err)
	}
}

func TestInMemoryRefused(t *testing.T) {
	t.Parallel()
	h := &harness{t: t, env: map[string]string{pierredb.EnvDatabaseURL: "sqlite::memory:"}}
	for _, args := range [][]string{{"backup", t.TempDir() + "/x.db"}, {"restore", "x.db"}, {"fresh-start", "--yes"}} {
		h.fails(manage.ExitError, []string{"in-memory"}, args...)
	}
}

func TestBackupAndRestoreEdges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t, sqliteEngine())
	h.fails(manage.ExitError, []string{"there is no database", "nothing to back up"}, "backup", filepath.Join(t.TempDir(), "b.db"))

	// A database behind a symbolic link: the real file is replaced (SQLite
	// keeps the -wal beside it) and the link stays a link.
	h2, _ := seeded(t)
	backup := filepath.Join(t.TempDir(), "b.db")
	h2.must("backup", backup)
	h2.must("users", "approve", "pending@example.com")
	link := filepath.Join(t.TempDir(), "link.db")
	if err := os.Symlink(h2.path(), link); err != nil {
		t.Skip("no symbolic links here")
	}
	h2.env[pierredb.EnvDatabaseURL] = "sqlite:" + link
	h2.must("restore", backup)
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was replaced: %v %v", fi, err)
	}
	db, err := pierredb.Open("sqlite:"+h2.path(), h2.key)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if u, err := db.Users().GetByEmail(ctx, "pending@example.com"); err != nil || u.Status != pierredb.StatusPending {
		t.Fatalf("the real file was not restored: %+v %v", u, err)
	}
}

// TestBackupNames: backups into one directory never collide, even within one
// millisecond.
func TestBackupNames(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	now := time.Date(2025, 1, 2, 3, 4, 5, 678e6, time.UTC)
	cases := []struct {
		name, want string
	}{
		{"first", "users-20250102T030405.678Z.db"},
		{"same millisecond", "users-20250102T030405.678Z-2.db"},
		{"and again", "users-20250102T030405.678Z-3.db"},
	}
	for _, c := range cases {
		p, err := manage.BackupName(dir+string(os.PathSeparator), "users.db", ".db", now)
		require.NoError(t, err, c.name)
		require.Equal(t, filepath.Join(dir, c.want), p, c.name)
		require.NoError(t, os.WriteFile(p, nil, 0o600))
	}

	// Two backups into one directory, back to back: both succeed.
	h, _ := seeded(t)
	out := t.TempDir()
	h.must("backup", out)
	h.must("backup", out)
	ents, err := os.ReadDir(out)
	require.NoError(t, err)
	require.Len(t, ents, 2)
}
