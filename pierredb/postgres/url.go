package postgres

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/pierre-mcp/pierre/pierredb/internal/engine"
)

// urlForm is what every URL error tells the user to write instead.
const urlForm = "use postgres://user:password@host:5432/database[?sslmode=...&search_path=schema]"

// parseConfig checks the URL's shape, builds the pgx configuration with pierre's
// pinned session settings, and returns pierre's schema and the sslmode in force.
// Errors wrap ErrInvalidURL and never repeat the URL.
func parseConfig(cfg Config) (_ *pgx.ConnConfig, schema, sslmode string, _ error) {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{engine.ErrInvalidURL}, args...)...)
	}
	scheme, rest, ok := strings.Cut(cfg.URL, ":")
	if !ok || (!strings.EqualFold(scheme, "postgres") && !strings.EqualFold(scheme, "postgresql")) {
		return nil, "", "", invalid("not a postgres:// or postgresql:// URL; %s", urlForm)
	}
	if !strings.HasPrefix(rest, "//") {
		return nil, "", "", invalid("no \"//\" after %s:; %s", strings.ToLower(scheme), urlForm)
	}
	if strings.Contains(rest, "#") {
		// An unescaped '#' starts a fragment and silently cuts what follows, often
		// the rest of a password.
		return nil, "", "", invalid("the URL holds a '#'; percent-encode it as %%23 if it belongs to the password; %s", urlForm)
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Opaque != "" {
		// url.Parse's error quotes the URL: it is not repeated.
		return nil, "", "", invalid("malformed PostgreSQL URL (check that the password is percent-encoded); %s", urlForm)
	}
	q, err := parseQuery(u.RawQuery)
	if err != nil {
		return nil, "", "", invalid("malformed URL parameters: %v; %s", err, urlForm)
	}

	schema = "public"
	for key, values := range q {
		if strings.EqualFold(key, "search_path") && key != "search_path" {
			return nil, "", "", invalid("write the search_path parameter in lower case")
		}
		if key == "search_path" {
			if len(values) != 1 {
				return nil, "", "", invalid("search_path is given %d times; give it once", len(values))
			}
			if schema, err = firstSchema(values[0]); err != nil {
				return nil, "", "", fmt.Errorf("%w: search_path: %w", engine.ErrInvalidURL, err)
			}
		}
	}

	sslmode = q.Get("sslmode")
	if sslmode == "" {
		sslmode = os.Getenv("PGSSLMODE")
	}
	if sslmode == "" {
		if isLocal(u.Hostname()) {
			sslmode = "disable"
		} else {
			sslmode = "verify-full"
		}
		q.Set("sslmode", sslmode)
	}
	if q.Get("sslrootcert") == "system" {
		sslmode = "verify-full" // pgx, like libpq, verifies fully against the system roots
	}
	if q.Get("application_name") == "" {
		q.Set("application_name", DefaultApplicationName)
	}
	u.RawQuery = encodeQuery(q)

	connCfg, err := pgx.ParseConfig(u.String())
	if err != nil {
		// pgx redacts the password on a best-effort basis only, so its message is
		// not repeated; the reason is kept in the chain for errors.As.
		return nil, "", "", &engine.Classified{
			Sentinel: engine.ErrInvalidURL,
			Cause:    redactedError{err, "the PostgreSQL URL could not be parsed; check host, port and parameters"},
		}
	}
	if opts := connCfg.RuntimeParams["options"]; mentionsSearchPath(opts) {
		return nil, "", "", invalid("the options parameter (or PGOPTIONS) sets search_path; pierre takes its schema from the search_path URL parameter only: move it there")
	}
	// Startup parameters are applied after the options parameter's -c switches
	// and beat ALTER ROLE/DATABASE ... SET, so these win whatever else asks; a
	// second spelling of one of them (TimeZone, Search_Path) would be sent too,
	// in map order, so every spelling but ours is dropped.
	for key := range connCfg.RuntimeParams {
		for name := range forcedParams {
			if strings.EqualFold(key, name) {
				delete(connCfg.RuntimeParams, key)
			}
		}
		if strings.EqualFold(key, "search_path") {
			delete(connCfg.RuntimeParams, key)
		}
	}
	for name, value := range forcedParams {
		connCfg.RuntimeParams[name] = value
	}
	connCfg.RuntimeParams["search_path"] = pinnedSettings(schema).searchPath

	if _, ok := q["connect_timeout"]; !ok {
		timeout := cfg.ConnectTimeout
		if timeout <= 0 {
			timeout = DefaultConnectTimeout
		}
		connCfg.ConnectTimeout = timeout
	}
	// bun formats arguments into the SQL text, so nearly every statement it sends
	// is new: pgx's default per-connection statement cache then pays a prepare
	// round trip for each and keeps evicting. Measured here (point select by key):
	// 354 µs in the default mode, 177 µs in exec mode. pierre's hot paths use
	// explicitly prepared statements, which this setting does not affect.
	connCfg.DefaultQueryExecMode = pgx.QueryExecModeExec
	return connCfg, schema, sslmode, nil
}

