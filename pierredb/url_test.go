package pierredb

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/pierredb/sqlite"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		url     string
		want    target
		wantErr string // substring of the error; "" means success
	}{
		{url: "sqlite:./data/users.db", want: target{backend: SQLite, sqlite: sqlite.Config{Path: "./data/users.db"}}},
		{url: "sqlite:data/users.db", want: target{backend: SQLite, sqlite: sqlite.Config{Path: "data/users.db"}}},
		{url: "sqlite:///abs/path.db", want: target{backend: SQLite, sqlite: sqlite.Config{Path: "/abs/path.db"}}},
		{url: "sqlite://./rel.db", want: target{backend: SQLite, sqlite: sqlite.Config{Path: "./rel.db"}}},
		{url: "sqlite:/abs.db", want: target{backend: SQLite, sqlite: sqlite.Config{Path: "/abs.db"}}},
		{url: "sqlite::memory:", want: target{backend: SQLite, sqlite: sqlite.Config{Memory: true}}},
		{url: "SQLite::memory:?cache=shared", want: target{backend: SQLite, sqlite: sqlite.Config{Memory: true}}},
		{url: "sqlite:./u.db?mode=rwc&cache=shared&_fk=1", want: target{backend: SQLite, sqlite: sqlite.Config{Path: "./u.db", Mode: sqlite.ModeReadWriteCreate}}},
		{url: "sqlite:./u.db?mode=rw", want: target{backend: SQLite, sqlite: sqlite.Config{Path: "./u.db", Mode: sqlite.ModeReadWrite}}},
		{url: "sqlite:./u.db?mode=ro", want: target{backend: SQLite, sqlite: sqlite.Config{Path: "./u.db", Mode: sqlite.ModeReadOnly}}},
		{url: "sqlite:./u.db?busy_timeout=250", want: target{backend: SQLite, sqlite: sqlite.Config{Path: "./u.db", BusyTimeout: 250 * time.Millisecond}}},
		{url: "sqlite:./u.db?_fk=true", want: target{backend: SQLite, sqlite: sqlite.Config{Path: "./u.db"}}},
		{url: "postgres://u:p@db.example.com:5432/pierre?sslmode=verify-full", want: target{backend: Postgres, postgres: "postgres://u:p@db.example.com:5432/pierre?sslmode=verify-full"}},
		{url: "postgresql://localhost/pierre?application_name=x", want: target{backend: Postgres, postgres: "postgresql://localhost/pierre?application_name=x"}},

		{url: "", wantErr: "no scheme"},
		{url: "./data/users.db", wantErr: "no scheme"},
		{url: "mysql://root@localhost/db", wantErr: `unsupported scheme "mysql"`},
		{url: "file:./x.db", wantErr: "sqlite:./data/users.db, sqlite:///abs/path.db, sqlite::memory: or postgres://"},
		{url: "sqlite:", wantErr: "no path"},
		{url: "sqlite://", wantErr: "no path"},
		{url: "sqlite:./u.db?mode=memoryish", wantErr: "mode="},
		{url: "sqlite:./u.db?_fk=0", wantErr: "cannot be disabled"},
		{url: "sqlite:./u.db?_fk=maybe", wantErr: "cannot be disabled"},
		{url: "sqlite:./u.db?cache=weird", wantErr: "cache="},
		{url: "sqlite:./u.db?busy_timeout=-1", wantErr: "milliseconds"},
		{url: "sqlite:./u.db?journal_mode=delete", wantErr: "unknown sqlite parameter"},
		{url: "sqlite:./u.db?mode=%zz", wantErr: "malformed"},
		{url: "sqlite::memory:?mode=ro", wantErr: "cannot be read-only"},
		{url: "postgres:pierre", wantErr: "malformed PostgreSQL URL"},
		{url: "postgres://u:p@[::1/x", wantErr: "malformed PostgreSQL URL"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			got, err := parseURL(tc.url)
			if tc.wantErr != "" {
				require.ErrorIs(t, err, ErrInvalidURL)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// FuzzParseURL: any input either parses into a coherent target or fails with
// ErrInvalidURL, never panics, and a password in the input never reaches the error.
func FuzzParseURL(f *testing.F) {
	for _, seed := range []string{
		"sqlite:./data/users.db", "sqlite:///abs/path.db", "sqlite::memory:", "sqlite:./u.db?mode=ro&cache=shared&_fk=1",
		"postgres://user:hunter22@host:5432/db?sslmode=verify-full&search_path=pierre", "postgresql://h/db",
		"postgres://user:hunter22@[::1/x", "mysql://x", "", ":", "sqlite:?", "sqlite:x?busy_timeout=99999999999",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := parseURL(raw)
		if err != nil {
			if !errors.Is(err, ErrInvalidURL) {
				t.Fatalf("error is not ErrInvalidURL: %v", err)
			}
			if u, perr := url.Parse(raw); perr == nil && u.User != nil {
				if pw, ok := u.User.Password(); ok && len(pw) >= 6 && strings.Contains(err.Error(), pw) {
					t.Fatalf("error repeats the password: %v", err)
				}
			}
			return
		}
		switch got.backend {
		case SQLite:
			if got.sqlite.Memory == (got.sqlite.Path != "") && !got.sqlite.Memory {
				t.Fatalf("sqlite target has neither path nor memory: %+v", got)
			}
		case Postgres:
			if got.postgres != raw {
				t.Fatalf("postgres URL altered: %q -> %q", raw, got.postgres)
			}
		default:
			t.Fatalf("unknown backend %q", got.backend)
		}
	})
}
