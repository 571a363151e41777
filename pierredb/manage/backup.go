package manage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/sqlite"
)

func runBackup(ctx context.Context, env Env, args []string) error {
	pos, err := newFlags("backup").parse(args, 1, "DEST")
	if err != nil {
		return err
	}
	_, err = Backup(ctx, env, pos[0])
	return err
}

// BackupResult says what Backup wrote.
type BackupResult struct {
	// Path is the backup file (SQLite) or dump file (PostgreSQL).
	Path string
	// Size is its size in bytes.
	Size int64
	// Took is how long the backup took.
	Took time.Duration
	// Fingerprints are the fingerprints of the master keys that the backup's
	// keyring needs (SQLite; usually one): restore it with that key.
	Fingerprints []string
}

// Backup backs up the database that the environment names into dest, and
// needs no master key.
//
// On SQLite it writes a consistent snapshot with VACUUM INTO, through a
// read-only connection of its own: it is correct while a server runs and
// writes (it holds everything committed before it began), it never blocks
// writers, and it never writes to the database. A file copy (cp) of a live
// database is not a backup: it misses what is still in the -wal file. The
// snapshot goes to a temporary file next to dest, is fsynced and checked
// (PRAGMA quick_check), and only then appears under the name dest, so dest is
// either complete or absent. dest must not exist; when it is a directory (or
// ends in a separator), the file inside it is named after the database and the
// time.
//
// On PostgreSQL it runs pg_dump --format=custom on pierre's schema, with the
// password passed in the environment (PGPASSWORD), never on the command line.
// Without pg_dump it prints the command to run elsewhere and returns
// ErrManual.
func Backup(ctx context.Context, env Env, dest string) (BackupResult, error) {
	t, err := env.resolveTarget()
	if err != nil {
		return BackupResult{}, err
	}
	if dest == "" {
		return BackupResult{}, usageErr("backup", "backup needs DEST")
	}
	if t.backend == pierredb.Postgres {
		return backupPostgres(ctx, env, t.pg, dest)
	}
	return backupSQLite(ctx, env, t.path, dest)
}

// backupName resolves dest: a directory gets a file named after the database
// and the time, to the millisecond, with a numeric suffix when that name is
// taken already (two backups within one millisecond), so that backups into
// one directory never collide.
func backupName(dest, base, ext string, now time.Time) (string, error) {
	isDir := strings.HasSuffix(dest, "/") || strings.HasSuffix(dest, string(os.PathSeparator))
	if fi, err := os.Stat(dest); err == nil {
		if !fi.IsDir() {
			return "", fmt.Errorf("%s exists already: choose a new name, or a directory (the backup is then named after the time)", dest)
		}
		isDir = true
	}
	if !isDir {
		return filepath.Abs(dest)
	}
	stem := strings.TrimSuffix(base, filepath.Ext(base)) + "-" + now.UTC().Format("20060102T150405.000Z")
	for i := 1; ; i++ {
		name := stem + ext
		if i > 1 {
			name = fmt.Sprintf("%s-%d%s", stem, i, ext)
		}
		path, err := filepath.Abs(filepath.Join(dest, name))
		if err != nil {
			return "", err
		}
		// A backup being written is a .partial- file beside its name: only
		// finished ones are seen here; installBackup catches the rest.
		if ok, err := exists(path); err != nil || !ok {
			return path, err
		}
	}
}

