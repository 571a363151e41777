package manage_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/manage"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

func TestCommandLine(t *testing.T) {
	t.Parallel()
	h := &harness{t: t, env: map[string]string{}}
	cases := []struct {
		args []string
		code int
		want string
	}{
		{nil, manage.ExitUsage, "no command given"},
		{[]string{"frobnicate"}, manage.ExitUsage, `unknown command "frobnicate"`},
		{[]string{"users"}, manage.ExitUsage, "users needs a subcommand"},
		{[]string{"users", "delete-all"}, manage.ExitUsage, `unknown command "users delete-all"`},
		{[]string{"users", "approve"}, manage.ExitUsage, "needs EMAIL"},
		{[]string{"users", "approve", "a@b.c", "d@e.f"}, manage.ExitUsage, "unexpected argument"},
		{[]string{"users", "list", "--status", "happy"}, manage.ExitUsage, "use pending, active or suspended"},
		{[]string{"setup"}, manage.ExitUsage, "setup needs --email"},
		{[]string{"setup", "--email", "a@b.c"}, manage.ExitUsage, "--password-stdin"},
		{[]string{"setup", "--email", "a@b.c", "--password-stdin", "--password-file", "x"}, manage.ExitUsage, "not both"},
		{[]string{"admin-tokens", "create", "--service", "x"}, manage.ExitUsage, "--permission"},
		{[]string{"admin-tokens", "create", "--service", "x", "--permission", "launch_missiles"}, manage.ExitUsage, "is not an admin permission"},
		{[]string{"admin-tokens", "create", "--service", "x", "--super-admin", "--expires-in", "soon"}, manage.ExitUsage, "not a duration"},
		{[]string{"fresh-start"}, manage.ExitUsage, "--yes"},
		{[]string{"rotate-master-key"}, manage.ExitUsage, "needs the new key"},
		{[]string{"rotate-master-key", "--generate", "a", "--new-key-file", "b"}, manage.ExitUsage, "give one of"},
		{[]string{"rotate-data-key", "--retire", "--keep-old"}, manage.ExitUsage, "not both"},
		{[]string{"backup"}, manage.ExitUsage, "needs DEST"},
		{[]string{"status", "--bogus"}, manage.ExitUsage, "flag provided but not defined"},
		{[]string{"help", "nonsense"}, manage.ExitUsage, "unknown command"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, "_"), func(t *testing.T) {
			h := &harness{t: t, env: h.env}
			r := h.fails(c.code, []string{c.want}, c.args...)
			if r.stdout != "" {
				t.Fatalf("usage errors write nothing to stdout: %v", r)
			}
			if c.code == manage.ExitUsage && !strings.Contains(r.stderr, "Usage") && !strings.Contains(r.stderr, "pierre ") {
				t.Fatalf("a usage error shows the usage: %v", r)
			}
		})
	}
	r := h.must("help")
	for _, name := range []string{"keygen", "setup", "users approve", "admin-tokens create", "api-key create", "backup", "restore",
		"fresh-start", "rotate-master-key", "rotate-data-key", "status"} {
		if !strings.Contains(r.stdout, "pierre "+name) {
			t.Errorf("help lacks %q", name)
		}
	}
	for _, w := range []string{"users", "tokens", "backup", "help", "--help"} {
		if !manage.IsCommand(w) {
			t.Errorf("IsCommand(%q) = false", w)
		}
	}
	if manage.IsCommand("serve") || manage.IsCommand("") {
		t.Error("IsCommand accepts what is not a command")
	}
}

