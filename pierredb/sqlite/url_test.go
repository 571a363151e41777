package sqlite

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/pierredb/internal/engine"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		url     string
		want    Config
		wantErr string // substring of the error; "" means success
	}{
		{url: "sqlite:./data/users.db", want: Config{Path: "./data/users.db"}},
		{url: "sqlite:data/users.db", want: Config{Path: "data/users.db"}},
		{url: "sqlite:///abs/path.db", want: Config{Path: "/abs/path.db"}},
		{url: "sqlite://./rel.db", want: Config{Path: "./rel.db"}},
		{url: "sqlite://data/users.db", want: Config{Path: "data/users.db"}},
		{url: "sqlite:/abs.db", want: Config{Path: "/abs.db"}},
		{url: "sqlite3:./u.db", want: Config{Path: "./u.db"}},
		{url: "SQLITE3:///abs.db", want: Config{Path: "/abs.db"}},
		{url: "sqlite:./dir with space/ü.db", want: Config{Path: "./dir with space/ü.db"}},
		{url: "sqlite:./a%20b.db", want: Config{Path: "./a%20b.db"}}, // taken as written
		{url: "sqlite::memory:", want: Config{Memory: true}},
		{url: "SQLite::memory:?cache=shared", want: Config{Memory: true}},
		{url: "sqlite::memory:?mode=rw", want: Config{Memory: true, Mode: ModeReadWrite}},
		{url: "sqlite:./u.db?mode=memory", want: Config{Memory: true}},
		{url: "sqlite:./u.db?mode=rwc&cache=shared&_fk=1", want: Config{Path: "./u.db", Mode: ModeReadWriteCreate}},
		{url: "sqlite:./u.db?mode=rw", want: Config{Path: "./u.db", Mode: ModeReadWrite}},
		{url: "sqlite:./u.db?mode=ro", want: Config{Path: "./u.db", Mode: ModeReadOnly}},
		{url: "sqlite:./u.db?mode=rw&mode=ro", want: Config{Path: "./u.db", Mode: ModeReadOnly}}, // last one wins
		{url: "sqlite:./u.db?cache=private", want: Config{Path: "./u.db"}},
		{url: "sqlite:./u.db?busy_timeout=250", want: Config{Path: "./u.db", BusyTimeout: 250 * time.Millisecond}},
		{url: "sqlite:./u.db?_busy_timeout=600000", want: Config{Path: "./u.db", BusyTimeout: 10 * time.Minute}},
		{url: "sqlite:./u.db?_fk=true", want: Config{Path: "./u.db"}},
		{url: "sqlite:./u.db?_foreign_keys=1", want: Config{Path: "./u.db"}},
		{url: "sqlite:./u.db?", want: Config{Path: "./u.db"}},

		{url: "", wantErr: "no scheme"},
		{url: "./data/users.db", wantErr: "no scheme"},
		{url: "postgres://u:p@localhost/db", wantErr: `scheme "postgres" is not sqlite`},
		{url: "file:./x.db", wantErr: "sqlite:./data/users.db, sqlite:///abs/path.db or sqlite::memory:"},
		{url: "sqlite:", wantErr: "no path"},
		{url: "sqlite://", wantErr: "no path"},
		{url: "sqlite:?mode=memory", wantErr: "no path"},
		{url: "sqlite:./u\x00.db", wantErr: "NUL byte"},
		{url: "sqlite:./u\xff.db", wantErr: "not valid UTF-8"},
		{url: "sqlite:./u.db?mode=memoryish", wantErr: "mode="},
		{url: "sqlite:./u.db?mode=", wantErr: "mode="},
		{url: "sqlite:./u.db?_fk=0", wantErr: "cannot be disabled"},
		{url: "sqlite:./u.db?_foreign_keys=false", wantErr: "cannot be disabled"},
		{url: "sqlite:./u.db?_fk=maybe", wantErr: "cannot be disabled"},
		{url: "sqlite:./u.db?cache=weird", wantErr: "cache="},
		{url: "sqlite:./u.db?busy_timeout=-1", wantErr: "milliseconds"},
		{url: "sqlite:./u.db?busy_timeout=0", wantErr: "milliseconds"},
		{url: "sqlite:./u.db?busy_timeout=600001", wantErr: "milliseconds"},
		{url: "sqlite:./u.db?busy_timeout=1s", wantErr: "milliseconds"},
		{url: "sqlite:./u.db?journal_mode=delete", wantErr: "unknown sqlite parameter"},
		{url: "sqlite:./u.db?mode=%zz", wantErr: "malformed"},
		{url: "sqlite::memory:?mode=ro", wantErr: "cannot be read-only"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			got, err := ParseURL(tc.url)
			if tc.wantErr != "" {
				require.ErrorIs(t, err, engine.ErrInvalidURL)
				assert.Contains(t, err.Error(), tc.wantErr)
				assert.NotContains(t, err.Error(), "pierredb:")
				assert.Equal(t, Config{}, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			_, err = NewConnector(got)
			assert.NoError(t, err, "NewConnector refuses what ParseURL accepted")
		})
	}
}

