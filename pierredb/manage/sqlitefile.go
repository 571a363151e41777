package manage

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/uptrace/bun/driver/sqliteshim"
)

// The files SQLite keeps beside a database.
var sidecars = []string{"-wal", "-shm", "-journal"}

// ErrInUse means that another connection, in this process or another, has the
// SQLite database open (a running server, a sqlite3 shell): restore and
// fresh-start refuse to replace or delete it under them.
var ErrInUse = errors.New("the database is in use")

// rawConnector opens plain SQLite connections, whichever driver is built.
type rawConnector struct{ dsn string }

func (c rawConnector) Connect(context.Context) (driver.Conn, error) {
	return sqliteshim.Driver().Open(c.dsn)
}
func (c rawConnector) Driver() driver.Driver { return sqliteshim.Driver() }

// rawConn opens one plain connection to the SQLite file at path (absolute) in
// mode "ro" or "rw", with busy_timeout set. Close the returned *sql.DB.
func rawConn(ctx context.Context, path, mode string, busy time.Duration) (*sql.DB, *sql.Conn, error) {
	if !sqliteshim.HasDriver() {
		return nil, nil, errors.New("no SQLite driver is built for this platform (build with cgo and -tags cgosqlite)")
	}
	dsn := (&url.URL{Scheme: "file", Path: filepath.ToSlash(path)}).String() + "?mode=" + mode
	db := sql.OpenDB(rawConnector{dsn: dsn})
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err == nil {
		// Both drivers take the pragma as a statement; neither DSN syntax is
		// understood by the other driver.
		_, err = conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", busy.Milliseconds()))
	}
	if err != nil {
		if conn != nil {
			_ = conn.Close()
		}
		_ = db.Close()
		return nil, nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, conn, nil
}

// randomSuffix is a short random string for temporary file names.
func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// exists reports whether path exists (following links).
func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, err
	}
}

// fileLock is SQLite's exclusive lock on a database file, held through a
// connection of its own.
type fileLock struct {
	db   *sql.DB
	conn *sql.Conn
	link string // the hard link the connection opened, removed on release
}

// lockFile takes SQLite's exclusive lock on the database file at path, or
// fails with ErrInUse when any connection (of any process, this one included)
// has it open: a WAL database's connections hold a shared lock on the file for
// as long as they are open.
//
// The lock is taken through a hard link to the file, in SQLite's exclusive
// locking mode. Locks follow the file (its inode), not its name, so the lock
// excludes every connection to the database; and SQLite names the write-ahead
// log after the name it opened, so this connection never touches the
// database's own -wal and -shm, which the caller may then move or delete
// while it holds the lock. (A connection opened on the database's own name
// would delete <path>-wal by name when it closes, possibly a new database's.)
// On a file system without hard links it falls back to the name itself.
func lockFile(ctx context.Context, path string) (*fileLock, error) {
	link := path + ".pierre-lock-" + randomSuffix()
	name := link
	if err := os.Link(path, link); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		link, name = "", path
	}
	db, conn, err := rawConn(ctx, name, "rw", 200*time.Millisecond)
	if err == nil {
		for _, q := range []string{"PRAGMA locking_mode = EXCLUSIVE", "BEGIN EXCLUSIVE"} {
			if _, err = conn.ExecContext(ctx, q); err != nil {
				break
			}
		}
		if err == nil {
			return &fileLock{db: db, conn: conn, link: link}, nil
		}
		_ = conn.Close()
		_ = db.Close()
	}
	if link != "" {
		// The link's own log, if the failed attempt made one: never the
		// database's (those are named after its own name).
		_ = os.Remove(link)
		for _, s := range sidecars {
			_ = os.Remove(link + s)
		}
	}
	msg := strings.ToLower(err.Error())
	if strings.Contains(msg, "locked") || strings.Contains(msg, "busy") {
		return nil, fmt.Errorf("%w: %s is open in another connection (a running server, a sqlite3 shell, a backup): stop it and retry; "+
			"`fuser %s` or `lsof %s` shows which process", ErrInUse, path, path, path)
	}
	return nil, fmt.Errorf("lock %s: %w", path, err)
}

// release ends the lock. Its connection wrote nothing; closing it deletes only
// the link's own (empty) log.
func (l *fileLock) release() {
	if l == nil {
		return
	}
	_, _ = l.conn.ExecContext(context.Background(), "ROLLBACK")
	_ = l.conn.Close()
	_ = l.db.Close()
	if l.link != "" {
		_ = os.Remove(l.link)
		for _, s := range sidecars {
			_ = os.Remove(l.link + s)
		}
	}
}

