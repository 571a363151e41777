package manage_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/manage"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

// withPassword returns u with password pw in its user info.
func withPassword(t *testing.T, raw, pw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), pw)
	return u.String()
}

func TestPostgresBackup(t *testing.T) {
	t.Parallel()
	storetest.RunOn(t, pierredb.Postgres, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		h := newHarness(t, e)
		h.stdin = "correct horse battery\n"
		h.must("setup", "--email", "admin@example.com", "--password-stdin")
		schema := firstSchemaOf(t, h.url)

		// The password goes through PGPASSWORD, never the command line.
		const pw = "s3cret-p@ss word"
		dir := t.TempDir()
		fake := filepath.Join(dir, "pg_dump")
		record := filepath.Join(dir, "record")
		script := "#!/bin/sh\nprintf '%s\\n' \"$@\" > " + record + "\nprintf 'PGPASSWORD=%s\\n' \"$PGPASSWORD\" >> " + record +
			"\nfor a in \"$@\"; do case \"$a\" in --file=*) echo dump > \"${a#--file=}\";; esac; done\n"
		if err := os.WriteFile(fake, []byte(script), 0o700); err != nil {
			t.Fatal(err)
		}
		hp := &harness{t: t, e: e, url: h.url, env: map[string]string{pierredb.EnvDatabaseURL: withPassword(t, h.url, pw)}, pgDump: fake}
		r := hp.must("backup", filepath.Join(dir, "out.dump"))
		got, err := os.ReadFile(record)
		if err != nil {
			t.Fatal(err)
		}
		args, env, _ := strings.Cut(string(got), "PGPASSWORD=")
		if strings.Contains(args, "s3cret") || strings.Contains(r.stderr+r.stdout, "s3cret") {
			t.Fatalf("the password is on pg_dump's command line or in the output:\n%s\n%v", args, r)
		}
		if strings.TrimSpace(env) != pw {
			t.Fatalf("PGPASSWORD = %q", env)
		}
		for _, want := range []string{"--format=custom", "--schema=\"" + schema + "\"", "--no-password", "application_name=pierre-backup"} {
			if !strings.Contains(args, want) {
				t.Fatalf("pg_dump arguments lack %q:\n%s", want, args)
			}
		}
		if strings.Contains(args, "search_path") {
			t.Fatalf("pierre's search_path parameter reached libpq:\n%s", args)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "out.dump")); string(b) != "dump\n" {
			t.Fatal("the dump was not moved into place")
		}

		// Without pg_dump: the documented command, without the password, and exit 3.
		hp.pgDump = filepath.Join(dir, "missing", "pg_dump")
		r = hp.fails(manage.ExitManual, []string{"not done here"}, "backup", filepath.Join(dir, "x.dump"))
		if !strings.Contains(r.stdout, "pg_dump --format=custom") || strings.Contains(r.stdout, "s3cret") {
			t.Fatalf("manual form: %v", r)
		}
		r = hp.fails(manage.ExitError, []string{"not a pg_dump custom-format archive", "nothing was done"}, "restore", filepath.Join(dir, "out.dump"))
		if r.stdout != "" || strings.Contains(r.stderr, "s3cret") {
			t.Fatalf("restore of a fake dump: %v", r)
		}

		// With the real pg_dump, when installed: a dump pg_restore can read.
		if _, err := exec.LookPath("pg_dump"); err != nil {
			t.Log("pg_dump not installed: the real dump is not tested")
			return
		}
		h.must("backup", filepath.Join(dir, "real.dump"))
		out, err := exec.Command("pg_restore", "--list", filepath.Join(dir, "real.dump")).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "TABLE "+schema+" users") || !strings.Contains(string(out), "keyring_keys") {
			t.Fatalf("pg_restore --list: %v\n%s", err, out)
		}
	})
}

func firstSchemaOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if s := u.Query().Get("search_path"); s != "" {
		return s
	}
	return "public"
}

