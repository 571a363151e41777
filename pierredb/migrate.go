package pierredb

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"

	"github.com/pierre-mcp/pierre/pierredb/internal/engine"
)

// Migration bookkeeping lives in pierre's own tables, apart from any bun_migrations
// table the host application may keep for itself.
const (
	migrationsTable     = "pierredb_migrations"
	migrationLocksTable = "pierredb_migration_locks"
)

// Migration is one schema migration and whether it has been applied.
type Migration struct {
	// Set is "pierre" for pierre's own migrations, or the Name of the host's
	// HostMigrations.
	Set string
	// Name is the migration's numeric prefix, for example "0001".
	Name string
	// Comment is the rest of the file name, for example "init".
	Comment string
	// Applied reports whether the database has it.
	Applied bool
	// AppliedAt is when it was applied; zero when it was not.
	AppliedAt time.Time
}

// errAppliedMeanwhile aborts a migration whose transaction found it already
// recorded: another process applied it between our status read and our lock.
var errAppliedMeanwhile = errors.New("migration applied by another process")

// migrationSet is one sequence of migrations with its own bookkeeping tables:
// pierre's, or a host's (HostMigrations), applied after pierre's.
type migrationSet struct {
	name         string
	fsys         fs.FS
	table, locks string
}

// pierreMigrations is pierre's own set on engine e.
func pierreMigrations(e *engine.Engine) migrationSet {
	return migrationSet{name: "pierre", fsys: e.Migrations, table: migrationsTable, locks: migrationLocksTable}
}

func newMigrator(e *engine.Engine, set migrationSet) (*migrate.Migrator, *migrate.Migrations, error) {
	migrations := migrate.NewMigrations()
	if err := migrations.Discover(set.fsys); err != nil {
		return nil, nil, fmt.Errorf("load %s migrations: %w", set.name, err)
	}
	migrationsTable := set.table
	m := migrate.NewMigrator(e.Writer, migrations,
		migrate.WithTableName(set.table),
		migrate.WithLocksTableName(set.locks),
		// bun marks a migration applied before running it unless told otherwise.
		migrate.WithMarkAppliedOnSuccess(true),
		// The record is written inside the migration's own transaction (below), so
		// bun's own mark afterwards must be an idempotent upsert.
		migrate.WithUpsert(true),
		migrate.BeforeMigration(func(ctx context.Context, db bun.IConn, m *migrate.Migration) error {
			// Inside the migration's transaction, which holds the write lock on
			// SQLite (BEGIN IMMEDIATE) and runs under the advisory lock on
			// PostgreSQL: a record here means another process got there first.
			var n int
			err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+migrationsTable+" WHERE name = ?", m.Name).Scan(&n)
			if err != nil {
				return err
			}
			if n > 0 {
				return errAppliedMeanwhile
			}
			return nil
		}),
		migrate.AfterMigration(func(ctx context.Context, db bun.IConn, m *migrate.Migration) error {
			// Record the migration in the same transaction as its statements, so a
			// crash can never leave it applied but unrecorded, or the reverse.
			_, err := db.ExecContext(ctx,
				"INSERT INTO "+migrationsTable+" (name, group_id) VALUES (?, ?)", m.Name, m.GroupID)
			return err
		}),
	)
	return m, migrations, nil
}

// runMigrations applies every pending migration, each in its own transaction, and
// returns the names it applied. Processes that start together wait for each other
// (PostgreSQL advisory lock; SQLite IMMEDIATE transactions plus the in-transaction
// check above) and each migration is applied exactly once.
func runMigrations(ctx context.Context, e *engine.Engine, set migrationSet) ([]string, error) {
	if e.LockMigrations != nil {
		unlock, err := e.LockMigrations(ctx)
		if err != nil {
			return nil, err
		}
		defer unlock()
	}
	if e.PrepareSchema != nil {
		if err := e.PrepareSchema(ctx); err != nil {
			return nil, err
		}
	}
	m, _, err := newMigrator(e, set)
	if err != nil {
		return nil, err
	}
	if err := initMigrationTables(ctx, e, m); err != nil {
		return nil, err
	}
	var applied []string
	for attempt := 0; ; attempt++ {
		group, err := m.Migrate(ctx)
		done := group.Migrations
		if err != nil && len(done) > 0 {
			done = done[:len(done)-1] // bun lists the failed migration last
		}
		for _, mg := range done {
			applied = append(applied, mg.Name)
		}
		if errors.Is(err, errAppliedMeanwhile) && attempt < 100 {
			continue // re-read the status and go on from what the other process did
		}
		if err != nil && len(group.Migrations) > 0 {
			// Each migration runs in its own transaction, recorded in it: the
			// failed one left nothing behind.
			failed := group.Migrations[len(group.Migrations)-1]
			return applied, fmt.Errorf("%s migration %s_%s failed and was rolled back, so the database is as it was before it"+
				" (migrations before it stay applied): %w", set.name, failed.Name, failed.Comment, e.Classify(err))
		}
		if err != nil {
			return applied, fmt.Errorf("migrate %s: %w", set.name, e.Classify(err))
		}
		return applied, nil
	}
}

