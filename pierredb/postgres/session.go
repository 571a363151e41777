package postgres

import (
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/pierre-mcp/pierre/pierredb/internal/engine"
)

// session is what the server says of a connection's settings.
type session struct {
	standardConformingStrings string
	timeZone                  string
	searchPath                string
	clientEncoding            string
	currentSchema             string // "" when no schema of search_path exists
	sessionUser               string
	serverVersion             string
	applicationName           string
	ssl                       bool
}

// sessionQuery reads a session back. It takes no arguments, so it runs the same
// way in every pgx exec mode.
const sessionQuery = `SELECT current_setting('standard_conforming_strings'),
	current_setting('TimeZone'),
	current_setting('search_path'),
	current_setting('client_encoding'),
	COALESCE(current_schema()::text, ''),
	session_user::text,
	current_setting('server_version'),
	current_setting('application_name'),
	COALESCE((SELECT ssl FROM pg_catalog.pg_stat_ssl WHERE pid = pg_backend_pid()), false)`

// readSession scans the row of sessionQuery.
func readSession(scan func(dest ...any) error) (session, error) {
	var s session
	err := scan(&s.standardConformingStrings, &s.timeZone, &s.searchPath, &s.clientEncoding,
		&s.currentSchema, &s.sessionUser, &s.serverVersion, &s.applicationName, &s.ssl)
	return s, err
}

// settings is Info.Settings: what the server reported, for diagnostics.
func (s session) settings() map[string]string {
	return map[string]string{
		"standard_conforming_strings": s.standardConformingStrings,
		"timezone":                    s.timeZone,
		"search_path":                 s.searchPath,
		"client_encoding":             s.clientEncoding,
		"server_version":              s.serverVersion,
		"application_name":            s.applicationName,
		"ssl":                         strconv.FormatBool(s.ssl),
	}
}

// pinned is the session a URL connector asks for at startup.
type pinned struct {
	searchPath string // the quoted schema
}

func pinnedSettings(schema string) pinned {
	return pinned{searchPath: pgx.Identifier{schema}.Sanitize()}
}

// forcedParams are the startup parameters a URL connector always sends, whatever
// the URL, PGOPTIONS or the server's per-role and per-database defaults say: a
// startup parameter is applied after the options parameter's switches and takes
// precedence over ALTER ROLE/DATABASE ... SET. search_path is added per schema.
var forcedParams = map[string]string{
	"standard_conforming_strings": "on",
	"timezone":                    "UTC",
	"client_encoding":             "UTF8",
}

// checkPinned refuses a connection of a URL connector whose session is not what
// the startup parameters asked for: something between pierre and PostgreSQL
// changed it.
func checkPinned(s session, p pinned) error {
	const cause = "pierre sets it at connection startup, so something between pierre and PostgreSQL changed it (a connection pooler that drops or rewrites startup parameters, a login event trigger); remove it or connect to PostgreSQL directly"
	switch {
	case s.standardConformingStrings != "on":
		return fmt.Errorf("%w: standard_conforming_strings is %q on a new connection; pierre needs on because bun escapes the values it writes into SQL assuming it; %s",
			engine.ErrUnsafeSession, s.standardConformingStrings, cause)
	case s.clientEncoding != "UTF8":
		return fmt.Errorf("%w: client_encoding is %q on a new connection; pierre needs UTF8; %s", engine.ErrUnsafeSession, s.clientEncoding, cause)
	case s.timeZone != "UTC":
		return fmt.Errorf("%w: TimeZone is %q on a new connection; pierre needs UTC; %s", engine.ErrUnsafeSession, s.timeZone, cause)
	case s.searchPath != p.searchPath:
		return fmt.Errorf("%w: search_path is %q on a new connection; pierre needs %s alone so that its tables resolve to its own schema; %s (PgBouncer: add search_path to track_extra_parameters)",
			engine.ErrUnsafeSession, s.searchPath, p.searchPath, cause)
	}
	return nil
}

// checkLent refuses a pool lent by the host whose sessions pierre cannot use.
func checkLent(s session) error {
	if s.standardConformingStrings != "on" {
		return lentUnsafe(s.standardConformingStrings)
	}
	if s.clientEncoding != "UTF8" {
		return fmt.Errorf("%w: the host's pool runs with client_encoding=%q; pierre and pgx need UTF8: set it for the pool's connections (pgx: ConnConfig.RuntimeParams[\"client_encoding\"] = \"UTF8\")",
			engine.ErrUnsafeSession, s.clientEncoding)
	}
	if s.currentSchema == "" {
		create := "the first schema it names"
		if schema, err := firstSchema(s.searchPath); err == nil {
			create = "schema " + pgx.Identifier{schema}.Sanitize()
		} else if isUserSchema(s.searchPath) {
			create = "schema " + pgx.Identifier{s.sessionUser}.Sanitize()
		}
		return fmt.Errorf("%w: the host's pool has search_path %q and none of its schemas exists, so pierre has nowhere to put its tables; create %s (CREATE SCHEMA) or set the pool's search_path to an existing schema",
			engine.ErrUnsafeSession, s.searchPath, create)
	}
	return nil
}

func lentUnsafe(value string) error {
	return fmt.Errorf("%w: the host's pool runs with standard_conforming_strings=%q; pierre needs on because bun escapes the values it writes into SQL assuming it; "+
		"set it for every connection of the pool (pgx: ConnConfig.RuntimeParams[\"standard_conforming_strings\"] = \"on\") or on the server (ALTER DATABASE/ROLE ... SET standard_conforming_strings = on)",
		engine.ErrUnsafeSession, value)
}