func backupSQLite(ctx context.Context, env Env, src, dest string) (BackupResult, error) {
	start := time.Now()
	if ok, err := exists(src); err != nil {
		return BackupResult{}, err
	} else if !ok {
		return BackupResult{}, fmt.Errorf("there is no database at %s (%s): nothing to back up", src, pierredb.EnvDatabaseURL)
	}
	path, err := backupName(dest, filepath.Base(src), ".db", start)
	if err != nil {
		return BackupResult{}, err
	}
	if ok, err := exists(path); err != nil || ok {
		if err == nil {
			err = fmt.Errorf("%s exists already: choose a new name", path)
		}
		return BackupResult{}, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return BackupResult{}, err
	}
	tmp := path + ".partial-" + randomSuffix()
	defer func() { _ = os.Remove(tmp) }()
	env.say("backup: snapshot of %s (online: the server may keep running)", src)
	err = vacuumInto(ctx, src, tmp, func(written, total int64) {
		env.say("backup: %s of about %s written", humanBytes(written), humanBytes(total))
	})
	if err != nil {
		return BackupResult{}, fmt.Errorf("backup %s: %w", src, explain(err))
	}
	// The copy was just written from a sound source: check that it reached
	// the disk whole (quick_check reads every page).
	if err := integrityCheck(ctx, tmp, true); err != nil {
		return BackupResult{}, fmt.Errorf("backup: the snapshot does not check out (disk full or failing?): %w", err)
	}
	fps, ok, err := fingerprints(ctx, tmp)
	if err != nil {
		return BackupResult{}, err
	}
	if !ok {
		env.say("backup: note: %s holds no pierre keyring (a database never opened by pierre?)", src)
	}
	if err := installBackup(tmp, path); err != nil {
		return BackupResult{}, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return BackupResult{}, err
	}
	res := BackupResult{Path: path, Size: fi.Size(), Took: time.Since(start), Fingerprints: fps}
	env.say("backup: wrote %s (%s) in %s", path, humanBytes(res.Size), res.Took.Round(time.Millisecond))
	if len(fps) > 0 {
		env.say("backup: it opens with the master key whose fingerprint is %s; keep that key with it (restore %s)", strings.Join(fps, " and "), path)
	}
	return res, nil
}

// pgDumpArgs are the arguments of pg_dump for t into file (no password).
func pgDumpArgs(t *pgTarget, file string) []string {
	return []string{"--format=custom", "--no-password", "--schema=" + pgSchemaPattern(t.schema), "--file=" + file,
		"--dbname=" + t.libpqURL("pierre-backup")}
}

// pgSchemaPattern is schema as a pg_dump pattern that matches exactly that
// name: inside double quotes nothing is case-folded and the pattern
// characters (* ? . and regular expression syntax) are taken literally; a
// double quote is doubled.
func pgSchemaPattern(schema string) string {
	return `"` + strings.ReplaceAll(schema, `"`, `""`) + `"`
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:@,%+", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func shellLine(name string, args []string) string {
	parts := []string{name}
	for _, a := range args {
		parts = append(parts, shellQuote(a))
	}
	return strings.Join(parts, " ")
}

func backupPostgres(ctx context.Context, env Env, t *pgTarget, dest string) (BackupResult, error) {
	start := time.Now()
	path, err := backupName(dest, "pierre-"+t.schema, ".dump", start)
	if err != nil {
		return BackupResult{}, err
	}
	if ok, err := exists(path); err != nil || ok {
		if err == nil {
			err = fmt.Errorf("%s exists already: choose a new name", path)
		}
		return BackupResult{}, err
	}
	pgDump := env.PGDump
	if pgDump == "" {
		pgDump = "pg_dump"
	}
	if pgDump, err = exec.LookPath(pgDump); err != nil {
		fmt.Fprintf(env.stdout(), "# pg_dump is not installed here. On a machine with the PostgreSQL client tools (the\n"+
			"# server's major version or newer), with the database password in PGPASSWORD, run:\n")
		fmt.Fprintln(env.stdout(), shellLine("pg_dump", pgDumpArgs(t, path)))
		return BackupResult{}, fmt.Errorf("%w (pg_dump not found: install the PostgreSQL client tools)", ErrManual)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return BackupResult{}, err
	}
	tmp := path + ".partial-" + randomSuffix()
	defer func() { _ = os.Remove(tmp) }()
	env.say("backup: pg_dump of schema %s of %s", t.schema, t.location())
	cmd := exec.CommandContext(ctx, pgDump, pgDumpArgs(t, tmp)...)
	cmd.Env = os.Environ()
	if t.password != "" {
		cmd.Env = append(cmd.Env, "PGPASSWORD="+t.password)
	}
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(redact(stderr.String(), t.password))
		return BackupResult{}, fmt.Errorf("pg_dump failed (%v): %s\n  -> check %s and that pg_dump is as new as the server", err, msg, pierredb.EnvDatabaseURL)
	}
	if err := syncFile(tmp); err != nil {
		return BackupResult{}, err
	}
	if err := installBackup(tmp, path); err != nil {
		return BackupResult{}, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return BackupResult{}, err
	}
	res := BackupResult{Path: path, Size: fi.Size(), Took: time.Since(start)}
	env.say("backup: wrote %s (%s, pg_dump custom format) in %s; `restore %s` checks it and prints the commands that restore it",
		path, humanBytes(res.Size), res.Took.Round(time.Millisecond), path)
	env.say("backup: secrets in it are sealed: the database's master key is needed to use them; keep the key apart from the dump")
	return res, nil
}