// initMigrationTables creates bun's bookkeeping tables; with WithUpsert bun adds
// the unique index on migration names that exactly-once application relies on.
func initMigrationTables(ctx context.Context, e *engine.Engine, m *migrate.Migrator) error {
	if err := m.Init(ctx); err != nil {
		return fmt.Errorf("create migration tables: %w", e.Classify(err))
	}
	return nil
}

// schemaState reads, in one query, what the database has applied: every
// migration this code knows with its state, and the names of applied migrations
// it does not know (the database was migrated by a newer pierre). A database that
// has never been migrated reports every migration pending.
func schemaState(ctx context.Context, e *engine.Engine, set migrationSet) (status []Migration, unknown []string, err error) {
	m, known, err := newMigrator(e, set)
	if err != nil {
		return nil, nil, err
	}
	exists, err := e.TableExists(ctx, e.Reader, set.table)
	if err != nil {
		return nil, nil, fmt.Errorf("read catalog: %w", e.Classify(err))
	}
	applied := map[string]migrate.Migration{}
	if exists {
		rows, err := m.AppliedMigrations(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("read migration status: %w", e.Classify(err))
		}
		for _, mg := range rows {
			applied[mg.Name] = mg
		}
	}
	for _, mg := range known.Sorted() {
		row, ok := applied[mg.Name]
		delete(applied, mg.Name)
		// row is the zero Migration when not applied, so AppliedAt stays zero.
		status = append(status, Migration{Set: set.name, Name: mg.Name, Comment: mg.Comment, Applied: ok, AppliedAt: row.MigratedAt.UTC()})
	}
	for name := range applied {
		unknown = append(unknown, name)
	}
	slices.Sort(unknown)
	return status, unknown, nil
}

// schemaCurrent fails when a known migration is pending or the database holds a
// migration this code does not know.
func schemaCurrent(set string, status []Migration, unknown []string) error {
	var pending []string
	for _, m := range status {
		if !m.Applied {
			pending = append(pending, m.Name)
		}
	}
	if len(pending) > 0 {
		return fmt.Errorf("%w: %s migrations %s are pending; open the database read-write without WithoutMigrations once to apply them",
			ErrSchemaNotCurrent, set, strings.Join(pending, ", "))
	}
	if len(unknown) > 0 {
		return fmt.Errorf("%w: the database has %s migration %s, which this code does not know; upgrade it",
			ErrSchemaNotCurrent, set, strings.Join(unknown, ", "))
	}
	return nil
}

func allApplied(status []Migration) bool {
	for _, m := range status {
		if !m.Applied {
			return false
		}
	}
	return true
}

// HostMigrations are a host application's own migrations, for its own tables
// beside pierre's. Open applies them after pierre's, with the same guarantees
// (each in its own transaction and recorded in it; instances starting together
// wait for each other), and records them in their own table, <Name>_migrations.
// Each engine has its own files, at the root of its file system (embed them
// with embed.FS and fs.Sub), each named NNNN_comment.tx.up.sql (for example
// 0001_activities.tx.up.sql): digits, '_', then a-z, 0-9, '_' or '-'. A
// migration that fails is rolled back whole, so the database is as it was
// before it. Open refuses, with ErrInvalidArgument, anything else that looks
// like a migration: a file without .tx (which bun would run outside a
// transaction, so a failure would leave its first statements behind), a file
// in a subdirectory, a misnamed .sql file, a .down.sql without its .up.sql
// (pierre never runs down migrations), and two sets with the same Name.
//
// Host migrations run with pierre's privileges: they may reference pierre's
// tables (a foreign key to tenant_users, say) but must never change them or
// their rows; nothing stops a migration that empties keyring_keys, and the next
// Open would then refuse the database with keyring.ErrKeyringMissing.
type HostMigrations struct {
	// Name names the set: 1 to 40 characters of a-z, 0-9 and '_', starting
	// with a letter, and not "pierre" or "pierredb".
	Name string
	// SQLite and Postgres hold each engine's migrations. The one for an engine
	// the host does not use may be nil.
	SQLite, Postgres fs.FS
}

