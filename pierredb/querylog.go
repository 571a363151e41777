package pierredb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/uptrace/bun"
)

// EnvLogQueries, set to 1 (or true), makes OpenFromEnv log every statement with
// its duration (see WithQueryLog): the troubleshooting switch that replaces the
// reference server's RUST_LOG=sqlx=debug.
const EnvLogQueries = "PIERREDB_LOG_QUERIES"

// WithQueryLog logs every statement the Database runs to l, at debug level,
// with its duration, its engine and its error if any. No value is ever logged:
// prepared statements are logged with their placeholders, and in statements
// that bun wrote with the values inline every literal is replaced: strings,
// blobs and dollar-quoted text by '…', numbers by …, comments by --… or /*…*/,
// so passwords, hashes, tokens and ciphertexts never reach the log. Quoted
// identifiers are kept. The logger's level decides whether the lines are kept.
//
// One limit: statements that pierre runs inside its own transactions through
// bun's QueryRowContext (the user INSERT of a first admin, a few guards) are
// logged when they are sent. An error that arrives only with the row (a
// duplicate email on INSERT … RETURNING) reaches the caller's error, and may
// be missing from that log line; one that arrives with the statement (a lock
// timeout) is logged with it.
func WithQueryLog(l *slog.Logger) Option { return func(c *config) { c.queryLog = l } }

// redact returns query with every literal value and comment replaced. It
// follows the engine's own lexical rules (pg: PostgreSQL's, else SQLite's):
// a scanner that disagrees with the database about where a literal ends lets
// the values after that point through.
func redact(query string, pg bool) string {
	var b strings.Builder
	scanSQL(&b, query, pg)
	return b.String()
}

// scanSQL writes query to b with its literals and comments replaced, and
// reports whether query ends inside one of them or inside a quoted identifier.
func scanSQL(b *strings.Builder, q string, pg bool) (open bool) {
	b.Grow(len(q))
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == '-' && byteAt(q, i+1) == '-':
			// To the end of the line: PostgreSQL ends it at \r too, SQLite
			// only at \n.
			j := i + 2
			for j < len(q) && q[j] != '\n' && (!pg || q[j] != '\r') {
				j++
			}
			b.WriteString("--…")
			if j == len(q) {
				return true
			}
			i = j
		case c == '/' && byteAt(q, i+1) == '*':
			j, ok := blockComment(q, i+2, pg)
			b.WriteString("/*…*/")
			if !ok {
				return true
			}
			i = j
		case c == '\'':
			j, ok := quoted(q, i+1, '\'', false)
			b.WriteString("'…'")
			if !ok {
				return true
			}
			i = j
		case strings.IndexByte("eEbBnNxX", c) >= 0 && byteAt(q, i+1) == '\'':
			// E'…' (backslash escapes, PostgreSQL only), B'…', N'…', X'…'.
			escapes := pg && (c == 'e' || c == 'E')
			j, ok := quoted(q, i+2, '\'', escapes)
			// PostgreSQL joins E'…' and a '…' after a newline into one
			// string, read with the same escapes: swallow the continuations.
			for ok && escapes {
				k, more := continuation(q, j)
				if !more {
					break
				}
				j, ok = quoted(q, k, '\'', true)
			}
			b.WriteByte(c)
			b.WriteString("'…'")
			if !ok {
				return true
			}
			i = j
		case pg && (c == 'u' || c == 'U') && strings.HasPrefix(q[i+1:], "&'"):
			j, ok := quoted(q, i+3, '\'', false)
			b.WriteString(q[i:i+2] + "'…'")
			if !ok {
				return true
			}
			i = j
		case c == '"' || (!pg && c == '`'):
			// A quoted identifier: shown, but never read as literals.
			j, ok := quoted(q, i+1, c, false)
			if !ok {
				b.WriteString(string(c) + "…")
				return true
			}
			b.WriteString(q[i:j])
			i = j
		case !pg && c == '[':
			j := strings.IndexByte(q[i:], ']')
			if j < 0 {
				b.WriteString("[…")
				return true
			}
			b.WriteString(q[i : i+j+1])
			i += j + 1
		case c == '$' && pg:
			j, ok := dollar(b, q, i)
			if !ok {
				return true
			}
			i = j
		case isDigit(c) || (c == '.' && isDigit(byteAt(q, i+1))):
			i = number(q, i)
			b.WriteString("…")
		case isIdentStart(c):
			// A whole word, so that its digits and a trailing E, X… are not
			// read as a number or a literal's prefix.
			j := i + 1
			for j < len(q) && (isIdentStart(q[j]) || isDigit(q[j]) || q[j] == '$') {
				j++
			}
			b.WriteString(q[i:j])
			i = j
		default:
			b.WriteByte(c)
			i++
		}
	}
	return false
}

