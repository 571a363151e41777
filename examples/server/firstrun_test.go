package main

import (
	"crypto/sha256"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

// tree lists every file and directory under dir, files with a hash of their
// bytes.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if d.IsDir() {
			out[rel+"/"] = ""
			return nil
		}
		b, err := os.ReadFile(path)
		out[rel] = fmt.Sprintf("%x", sha256.Sum256(b))
		return err
	}))
	return out
}

const setupPassword = "correct horse battery staple"

func setupArgs() []string {
	return []string{"setup", "--email", "admin@example.com", "--password-stdin"}
}

// TestFirstRunFailureLeavesNothing: a first start (no key, no database) that
// fails, on a setting, a busy port or the open itself, leaves the directory as
// it found it: no key, no database, no ./data, and what was there before stays.
func TestFirstRunFailureLeavesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the example server")
	}
	busy, err := net.Listen("tcp", ":0")
	require.NoError(t, err)
	defer busy.Close()
	_, busyPort, _ := net.SplitHostPort(busy.Addr().String())

	for _, tc := range []struct {
		name      string
		before    map[string]string // files made before the run
		env       []string
		want      string
		secret    string // must not appear in the output
		serveOnly bool   // setup does not listen
	}{
		{name: "port in use", env: []string{envPort + "=" + busyPort}, want: "listen on port " + busyPort, serveOnly: true},
		{name: "bad port", env: []string{envPort + "=http"}, want: "is not a port number", serveOnly: true},
		{name: "bad previous key", env: []string{keyring.EnvPreviousMasterKey + "=not-a-key-at-all"}, want: keyring.EnvPreviousMasterKey,
			secret: "not-a-key-at-all"},
		{name: "bad pool size", env: []string{pierredb.EnvMaxConnections + "=lots"}, want: pierredb.EnvMaxConnections},
		{name: "bad url", env: []string{pierredb.EnvDatabaseURL + "=sqlite:"}, want: pierredb.EnvDatabaseURL},
		{name: "bad postgres url", env: []string{pierredb.EnvDatabaseURL + "=postgres://u:hunter2@[::1/db"}, want: pierredb.EnvDatabaseURL,
			secret: "hunter2"},
		{name: "open fails after the key is made", env: []string{pierredb.EnvDatabaseURL + "=sqlite:./data/db/users.db?mode=rw"},
			want: "removed the development key"},
		{name: "what existed stays", before: map[string]string{"data/notes.txt": "mine"},
			env: []string{pierredb.EnvDatabaseURL + "=sqlite:./data/users.db?mode=rw"}, want: "removed the development key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tc.before {
				require.NoError(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o700))
				require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600))
			}
			want := tree(t, dir)
			runs := [][]string{nil, setupArgs()}
			if tc.serveOnly {
				runs = runs[:1]
			}
			for _, args := range runs {
				stdout, stderr, err := runStdin(t, dir, args, setupPassword+"\n", tc.env...)
				require.Error(t, err, "%v: %s%s", args, stdout, stderr)
				assert.Contains(t, stderr, tc.want, "%v", args)
				if tc.secret != "" {
					assert.NotContains(t, stdout+stderr, tc.secret, "%v", args)
				}
				assert.Equal(t, want, tree(t, dir), "%v: the directory is as it was", args)
			}
		})
	}
}

// TestExistingDatabaseWithoutKey: a database pierre initialised, on either
// engine and under any spelling of its URL, with no key configured, stops
// serve and setup with a message naming the key variables, and nothing is
// written: no development key is made for it.
func TestExistingDatabaseWithoutKey(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the example server")
	}
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		type variant struct{ name, url string }
		var variants []variant
		var pgURL string
		if e.Backend == pierredb.SQLite {
			variants = []variant{{"default", ""}, {"upper-case scheme", "SQLITE:./data/users.db"}, {"sqlite3", "sqlite3:data/users.db"},
				{"slashes", "Sqlite://./data/users.db?mode=rwc"}}
		} else {
			pgURL = e.NewURL(t)
			e.OpenURL(t, pgURL)
			variants = []variant{{"postgres", pgURL}}
		}
		for _, v := range variants {
			t.Run(v.name, func(t *testing.T) {
				dir := t.TempDir()
				if e.Backend == pierredb.SQLite {
					require.NoError(t, os.Mkdir(filepath.Join(dir, "data"), 0o700))
					db, err := pierredb.Open("sqlite:"+filepath.Join(dir, "data", "users.db"), e.Key)
					require.NoError(t, err)
					require.NoError(t, db.Close())
				}
				var env []string
				if v.url != "" {
					env = append(env, pierredb.EnvDatabaseURL+"="+v.url)
				}
				want := tree(t, dir)
				for _, args := range [][]string{nil, setupArgs()} {
					stdout, stderr, err := runStdin(t, dir, args, setupPassword+"\n", env...)
					require.Error(t, err, "%v: %s%s", args, stdout, stderr)
					assert.Contains(t, stderr, "exists but no master key is configured", "%v", args)
					assert.Contains(t, stderr, keyring.EnvMasterKey, "%v", args)
					assert.Contains(t, stderr, keyring.EnvMasterKeyPath, "%v", args)
					assert.NotContains(t, stderr, "generated a development key", "%v", args)
					assert.Equal(t, want, tree(t, dir), "%v: nothing was written", args)
				}
			})
		}
	})
}

// TestSetupOnFirstRun: on a brand-new checkout, setup follows serve's key
// rule (it makes ./data/master.key and says so), and the server then starts
// with that key and that admin; a setup that fails leaves nothing behind.
func TestSetupOnFirstRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the example server")
	}
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		for _, tc := range []struct {
			name     string
			password string
			ok       bool
		}{
			{name: "first admin", password: setupPassword, ok: true},
			{name: "password too short", password: "pw1"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				dir := t.TempDir()
				var env []string
				if e.Backend == pierredb.Postgres {
					env = []string{pierredb.EnvDatabaseURL + "=" + e.NewURL(t)}
				}
				stdout, stderr, err := runStdin(t, dir, setupArgs(), tc.password+"\n", env...)
				if !tc.ok {
					require.Error(t, err, stdout+stderr)
					assert.NotContains(t, stdout+stderr, tc.password)
					if e.Backend == pierredb.SQLite {
						assert.Empty(t, tree(t, dir), "a failed first setup leaves nothing")
					}
					return
				}
				require.NoError(t, err, stderr)
				assert.Contains(t, stderr, "generated a development key in data/master.key")
				assert.NotEmpty(t, strings.TrimSpace(stdout), "the admin token")
				st, err := os.Stat(filepath.Join(dir, "data", "master.key"))
				require.NoError(t, err)
				assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())

				s := start(t, dir, env...)
				assert.NotContains(t, s.stderr.String(), "generated a development key")
				code, body := call(t, "GET", s.base+"/admin/setup/status", "", nil)
				require.Equal(t, 200, code)
				assert.Equal(t, false, body["needs_setup"])
				s.stop(t)
			})
		}
	})
}