func TestFreshStartPostgres(t *testing.T) {
	t.Parallel()
	storetest.RunOn(t, pierredb.Postgres, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := context.Background()

		// A schema of pierre's own: dropped whole.
		h := newHarness(t, e)
		db := h.open()
		newUser(t, db, "a@example.com")
		oldID := db.Info().KeyringID
		_ = db.Close()
		schema := firstSchemaOf(t, h.url)
		h.fails(manage.ExitUsage, []string{"--yes"}, "fresh-start")
		delete(h.env, keyring.EnvMasterKey) // no key needed
		// A table in another schema with a foreign key into pierre's: DROP
		// SCHEMA ... CASCADE would silently remove the constraint.
		raw := e.OpenRaw(t, h.url)
		other := firstSchemaOf(t, e.NewURL(t))
		if _, err := raw.ExecContext(ctx, "CREATE TABLE "+other+".host_refs (user_id text REFERENCES "+schema+".users(id))"); err != nil {
			t.Fatal(err)
		}
		h.fails(manage.ExitError, []string{"refusing to delete", other + ".host_refs", "host_refs_user_id_fkey", "nothing was deleted"}, "fresh-start", "--yes")
		var n int
		if err := raw.QueryRowContext(ctx, "SELECT count(*) FROM "+schema+".users").Scan(&n); err != nil || n != 1 {
			t.Fatalf("refused, yet pierre's users changed: %d %v", n, err)
		}
		if _, err := raw.ExecContext(ctx, "DROP TABLE "+other+".host_refs"); err != nil {
			t.Fatal(err)
		}
		h.must("fresh-start", "--yes")
		if err := raw.QueryRowContext(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = $1", schema).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%d tables left in %s: %v", n, schema, err)
		}
		db = h.open()
		if c, err := db.Users().Count(ctx, pierredb.UserFilter{}); err != nil || c != 0 || db.Info().KeyringID == oldID {
			t.Fatalf("not fresh: %d users, %v", c, err)
		}

		// The public schema of a database of its own: pierre's objects go,
		// the host's table stays.
		admin := e.OpenRaw(t, os.Getenv(storetest.EnvPostgresURL))
		name := fmt.Sprintf("pierre_fresh_%d", os.Getpid())
		_, _ = admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name)
		if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_, _ = admin.ExecContext(context.WithoutCancel(ctx), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		})
		u, _ := url.Parse(os.Getenv(storetest.EnvPostgresURL))
		u.Path = "/" + name
		pub := u.String()
		db, err := pierredb.Open(pub, e.Key)
		if err != nil {
			t.Fatal(err)
		}
		newUser(t, db, "b@example.com")
		_ = db.Close()
		rawPub, err := sql.Open("pgx", pub)
		if err != nil {
			t.Fatal(err)
		}
		defer rawPub.Close()
		if _, err := rawPub.ExecContext(ctx, "CREATE TABLE host_activities (id text PRIMARY KEY, user_id text REFERENCES users(id))"); err != nil {
			t.Fatal(err)
		}
		if _, err := rawPub.ExecContext(ctx, "CREATE TABLE host_tenant_notes (tenant_id text, user_id text, "+
			"CONSTRAINT notes_member FOREIGN KEY (tenant_id, user_id) REFERENCES tenant_users(tenant_id, user_id))"); err != nil {
			t.Fatal(err)
		}
		// The host's tables reference pierre's: CASCADE would drop their
		// constraints for good (the host's migration record stays), so it
		// refuses, names them, and deletes nothing.
		hp := &harness{t: t, e: e, env: map[string]string{pierredb.EnvDatabaseURL: pub}}
		hp.fails(manage.ExitError, []string{"refusing to delete", "host_activities (constraint host_activities_user_id_fkey references users)",
			"host_tenant_notes (constraint notes_member references tenant_users)", "_migrations", "search_path", "nothing was deleted"}, "fresh-start", "--yes")
		var fks int
		if err := rawPub.QueryRowContext(ctx, "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conrelid::regclass::text IN ('host_activities', 'host_tenant_notes')").Scan(&fks); err != nil || fks != 2 {
			t.Fatalf("the host's foreign keys after a refusal: %d %v", fks, err)
		}
		db, err = pierredb.Open(pub, e.Key)
		if err != nil {
			t.Fatalf("pierre's database after a refusal: %v", err)
		}
		if c, err := db.Users().Count(ctx, pierredb.UserFilter{}); err != nil || c != 1 {
			t.Fatalf("refused, yet users changed: %d %v", c, err)
		}
		_ = db.Close()
		// Once the host drops them, its tables without foreign keys stay.
		if _, err := rawPub.ExecContext(ctx, "DROP TABLE host_tenant_notes; ALTER TABLE host_activities DROP CONSTRAINT host_activities_user_id_fkey"); err != nil {
			t.Fatal(err)
		}
		r := hp.must("fresh-start", "--yes")
		if !strings.Contains(r.stderr, "host_activities") {
			t.Fatalf("the host's table is not reported as kept: %v", r)
		}
		var tables []string
		rows, err := rawPub.QueryContext(ctx, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			_ = rows.Scan(&s)
			tables = append(tables, s)
		}
		rows.Close()
		var funcs int
		_ = rawPub.QueryRowContext(ctx, "SELECT count(*) FROM pg_proc p JOIN pg_namespace s ON s.oid = p.pronamespace WHERE s.nspname = 'public'").Scan(&funcs)
		if strings.Join(tables, ",") != "host_activities" || funcs != 0 {
			t.Fatalf("left in public: tables %v, %d functions", tables, funcs)
		}
		db, err = pierredb.Open(pub, otherKey(t))
		if err != nil {
			t.Fatalf("open after fresh-start: %v", err)
		}
		if c, err := db.Users().Count(ctx, pierredb.UserFilter{}); err != nil || c != 0 {
			t.Fatalf("not fresh: %d %v", c, err)
		}
		_ = db.Close()
	})
}