func runRestore(ctx context.Context, env Env, args []string) error {
	pos, err := newFlags("restore").parse(args, 1, "SRC")
	if err != nil {
		return err
	}
	_, err = Restore(ctx, env, pos[0])
	return err
}

// installBackup puts the finished backup tmp at path. It links rather than
// renames, so that a file created at path meanwhile is never replaced; it
// renames only when the link fails otherwise (a file system without links).
func installBackup(tmp, path string) error {
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s appeared while the backup ran: choose a new name", path)
		}
		if err := os.Rename(tmp, path); err != nil {
			return err
		}
	}
	syncDir(filepath.Dir(path))
	return nil
}

// RestoreResult says what Restore did.
type RestoreResult struct {
	// Path is the database file that now holds the backup.
	Path string
	// Previous is where the database it replaced was kept ("" when there was
	// none); delete it once the restored database is known good.
	Previous string
	// Migrated lists the migrations applied to the backup's copy because it
	// was older than this code.
	Migrated []string
}

// Restore replaces the SQLite database that the environment names with the
// backup at src, after checking, in this order and before anything is changed:
// that src passes PRAGMA integrity_check, that it holds a pierre keyring,
// that the master key of the environment opens it (pierredb.Open read-only on
// the copy about to be installed, which also refuses migrations this code
// does not know), and that every table pierre needs is there and reads
// (ErrBadBackup otherwise). Then it takes SQLite's exclusive lock on
// the database (refusing with ErrInUse while a server or anyone else has it
// open: stop them first), moves the database aside (it is kept as
// <db>.before-restore-<time>, with its -wal if one was left behind), and puts
// the copy in its place with an atomic rename; stale -wal and -shm files are
// removed so that the restored database never meets another's log. A wrong
// key, a corrupt backup or a database in use leave every file as it was.
//
// On PostgreSQL it checks that src is a pg_dump custom-format archive (and,
// when pg_restore is installed here, that it holds the schema DATABASE_URL
// names), failing with ErrBadBackup otherwise; then it prints the commands
// that restore it, in one transaction, and returns ErrManual. They replace
// pierre's schema; when that is public, they restore into a new database
// instead. No printed URL holds the password.
func Restore(ctx context.Context, env Env, src string) (RestoreResult, error) {
	t, err := env.resolveTarget()
	if err != nil {
		return RestoreResult{}, err
	}
	if t.backend == pierredb.Postgres {
		return RestoreResult{}, restorePostgres(ctx, env, t.pg, src)
	}
	key, err := env.masterKey()
	if err != nil {
		return RestoreResult{}, fmt.Errorf("restore needs the master key the backup was made with: %w", err)
	}
	return restoreSQLite(ctx, env, key, t.path, src)
}

