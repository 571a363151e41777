package pierredb

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/pierredb/postgres"
	"github.com/pierre-mcp/pierre/pierredb/sqlite"
)

// TestConnectorFor: Open picks the dialect from the scheme; each dialect parses
// the rest of its own URL (and has its own URL tests).
func TestConnectorFor(t *testing.T) {
	for _, tc := range []struct {
		url     string
		dialect string
		wantErr string // substring of the error; "" means success
	}{
		{url: "sqlite:./data/users.db", dialect: "sqlite"},
		{url: "SQLite::memory:", dialect: "sqlite"},
		{url: "sqlite3:///abs/path.db", dialect: "sqlite"},
		{url: "postgres://u:p@db.example.com:5432/pierre?sslmode=verify-full", dialect: "postgres"},
		{url: "postgresql://localhost/pierre", dialect: "postgres"},

		{url: "", wantErr: "no scheme"},
		{url: "./data/users.db", wantErr: "no scheme"},
		{url: "mysql://root@localhost/db", wantErr: `unsupported scheme "mysql"`},
		{url: "file:./x.db", wantErr: "sqlite:./data/users.db, sqlite:///abs/path.db, sqlite::memory: or postgres://"},
		{url: "sqlite:", wantErr: "no path"},
		{url: "sqlite:./u.db?_fk=0", wantErr: "cannot be disabled"},
		{url: "postgres:pierre", wantErr: "postgres:"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			c, err := connectorFor(tc.url, newConfig(nil))
			if tc.wantErr != "" {
				require.ErrorIs(t, err, ErrInvalidURL)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.dialect, c.Dialect())
		})
	}
}

// TestConnectorForOptions: the URL wins over an option, and an option fills in
// what the URL leaves out.
func TestConnectorForOptions(t *testing.T) {
	c, err := connectorFor("sqlite:./u.db", newConfig([]Option{WithBusyTimeout(750 * time.Millisecond)}))
	require.NoError(t, err)
	assert.Equal(t, 750*time.Millisecond, c.(*sqlite.Connector).Config().BusyTimeout)
	c, err = connectorFor("sqlite:./u.db?busy_timeout=250", newConfig([]Option{WithBusyTimeout(750 * time.Millisecond)}))
	require.NoError(t, err)
	assert.Equal(t, 250*time.Millisecond, c.(*sqlite.Connector).Config().BusyTimeout)
	_, ok := func() (Connector, bool) {
		c, err := connectorFor("postgres://h/db", newConfig(nil))
		_, ok := c.(*postgres.Connector)
		return c, ok && err == nil
	}()
	assert.True(t, ok)
}

// FuzzConnectorFor: any input either gives a connector or fails with
// ErrInvalidURL, never panics, and a password in the input never reaches the
// error.
func FuzzConnectorFor(f *testing.F) {
	for _, seed := range []string{
		"sqlite:./data/users.db", "sqlite:///abs/path.db", "sqlite::memory:", "sqlite:./u.db?mode=ro&cache=shared&_fk=1",
		"postgres://user:hunter22@host:5432/db?sslmode=verify-full&search_path=pierre", "postgresql://h/db",
		"postgres://user:hunter22@[::1/x", "mysql://x", "", ":", "sqlite:?", "sqlite:x?busy_timeout=99999999999",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := connectorFor(raw, newConfig(nil))
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
		if d := c.Dialect(); d != "sqlite" && d != "postgres" {
			t.Fatalf("unknown dialect %q", d)
		}
	})
}
