package pierredb_test

import (
	"bytes"
	"context"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

// TestWithExistingDatabase: a database that was never created is ErrNotFound
// and stays uncreated (no file, no directory, no schema); one that exists opens.
// Exists tells the two apart without a key and without writing.
func TestWithExistingDatabase(t *testing.T) {
	for _, e := range storetest.Engines() {
		t.Run(string(e.Backend), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			url := e.NewURL(t)
			var created func() bool
			if e.Backend == pierredb.SQLite {
				// A database in a directory that does not exist either.
				dir := filepath.Join(filepath.Dir(strings.TrimPrefix(url, "sqlite:")), "typo")
				url = "sqlite:" + filepath.Join(dir, "users.db")
				created = func() bool { _, err := os.Stat(dir); return err == nil }
			} else {
				// A schema nobody created: a mistyped search_path.
				raw := e.OpenRaw(t, url)
				u, err := neturl.Parse(url)
				require.NoError(t, err)
				q := u.Query()
				schema := q.Get("search_path") + "_typo"
				q.Set("search_path", schema)
				u.RawQuery = q.Encode()
				url = u.String()
				t.Cleanup(func() { _, _ = raw.Exec("DROP SCHEMA IF EXISTS " + schema + " CASCADE") })
				created = func() bool {
					var n int
					require.NoError(t, raw.QueryRowContext(ctx, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema).Scan(&n))
					return n > 0
				}
			}
			require.False(t, created())

			ok, err := pierredb.Exists(ctx, url)
			require.NoError(t, err)
			assert.False(t, ok)
			_, err = pierredb.OpenContext(ctx, url, e.Key, pierredb.WithExistingDatabase())
			require.ErrorIs(t, err, pierredb.ErrNotFound)
			assert.Contains(t, err.Error(), "no pierre database at")
			assert.Contains(t, err.Error(), "DATABASE_URL")
			assert.False(t, created(), "a refused open created something")

			db := e.OpenURL(t, url) // a first start creates it
			require.NoError(t, db.Close())
			var files []string
			if e.Backend == pierredb.SQLite {
				files = dirList(t, filepath.Dir(strings.TrimPrefix(url, "sqlite:")))
			}
			ok, err = pierredb.Exists(ctx, url)
			require.NoError(t, err)
			assert.True(t, ok)
			if e.Backend == pierredb.SQLite {
				assert.Equal(t, files, dirList(t, filepath.Dir(strings.TrimPrefix(url, "sqlite:"))), "Exists left files behind")
			}
			again, err := pierredb.OpenContext(ctx, url, e.Key, pierredb.WithExistingDatabase())
			require.NoError(t, err)
			require.NoError(t, again.Close())
		})
	}

	t.Run("sqlite empty file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "empty.db")
		require.NoError(t, os.WriteFile(path, nil, 0o600))
		ok, err := pierredb.Exists(context.Background(), "sqlite:"+path)
		require.NoError(t, err)
		assert.False(t, ok)
		_, err = pierredb.Open("sqlite:"+path, storetest.Engines()[0].Key, pierredb.WithExistingDatabase())
		require.ErrorIs(t, err, pierredb.ErrNotFound)
		st, err := os.Stat(path)
		require.NoError(t, err)
		assert.Zero(t, st.Size(), "the refused open wrote to the file")
	})
	t.Run("memory", func(t *testing.T) {
		ok, err := pierredb.Exists(context.Background(), "sqlite::memory:")
		require.NoError(t, err)
		assert.False(t, ok)
		_, err = pierredb.Open("sqlite::memory:", storetest.Engines()[0].Key, pierredb.WithExistingDatabase())
		require.ErrorIs(t, err, pierredb.ErrNotFound)
	})
	t.Run("unreachable", func(t *testing.T) {
		_, err := pierredb.Exists(context.Background(), "postgres://pierre:s3cr3t-pw@127.0.0.1:1/pierre?connect_timeout=2")
		require.ErrorIs(t, err, pierredb.ErrUnreachable)
		assert.NotContains(t, err.Error(), "s3cr3t-pw")
	})
}

// TestWrongKeyLeavesWALUntouched: a SQLite database left with a WAL (a crash,
// or a copy taken while it was open) and opened with a wrong master key stays
// byte-identical, WAL included: the key is refused through a read-only
// connection, which never checkpoints. The right key then opens it with every
// write the WAL held.
func TestWrongKeyLeavesWALUntouched(t *testing.T) {
	ctx := context.Background()
	e := storetest.Engines()[0]
	require.Equal(t, pierredb.SQLite, e.Backend)
	src := strings.TrimPrefix(e.NewURL(t), "sqlite:")
	db := e.OpenURL(t, "sqlite:"+src)
	for i := range 20 {
		_, err := db.Users().Create(ctx, pierredb.NewUser{Email: "wal-" + string(rune('a'+i)) + "@example.com", Password: storetest.Password})
		require.NoError(t, err)
	}
	path := filepath.Join(t.TempDir(), "crashed.db")
	crashCopy(t, src, path)
	require.NoError(t, db.Close())

	snapshot := func() map[string][]byte {
		files := map[string][]byte{}
		for _, suffix := range []string{"", "-wal"} {
			b, err := os.ReadFile(path + suffix)
			require.NoError(t, err)
			files[suffix] = b
		}
		return files
	}
	before := snapshot()
	wrong, err := keyring.Generate()
	require.NoError(t, err)
	for _, opts := range [][]pierredb.Option{nil, {pierredb.WithExistingDatabase()}} {
		_, err = pierredb.Open("sqlite:"+path, wrong, opts...)
		require.ErrorIs(t, err, keyring.ErrWrongMasterKey)
		after := snapshot()
		for suffix, b := range before {
			assert.True(t, bytes.Equal(b, after[suffix]), "file%s changed after a wrong key", suffix)
		}
	}

	db, err = pierredb.Open("sqlite:"+path, e.Key, pierredb.WithExistingDatabase())
	require.NoError(t, err)
	defer db.Close()
	n, err := db.Users().Count(ctx, pierredb.UserFilter{})
	require.NoError(t, err)
	assert.Equal(t, 20, n)
}