// runPrinted runs the commands restore printed, as an operator would paste
// them into a shell.
func runPrinted(t *testing.T, script string) {
	t.Helper()
	out, err := exec.Command("sh", "-e", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("the printed commands fail: %v\n%s\n--- script\n%s", err, out, script)
	}
}

// TestPostgresRestore checks what restore checks before printing anything,
// and runs the commands it prints: they restore the dump after the schema
// changed (a table added since, referencing pierre's), in pierre's own schema
// and, through a new database, in public.
func TestPostgresRestore(t *testing.T) {
	t.Parallel()
	storetest.RunOn(t, pierredb.Postgres, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		for _, tool := range []string{"pg_dump", "pg_restore", "psql"} {
			if _, err := exec.LookPath(tool); err != nil {
				t.Skipf("%s is not installed", tool)
			}
		}
		ctx := context.Background()
		const pw = "s3cret-p@ss"
		h := newHarness(t, e)
		h.stdin = "correct horse battery\n"
		h.must("setup", "--email", "admin@example.com", "--password-stdin")
		schema := firstSchemaOf(t, h.url)
		h.env[pierredb.EnvDatabaseURL] = withPassword(t, h.url, pw)
		dir := t.TempDir()
		dump := filepath.Join(dir, "pierre.dump")
		h.must("backup", dump)

		other := newHarness(t, e)
		other.stdin = "correct horse battery\n"
		other.must("setup", "--email", "admin@example.com", "--password-stdin")
		otherDump := filepath.Join(dir, "other.dump")
		other.must("backup", otherDump)

		write := func(name string, b []byte) string {
			p := filepath.Join(dir, name)
			require.NoError(t, os.WriteFile(p, b, 0o600))
			return p
		}
		cases := []struct {
			name, src string
			want      []string
		}{
			{"missing", filepath.Join(dir, "nope.dump"), []string{"no such file"}},
			{"directory", dir, []string{"not a regular file"}},
			{"text file", write("passwd", []byte("root:x:0:0:root:/root:/bin/sh\n")), []string{"not a pg_dump custom-format archive"}},
			{"empty", write("empty.dump", nil), []string{"not a pg_dump custom-format archive"}},
			{"damaged", write("damaged.dump", []byte("PGDMP"+strings.Repeat("\xff", 64))), []string{"pg_restore cannot read"}},
			{"another schema", otherDump, []string{"holds schema " + firstSchemaOf(t, other.url), "not schema " + schema, "search_path"}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				hc := *h // failing this subtest, not its parent
				hc.t = t
				r := hc.fails(manage.ExitError, append(c.want, "refusing to restore", "nothing was done"), "restore", c.src)
				require.Empty(t, r.stdout)
				require.NotContains(t, r.stderr, pw)
			})
		}

		// Changes after the backup, a host table referencing pierre's among
		// them: pg_restore --clean cannot drop users under it.
		db := h.open()
		newUser(t, db, "late@example.com")
		_ = db.Close()
		raw := e.OpenRaw(t, h.url)
		_, err := raw.ExecContext(ctx, "CREATE TABLE "+schema+".host_refs (user_id text REFERENCES "+schema+".users(id))")
		require.NoError(t, err)

		r := h.fails(manage.ExitManual, []string{"not done here"}, "restore", dump)
		require.NotContains(t, r.stdout+r.stderr, pw)
		require.Contains(t, r.stdout, "--single-transaction")
		runPrinted(t, r.stdout)
		_, err = os.Stat(dump + ".restore.sql")
		require.ErrorIs(t, err, os.ErrNotExist, "the SQL file is left")
		db = h.open()
		_, err = db.Users().GetByEmail(ctx, "late@example.com")
		require.ErrorIs(t, err, pierredb.ErrNotFound, "a user added after the backup survived the restore")
		_, err = db.Users().GetByEmail(ctx, "admin@example.com")
		require.NoError(t, err)
		_ = db.Close()
		var n int
		require.NoError(t, raw.QueryRowContext(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = 'host_refs'", schema).Scan(&n))
		require.Zero(t, n, "a table added after the backup survived the restore")
		h.must("status")

		// public: restored into a new database, the live one left alone.
		admin := e.OpenRaw(t, os.Getenv(storetest.EnvPostgresURL))
		name := fmt.Sprintf("pierre_restore_%d", os.Getpid())
		for _, d := range []string{name, name + "_restored"} {
			_, _ = admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+d+" WITH (FORCE)")
			t.Cleanup(func() {
				_, _ = admin.ExecContext(context.WithoutCancel(ctx), "DROP DATABASE IF EXISTS "+d+" WITH (FORCE)")
			})
		}
		_, err = admin.ExecContext(ctx, "CREATE DATABASE "+name)
		require.NoError(t, err)
		u, _ := url.Parse(os.Getenv(storetest.EnvPostgresURL))
		u.Path = "/" + name
		hp := &harness{t: t, e: e, key: e.Key, env: map[string]string{pierredb.EnvDatabaseURL: withPassword(t, u.String(), pw), keyring.EnvMasterKey: e.Key.EncodeBase64()}}
		hp.stdin = "correct horse battery\n"
		hp.must("setup", "--email", "public@example.com", "--password-stdin")
		pubDump := filepath.Join(dir, "public.dump")
		hp.must("backup", pubDump)
		r = hp.fails(manage.ExitManual, []string{"not done here"}, "restore", pubDump)
		require.NotContains(t, r.stdout+r.stderr, pw)
		require.Contains(t, r.stdout, name+"_restored")
		require.NotContains(t, r.stdout, "DROP SCHEMA IF EXISTS public CASCADE")
		runPrinted(t, r.stdout)
		u.Path = "/" + name + "_restored"
		restored, err := pierredb.Open(u.String(), e.Key, pierredb.WithExistingDatabase())
		require.NoError(t, err)
		_, err = restored.Users().GetByEmail(ctx, "public@example.com")
		require.NoError(t, err)
		_ = restored.Close()
	})
}
