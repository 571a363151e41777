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

func TestRotateMasterKey(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := context.Background()
		h := newHarness(t, e)
		h.stdin = "correct horse battery\n"
		token := secretLine(t, h.must("setup", "--email", "admin@example.com", "--password-stdin"))
		oldKey := h.key

		newFile := filepath.Join(t.TempDir(), "new.key")
		r := h.must("rotate-master-key", "--generate", newFile)
		newKey, err := keyring.LoadMasterKeyFile(newFile, keyring.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if r.stdout != "" || !strings.Contains(r.stderr, newKey.Fingerprint()) || !strings.Contains(r.stderr, keyring.EnvPreviousMasterKey) {
			t.Fatalf("rotate-master-key output: %v", r)
		}
		if _, err := pierredb.Open(h.url, oldKey); !errors.Is(err, keyring.ErrWrongMasterKey) {
			t.Fatalf("the old key still opens the database: %v", err)
		}
		db, err := pierredb.Open(h.url, newKey)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.AdminTokens().Verify(ctx, token, ""); err != nil {
			t.Fatalf("secrets after a master key rotation: %v", err)
		}
		_ = db.Close()

		// The environment still holds the old key: refused, no file made.
		other := filepath.Join(t.TempDir(), "other.key")
		h.fails(manage.ExitError, []string{"wrong master encryption key"}, "rotate-master-key", "--generate", other)
		if _, err := os.Stat(other); err == nil {
			t.Fatal("a key file was made although the current key is wrong")
		}

		// A rollover: the new key current, the old one previous; then back
		// to the old key from stdin.
		delete(h.env, keyring.EnvMasterKey)
		h.env[keyring.EnvMasterKeyPath] = newFile
		h.stdin = oldKey.EncodeBase64() + "\n"
		h.must("rotate-master-key", "--new-key-stdin")
		h.env[keyring.EnvMasterKeyPath] = ""
		h.env[keyring.EnvMasterKey] = newKey.EncodeBase64()
		h.env[keyring.EnvPreviousMasterKey] = oldKey.EncodeBase64()
		r = h.must("rotate-master-key")
		if !strings.Contains(r.stderr, "finishing a rollover") || !strings.Contains(r.stderr, newKey.Fingerprint()) {
			t.Fatal(r)
		}
		delete(h.env, keyring.EnvPreviousMasterKey)
		h.must("status")
		h.stdin = "not a key\n"
		h.fails(manage.ExitError, []string{"invalid master encryption key"}, "rotate-master-key", "--new-key-stdin")
	})
}

func TestRotateDataKey(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := context.Background()
		h := newHarness(t, e)
		h.stdin = "correct horse battery\n"
		token := secretLine(t, h.must("setup", "--email", "admin@example.com", "--password-stdin")) // seals the JWT signing secret

		r := h.must("rotate-data-key", "--batch", "1")
		if !strings.Contains(r.stderr, "version 2 is now primary") || !strings.Contains(r.stderr, "re-encrypted 1 secrets") {
			t.Fatal(r)
		}
		db := h.open()
		if _, err := db.AdminTokens().Verify(ctx, token, ""); err != nil {
			t.Fatalf("the token after a data key rotation: %v", err)
		}
		prog, err := db.Rotation().Progress(ctx)
		if err != nil || prog.Remaining() != 0 || prog.Primary != 2 {
			t.Fatalf("progress: %+v %v", prog, err)
		}
		retired := func() bool {
			for _, k := range db.Keyring().Keys() {
				if k.Purpose == keyring.PurposeEncryption && k.Version == 1 {
					return k.State == keyring.StateRetired
				}
			}
			t.Fatal("version 1 is gone")
			return false
		}
		if err := db.Keyring().Reload(ctx); err != nil {
			t.Fatal(err)
		}
		switch e.Backend {
		case pierredb.SQLite:
			// Nobody else had the database open: retired at once.
			if !retired() || !strings.Contains(r.stderr, "retired data key version 1") {
				t.Fatalf("version 1 not retired: %v", r)
			}
			// Now db is open: a second rotation keeps the old version.
			r = h.must("rotate-data-key")
			if !strings.Contains(r.stderr, "in use") || !strings.Contains(r.stderr, "--resume --retire") {
				t.Fatal(r)
			}
		case pierredb.Postgres:
			if retired() || !strings.Contains(r.stderr, "--resume --retire") {
				t.Fatalf("retired although other instances may run: %v", r)
			}
			r = h.must("rotate-data-key", "--resume", "--retire")
			if err := db.Keyring().Reload(ctx); err != nil {
				t.Fatal(err)
			}
			if !retired() {
				t.Fatalf("--retire did not retire: %v", r)
			}
		}
		if _, err := db.AdminTokens().Verify(ctx, token, ""); err != nil {
			t.Fatalf("the token after the rotations: %v", err)
		}
	})
}

func TestStatus(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		h := newHarness(t, e)
		h.stdin = "correct horse battery\n"
		token := secretLine(t, h.must("setup", "--email", "admin@example.com", "--password-stdin"))
		r := h.must("status")
		for _, want := range []string{"database    " + string(e.Backend), "schema      version", "keyring", h.key.Fingerprint(), "1 active", "1 admins", "pools"} {
			if !strings.Contains(r.stdout, want) {
				t.Fatalf("status lacks %q: %v", want, r)
			}
		}
		r = h.must("status", "--json")
		var rep manage.StatusReport
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.Users["active"] != 1 || rep.Secrets["1"] != 1 || len(rep.Migrations) == 0 {
			t.Fatalf("status --json: %+v %v", rep, err)
		}
		for _, secret := range []string{token, h.key.EncodeBase64(), "correct horse"} {
			if strings.Contains(r.stdout+r.stderr, secret) {
				t.Fatal("status shows a secret")
			}
		}
	})
}

// TestProcessEnvironment runs a command with Env.Getenv unset: the database
// comes from the process environment through pierredb.OpenFromEnv.
func TestProcessEnvironment(t *testing.T) {
	dir := t.TempDir()
	key := otherKey(t)
	t.Setenv(pierredb.EnvDatabaseURL, "sqlite:"+filepath.Join(dir, "env.db"))
	t.Setenv(keyring.EnvMasterKey, key.EncodeBase64())
	t.Setenv(keyring.EnvMasterKeyPath, "")
	t.Setenv(manage.EnvAdminPassword, "correct horse battery")
	var out, errb syncBuffer
	code := manage.Main(context.Background(), []string{"setup", "--email", "env@example.com"}, manage.Env{Stdout: &out, Stderr: &errb})
	if code != 0 || !strings.HasPrefix(out.String(), "eyJ") {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	db, err := pierredb.Open("sqlite:"+filepath.Join(dir, "env.db"), key)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Users().GetByEmail(context.Background(), "env@example.com"); err != nil {
		t.Fatal(err)
	}
}