// continuation returns the index after the quote that continues, on
// PostgreSQL, a string that ended at i: whitespace holding a newline, then '.
// It is generous (comments anywhere, any whitespace): reading more as one
// escaped string than PostgreSQL does only hides more.
func continuation(q string, i int) (int, bool) {
	newline := false
	for i < len(q) {
		switch c := q[i]; {
		case c == '\n' || c == '\r':
			newline = true
			i++
		case c == ' ' || c == '\t' || c == '\f' || c == '\v':
			i++
		case c == '-' && byteAt(q, i+1) == '-':
			for i < len(q) && q[i] != '\n' && q[i] != '\r' {
				i++
			}
		case c == '/' && byteAt(q, i+1) == '*':
			j, ok := blockComment(q, i+2, true)
			if !ok {
				return 0, false
			}
			i = j
		case c == '\'' && newline:
			return i + 1, true
		default:
			return 0, false
		}
	}
	return 0, false
}

// byteAt is q[i], or 0 past its end.
func byteAt(q string, i int) byte {
	if i < len(q) {
		return q[i]
	}
	return 0
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// isIdentStart reports a byte that starts an unquoted identifier (any
// non-ASCII byte does, on both engines).
func isIdentStart(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c >= 0x80
}

// quoted returns the index after the quote that closes a token opened before
// i: q doubled inside stands for itself, and with backslash a backslash
// escapes the next byte. ok is false when nothing closes it.
func quoted(q string, i int, quote byte, backslash bool) (end int, ok bool) {
	for i < len(q) {
		switch q[i] {
		case '\\':
			if backslash {
				i += 2
				continue
			}
		case quote:
			if byteAt(q, i+1) == quote {
				i += 2
				continue
			}
			return i + 1, true
		}
		i++
	}
	return len(q), false
}

// blockComment returns the index after the */ that closes a comment opened
// before i; PostgreSQL's nest, SQLite's do not.
func blockComment(q string, i int, nested bool) (end int, ok bool) {
	depth := 1
	for i < len(q)-1 {
		switch {
		case q[i] == '*' && q[i+1] == '/':
			depth--
			i += 2
			if depth == 0 || !nested {
				return i, true
			}
		case nested && q[i] == '/' && q[i+1] == '*':
			depth++
			i += 2
		default:
			i++
		}
	}
	return len(q), false
}

// dollar handles a $ that starts a PostgreSQL token: a dollar-quoted string
// ($$…$$, $tag$…$tag$) is replaced, any other $ kept (the digits of a
// parameter, $1, then read as a number). It returns the index after what it
// wrote, and ok false when a dollar quote runs to the end.
func dollar(b *strings.Builder, q string, i int) (end int, ok bool) {
	j := i + 1
	for j < len(q) && (isIdentStart(q[j]) || (j > i+1 && isDigit(q[j]))) {
		j++
	}
	if byteAt(q, j) != '$' {
		b.WriteByte('$') // not a dollar quote
		return i + 1, true
	}
	delim := q[i : j+1]
	b.WriteString(delim + "…" + delim)
	k := strings.Index(q[j+1:], delim)
	if k < 0 {
		return len(q), false
	}
	return j + 1 + k + len(delim), true
}

// number returns the index after the numeric literal at i: digits, a
// fraction, an exponent with its sign, and the letters and underscores of
// 0x1F, 0o17, 0b101 and 1_000.
func number(q string, i int) int {
	j := i
	for j < len(q) {
		c := q[j]
		switch {
		case isDigit(c) || c == '.' || c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
			j++
		case (c == '+' || c == '-') && (q[j-1] == 'e' || q[j-1] == 'E') && isDigit(byteAt(q, j+1)):
			j++
		default:
			return j
		}
	}
	return j
}

// redactError returns an error text with every quoted part replaced: the
// engines quote the offending value in their messages (PostgreSQL: invalid
// input syntax for type uuid: "…"; SQLite: unrecognized token: "'…").
func redactError(msg string) string {
	// Everything from the first quote on: PostgreSQL quotes a bad value
	// without escaping the quotes inside it ("x" S3CRET "y"), and a message
	// may end inside an unterminated one, so no pairing of quotes can be
	// trusted to find where a value ends. A final "(SQLSTATE …)" or "(1)"
	// after the last quote holds no value and is kept.
	first := strings.IndexAny(msg, `'"`)
	if first < 0 {
		return msg
	}
	out := msg[:first+1] + "…" + msg[first:first+1]
	if strings.HasSuffix(msg, ")") {
		if k := strings.LastIndex(msg, " ("); k > strings.LastIndexAny(msg, `'"`) {
			out += msg[k:]
		}
	}
	return out
}

// queryLogger logs statements for WithQueryLog.
type queryLogger struct {
	log     *slog.Logger
	backend Backend
}

// enabled reports whether statements are logged at all, so that the work of
// logging them (see stmtCache.row) is only done then.
func (q *queryLogger) enabled(ctx context.Context) bool {
	return q != nil && q.log.Enabled(ctx, slog.LevelDebug)
}

func (q queryLogger) statement(ctx context.Context, query string, took time.Duration, err error) {
	if !q.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	attrs := []slog.Attr{slog.String("engine", string(q.backend)), slog.Duration("duration", took),
		slog.String("query", redact(query, q.backend == Postgres))}
	// No row is an answer, not a failure.
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		attrs = append(attrs, slog.String("err", redactError(err.Error())))
	}
	q.log.LogAttrs(ctx, slog.LevelDebug, "pierredb: query", attrs...)
}

