package manage_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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

// cancelOnKeyringWrite is a slog.Handler for pierredb.WithQueryLog that
// cancels the command's context as soon as the keyring's rows are written:
// the rotation's transaction then fails between its write and its COMMIT.
type cancelOnKeyringWrite struct{ cancel context.CancelFunc }

func (c cancelOnKeyringWrite) Enabled(context.Context, slog.Level) bool { return true }
func (c cancelOnKeyringWrite) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c cancelOnKeyringWrite) WithGroup(string) slog.Handler            { return c }
func (c cancelOnKeyringWrite) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		q := a.Value.String()
		if a.Key == "query" && strings.Contains(q, "INSERT") && strings.Contains(q, "keyring_keys") {
			c.cancel()
		}
		return true
	})
	return nil
}

// TestRotateMasterKeyFailure makes `rotate-master-key --generate` fail before,
// during and after its write: the generated key file is deleted only when
// nothing can have been written, and the output says which key the database
// uses, read back through a new connection.
func TestRotateMasterKeyFailure(t *testing.T) {
	t.Parallel()
	dropped := errors.New("connection reset by peer")
	rotateThenFail := func(ctx context.Context, kr *keyring.Keyring, k keyring.MasterKey) error {
		if err := kr.RotateMasterKey(ctx, k); err != nil {
			return err
		}
		return fmt.Errorf("update keyring: %w", dropped) // the reply to COMMIT was lost
	}
	failBeforeWrite := func(context.Context, *keyring.Keyring, keyring.MasterKey) error {
		return fmt.Errorf("update keyring: %w", dropped) // BEGIN or the write failed
	}
	cases := []struct {
		name string
		// wrap sets the failure up; cancel is the command context's.
		wrap func(env manage.Env, cancel context.CancelFunc) manage.Env
		// rotated: the database ends up under the new key.
		rotated bool
		code    int
		// keptFile: the generated key file must still exist.
		keptFile bool
		want     []string
	}{
		{
			name: "error after commit",
			wrap: func(env manage.Env, _ context.CancelFunc) manage.Env {
				return manage.WithRotateMasterKeyFunc(env, rotateThenFail)
			},
			rotated: true, code: manage.ExitOK, keptFile: true,
			want: []string{"connection reset", "read back just now", "took effect"},
		},
		{
			name: "error after commit, read-back fails",
			wrap: func(env manage.Env, _ context.CancelFunc) manage.Env {
				env = manage.WithRotateMasterKeyFunc(env, rotateThenFail)
				return manage.WithStoredFingerprintsFunc(env, func(context.Context) ([]string, error) {
					return nil, errors.New("server closed the connection")
				})
			},
			rotated: true, code: manage.ExitError, keptFile: true,
			want: []string{manage.ErrRotationUncertain.Error(), "do NOT delete", "status"},
		},
		{
			name: "ambiguous error, nothing written",
			wrap: func(env manage.Env, _ context.CancelFunc) manage.Env {
				return manage.WithRotateMasterKeyFunc(env, failBeforeWrite)
			},
			code: manage.ExitError, keptFile: true,
			want: []string{"connection reset", "still uses the master key", "nothing was rotated"},
		},
		{
			name: "context cancelled between write and commit",
			wrap: func(env manage.Env, cancel context.CancelFunc) manage.Env {
				env.Options = append(env.Options, pierredb.WithQueryLog(slog.New(cancelOnKeyringWrite{cancel: cancel})))
				return env
			},
			code: manage.ExitError, keptFile: true,
			want: []string{"context canceled", "still uses the master key", "nothing was rotated"},
		},
		{
			name: "keyring refuses before writing",
			wrap: func(env manage.Env, _ context.CancelFunc) manage.Env {
				return manage.WithRotateMasterKeyFunc(env, func(context.Context, *keyring.Keyring, keyring.MasterKey) error {
					return fmt.Errorf("%w: a key does not unwrap", keyring.ErrKeyringCorrupt)
				})
			},
			code: manage.ExitError, keptFile: false,
			want: []string{"nothing was written", "does not unwrap"},
		},
	}
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				h := newHarness(t, e)
				h.stdin = "correct horse battery\n"
				h.must("setup", "--email", "admin@example.com", "--password-stdin")
				file := filepath.Join(t.TempDir(), "new.key")
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				r := h.runWith(ctx, func(env manage.Env) manage.Env { return c.wrap(env, cancel) }, "rotate-master-key", "--generate", file)
				require.Equal(t, c.code, r.code, "%v", r)
				for _, w := range c.want {
					require.Contains(t, r.stderr, w, "%v", r)
				}
				newKey, err := keyring.LoadMasterKeyFile(file, keyring.LoadOptions{})
				if !c.keptFile {
					require.ErrorIs(t, err, os.ErrNotExist, "the unused key file was not removed: %v", r)
					return
				}
				require.NoError(t, err, "the new key file was deleted: %v", r)
				if c.code != manage.ExitOK {
					// A failure names both keys, so that `status` can tell.
					require.Contains(t, r.stderr, h.key.Fingerprint())
					require.Contains(t, r.stderr, newKey.Fingerprint())
				}
				uses, other := h.key, newKey
				if c.rotated {
					uses, other = newKey, h.key
				}
				db, err := pierredb.Open(h.url, uses)
				require.NoError(t, err, "the key the database should use does not open it")
				_ = db.Close()
				_, err = pierredb.Open(h.url, other)
				require.ErrorIs(t, err, keyring.ErrWrongMasterKey)
			})
		}
	})
}