func restoreSQLite(ctx context.Context, env Env, key keyring.MasterKey, live, src string) (RestoreResult, error) {
	src, err := filepath.Abs(src)
	if err != nil {
		return RestoreResult{}, err
	}
	fi, err := os.Stat(src)
	switch {
	case err != nil:
		return RestoreResult{}, fmt.Errorf("backup %s: %w", src, err)
	case !fi.Mode().IsRegular():
		return RestoreResult{}, fmt.Errorf("backup %s is not a regular file", src)
	}
	if lfi, err := os.Stat(live); err == nil && os.SameFile(fi, lfi) {
		return RestoreResult{}, fmt.Errorf("%s is the live database itself: give a backup made with `backup`", src)
	}

	// 1. The backup itself.
	env.say("restore: checking %s", src)
	if err := integrityCheck(ctx, src, false); err != nil {
		return RestoreResult{}, fmt.Errorf("refusing to restore: %w; nothing was changed", err)
	}
	if err := os.MkdirAll(filepath.Dir(live), 0o700); err != nil {
		return RestoreResult{}, err
	}
	// 2. The copy to install, next to the live database (same file system,
	// so the final rename is atomic), made from one snapshot of src.
	tmp := live + ".restore-" + randomSuffix()
	defer func() {
		_ = os.Remove(tmp)
		for _, s := range sidecars {
			_ = os.Remove(tmp + s)
		}
	}()
	err = vacuumInto(ctx, src, tmp, func(written, total int64) {
		env.say("restore: copying, %s of about %s", humanBytes(written), humanBytes(total))
	})
	if err != nil {
		return RestoreResult{}, fmt.Errorf("refusing to restore: %w; nothing was changed", err)
	}
	// 3. A pierre database, and the key opens it.
	fps, ok, err := fingerprints(ctx, tmp)
	if err != nil {
		return RestoreResult{}, fmt.Errorf("refusing to restore: %w; nothing was changed", err)
	}
	if !ok {
		return RestoreResult{}, fmt.Errorf("refusing to restore: %s holds no pierre keyring, so it is not a backup of a pierre database; nothing was changed", src)
	}
	migrated, err := checkKeyOpens(ctx, env, tmp, key)
	if err != nil {
		if errors.Is(err, keyring.ErrWrongMasterKey) {
			return RestoreResult{}, explain(fmt.Errorf("refusing to restore: the master key of the environment (fingerprint %s) does not open %s, "+
				"whose keyring needs the key with fingerprint %s; nothing was changed: %w", key.Fingerprint(), src, strings.Join(fps, " or "), err))
		}
		return RestoreResult{}, explain(fmt.Errorf("refusing to restore: %w; nothing was changed", err))
	}
	if err := checkSchemaComplete(ctx, tmp); err != nil {
		return RestoreResult{}, fmt.Errorf("refusing to restore %s: %w; nothing was changed", src, err)
	}
	if err := syncFile(tmp); err != nil {
		return RestoreResult{}, err
	}

	// 4. Replace the live database under its exclusive lock.
	res := RestoreResult{Path: live, Migrated: migrated}
	liveExists, err := exists(live)
	if err != nil {
		return RestoreResult{}, err
	}
	if !liveExists {
		for _, s := range sidecars { // leftovers of a database deleted by hand
			_ = os.Remove(live + s)
		}
		// Link, not rename: a database created meanwhile is never replaced.
		if err := os.Link(tmp, live); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return RestoreResult{}, fmt.Errorf("%w: a database appeared at %s while the restore ran (a server starting?); stop it and retry", ErrInUse, live)
			}
			if err := os.Rename(tmp, live); err != nil {
				return RestoreResult{}, err
			}
		}
		syncDir(filepath.Dir(live))
		env.say("restore: %s did not exist; restored %s there", live, src)
		return res, nil
	}
	lock, err := lockFile(ctx, live)
	if err != nil {
		return RestoreResult{}, fmt.Errorf("refusing to restore: %w; nothing was changed", err)
	}
	defer lock.release()
	prev := live + ".before-restore-" + time.Now().UTC().Format("20060102T150405Z")
	if ok, _ := exists(prev); ok {
		prev += "-" + randomSuffix()
	}
	// The live database stays reachable under its name until the rename
	// below replaces it: a link keeps it under prev as well.
	if err := os.Link(live, prev); err != nil {
		return RestoreResult{}, fmt.Errorf("keep the current database as %s: %w; nothing was changed", prev, err)
	}
	// A log left behind by a process that did not close the database holds
	// committed writes (a rollback journal, an unfinished transaction): it
	// moves with the database it belongs to. Nobody has the database open
	// (the lock), so nothing writes to it meanwhile.
	var moved []string
	undo := func() {
		for _, s := range moved {
			_ = os.Rename(prev+s, live+s)
		}
	}
	for _, s := range []string{"-wal", "-journal"} {
		if fi, err := os.Stat(live + s); err == nil && fi.Size() > 0 {
			if err := os.Rename(live+s, prev+s); err != nil {
				undo()
				_ = os.Remove(prev)
				return RestoreResult{}, fmt.Errorf("move the current database's %s aside: %w; nothing was changed", s, err)
			}
			moved = append(moved, s)
		}
	}
	for _, s := range sidecars {
		if err := os.Remove(live + s); err != nil && !errors.Is(err, fs.ErrNotExist) {
			undo()
			_ = os.Remove(prev)
			return RestoreResult{}, fmt.Errorf("remove stale %s%s: %w; nothing was changed", live, s, err)
		}
	}
	if err := os.Rename(tmp, live); err != nil {
		// The current database is still in place: give it back the log
		// moved aside above, or it would open without those writes.
		undo()
		_ = os.Remove(prev)
		return RestoreResult{}, fmt.Errorf("install the restored database: %w; nothing was changed", err)
	}
	syncDir(filepath.Dir(live))
	res.Previous = prev
	env.say("restore: replaced %s with %s", live, src)
	note := ""
	if len(moved) > 0 {
		note = " (with its " + strings.Join(moved, " and ") + ", which held writes not yet checkpointed)"
	}
	env.say("restore: the database it replaced is kept as %s%s; delete it once the restored one is known good", prev, note)
	if len(migrated) > 0 {
		env.say("restore: the backup was older than this code: migrations %s were applied to it", strings.Join(migrated, ", "))
	}
	env.say("restore: start the server with the same master key (fingerprint %s)", key.Fingerprint())
	return res, nil
}