func TestKeygen(t *testing.T) {
	t.Parallel()
	h := &harness{t: t, env: map[string]string{}}
	r := h.must("keygen")
	k, err := keyring.ParseMasterKey(secretLine(t, r))
	if err != nil {
		t.Fatalf("keygen printed no key: %v", err)
	}
	if !strings.Contains(r.stderr, k.Fingerprint()) {
		t.Fatalf("stderr names the fingerprint: %v", r)
	}

	path := filepath.Join(t.TempDir(), "keys", "master.key")
	r = h.must("keygen", "--out", path)
	if r.stdout != "" {
		t.Fatalf("keygen --out prints no key: %v", r)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", fi, err)
	}
	loaded, err := keyring.LoadMasterKeyFile(path, keyring.LoadOptions{})
	if err != nil || !strings.Contains(r.stderr, loaded.Fingerprint()) {
		t.Fatalf("the key file does not load, or its fingerprint is not named: %v %v", err, r)
	}
	before, _ := os.ReadFile(path)
	h.fails(manage.ExitError, []string{"exists already", "never overwritten"}, "keygen", "--out", path)
	after, _ := os.ReadFile(path)
	if string(before) != string(after) {
		t.Fatal("keygen overwrote a key file")
	}
}

func TestSetup(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		h := newHarness(t, e)
		h.stdin = "correct horse battery\n"
		r := h.must("setup", "--email", "Admin@Example.com", "--password-stdin", "--name", "Ada")
		token := secretLine(t, r)
		if strings.Contains(r.stderr, "correct horse") {
			t.Fatal("the password was echoed")
		}
		db := h.open()
		ctx := context.Background()
		p, err := db.AdminTokens().Verify(ctx, token, pierredb.AdminManageUsers)
		if err != nil || !p.SuperAdmin || p.ServiceName != "initial_admin_setup" || p.ExpiresAt.IsZero() {
			t.Fatalf("setup's token: %+v, %v", p, err)
		}
		u, err := db.Users().GetByEmail(ctx, "admin@example.com")
		if err != nil || !u.IsAdmin || u.Status != pierredb.StatusActive || u.DisplayName != "Ada" {
			t.Fatalf("setup's admin: %+v, %v", u, err)
		}
		if _, err := db.Authenticate(ctx, "admin@example.com", "correct horse battery"); err != nil {
			t.Fatalf("the admin cannot sign in: %v", err)
		}

		// Once only; the failed second run creates nothing.
		h.stdin = "another password\n"
		h.fails(manage.ExitError, []string{"already exists", "users make-admin"}, "setup", "--email", "other@example.com", "--password-stdin")
		if _, err := db.Users().GetByEmail(ctx, "other@example.com"); !errors.Is(err, pierredb.ErrNotFound) {
			t.Fatalf("a refused setup left a user behind: %v", err)
		}

		// Password from a file, or the environment; never expiring.
		h2 := newHarness(t, e)
		pwFile := filepath.Join(t.TempDir(), "pw")
		if err := os.WriteFile(pwFile, []byte("from a file 123\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		secretLine(t, h2.must("setup", "--email", "a@example.com", "--password-file", pwFile, "--expires-in", "0"))
		toks, err := h2.open().AdminTokens().List(ctx, pierredb.ListOptions{})
		if err != nil || len(toks.Items) != 1 || !toks.Items[0].ExpiresAt.IsZero() {
			t.Fatalf("--expires-in 0: %+v %v", toks, err)
		}
		h3 := newHarness(t, e)
		h3.env[manage.EnvAdminPassword] = "from the environment"
		secretLine(t, h3.must("setup", "--email", "b@example.com"))
		if _, err := h3.open().Authenticate(ctx, "b@example.com", "from the environment"); err != nil {
			t.Fatal(err)
		}
		// A too-short password is refused with pierredb's reason.
		h4 := newHarness(t, e)
		h4.stdin = "short\n"
		h4.fails(manage.ExitError, []string{"setup:", "8"}, "setup", "--email", "c@example.com", "--password-stdin")
	})
}