// parseQuery reads URL parameters the way libpq and pgx do, not the way HTML
// forms are read: '&'-separated key=value pairs with exactly one '=', both
// halves percent-decoded, and '+' kept as a plus sign. Errors quote nothing of
// the URL: with an unescaped '&' in a password, even a "name" may be a piece of
// the password.
func parseQuery(raw string) (url.Values, error) {
	q := url.Values{}
	if raw == "" {
		return q, nil
	}
	for pair := range strings.SplitSeq(raw, "&") {
		rawKey, rawValue, ok := strings.Cut(pair, "=")
		if !ok || strings.Contains(rawValue, "=") {
			return nil, errors.New("each parameter needs exactly one '=' (percent-encode '=' as %3D and '&' as %26 inside a value)")
		}
		key, err := url.PathUnescape(rawKey)
		if err != nil {
			return nil, errors.New("a parameter name is not percent-encoded correctly")
		}
		value, err := url.PathUnescape(rawValue)
		if err != nil {
			return nil, errors.New("a parameter value is not percent-encoded correctly")
		}
		q[key] = append(q[key], value)
	}
	return q, nil
}

// encodeQuery writes q for pgx's libpq-compatible parser: keys in order, the
// last value of each (libpq's rule for repeated keys), spaces as %20 because
// '+' means a plus sign there.
func encodeQuery(q url.Values) string {
	escape := func(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		vs := q[k]
		if len(vs) == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(escape(k) + "=" + escape(vs[len(vs)-1]))
	}
	return b.String()
}

// mentionsSearchPath reports whether an options string (-c name=value or
// --name=value switches) may set search_path.
func mentionsSearchPath(options string) bool {
	o := strings.ToLower(options)
	return strings.Contains(o, "search_path") || strings.Contains(o, "search-path")
}

// errUserSchema is firstSchema's answer for "$user".
var errUserSchema = errors.New(`the first schema is "$user"; name pierre's schema explicitly (search_path=<schema>)`)

// maxIdentifier is PostgreSQL's NAMEDATALEN-1: longer names are truncated by the
// server, so they are refused rather than silently changed.
const maxIdentifier = 63

// firstSchema returns the schema that the first entry of a search_path value
// names, folded the way PostgreSQL reads identifier lists (SplitIdentifierString):
// leading white space is skipped; a double-quoted name is taken exactly, with ""
// read as one quote; an unquoted name runs to the next comma or white space and
// is lower-cased (ASCII letters only, as in a UTF8 database). "$user", pg_ schemas,
// empty, over-long and malformed names are refused with an error that names the
// problem.
func firstSchema(searchPath string) (string, error) {
	s := strings.TrimLeft(searchPath, " \t\n\r\f\v")
	if s == "" {
		return "", errors.New("empty; name pierre's schema (search_path=<schema>)")
	}
	var name string
	if s[0] == '"' {
		var b strings.Builder
		i := 1
		for {
			j := strings.IndexByte(s[i:], '"')
			if j < 0 {
				return "", errors.New("unterminated quoted schema name")
			}
			b.WriteString(s[i : i+j])
			i += j + 1
			if i < len(s) && s[i] == '"' {
				b.WriteByte('"')
				i++
				continue
			}
			break
		}
		name, s = b.String(), s[i:]
		if name == "" {
			return "", errors.New(`zero-length quoted schema name ""`)
		}
	} else {
		end := strings.IndexAny(s, ", \t\n\r\f\v")
		if end < 0 {
			end = len(s)
		}
		if end == 0 {
			return "", errors.New("the first schema is empty")
		}
		name, s = asciiLower(s[:end]), s[end:]
	}
	if rest := strings.TrimLeft(s, " \t\n\r\f\v"); rest != "" && rest[0] != ',' {
		return "", errors.New("invalid list syntax after the first schema; quote names that hold spaces")
	}
	switch {
	case name == "$user":
		return "", errUserSchema
	case strings.ContainsRune(name, 0):
		return "", errors.New("the schema name holds a NUL byte")
	case !utf8.ValidString(name):
		return "", errors.New("the schema name is not valid UTF-8")
	case len(name) > maxIdentifier:
		return "", fmt.Errorf("the schema name is %d bytes long; PostgreSQL keeps at most %d", len(name), maxIdentifier)
	case strings.HasPrefix(name, "pg_"):
		return "", fmt.Errorf("schema %s is reserved for the system; pick a name not starting with pg_", pgx.Identifier{name}.Sanitize())
	}
	return name, nil
}

// isUserSchema reports whether the first entry of searchPath is "$user".
func isUserSchema(searchPath string) bool {
	_, err := firstSchema(searchPath)
	return errors.Is(err, errUserSchema)
}

func asciiLower(s string) string {
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

// redactURL returns raw with its passwords replaced by "xxxxx", or a placeholder
// when it cannot be parsed (its password could then be anywhere).
func redactURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Fragment != "" || strings.Contains(raw, "#") {
		return "(unparsable URL, not shown)"
	}
	q, err := parseQuery(u.RawQuery)
	if err != nil {
		return "(unparsable URL, not shown)"
	}
	for key := range q {
		if k := strings.ToLower(key); k == "password" || k == "sslpassword" {
			q.Set(key, "xxxxx")
		}
	}
	u.RawQuery = encodeQuery(q)
	return u.Redacted()
}