// checkKeyOpens opens the database copy at path with key: read-only first, so
// nothing is written; a copy with an older schema is then opened read-write
// (it is private, not yet installed) to migrate it, and the migrations applied
// are returned.
func checkKeyOpens(ctx context.Context, env Env, path string, key keyring.MasterKey) ([]string, error) {
	opts := append([]pierredb.Option(nil), env.Options...)
	db, err := pierredb.OpenContext(ctx, "sqlite:"+path+"?mode=ro", key, opts...)
	if err == nil {
		return nil, db.Close()
	}
	if !errors.Is(err, pierredb.ErrSchemaNotCurrent) {
		return nil, err
	}
	// The keyring is unlocked before the schema is looked at, so the key is
	// right; an older backup needs migrations, a newer one a newer pierre.
	db, err = pierredb.OpenContext(ctx, "sqlite:"+path+"?mode=rw", key, opts...)
	if err != nil {
		return nil, err
	}
	applied := db.Info().MigrationsApplied
	return applied, db.Close()
}

// ErrBadBackup is returned by Restore when the file given is not a backup it
// can restore: not a pg_dump archive of the schema DATABASE_URL names, or a
// SQLite database that lacks some of pierre's tables. Nothing was changed.
var ErrBadBackup = errors.New("not a usable backup")

