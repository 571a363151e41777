package manage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/postgres"
)

func runFreshStart(ctx context.Context, env Env, args []string) error {
	fs := newFlags("fresh-start")
	yes := fs.Bool("yes", false, "really delete the database")
	if _, err := fs.parse(args, 0); err != nil {
		return err
	}
	_, err := FreshStart(ctx, env, *yes)
	return err
}

// FreshStartResult says what FreshStart removed.
type FreshStartResult struct {
	// Removed lists the files (SQLite) or the schema or tables and functions
	// (PostgreSQL) that were removed.
	Removed []string
	// Kept lists the tables left in a public schema that are not pierre's
	// (a host's own tables).
	Kept []string
}

// FreshStart deletes the database that the environment names, so that the
// next Open starts with an empty one (and a new keyring: secrets sealed in
// the old database, and backups of it, need the old master key). It refuses
// unless yes is true. It needs no master key: starting fresh is also the way
// out when the key is lost.
//
// On SQLite it removes the database file and its -wal, -shm and -journal
// files, refusing with ErrInUse while any connection has the database open
// (stop the server first). On PostgreSQL it drops pierre's schema when that is
// not public (everything in it goes, as the SQLite file would, the host's own
// tables included); in the public schema it drops pierre's own tables (with
// their triggers), functions and migration records, without CASCADE, and
// lists the tables it left. It refuses with ErrReferenced, deleting nothing,
// when a table it would keep has a foreign key to one it would drop (a host's
// table referencing users, say): dropping would remove that constraint for
// good. It waits at most 10 s for locks held by other sessions.
func FreshStart(ctx context.Context, env Env, yes bool) (FreshStartResult, error) {
	t, err := env.resolveTarget()
	if err != nil {
		return FreshStartResult{}, err
	}
	where := t.path
	if t.backend == pierredb.Postgres {
		where = "schema " + t.pg.schema + " of " + t.pg.location()
	}
	if !yes {
		return FreshStartResult{}, usageErr("fresh-start", "fresh-start deletes every user, tenant, key and secret in %s; "+
			"run it again with --yes to do that (a `backup` first keeps a way back)", where)
	}
	if t.backend == pierredb.Postgres {
		return freshStartPostgres(ctx, env, t.pg)
	}
	return freshStartSQLite(ctx, env, t.path)
}

func freshStartSQLite(ctx context.Context, env Env, path string) (FreshStartResult, error) {
	var res FreshStartResult
	lock, err := lockFile(ctx, path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// No database: clear leftovers, if any.
	case err != nil:
		return res, fmt.Errorf("refusing to delete: %w; nothing was deleted", err)
	default:
		defer lock.release()
	}
	for _, name := range []string{path + "-wal", path + "-journal", path + "-shm", path} {
		err := os.Remove(name)
		switch {
		case err == nil:
			res.Removed = append(res.Removed, name)
		case !errors.Is(err, fs.ErrNotExist):
			return res, fmt.Errorf("remove %s: %w", name, err)
		}
	}
	if len(res.Removed) == 0 {
		env.say("fresh-start: there is no database at %s; nothing to delete", path)
		return res, nil
	}
	env.say("fresh-start: removed %s", strings.Join(res.Removed, ", "))
	env.say("fresh-start: the next start creates an empty database; run `setup` to make the first admin")
	return res, nil
}

// pierreObjects are the tables, functions and other objects pierre's
// PostgreSQL migrations create, read from the migrations themselves so that
// a new migration is covered without a change here, plus the migration
// bookkeeping tables.
func pierreObjects() (tables, functions []string, err error) {
	re := regexp.MustCompile(`(?i)\bCREATE\s+(?:OR\s+REPLACE\s+)?(?:UNLOGGED\s+)?(TABLE|FUNCTION|SEQUENCE|VIEW|TYPE)\s+(?:IF\s+NOT\s+EXISTS\s+)?([a-z_][a-z0-9_]*)`)
	migrations := postgres.Migrations()
	err = fs.WalkDir(migrations, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".sql") {
			return err
		}
		b, err := fs.ReadFile(migrations, p)
		if err != nil {
			return err
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			name := strings.ToLower(m[2])
			switch strings.ToUpper(m[1]) {
			case "FUNCTION":
				functions = append(functions, name)
			default:
				// Sequences, views and types that a table owns go with it;
				// standalone ones are dropped as tables would refuse them,
				// so they are listed apart below.
				tables = append(tables, strings.ToUpper(m[1])+" "+name)
			}
		}
		return nil
	})
	tables = append(tables, "TABLE pierredb_migrations", "TABLE pierredb_migration_locks")
	slices.Sort(tables)
	slices.Sort(functions)
	return slices.Compact(tables), slices.Compact(functions), err
}