// set returns h's migrations on backend, after checking its name against
// those of the sets before it and the files of both engines (so that a
// mistake in one engine's files shows on the other too).
func (h HostMigrations) set(backend Backend, earlier ...migrationSet) (migrationSet, error) {
	if !hostSetName.MatchString(h.Name) || h.Name == "pierre" || h.Name == "pierredb" {
		return migrationSet{}, fmt.Errorf("%w: host migrations name %q: use 1 to 40 characters of a-z, 0-9 and '_', starting with a letter (not pierre or pierredb)",
			ErrInvalidArgument, shorten(h.Name))
	}
	for _, e := range earlier {
		if e.name == h.Name {
			return migrationSet{}, fmt.Errorf("%w: two host migration sets are named %q; give each WithHostMigrations its own Name (each is recorded in its own <name>_migrations table)",
				ErrInvalidArgument, h.Name)
		}
	}
	for _, files := range []struct {
		backend Backend
		fsys    fs.FS
	}{{SQLite, h.SQLite}, {Postgres, h.Postgres}} {
		if files.fsys == nil {
			continue
		}
		if err := checkHostFiles(files.fsys); err != nil {
			return migrationSet{}, fmt.Errorf("%w: host migrations %q for %s: %w", ErrInvalidArgument, h.Name, files.backend, err)
		}
	}
	fsys := map[Backend]fs.FS{SQLite: h.SQLite, Postgres: h.Postgres}[backend]
	if fsys == nil {
		return migrationSet{}, fmt.Errorf("%w: host migrations %q have no files for %s", ErrInvalidArgument, h.Name, backend)
	}
	return migrationSet{name: h.Name, fsys: fsys, table: h.Name + "_migrations", locks: h.Name + "_migration_locks"}, nil
}

var hostSetName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)

var (
	// hostFile is the form of every host migration file: bun's file name
	// (number, comment), transactional; down files are allowed beside their
	// up file but never run.
	hostFile = regexp.MustCompile(`^([0-9]{1,14})_([0-9a-z_-]+)\.tx\.(up|down)\.sql$`)
	// plainFile is bun's non-transactional form, which bun would run
	// statement by statement outside a transaction.
	plainFile = regexp.MustCompile(`^([0-9]{1,14})_([0-9a-z_-]+)\.(up|down)\.sql$`)
	// numbered is how a file meant as a migration starts.
	numbered = regexp.MustCompile(`^[0-9]+_`)
)

// checkHostFiles refuses a host file system that bun would read otherwise
// than the host means: bun walks subdirectories and keys migrations by file
// name alone, runs .up.sql files outside a transaction, and skips files whose
// names it does not recognise.
func checkHostFiles(fsys fs.FS) error {
	type migration struct{ up, down string }
	byNumber := map[string]*migration{}
	var numbers []string
	err := fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		name := d.Name()
		looksLikeMigration := numbered.MatchString(name) || strings.HasSuffix(strings.ToLower(name), ".sql")
		if !looksLikeMigration {
			return nil // a README, a .keep: not read
		}
		if path != name {
			return fmt.Errorf("%s is in a subdirectory; put each engine's migration files at the root of its own file system (fs.Sub), where Open reads them",
				shorten(path))
		}
		m := hostFile.FindStringSubmatch(name)
		if m == nil {
			if p := plainFile.FindStringSubmatch(name); p != nil && p[3] == "up" {
				return fmt.Errorf("%s would run outside a transaction, so a failure would leave its first statements applied; rename it to %s_%s.tx.up.sql",
					name, p[1], p[2])
			} else if p != nil {
				return fmt.Errorf("%s is not transactional; rename it to %s_%s.tx.down.sql, or remove it (pierre never runs down migrations)",
					name, p[1], p[2])
			}
			return fmt.Errorf("%s is not named as a migration, so it would be skipped; name it NNNN_comment.tx.up.sql (digits, '_', then a-z, 0-9, '_' or '-'), or move it out of the migrations' file system",
				shorten(name))
		}
		mg := byNumber[m[1]]
		if mg == nil {
			mg = &migration{}
			byNumber[m[1]] = mg
			numbers = append(numbers, m[1])
		}
		file := &mg.up
		if m[3] == "down" {
			file = &mg.down
		}
		if *file != "" || (mg.up != "" && !sameMigration(mg.up, name)) || (mg.down != "" && !sameMigration(mg.down, name)) {
			other := cmp.Or(*file, mg.up, mg.down)
			return fmt.Errorf("%s and %s have the same number %s; give each migration its own", other, name, m[1])
		}
		*file = name
		return nil
	})
	if err != nil {
		return err
	}
	for _, n := range numbers {
		if mg := byNumber[n]; mg.up == "" {
			return fmt.Errorf("%s has no %s file, and pierre runs only up migrations; add it, or remove %s",
				mg.down, strings.Replace(mg.down, ".tx.down.sql", ".tx.up.sql", 1), mg.down)
		}
	}
	return nil
}

// sameMigration reports whether two host files are the up and down of one
// migration: the same number and comment.
func sameMigration(a, b string) bool {
	ma, mb := hostFile.FindStringSubmatch(a), hostFile.FindStringSubmatch(b)
	return ma[1] == mb[1] && ma[2] == mb[2]
}
