package pierredb

import (
	"context"
	"log/slog"
	"regexp"
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
// that bun wrote with the values inline every quoted literal is replaced by
// '…', so passwords, hashes, tokens and ciphertexts never reach the log. The
// logger's level decides whether the lines are kept.
func WithQueryLog(l *slog.Logger) Option { return func(c *config) { c.queryLog = l } }

// literal matches SQL string literals ('…', with ” inside) and PostgreSQL's
// escape and bytea forms (E'…', '\x…'), so that redact can drop every value.
var literal = regexp.MustCompile(`(?s)[eEnNxX]?'(?:[^']|'')*'`)

// redact returns query with every literal value replaced.
func redact(query string) string { return literal.ReplaceAllString(query, "'…'") }

// queryLogger logs statements for WithQueryLog.
type queryLogger struct {
	log     *slog.Logger
	backend Backend
}

func (q queryLogger) statement(ctx context.Context, query string, took time.Duration, err error) {
	if !q.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	attrs := []slog.Attr{slog.String("engine", string(q.backend)), slog.Duration("duration", took),
		slog.String("query", redact(query))}
	if err != nil {
		attrs = append(attrs, slog.String("err", redact(err.Error())))
	}
	q.log.LogAttrs(ctx, slog.LevelDebug, "pierredb: query", attrs...)
}

// BeforeQuery implements bun.QueryHook.
func (q queryLogger) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context { return ctx }

// AfterQuery implements bun.QueryHook.
func (q queryLogger) AfterQuery(ctx context.Context, e *bun.QueryEvent) {
	q.statement(ctx, e.Query, time.Since(e.StartTime), e.Err)
}
