package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/pierredb/internal/engine"
)

// TestParseConfigTLS pins the sslmode policy: a remote server is verified unless
// the URL explicitly asks for less, and libpq's meaning of each mode is kept.
func TestParseConfigTLS(t *testing.T) {
	t.Setenv("PGSSLMODE", "")
	for _, tc := range []struct {
		url        string
		wantTLS    bool
		wantVerify bool // certificate chain and host name checked
		wantPlain  bool // a plain-text fallback exists
		wantMode   string
	}{
		{url: "postgres://u@db.example.com/pierre", wantTLS: true, wantVerify: true, wantMode: "verify-full"},
		{url: "postgres://u@10.0.0.7:6432/pierre", wantTLS: true, wantVerify: true, wantMode: "verify-full"},
		{url: "postgres://u@127.0.0.1/pierre", wantTLS: false, wantMode: "disable"},
		{url: "postgres://u@localhost/pierre", wantTLS: false, wantMode: "disable"},
		{url: "postgres://u@[::1]/pierre", wantTLS: false, wantMode: "disable"},
		{url: "postgres://u@db.example.com/pierre?sslmode=verify-full", wantTLS: true, wantVerify: true, wantMode: "verify-full"},
		{url: "postgres://u@db.example.com/pierre?sslmode=require", wantTLS: true, wantVerify: false, wantMode: "require"},
		{url: "postgres://u@db.example.com/pierre?sslmode=prefer", wantTLS: true, wantVerify: false, wantPlain: true, wantMode: "prefer"},
		{url: "postgres://u@db.example.com/pierre?sslmode=disable", wantTLS: false, wantMode: "disable"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			c, err := NewConnector(Config{URL: tc.url})
			require.NoError(t, err)
			cfg := c.connCfg
			assert.Equal(t, tc.wantMode, c.sslmode)
			if !tc.wantTLS {
				assert.Nil(t, cfg.TLSConfig)
				return
			}
			require.NotNil(t, cfg.TLSConfig)
			if tc.wantVerify {
				assert.False(t, cfg.TLSConfig.InsecureSkipVerify)
				assert.Equal(t, cfg.Host, cfg.TLSConfig.ServerName)
			} else {
				// libpq's require/prefer encrypt without checking the certificate.
				assert.True(t, cfg.TLSConfig.InsecureSkipVerify || cfg.TLSConfig.VerifyPeerCertificate != nil)
			}
			hasPlain := false
			for _, fb := range cfg.Fallbacks {
				if fb.TLSConfig == nil {
					hasPlain = true
				}
			}
			assert.Equal(t, tc.wantPlain, hasPlain, "plain-text fallback")
		})
	}
}

func TestParseConfigDefaults(t *testing.T) {
	c, err := NewConnector(Config{URL: "postgres://u:pw@127.0.0.1:5432/pierre?search_path=tenant_data,public"})
	require.NoError(t, err)
	assert.Equal(t, "tenant_data", c.schema)
	assert.Equal(t, DefaultMaxConns, c.maxConns)
	cfg := c.connCfg
	assert.Equal(t, DefaultApplicationName, cfg.RuntimeParams["application_name"])
	assert.Equal(t, "UTC", cfg.RuntimeParams["timezone"])
	assert.Equal(t, "on", cfg.RuntimeParams["standard_conforming_strings"])
	assert.Equal(t, "UTF8", cfg.RuntimeParams["client_encoding"])
	assert.Equal(t, `"tenant_data"`, cfg.RuntimeParams["search_path"], "pinned to the first schema alone")
	assert.Equal(t, DefaultConnectTimeout, cfg.ConnectTimeout)

	c, err = NewConnector(Config{URL: "postgresql://u@127.0.0.1/pierre?application_name=mine&connect_timeout=2", MaxConns: 3})
	require.NoError(t, err)
	assert.Equal(t, "public", c.schema)
	assert.Equal(t, 3, c.maxConns)
	assert.Equal(t, "mine", c.connCfg.RuntimeParams["application_name"])
	assert.Equal(t, "2s", c.connCfg.ConnectTimeout.String())

	c, err = NewConnector(Config{URL: "postgres://u@127.0.0.1/pierre", ConnectTimeout: time.Second})
	require.NoError(t, err)
	assert.Equal(t, time.Second, c.connCfg.ConnectTimeout)
	assert.Equal(t, "postgres", c.Dialect())

	_, err = NewConnector(Config{URL: "postgres://u@127.0.0.1/pierre?search_path=$user"})
	assert.ErrorIs(t, err, engine.ErrInvalidURL)
}