func freshStartPostgres(ctx context.Context, env Env, t *pgTarget) (FreshStartResult, error) {
	var res FreshStartResult
	db, err := t.connect(ctx)
	if err != nil {
		return res, fmt.Errorf("%w\n  -> check %s; nothing was deleted", err, pierredb.EnvDatabaseURL)
	}
	defer func() { _ = db.Close() }()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return res, err
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, "SET LOCAL lock_timeout = '10s'"); err != nil {
		return res, err
	}
	var schemaExists bool
	if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", t.schema).Scan(&schemaExists); err != nil {
		return res, err
	}
	if !schemaExists {
		env.say("fresh-start: schema %s does not exist in %s; nothing to delete", t.schema, t.location())
		return res, nil
	}
	q := t.quotedSchema()
	if t.schema != "public" {
		// CASCADE reaches beyond the schema only through objects elsewhere
		// that depend on it: foreign keys are checked first, views and the
		// like are what DROP SCHEMA is expected to take with it.
		if err := refuseForeignKeys(ctx, tx, t.schema, nil); err != nil {
			return res, err
		}
		if _, err := tx.ExecContext(ctx, "DROP SCHEMA "+q+" CASCADE"); err != nil {
			return res, lockTimeout(err)
		}
		res.Removed = append(res.Removed, "schema "+t.schema)
	} else {
		objects, functions, err := pierreObjects()
		if err != nil {
			return res, err
		}
		var tables, others []string
		for _, obj := range objects {
			kind, name, _ := strings.Cut(obj, " ")
			var n int
			if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = $1 AND c.relname = $2",
				t.schema, name).Scan(&n); err != nil {
				return res, err
			}
			if kind == "TYPE" {
				if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM pg_type y JOIN pg_namespace s ON s.oid = y.typnamespace WHERE s.nspname = $1 AND y.typname = $2",
					t.schema, name).Scan(&n); err != nil {
					return res, err
				}
			}
			switch {
			case n == 0:
			case kind == "TABLE":
				tables = append(tables, name)
			default:
				others = append(others, obj)
			}
		}
		// A host table's foreign key to one of pierre's tables would go with
		// CASCADE while the host's migration record stays: refuse instead.
		if err := refuseForeignKeys(ctx, tx, t.schema, tables); err != nil {
			return res, err
		}
		// No CASCADE anywhere: pierre's tables go in one statement (their
		// foreign keys to each other are no obstacle then), and anything of
		// the host's that still depends on them (a view, a trigger using
		// pierre's function) makes the drop fail rather than vanish.
		if len(tables) > 0 {
			quoted := make([]string, len(tables))
			for i, name := range tables {
				quoted[i] = q + "." + pgx.Identifier{name}.Sanitize()
			}
			if _, err := tx.ExecContext(ctx, "DROP TABLE "+strings.Join(quoted, ", ")); err != nil {
				return res, dependents(lockTimeout(err))
			}
			for _, name := range tables {
				res.Removed = append(res.Removed, "table "+name)
			}
		}
		for _, obj := range others {
			kind, name, _ := strings.Cut(obj, " ")
			if _, err := tx.ExecContext(ctx, "DROP "+kind+" IF EXISTS "+q+"."+pgx.Identifier{name}.Sanitize()); err != nil {
				return res, dependents(lockTimeout(err))
			}
			res.Removed = append(res.Removed, strings.ToLower(kind)+" "+name)
		}
		for _, f := range functions {
			rows, err := tx.QueryContext(ctx, "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace s ON s.oid = p.pronamespace WHERE s.nspname = $1 AND p.proname = $2",
				t.schema, f)
			if err != nil {
				return res, err
			}
			var sigs []string
			for rows.Next() {
				var sig string
				if err := rows.Scan(&sig); err != nil {
					rows.Close()
					return res, err
				}
				sigs = append(sigs, sig)
			}
			rows.Close()
			for _, sig := range sigs {
				// regprocedure text is already qualified and quoted as needed.
				if _, err := tx.ExecContext(ctx, "DROP FUNCTION IF EXISTS "+sig); err != nil {
					return res, dependents(lockTimeout(err))
				}
				res.Removed = append(res.Removed, "function "+sig)
			}
		}
		rows, err := tx.QueryContext(ctx, "SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY 1", t.schema)
		if err != nil {
			return res, err
		}
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				rows.Close()
				return res, err
			}
			res.Kept = append(res.Kept, name)
		}
		rows.Close()
	}
	if err := tx.Commit(); err != nil {
		return res, lockTimeout(err)
	}
	if len(res.Removed) == 0 {
		env.say("fresh-start: schema %s of %s holds none of pierre's tables; nothing to delete", t.schema, t.location())
		return res, nil
	}
	env.say("fresh-start: dropped %s in %s", strings.Join(res.Removed, ", "), t.location())
	if len(res.Kept) > 0 {
		env.say("fresh-start: left alone in schema public (not pierre's): %s", strings.Join(res.Kept, ", "))
	}
	env.say("fresh-start: the next start creates pierre's tables again; run `setup` to make the first admin")
	return res, nil
}

