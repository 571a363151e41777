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
		r = hp.fails(manage.ExitManual, []string{"not done here"}, "restore", filepath.Join(dir, "out.dump"))
		if !strings.Contains(r.stdout, "pg_restore") || strings.Contains(r.stdout, "s3cret") {
			t.Fatalf("restore form: %v", r)
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
		h.must("fresh-start", "--yes")
		raw := e.OpenRaw(t, h.url)
		var n int
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
		hp := &harness{t: t, e: e, env: map[string]string{pierredb.EnvDatabaseURL: pub}}
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