// TestParseConfigReadsParametersLikeLibpq: '+' is a plus sign, %20 a space, the
// last of repeated parameters wins, and what pgx receives is what was checked.
func TestParseConfigReadsParametersLikeLibpq(t *testing.T) {
	for _, tc := range []struct{ query, want string }{
		{"application_name=a+b", "a+b"},
		{"application_name=my%20app", "my app"},
		{"application_name=x&application_name=y", "y"},
		{"application_name=a%26b%3Dc", "a&b=c"},
	} {
		c, err := NewConnector(Config{URL: "postgres://u@127.0.0.1/db?" + tc.query})
		require.NoError(t, err, tc.query)
		assert.Equal(t, tc.want, c.connCfg.RuntimeParams["application_name"], tc.query)
	}
	c, err := NewConnector(Config{URL: "postgres://u@127.0.0.1/db?options=-c%20statement_timeout%3D5s"})
	require.NoError(t, err)
	assert.Equal(t, "-c statement_timeout=5s", c.connCfg.RuntimeParams["options"])

	c, err = NewConnector(Config{URL: "postgres://u:p%40ss%2Fw@127.0.0.1:6543/my%20db?search_path=a+b"})
	require.NoError(t, err)
	assert.Equal(t, "p@ss/w", c.connCfg.Password)
	assert.Equal(t, "my db", c.connCfg.Database)
	assert.Equal(t, uint16(6543), c.connCfg.Port)
	assert.Equal(t, "a+b", c.schema, "a '+' is part of the name, as for libpq")

	for _, q := range []string{"a", "a=b=c", "a=%zz", "%zz=1", "a=1&&b=2"} {
		_, err := NewConnector(Config{URL: "postgres://u@127.0.0.1/db?" + q})
		assert.ErrorIs(t, err, engine.ErrInvalidURL, q)
	}
}

// TestParseConfigForcesSessionSettings: whatever the URL or the environment say,
// the startup parameters that keep bun's SQL safe and pierre's tables in their
// schema are ours, and only one spelling of each is sent.
func TestParseConfigForcesSessionSettings(t *testing.T) {
	for _, raw := range []string{
		"postgres://u@127.0.0.1/db?standard_conforming_strings=off",
		"postgres://u@127.0.0.1/db?Standard_Conforming_Strings=off&TimeZone=Europe/Paris&CLIENT_ENCODING=SJIS",
		"postgres://u@127.0.0.1/db?options=-c%20standard_conforming_strings%3Doff",
		"postgres://u@127.0.0.1/db?timezone=America/New_York",
	} {
		t.Run(raw, func(t *testing.T) {
			c, err := NewConnector(Config{URL: raw})
			require.NoError(t, err)
			seen := map[string]string{}
			for k, v := range c.connCfg.RuntimeParams {
				lk := strings.ToLower(k)
				_, dup := seen[lk]
				assert.False(t, dup, "%s sent twice", lk)
				seen[lk] = v
			}
			assert.Equal(t, "on", seen["standard_conforming_strings"])
			assert.Equal(t, "UTC", seen["timezone"])
			assert.Equal(t, "UTF8", seen["client_encoding"])
			assert.Equal(t, `"public"`, seen["search_path"])
		})
	}
}

func TestNewConnectorRejects(t *testing.T) {
	t.Setenv("PGOPTIONS", "")
	const secret = "s3cr3t-pw"
	for _, tc := range []struct {
		name, url string
		want      string // in the message
	}{
		{"empty", "", "postgres://"},
		{"other scheme", "mysql://u:" + secret + "@h/db", "not a postgres"},
		{"no slashes", "postgres:u:" + secret + "@h/db", `no "//"`},
		{"opaque", "postgres:opaque" + secret, `no "//"`},
		{"fragment", "postgres://u:" + secret + "@h/db#frag", "'#'"},
		{"hash in password", "postgres://u:pa#" + secret + "@h/db", "%23"},
		{"bad escape", "postgres://u:" + secret + "%zz@h/db", "malformed"},
		{"bad query", "postgres://u:" + secret + "@h/db?a=%zz", "malformed URL parameters"},
		{"bad port", "postgres://u:" + secret + "@h:99999/db", "could not be parsed"},
		{"slash in password", "postgres://u:" + secret + "/x@h/db", "malformed"},
		{"NUL", "postgres://u:" + secret + "@h/db?application_name=a%00b", "could not be parsed"},
		{"bad sslmode", "postgres://u:" + secret + "@h/db?sslmode=sometimes", "could not be parsed"},
		{"ampersand in query password", "postgres://u@h/db?password=ab&" + secret, "exactly one '='"},
		{"search_path twice", "postgres://u:" + secret + "@h/db?search_path=a&search_path=b", "2 times"},
		{"search_path case", "postgres://u:" + secret + "@h/db?Search_Path=a", "lower case"},
		{"search_path $user", "postgres://u:" + secret + "@h/db?search_path=$user,public", "$user"},
		{"search_path quoted $user", "postgres://u:" + secret + "@h/db?search_path=%22$user%22,public", "$user"},
		{"search_path empty", "postgres://u:" + secret + "@h/db?search_path=", "empty"},
		{"search_path NUL", "postgres://u:" + secret + "@h/db?search_path=%22a%00b%22", "NUL"},
		{"search_path pg_", "postgres://u:" + secret + "@h/db?search_path=pg_catalog", "reserved"},
		{"search_path in options", "postgres://u:" + secret + "@h/db?options=-c%20search_path%3Dx", "options"},
		{"search_path in long option", "postgres://u:" + secret + "@h/db?options=--search-path%3Dx", "options"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewConnector(Config{URL: tc.url})
			require.Error(t, err)
			assert.Nil(t, c)
			assert.ErrorIs(t, err, engine.ErrInvalidURL)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), secret)
			assert.False(t, strings.HasPrefix(err.Error(), "pierredb"), "no package prefix: %s", err)
		})
	}
}

