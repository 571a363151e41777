package manage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, for fresh-start

	"github.com/pierre-mcp/pierre/pierredb/postgres"
)

// pgTarget is a PostgreSQL DATABASE_URL taken apart for the tools that work
// beside pierre (pg_dump, psql) and for fresh-start's own connection.
type pgTarget struct {
	raw      string // the URL as given (with its password): only for pgx, in process
	base     url.URL
	query    url.Values // libpq parameters, password and pierre's own removed
	password string
	schema   string
	sslmode  string
}

// libpqParams are the URL parameters passed on to libpq tools; anything else
// (search_path, pgx's pool settings, password, sslpassword) stays behind.
var libpqParams = []string{
	"host", "port", "dbname", "user", "sslmode", "sslrootcert", "sslcert", "sslkey", "sslcrl", "sslsni",
	"connect_timeout", "target_session_attrs", "options", "gssencmode", "channel_binding", "passfile",
	"krbsrvname", "require_auth", "service",
}

// parsePGTarget checks raw as pierre does (postgres.NewConnector: same rules,
// same errors, none repeating the URL) and takes it apart.
func parsePGTarget(raw string) (*pgTarget, error) {
	if _, err := postgres.NewConnector(postgres.Config{URL: raw}); err != nil {
		return nil, err
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("malformed PostgreSQL URL") // NewConnector accepted it: cannot happen
	}
	t := &pgTarget{raw: raw, query: url.Values{}, schema: "public"}
	if pw, ok := u.User.Password(); ok {
		t.password = pw
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	// Parameters as libpq reads them: '&'-separated, both halves
	// percent-decoded, '+' kept (NewConnector has checked the syntax).
	for pair := range strings.SplitSeq(u.RawQuery, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		k, _ = url.PathUnescape(k)
		v, _ = url.PathUnescape(v)
		switch {
		case k == "password":
			t.password = v
		case k == "search_path":
			t.schema = firstSchema(v)
		case slices.Contains(libpqParams, k):
			t.query.Set(k, v)
		}
	}
	t.sslmode = t.query.Get("sslmode")
	if t.sslmode == "" {
		t.sslmode = os.Getenv("PGSSLMODE")
	}
	if t.sslmode == "" {
		// pierre's rule (see postgres.Config): a remote server is never trusted
		// without checking its certificate.
		t.sslmode = "verify-full"
		if isLocal(u.Hostname()) {
			t.sslmode = "disable"
		}
		t.query.Set("sslmode", t.sslmode)
	}
	u.RawQuery, u.Fragment = "", ""
	t.base = *u
	return t, nil
}

// firstSchema is the schema the first entry of a search_path names, folded as
// PostgreSQL folds it (package postgres has checked the value already).
func firstSchema(v string) string {
	s := strings.TrimLeft(v, " \t\n\r\f\v")
	if strings.HasPrefix(s, `"`) {
		var b strings.Builder
		for i := 1; i < len(s); i++ {
			if s[i] == '"' {
				if i+1 < len(s) && s[i+1] == '"' {
					b.WriteByte('"')
					i++
					continue
				}
				break
			}
			b.WriteByte(s[i])
		}
		return b.String()
	}
	if end := strings.IndexAny(s, ", \t\n\r\f\v"); end >= 0 {
		s = s[:end]
	}
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b)
}

func isLocal(host string) bool {
	if host == "" || strings.HasPrefix(host, "/") || host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// libpqURL is the URL for pg_dump and psql: no password (PGPASSWORD carries
// it), only libpq's parameters, and application name app.
func (t *pgTarget) libpqURL(app string) string {
	u := t.base
	q := url.Values{}
	for k, v := range t.query {
		q[k] = v
	}
	q.Set("application_name", app)
	u.RawQuery = q.Encode()
	return u.String()
}

// dbname is the database the URL names (its path, or dbname=).
func (t *pgTarget) dbname() string {
	if n := t.query.Get("dbname"); n != "" {
		return n
	}
	if n := strings.TrimPrefix(t.base.Path, "/"); n != "" {
		return n
	}
	return t.base.User.Username()
}

// withDBName is t on database name (same server, user and parameters).
func (t *pgTarget) withDBName(name string) *pgTarget {
	c := *t
	c.query = url.Values{}
	for k, v := range t.query {
		c.query[k] = v
	}
	if c.query.Has("dbname") {
		c.query.Set("dbname", name)
	}
	c.base.Path = "/" + name
	c.base.RawPath = ""
	return &c
}

// location names the database without its password: user@host:port/db.
func (t *pgTarget) location() string {
	u := t.base
	u.RawQuery = ""
	return strings.TrimPrefix(u.String(), u.Scheme+"://")
}

// quotedSchema is the schema as an SQL identifier.
func (t *pgTarget) quotedSchema() string { return pgx.Identifier{t.schema}.Sanitize() }

// connect opens a small pool of plain pgx connections on the database (not
// through pierre, which would need the master key).
func (t *pgTarget) connect(ctx context.Context) (*sql.DB, error) {
	raw := t.raw
	if !strings.Contains(raw, "sslmode=") && os.Getenv("PGSSLMODE") == "" {
		sep := "?"
		if strings.Contains(raw, "?") {
			sep = "&"
		}
		raw += sep + "sslmode=" + t.sslmode
	}
	db, err := sql.Open("pgx", raw)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: the URL was refused", t.location())
	}
	db.SetMaxOpenConns(2)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("connect to %s: %s", t.location(), redact(err.Error(), t.password))
	}
	return db, nil
}

// redact removes a password from a message (a driver's error may quote a
// connection string).
func redact(msg, password string) string {
	if password == "" {
		return msg
	}
	return strings.ReplaceAll(msg, password, "xxxxx")
}