// checkSchemaComplete checks that the SQLite database at path (opened by
// pierredb already, so its recorded migrations are all known to this code:
// Open refuses a migration it does not know) has every table pierre's schema
// needs, by reading from each: a backup with tables dropped would restore
// fine and fail later, in the server, with "no such table".
func checkSchemaComplete(ctx context.Context, path string) error {
	tables, err := schemaTables(sqlite.Migrations())
	if err != nil {
		return err
	}
	db, conn, err := rawConn(ctx, path, "ro", 5*time.Second)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(); _ = db.Close() }()
	var missing []string
	for _, name := range tables {
		var one int
		err := conn.QueryRowContext(ctx, "SELECT 1 FROM "+quoteSQLite(name)+" LIMIT 1").Scan(&one)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: it lacks pierre's tables %s (or they do not read), so it is not a complete pierre database",
			ErrBadBackup, strings.Join(missing, ", "))
	}
	return nil
}

// quoteSQLite quotes an identifier for SQLite.
func quoteSQLite(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

// schemaTables lists the tables that pierre's migrations in fsys leave, plus
// the migration bookkeeping tables: each migration's CREATE TABLE, DROP TABLE
// and ALTER TABLE ... RENAME TO, in order (SQLite rebuilds a table as
// x_next, drops x and renames x_next to x).
func schemaTables(fsys fs.FS) ([]string, error) {
	comment := regexp.MustCompile(`--[^\n]*`)
	stmt := regexp.MustCompile(`(?is)\b(?:CREATE\s+(?:UNLOGGED\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?([a-z_][a-z0-9_]*)` +
		`|DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?([a-z_][a-z0-9_]*)` +
		`|ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?([a-z_][a-z0-9_]*)\s+RENAME\s+TO\s+([a-z_][a-z0-9_]*))`)
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, err
	}
	slices.Sort(names) // numbered: the order they apply in
	set := map[string]bool{"pierredb_migrations": true, "pierredb_migration_locks": true}
	for _, n := range names {
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, err
		}
		for _, m := range stmt.FindAllStringSubmatch(comment.ReplaceAllString(string(b), ""), -1) {
			switch {
			case m[1] != "":
				set[strings.ToLower(m[1])] = true
			case m[2] != "":
				delete(set, strings.ToLower(m[2]))
			default:
				delete(set, strings.ToLower(m[3]))
				set[strings.ToLower(m[4])] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(set)), nil
}

// pgDumpMagic starts every pg_dump custom-format archive.
const pgDumpMagic = "PGDMP"

// restorePostgres checks that src is a pg_dump archive of t's schema and
// prints the commands that restore it; it never changes the database itself.
func restorePostgres(ctx context.Context, env Env, t *pgTarget, src string) error {
	src, err := filepath.Abs(src)
	if err != nil {
		return err
	}
	if err := checkPGDump(ctx, env, t, src); err != nil {
		return fmt.Errorf("refusing to restore: %w; nothing was done", err)
	}
	sqlFile := src + ".restore.sql"
	out := env.stdout()
	p := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	p("# pierre does not restore PostgreSQL by itself. Stop every server, then run these")
	p("# commands with the database password in PGPASSWORD (it is never in a command line).")
	p("# Each runs only if the one before succeeded (&&): pg_restore turns the dump into SQL")
	p("# and stops on a damaged dump (a pipe into psql would commit what came before the")
	p("# damage); psql --single-transaction applies it all or nothing.")
	if t.schema != "public" {
		p("# It replaces schema %s (everything in it, tables added since the backup", t.schema)
		p("# included) with the dump's. Foreign keys from tables in other schemas into it are")
		p("# dropped with it (CASCADE).")
		p("(umask 077 && %s) &&", shellLine("pg_restore", []string{"--no-owner", "--file=" + sqlFile, src}))
		p("  %s", shellLine("psql", []string{"--no-password", "--single-transaction", "--set=ON_ERROR_STOP=1",
			"--command=DROP SCHEMA IF EXISTS " + t.quotedSchema() + " CASCADE", "--file=" + sqlFile, t.libpqURL("pierre-restore")}))
	} else {
		// The dump of public holds whatever was in public at the time, the
		// host's tables included, and dropping public would also take what
		// is not in it (extensions, grants, tables added since): it is not
		// replaced in place.
		newDB := t.dbname() + "_restored"
		p("# pierre's tables are in schema public, beside others: dropping public would also")
		p("# take what is not in the dump (extensions, grants, tables added since), so it is not")
		p("# replaced in place. Restore into a new, empty database %s instead, then point", newDB)
		p("# %s at it (or, with nothing connected, rename the databases with ALTER DATABASE).", pierredb.EnvDatabaseURL)
		p("# The new database's empty public schema is dropped (no CASCADE) for the dump's.")
		p("%s &&", shellLine("psql", []string{"--no-password", "--set=ON_ERROR_STOP=1",
			"--command=CREATE DATABASE " + pgx.Identifier{newDB}.Sanitize(), t.libpqURL("pierre-restore")}))
		p("  (umask 077 && %s) &&", shellLine("pg_restore", []string{"--no-owner", "--file=" + sqlFile, src}))
		p("  %s", shellLine("psql", []string{"--no-password", "--single-transaction", "--set=ON_ERROR_STOP=1",
			"--command=DROP SCHEMA IF EXISTS public", "--file=" + sqlFile, t.withDBName(newDB).libpqURL("pierre-restore")}))
	}
	p("# %s holds the dump's data (its secrets are sealed): delete it afterwards.", sqlFile)
	p("rm -f %s", shellQuote(sqlFile))
	p("# Then start the servers with the master key the dump was made with, and check with `status`.")
	return ErrManual
}

// checkPGDump checks that src is a pg_dump custom-format archive and, when
// pg_restore is installed here, that it reads and holds schema t.schema.
func checkPGDump(ctx context.Context, env Env, t *pgTarget, src string) error {
	fi, err := os.Stat(src)
	switch {
	case err != nil:
		return fmt.Errorf("backup %s: %w", src, err)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%w: %s is not a regular file", ErrBadBackup, src)
	}
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("backup %s: %w", src, err)
	}
	magic := make([]byte, len(pgDumpMagic))
	_, err = io.ReadFull(f, magic)
	_ = f.Close()
	if err != nil || string(magic) != pgDumpMagic {
		return fmt.Errorf("%w: %s is not a pg_dump custom-format archive (made by `backup`, or pg_dump --format=custom)", ErrBadBackup, src)
	}
	pgRestore, err := exec.LookPath("pg_restore")
	if err != nil {
		env.say("restore: pg_restore is not installed here: the dump's contents are not checked")
		return nil
	}
	cmd := exec.CommandContext(ctx, pgRestore, "--list", src)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	list, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("%w: pg_restore cannot read %s (damaged?): %s", ErrBadBackup, src, strings.TrimSpace(stderr.String()))
	}
	var schemas []string
	for line := range strings.SplitSeq(string(list), "\n") {
		// "4; 2615 2200 SCHEMA - public pg_database_owner"
		_, rest, ok := strings.Cut(line, " SCHEMA - ")
		if !ok || strings.HasPrefix(line, ";") {
			continue
		}
		if i := strings.LastIndexByte(rest, ' '); i > 0 {
			rest = rest[:i]
		}
		schemas = append(schemas, rest)
	}
	if !slices.Contains(schemas, t.schema) {
		held := "no schema"
		if len(schemas) > 0 {
			held = "schema " + strings.Join(schemas, ", ")
		}
		return fmt.Errorf("%w: %s holds %s, not schema %s, which %s names (search_path)", ErrBadBackup, src, held, t.schema, pierredb.EnvDatabaseURL)
	}
	return nil
}