func TestParseURLErrorsNameAcceptedForms(t *testing.T) {
	for _, raw := range []string{"", "mysql://x", "sqlite:", "sqlite:a\x00b"} {
		_, err := ParseURL(raw)
		require.ErrorIs(t, err, engine.ErrInvalidURL)
		assert.Contains(t, err.Error(), acceptedForms, raw)
	}
}

// FuzzParseURL: any input either parses into a Config that NewConnector accepts,
// with exactly one of Path and Memory, or fails with ErrInvalidURL; never panics.
func FuzzParseURL(f *testing.F) {
	for _, seed := range []string{
		"sqlite:./data/users.db", "sqlite:///abs/path.db", "sqlite::memory:", "sqlite:./u.db?mode=ro&cache=shared&_fk=1",
		"sqlite3://rel.db?busy_timeout=250", "sqlite:./u.db?mode=memory", "sqlite:a\x00b", "sqlite:\xff",
		"postgres://user:hunter22@host:5432/db", "mysql://x", "", ":", "sqlite:?", "sqlite:x?busy_timeout=99999999999",
		"sqlite:x?mode=%zz", "sqlite::memory:?mode=ro",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		cfg, err := ParseURL(raw)
		if err != nil {
			if !errors.Is(err, engine.ErrInvalidURL) {
				t.Fatalf("error is not ErrInvalidURL: %v", err)
			}
			if strings.Contains(err.Error(), "pierredb:") {
				t.Fatalf("error carries a package prefix: %v", err)
			}
			return
		}
		if cfg.Memory == (cfg.Path != "") {
			t.Fatalf("config must have exactly one of Path and Memory: %+v", cfg)
		}
		if strings.IndexByte(cfg.Path, 0) >= 0 || !utf8.ValidString(cfg.Path) {
			t.Fatalf("path holds a NUL byte or invalid UTF-8: %q", cfg.Path)
		}
		c, err := NewConnector(cfg)
		if err != nil {
			t.Fatalf("NewConnector(%+v) refuses what ParseURL accepted: %v", cfg, err)
		}
		if got := c.Config(); got.Path != cfg.Path || got.Memory != cfg.Memory {
			t.Fatalf("Connector changed the database: %+v -> %+v", cfg, got)
		}
	})
}

func TestShorten(t *testing.T) {
	assert.Equal(t, "short", shorten("short"))
	long := strings.Repeat("é", 40) // 80 bytes; byte 32 starts a rune, byte 33 does not
	assert.True(t, utf8.ValidString(shorten(long)))
	assert.True(t, utf8.ValidString(shorten("x"+long)))
	assert.True(t, strings.HasSuffix(shorten("x"+long), "…"))
}