// TestWrongKeyLeavesNoFilesBehind: a wrong key on a SQLite database closed
// cleanly (no WAL) leaves the directory as it was: no -wal or -shm beside it.
func TestWrongKeyLeavesNoFilesBehind(t *testing.T) {
	e := storetest.Engines()[0]
	url := e.NewURL(t)
	db := e.OpenURL(t, url)
	require.NoError(t, db.Close())
	dir := filepath.Dir(strings.TrimPrefix(url, "sqlite:"))
	list := func() []string { return dirList(t, dir) }
	before := list()
	wrong, err := keyring.Generate()
	require.NoError(t, err)
	for _, opts := range [][]pierredb.Option{nil, {pierredb.WithExistingDatabase()}} {
		_, err := pierredb.Open(url, wrong, opts...)
		require.ErrorIs(t, err, keyring.ErrWrongMasterKey)
		assert.Equal(t, before, list())
	}
	// A file that is not pierre's is refused without being switched to WAL.
	other := filepath.Join(dir, "other.db")
	raw := e.OpenRaw(t, "sqlite:"+other)
	_, err = raw.Exec("CREATE TABLE notes (body TEXT)")
	require.NoError(t, err)
	require.NoError(t, raw.Close())
	content, err := os.ReadFile(other)
	require.NoError(t, err)
	before = list()
	_, err = pierredb.Open("sqlite:"+other, e.Key, pierredb.WithExistingDatabase())
	require.ErrorIs(t, err, pierredb.ErrNotFound)
	after, err := os.ReadFile(other)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(content, after), "the foreign file changed")
	assert.Equal(t, before, list())
}

func dirList(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, de := range entries {
		names = append(names, de.Name())
	}
	return names
}

// TestSymlinkedDatabaseWithWAL: SQLite keeps the WAL beside the real file of a
// symlinked database. Exists sees through the link, and a wrong key through
// the link leaves the real file and its WAL as they were.
func TestSymlinkedDatabaseWithWAL(t *testing.T) {
	ctx := context.Background()
	e := storetest.Engines()[0]
	src := strings.TrimPrefix(e.NewURL(t), "sqlite:")
	db := e.OpenURL(t, "sqlite:"+src)
	for i := range 20 {
		_, err := db.Users().Create(ctx, pierredb.NewUser{Email: "link-" + string(rune('a'+i)) + "@example.com", Password: storetest.Password})
		require.NoError(t, err)
	}
	dir := t.TempDir()
	real := filepath.Join(dir, "real.db")
	crashCopy(t, src, real)
	require.NoError(t, db.Close())
	require.NoError(t, os.Mkdir(filepath.Join(dir, "link"), 0o700))
	link := filepath.Join(dir, "link", "users.db")
	require.NoError(t, os.Symlink(real, link))

	ok, err := pierredb.Exists(ctx, "sqlite:"+link)
	require.NoError(t, err)
	assert.True(t, ok, "an initialised database behind a link")

	before := map[string][]byte{}
	for _, suffix := range []string{"", "-wal"} {
		before[suffix], err = os.ReadFile(real + suffix)
		require.NoError(t, err)
	}
	wrong, err := keyring.Generate()
	require.NoError(t, err)
	_, err = pierredb.Open("sqlite:"+link, wrong)
	require.ErrorIs(t, err, keyring.ErrWrongMasterKey)
	for suffix, b := range before {
		after, err := os.ReadFile(real + suffix)
		require.NoError(t, err)
		assert.True(t, bytes.Equal(b, after), "real.db%s changed after a wrong key through the link", suffix)
	}
}

// crashCopy copies the SQLite database at src, open, with its -wal and -shm to
// dst: what a crash leaves behind. It fails the test when the WAL holds no
// frames, since a test about what the WAL holds would then prove nothing.
func crashCopy(t *testing.T, src, dst string) {
	t.Helper()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		b, err := os.ReadFile(src + suffix)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(dst+suffix, b, 0o600))
	}
	st, err := os.Stat(dst + "-wal")
	require.NoError(t, err)
	require.NotZero(t, st.Size(), "the copy has no WAL frames; the test proves nothing")
}

// TestCheckURL: CheckURL accepts what Open would, without connecting (a
// server that is not there is no error), and refuses the rest with
// ErrInvalidURL, never repeating a password.
func TestCheckURL(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"sqlite:./data/users.db", true},
		{"SQLITE:./data/users.db", true},
		{"sqlite::memory:", true},
		{"postgres://pierre:s3cr3t-pw@127.0.0.1:1/pierre?sslmode=disable", true},
		{"mysql://pierre:s3cr3t-pw@localhost/db", false},
		{"host=127.0.0.1 password=s3cr3t-pw", false},
		{"postgres://pierre:s3cr3t-pw@[::1/x", false},
		{"sqlite:", false},
	} {
		t.Run(tc.url, func(t *testing.T) {
			err := pierredb.CheckURL(tc.url)
			if tc.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, pierredb.ErrInvalidURL)
			assert.NotContains(t, err.Error(), "s3cr3t")
		})
	}
}
