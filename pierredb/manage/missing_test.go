package manage_test

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/manage"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

// TestMissingDatabase runs the commands that work on existing data against a
// database that is not there (a mistyped path or search_path, or an empty
// schema): each fails, says to check DATABASE_URL, and creates nothing. Only
// setup creates a database.
func TestMissingDatabase(t *testing.T) {
	t.Parallel()
	commands := [][]string{
		{"users", "list"},
		{"users", "approve", "a@example.com"},
		{"admin-tokens", "list"},
		{"api-key", "create", "a@example.com"},
		{"status"},
		{"rotate-data-key"},
		{"rotate-master-key", "--generate", "KEYFILE"},
	}
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := context.Background()
		type place struct {
			name string
			url  string
			// untouched fails the test if anything was created.
			untouched func(t *testing.T)
		}
		var places []place
		switch e.Backend {
		case pierredb.SQLite:
			dir := t.TempDir()
			places = append(places, place{"typo", "sqlite:" + filepath.Join(dir, "typo", "users.db"), func(t *testing.T) {
				_, err := os.Stat(filepath.Join(dir, "typo"))
				require.ErrorIs(t, err, os.ErrNotExist, "the command created the directory")
			}})
		default:
			// A schema that does not exist, and one that exists but is empty
			// (a search_path pointing at another application's schema).
			empty := e.NewURL(t)
			raw := e.OpenRaw(t, empty)
			u, err := url.Parse(empty)
			require.NoError(t, err)
			q := u.Query()
			emptySchema := q.Get("search_path")
			q.Set("search_path", emptySchema+"_typo")
			u.RawQuery = q.Encode()
			count := func(t *testing.T, query, schema string) int {
				var n int
				require.NoError(t, raw.QueryRowContext(ctx, query, schema).Scan(&n))
				return n
			}
			places = append(places,
				place{"typo", u.String(), func(t *testing.T) {
					require.Zero(t, count(t, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", emptySchema+"_typo"), "the schema was created")
				}},
				place{"empty schema", empty, func(t *testing.T) {
					require.Zero(t, count(t, "SELECT count(*) FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = $1", emptySchema),
						"tables were created in the empty schema")
				}})
		}
		for _, p := range places {
			for _, args := range commands {
				t.Run(p.name+"/"+args[0]+"_"+args[len(args)-1], func(t *testing.T) {
					h := newHarness(t, e)
					h.env[pierredb.EnvDatabaseURL] = p.url
					keyFile := filepath.Join(t.TempDir(), "new.key")
					if args[len(args)-1] == "KEYFILE" {
						args = append(args[:len(args)-1:len(args)-1], keyFile)
					}
					r := h.run(args...)
					require.Equal(t, manage.ExitError, r.code, "%v", r)
					require.Contains(t, r.stderr, pierredb.EnvDatabaseURL, "%v", r)
					require.Contains(t, r.stderr, "setup", "%v", r)
					require.Empty(t, r.stdout)
					p.untouched(t)
					_, err := os.Stat(keyFile)
					require.ErrorIs(t, err, os.ErrNotExist, "a key file was made")
				})
			}
		}
		// setup still creates the database (in a place the test cleans up).
		h := newHarness(t, e)
		h.env[pierredb.EnvDatabaseURL] = places[len(places)-1].url
		h.stdin = "correct horse battery\n"
		h.must("setup", "--email", "admin@example.com", "--password-stdin")
		h.must("users", "list")
	})
}