func TestPGOPTIONSSearchPathRefused(t *testing.T) {
	t.Setenv("PGOPTIONS", "-c search_path=elsewhere")
	_, err := NewConnector(Config{URL: "postgres://u@127.0.0.1/db"})
	require.ErrorIs(t, err, engine.ErrInvalidURL)
	assert.Contains(t, err.Error(), "PGOPTIONS")
}

func TestFirstSchema(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      bool
	}{
		{in: "tenant", want: "tenant"},
		{in: "TenantTwo,public", want: "tenanttwo"},
		{in: "  TenantTwo  , public", want: "tenanttwo"},
		{in: `"TenantTwo",public`, want: "TenantTwo"},
		{in: `"we""ird",public`, want: `we"ird`},
		{in: `"a, b" , c`, want: "a, b"},
		{in: `"Ünï"`, want: "Ünï"},
		{in: "Ünï", want: "Ünï"}, // only ASCII letters fold, as in a UTF8 database
		{in: "my-schema", want: "my-schema"},
		{in: `ab"c`, want: `ab"c`}, // an unquoted name runs to the comma, quote included
		{in: strings.Repeat("a", 63), want: strings.Repeat("a", 63)},
		{in: strings.Repeat("a", 64), err: true},
		{in: "", err: true},
		{in: "   ", err: true},
		{in: ",public", err: true},
		{in: `""`, err: true},
		{in: `"unterminated`, err: true},
		{in: `"a"b`, err: true},
		{in: "my schema", err: true},
		{in: "$user", err: true},
		{in: `"$user", public`, err: true},
		{in: "pg_temp", err: true},
		{in: "PG_CATALOG", err: true},
		{in: "\"a\x00b\"", err: true},
		{in: "\"\xff\"", err: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := firstSchema(tc.in)
			if tc.err {
				assert.Error(t, err, "got %q", got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// TestConfigRedacts: a Config printed, logged or encoded never shows its password.
func TestConfigRedacts(t *testing.T) {
	const secret = "s3cr3t-pw"
	for _, raw := range []string{
		"postgres://u:" + secret + "@db.example.com/pierre",
		"postgres://u@db.example.com/pierre?password=" + secret,
		"postgres://u@db.example.com/pierre?sslpassword=" + secret,
		"postgres://u:pa#" + secret + "@h/db",
		"postgres://u:" + secret + "%zz@h/db",
	} {
		cfg := Config{URL: raw, MaxConns: 4}
		var logged strings.Builder
		slog.New(slog.NewTextHandler(&logged, nil)).Info("open", "cfg", cfg)
		slog.New(slog.NewJSONHandler(&logged, nil)).Info("open", "cfg", cfg)
		js, err := json.Marshal(cfg)
		require.NoError(t, err)
		for _, out := range []string{fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprint(cfg), logged.String(), string(js)} {
			assert.NotContains(t, out, secret)
		}
		c, err := NewConnector(cfg)
		if err == nil {
			for _, out := range []string{fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c)} {
				assert.NotContains(t, out, secret)
			}
		}
	}
	assert.Contains(t, Config{URL: "postgres://u:" + secret + "@h/db"}.String(), "postgres://u:xxxxx@h/db")
}

type fakeDriver struct{}

func (fakeDriver) Open(string) (driver.Conn, error) { return nil, errors.New("fake") }

func init() { sql.Register("pierre-postgres-fake", fakeDriver{}) }

func TestLentConstructorsReject(t *testing.T) {
	_, err := FromDB(nil)
	assert.ErrorIs(t, err, engine.ErrInvalidArgument)
	_, err = FromPool(nil)
	assert.ErrorIs(t, err, engine.ErrInvalidArgument)

	db, err := sql.Open("pierre-postgres-fake", "")
	require.NoError(t, err)
	defer db.Close()
	_, err = FromDB(db)
	assert.ErrorIs(t, err, engine.ErrInvalidArgument)
	assert.Contains(t, err.Error(), "pgx")
}

func TestRegisteredConnect(t *testing.T) {
	ctx := context.Background()
	for _, c := range []any{nil, "postgres://u@h/db", Config{URL: "postgres://u@h/db"}, (*Connector)(nil)} {
		_, err := engine.Connect(ctx, "postgres", c)
		assert.ErrorIs(t, err, engine.ErrInvalidArgument, "%T", c)
	}
	_, err := engine.Connect(ctx, "postgres", &Connector{})
	assert.ErrorIs(t, err, engine.ErrInvalidArgument)
}