// TestWrongKey: every command that opens the database, with a wrong or a
// missing key, exits 1 with a message naming the key, and changes no file.
func TestWrongKey(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		h := newHarness(t, e)
		db := h.open()
		newUser(t, db, "pending@example.com")
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		var before map[string]string
		if e.Backend == pierredb.SQLite {
			before = snapshot(t, filepath.Dir(h.path()))
		}
		commands := [][]string{
			{"setup", "--email", "x@example.com", "--password-stdin"},
			{"users", "list"},
			{"users", "approve", "pending@example.com"},
			{"users", "make-admin", "pending@example.com"},
			{"admin-tokens", "create", "--service", "svc", "--super-admin"},
			{"api-key", "create", "pending@example.com"},
			{"rotate-master-key", "--generate", filepath.Join(t.TempDir(), "new.key")},
			{"rotate-data-key"},
			{"status"},
		}
		h.stdin = "a long enough password\n"
		for _, key := range []string{otherKey(t).EncodeBase64(), ""} {
			h.env[keyring.EnvMasterKey] = key
			want := []string{"wrong master encryption key", "nothing was written", keyring.EnvMasterKey}
			if key == "" {
				want = []string{"master encryption key missing", keyring.EnvMasterKey, keyring.EnvMasterKeyPath}
			}
			for _, args := range commands {
				r := h.fails(manage.ExitError, want, args...)
				if r.stdout != "" {
					t.Fatalf("%v printed to stdout: %v", args, r)
				}
			}
		}
		if _, err := os.Stat(filepath.Join(t.TempDir(), "new.key")); err == nil {
			t.Fatal("rotate-master-key --generate wrote a key file although the current key was wrong")
		}
		if e.Backend == pierredb.SQLite {
			sameSnapshot(t, before, snapshot(t, filepath.Dir(h.path())))
		}
		h.env[keyring.EnvMasterKey] = h.key.EncodeBase64()
		u, err := h.open().Users().GetByEmail(context.Background(), "pending@example.com")
		if err != nil || u.Status != pierredb.StatusPending || u.IsAdmin {
			t.Fatalf("a refused command changed the user: %+v %v", u, err)
		}
	})
}

func TestUsers(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := context.Background()
		h := newHarness(t, e)
		db := h.open()
		alice := newUser(t, db, "alice@example.com")
		newUser(t, db, "bob@example.com")

		r := h.must("users", "list", "--status", "pending")
		if !strings.Contains(r.stdout, "alice@example.com") || !strings.Contains(r.stdout, "bob@example.com") {
			t.Fatalf("pending users not listed: %v", r)
		}

		steps := []struct {
			args   []string
			status pierredb.UserStatus
			admin  bool
			want   string
		}{
			{[]string{"users", "approve", "ALICE@example.com"}, pierredb.StatusActive, false, "approved alice@example.com"},
			{[]string{"users", "suspend", "alice@example.com"}, pierredb.StatusSuspended, false, "suspended alice@example.com"},
			{[]string{"users", "reactivate", "alice@example.com"}, pierredb.StatusActive, false, "now active"},
			{[]string{"users", "make-admin", "alice@example.com"}, pierredb.StatusActive, true, "is now an admin"},
			{[]string{"users", "make-admin", "alice@example.com"}, pierredb.StatusActive, true, "is an admin already"},
		}
		for _, s := range steps {
			r := h.must(s.args...)
			if !strings.Contains(r.stderr, s.want) {
				t.Fatalf("%v: %v", s.args, r)
			}
			u, err := db.Users().Get(ctx, alice.ID)
			if err != nil || u.Status != s.status || u.IsAdmin != s.admin {
				t.Fatalf("after %v: %+v %v", s.args, u, err)
			}
		}
		u, _ := db.Users().Get(ctx, alice.ID)
		if u.ApprovedByService != manage.DefaultService {
			t.Fatalf("approver recorded as %q", u.ApprovedByService)
		}

		// Errors: unknown email, wrong state, hostile input.
		h.fails(manage.ExitError, []string{"no user has the email", "users list"}, "users", "approve", "nobody@example.com")
		h.fails(manage.ExitError, []string{"is active", "only pending users"}, "users", "approve", "alice@example.com")
		h.must("users", "suspend", "--", "bob@example.com")
		h.fails(manage.ExitError, []string{"already suspended"}, "users", "suspend", "bob@example.com")
		h.fails(manage.ExitError, []string{"invalid argument"}, "users", "approve", "bob\x00@example.com")

		r = h.must("users", "list", "--json", "--admins")
		var listed []map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &listed); err != nil || len(listed) != 1 || listed[0]["email"] != "alice@example.com" {
			t.Fatalf("users list --json --admins: %v %v", err, r)
		}
	})
}