// checkNotInUse fails with ErrInUse while any connection has the database at
// path open; a missing file is not in use.
func checkNotInUse(ctx context.Context, path string) error {
	l, err := lockFile(ctx, path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	l.release()
	return nil
}

// syncFile fsyncs the file at path.
func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// syncDir fsyncs a directory, so that renames and links in it are durable.
// Some platforms cannot; that is not an error.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// vacuumInto writes a consistent copy of the database at src into dest (which
// must not exist) with VACUUM INTO, through a read-only connection: it reads
// one snapshot, so it is correct while other connections write, and it never
// writes to src. dest is created 0600 and fsynced. progress, when not nil, is
// called about every second with the bytes written so far and the size of
// src's pages.
func vacuumInto(ctx context.Context, src, dest string, progress func(written, total int64)) error {
	db, conn, err := rawConn(ctx, src, "ro", 5*time.Second)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(); _ = db.Close() }()
	var pages, pageSize int64
	if err := conn.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		return notADatabase(src, err)
	}
	if err := conn.QueryRowContext(ctx, "PRAGMA page_size").Scan(&pageSize); err != nil {
		return notADatabase(src, err)
	}
	// VACUUM INTO accepts an empty file: make it first, so it has our mode.
	f, err := os.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_ = f.Close()
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		if progress == nil {
			return
		}
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if fi, err := os.Stat(dest); err == nil {
					progress(fi.Size(), pages*pageSize)
				}
			}
		}
	}()
	_, err = conn.ExecContext(ctx, "VACUUM INTO ?", dest)
	close(done)
	<-stopped
	if err != nil {
		_ = os.Remove(dest)
		return notADatabase(src, err)
	}
	if err := syncFile(dest); err != nil {
		_ = os.Remove(dest)
		return err
	}
	return nil
}

// notADatabase words SQLite's complaint about a file that is not a database.
func notADatabase(path string, err error) error {
	msg := strings.ToLower(err.Error())
	if strings.Contains(msg, "not a database") || strings.Contains(msg, "malformed") || strings.Contains(msg, "corrupt") {
		return fmt.Errorf("%s is not a sound SQLite database: %w", path, err)
	}
	return fmt.Errorf("read %s: %w", path, err)
}

// integrityCheck runs PRAGMA integrity_check (or, quick, quick_check: the
// b-trees without cross-checking indexes against tables, several times
// faster) on the SQLite file at path, read-only, and returns nil or what it
// found (its first lines).
func integrityCheck(ctx context.Context, path string, quick bool) error {
	db, conn, err := rawConn(ctx, path, "ro", 5*time.Second)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(); _ = db.Close() }()
	pragma := "integrity_check"
	if quick {
		pragma = "quick_check"
	}
	rows, err := conn.QueryContext(ctx, "PRAGMA "+pragma+"(20)")
	if err != nil {
		return notADatabase(path, err)
	}
	defer rows.Close()
	var found []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return notADatabase(path, err)
		}
		if line != "ok" {
			found = append(found, line)
		}
	}
	if err := rows.Err(); err != nil {
		return notADatabase(path, err)
	}
	if len(found) > 0 {
		return fmt.Errorf("%s fails SQLite's integrity check: %s", path, strings.Join(found, "; "))
	}
	return nil
}

// fingerprints reads the master key fingerprints the keyring of the SQLite
// file at path is wrapped under (not secret: they identify a key, they do not
// reveal it), and whether the file holds a pierre keyring at all.
func fingerprints(ctx context.Context, path string) (fps []string, ok bool, err error) {
	db, conn, err := rawConn(ctx, path, "ro", 5*time.Second)
	if err != nil {
		return nil, false, err
	}
	defer func() { _ = conn.Close(); _ = db.Close() }()
	var meta int
	err = conn.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('keyring_meta', 'keyring_keys')").Scan(&meta)
	if err != nil {
		return nil, false, notADatabase(path, err)
	}
	if meta != 2 {
		return nil, false, nil
	}
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM keyring_meta").Scan(&meta); err != nil || meta == 0 {
		return nil, false, err
	}
	rows, err := conn.QueryContext(ctx, "SELECT DISTINCT mek_fingerprint FROM keyring_keys WHERE state <> 'retired' AND mek_fingerprint <> '' ORDER BY 1")
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	for rows.Next() {
		var fp string
		if err := rows.Scan(&fp); err != nil {
			return nil, false, err
		}
		fps = append(fps, fp)
	}
	return fps, true, rows.Err()
}

// humanBytes formats a size: 12.3 MB.
func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	default:
		return fmt.Sprintf("%d B", n)
	}
}
