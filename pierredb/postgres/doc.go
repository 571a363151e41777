// Package postgres is pierredb's PostgreSQL connector: a pgx v5 (stdlib) pool under
// bun's pgdialect, TLS verified whenever sslmode asks for it, a connect timeout, a
// session advisory lock around migrations so that many instances starting at once
// wait for each other, the embedded PostgreSQL migrations and the mapping of
// PostgreSQL errors onto pierredb's sentinel errors.
//
// Most applications never import this package: pierredb.Open picks it for
// "postgres://" and "postgresql://" URLs. A host that already runs a pgx pool and
// wants pierre to share it builds a Connector from that pool and hands it to
// pierredb:
//
//	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
//	c, err := postgres.FromPool(pool)
//	db, err := pierredb.OpenConnector(ctx, c, key)
//
// # Sessions
//
// Every connection a URL Connector opens is pinned, by startup parameters that
// beat the URL's options parameter, PGOPTIONS and ALTER DATABASE/ROLE ... SET
// defaults, to:
//
//   - standard_conforming_strings=on: bun writes argument values into the SQL
//     text and escapes them assuming it; with it off a backslash in a value could
//     end the string literal and turn the rest of the value into SQL;
//   - search_path=<pierre's schema> and nothing else, so unqualified table names
//     always resolve to pierre's own tables;
//   - TimeZone=UTC and client_encoding=UTF8.
//
// Each new connection reads these back and is refused (ErrUnsafeSession) when the
// server does not report them, for example behind a connection pooler that drops
// startup parameters (PgBouncer needs search_path in track_extra_parameters).
//
// pierre's schema is the first entry of the URL's search_path parameter, folded
// the way PostgreSQL folds identifiers: unquoted names are lower-cased (ASCII
// only), double-quoted names are kept exactly with "" read as one quote. Without
// the parameter it is "public". "$user" is refused: name the schema. The
// remaining entries are ignored, and so are search_path defaults set with ALTER
// ROLE or ALTER DATABASE; a search_path in the options parameter or PGOPTIONS is
// refused so that the schema is never decided in two places. The schema is
// created when missing, before migrations.
//
// A pool lent by the host (FromDB, FromPool) keeps the host's session settings:
// pierre cannot pin them. At open it reads them back on one connection and
// refuses to start (ErrUnsafeSession) when standard_conforming_strings is not on,
// client_encoding is not UTF8, or the pool's search_path names no existing
// schema; pierre's schema is then that connection's current_schema(). TimeZone
// is reported in Info.Settings but not required: pierre writes and reads
// timestamps in UTC explicitly. Configure the host's pool with the settings
// above (for pgx, in ConnConfig.RuntimeParams) so that every one of its sessions
// agrees, and preferably with DefaultQueryExecMode = pgx.QueryExecModeExec: bun
// writes values into the SQL text, so pgx's default statement cache would
// prepare nearly every statement pierre sends and keep evicting.
package postgres