// ErrReferenced is returned by FreshStart on PostgreSQL when tables that
// fresh-start would not drop have foreign keys to tables it would drop:
// dropping them would silently remove those constraints. Nothing is deleted.
var ErrReferenced = errors.New("tables that fresh-start keeps have foreign keys to the tables it would drop")

// refuseForeignKeys fails with ErrReferenced, listing them, when tables other
// than those to drop have foreign keys to the tables to drop: drop, the named
// tables of schema, or (drop == nil) every table of schema.
func refuseForeignKeys(ctx context.Context, tx *sql.Tx, schema string, drop []string) error {
	whole := drop == nil
	if drop == nil {
		drop = []string{}
	}
	rows, err := tx.QueryContext(ctx, `SELECT sn.nspname, s.relname, c.conname, d.relname
FROM pg_constraint c
JOIN pg_class s ON s.oid = c.conrelid JOIN pg_namespace sn ON sn.oid = s.relnamespace
JOIN pg_class d ON d.oid = c.confrelid JOIN pg_namespace dn ON dn.oid = d.relnamespace
WHERE c.contype = 'f' AND dn.nspname = $1 AND ($2 OR d.relname = ANY($3::text[]))
  AND NOT (sn.nspname = $1 AND ($2 OR s.relname = ANY($3::text[])))
ORDER BY 1, 2, 3`, schema, whole, drop)
	if err != nil {
		return err
	}
	defer func() { _ = rows.Close() }()
	var found []string
	for rows.Next() {
		var srcSchema, src, con, dst string
		if err := rows.Scan(&srcSchema, &src, &con, &dst); err != nil {
			return err
		}
		if srcSchema != schema {
			src = srcSchema + "." + src
		}
		found = append(found, fmt.Sprintf("table %s (constraint %s references %s)", src, con, dst))
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(found) == 0 {
		return nil
	}
	what := "drop those tables first (and their migration records, e.g. the host's <name>_migrations table, so that its migrations create them again), " +
		"or keep pierre in a schema of its own (search_path=pierre in " + pierredb.EnvDatabaseURL + "), where fresh-start drops the whole schema"
	if whole {
		what = "drop those constraints or tables first (and their migration records), or move them into schema " + schema
	}
	return &advice{err: fmt.Errorf("refusing to delete: %w: %s", ErrReferenced, strings.Join(found, ", ")),
		what: what + "; nothing was deleted"}
}

// dependents explains a drop refused because objects that fresh-start does
// not drop (a host's view or trigger) depend on pierre's.
func dependents(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "2BP01" {
		return err
	}
	return &advice{err: fmt.Errorf("refusing to delete: %w: %s", err, strings.ReplaceAll(pe.Detail, "\n", "; ")),
		what: "drop those objects first (they are not pierre's, and fresh-start never removes them); nothing was deleted"}
}

// lockTimeout explains a lock timeout: other sessions use the tables.
func lockTimeout(err error) error {
	if strings.Contains(err.Error(), "lock timeout") || strings.Contains(err.Error(), "55P03") {
		return fmt.Errorf("%w\n  -> other sessions hold pierre's tables (running servers?): stop them and retry; nothing was deleted", err)
	}
	return err
}