// BeforeQuery implements bun.QueryHook.
func (q queryLogger) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context { return ctx }

// AfterQuery implements bun.QueryHook.
func (q queryLogger) AfterQuery(ctx context.Context, e *bun.QueryEvent) {
	query := e.Query
	if e.IQuery == nil && e.QueryTemplate != "" {
		// A raw statement (ExecContext, QueryContext…): its text as written,
		// with its placeholders, holds none of its arguments.
		query = e.QueryTemplate
	}
	q.statement(ctx, query, time.Since(e.StartTime), e.Err)
}

// fetchedRow is the outcome of a one-row statement, read ahead of the caller's
// Scan (see stmtCache.row) and replayed to it.
type fetchedRow struct {
	queryErr error    // from running the statement: Row.Err and Scan return it
	nextErr  error    // from reading its row: Scan returns it
	cols     []string // nil: no row
	vals     []any
	closeErr error // from finishing it: Scan returns it after filling dest
}

// fetchRow reads the row of a statement, as *sql.Row.Scan would.
func fetchRow(rows *sql.Rows, err error) *fetchedRow {
	if err != nil {
		return &fetchedRow{queryErr: err}
	}
	defer rows.Close()
	if !rows.Next() {
		return &fetchedRow{nextErr: rows.Err()}
	}
	f := &fetchedRow{}
	if f.cols, err = rows.Columns(); err != nil {
		return &fetchedRow{nextErr: err}
	}
	// Scanned into *any, each value is the driver's own (bytes copied), so
	// the replayed Scan converts it exactly as the original would have.
	f.vals = make([]any, len(f.cols))
	dest := make([]any, len(f.vals))
	for i := range f.vals {
		dest[i] = &f.vals[i]
	}
	if err := rows.Scan(dest...); err != nil {
		return &fetchedRow{nextErr: err}
	}
	f.closeErr = rows.Close()
	return f
}

// statementErr is the statement's error: nil when it ran, returning a row or
// none.
func (f *fetchedRow) statementErr() error {
	return errors.Join(f.queryErr, f.nextErr, f.closeErr)
}

// replay returns a *sql.Row that gives the caller what f read: a *sql.Row can
// only be made by database/sql, so it comes from a driver that answers with f.
func (f *fetchedRow) replay() *sql.Row {
	// Background: the statement has run; the caller's context ending since
	// must not turn its answer into a context error.
	return replayDB().QueryRowContext(context.Background(), "", f)
}

var replayDB = sync.OnceValue(func() *sql.DB {
	db := sql.OpenDB(replayConnector{})
	db.SetMaxIdleConns(64) // connections are free: keep enough for any concurrency
	return db
})

type replayConnector struct{}

func (replayConnector) Connect(context.Context) (driver.Conn, error) { return replayConn{}, nil }
func (replayConnector) Driver() driver.Driver                        { return replayDriver{} }

type replayDriver struct{}

func (replayDriver) Open(string) (driver.Conn, error) { return replayConn{}, nil }

var errReplayOnly = errors.New("pierredb: the replay connection only replays rows")

// replayConn answers every query with the *fetchedRow it is given.
type replayConn struct{}

func (replayConn) Prepare(string) (driver.Stmt, error) { return nil, errReplayOnly }
func (replayConn) Close() error                        { return nil }
func (replayConn) Begin() (driver.Tx, error)           { return nil, errReplayOnly }

// CheckNamedValue lets the *fetchedRow through to QueryContext unconverted.
func (replayConn) CheckNamedValue(*driver.NamedValue) error { return nil }

func (replayConn) QueryContext(_ context.Context, _ string, args []driver.NamedValue) (driver.Rows, error) {
	f, ok := args[0].Value.(*fetchedRow)
	if !ok || len(args) != 1 {
		return nil, errReplayOnly
	}
	if f.queryErr != nil {
		return nil, f.queryErr
	}
	return &replayRows{f: f}, nil
}

type replayRows struct {
	f    *fetchedRow
	done bool
}

func (r *replayRows) Columns() []string { return r.f.cols }
func (r *replayRows) Close() error      { return r.f.closeErr }

func (r *replayRows) Next(dest []driver.Value) error {
	switch {
	case r.f.nextErr != nil:
		return r.f.nextErr
	case r.done || r.f.cols == nil:
		return io.EOF
	}
	r.done = true
	for i, v := range r.f.vals {
		dest[i] = v
	}
	return nil
}
