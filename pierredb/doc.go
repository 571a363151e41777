// Package pierredb is pierre's database: one API over SQLite (the zero-setup
// default, a file under ./data created on first start) and PostgreSQL (for many
// server instances over one database).
//
// Open picks the engine from the URL, applies the embedded migrations, and unlocks
// (or, on first start, creates) the keyring whose data key encrypts every secret the
// database keeps. The master key that wraps the data key never touches the database:
// it comes from the caller (Open) or the environment (OpenFromEnv).
//
//	db, err := pierredb.Open("sqlite:./data/users.db", key)
//	db, err := pierredb.Open("postgres://pierre:secret@db:5432/pierre?sslmode=verify-full", key)
//
// OpenConnector opens a connector built by package pierredb/sqlite (a path and
// its settings) or pierredb/postgres (a URL, or a pool the host already has).
//
// # Handles
//
// Database holds what is about the database itself (Close, Ping, Info, Stats,
// Keyring, Migrations, Rotation, Authenticate, RunInTx, Bun); each domain has a
// handle with the same short verbs (Create, Get, List, Update, Delete, plus its
// own):
//
//	db.Users()                 user accounts and the approval workflow (global)
//	db.Tenants()               tenants (global)
//	db.Settings()              platform settings
//	db.AdminTokens()           admin tokens: issue, verify, revoke, audit (global)
//	db.APIKeys()               verify any tenant's API key (and find keys across tenants)
//	db.A2AClients()            verify any tenant's A2A client credentials
//	db.Rotation()              data key rotation: re-encrypt every sealed column
//	db.Tenant(ctx, id)         a TenantScope: the only way to a tenant's data
//	scope.Members()            the tenant's memberships and its members as users
//	scope.APIKeys()            the tenant's API keys: tiers, limits, usage
//	scope.A2AClients()         the tenant's agent-to-agent clients
//	scope.OAuthApps()          the tenant's OAuth app at each fitness provider
//	scope.OAuthTokens()        its members' provider tokens, with atomic refresh
//
// A handle is a small value that runs no query until one of its methods does;
// get it whenever needed.
//
// # Tenancy
//
// Users are global: an email is unique across the database. Everything a tenant
// owns (memberships, API keys, A2A clients, OAuth app configurations, members'
// OAuth tokens) is reached only through its TenantScope, whose every query filters
// by the tenant's id; data of another tenant answers ErrNotFound, exactly as data
// that does not exist. An empty tenant id is an error, never a missing filter.
// Making a scope runs no query: each operation finds out that its tenant is gone
// when its own query comes back empty, so a scoped read costs what the read costs.
// The schema backs the scope: tenant-owned rows carry tenant_id NOT NULL and
// composite foreign keys such as (tenant_id, user_id) -> tenant_users, so the
// database itself refuses a row that points into another tenant.
//
// # Errors
//
// Every error names its operation once: "pierredb: create user: already exists:
// email already registered; sign in, or use another email". Errors wrap the
// sentinel values of this package (ErrNotFound, ErrAlreadyExists, ErrConflict,
// ErrInvalidArgument, ...) and of package keyring (keyring.ErrWrongMasterKey,
// keyring.ErrDecrypt, ...); test them with errors.Is. The driver's own error stays
// in the chain for errors.As. No error, log line or fmt output of this package
// contains a key, a token, a password or the password of a database URL.
//
// Every stored name and identifier is checked before any query: invalid UTF-8,
// control and invisible (format) characters are refused, never rewritten, and
// names are kept in Unicode NFC.
//
// # Queries
//
// Each query is written once for both engines, in one of two ways. Writes that
// run rarely and every transaction with more than one statement use bun's query
// builder (bun writes the values into the SQL text, so such a statement is never
// reused). The hot paths (reads by id or email, every listing and count, and the
// single-statement writes a request makes, such as a login's last_active) are
// hand-written SQL with '?' placeholders, prepared once per pool and reused:
// measured, a prepared statement costs well under half a bun query on both
// engines. Listings are keyset pages ordered by (a timestamp, an id), each backed
// by an index so that a page costs the same whatever the size of the table; a
// test runs EXPLAIN on every listing and count on both engines. What differs
// between the engines (row locks, named locks, placeholders, catalog queries,
// error codes) is data on the engine that pierredb/sqlite or pierredb/postgres
// builds; code in this package never asks which engine it runs on.
//
// # Concurrency
//
// A Database is safe for concurrent use; open one per process and share it, and
// open as many processes as needed on one PostgreSQL database (or one SQLite
// file). Writes keep their invariants under races as follows:
//
//   - SQLite runs every write transaction on one connection with BEGIN IMMEDIATE:
//     a transaction holds the database's write lock from its first statement, so
//     write transactions are serial, and other processes wait (busy_timeout)
//     instead of failing to upgrade a read lock.
//   - On PostgreSQL (READ COMMITTED) a transaction locks the rows it reads before
//     changing them (SELECT … FOR UPDATE): a tenant's row serialises that
//     tenant's membership changes (add, remove, change role, transfer ownership)
//     against each other and against deleting its owner, and the statements that
//     count what remains run after the lock, so they see what the other
//     transaction committed.
//   - Invariants over many rows (another admin remains, the first admin is made
//     once) take a named lock for the rest of the transaction
//     (pg_advisory_xact_lock, keyed by schema).
//   - Single-row state changes (approve, suspend, reactivate, grant admin) are one
//     UPDATE … WHERE <expected state> RETURNING: the database checks and changes
//     in one step, and a miss is explained afterwards (ErrConflict or
//     ErrNotFound).
//   - Secrets are rewritten by re-encryption with a compare-and-swap on the old
//     ciphertext, so a concurrent write wins and nothing is lost.
//
// # Secrets
//
// Provider tokens and client secrets are sealed with the field envelope under
// the data key, bound to their tenant, user, provider and column, so a value
// copied anywhere else fails to decrypt; reads return them in types that print
// a placeholder (OAuthSecret, CredentialSecret) and give the
// value only through Reveal. API keys, A2A secrets and admin tokens are kept as
// keyed hashes (HMAC under the keyring's hashing key), so the database alone
// cannot test guesses. Several instances share the keyring: one that meets a
// key version newer than it loaded re-reads the keyring, and each re-reads it
// at least once a minute before sealing, so a rotation by one instance reaches
// the others without a restart.
//
// # Engines
//
// On SQLite, writes go through one connection whose transactions begin IMMEDIATE
// and reads through a small query_only pool; WAL, synchronous=NORMAL, foreign_keys
// and busy_timeout are set on every connection and read back at start. On
// PostgreSQL, pierre's tables live in the first schema of the URL's search_path
// (default public), every connection is pinned to it, standard_conforming_strings
// is forced on and read back, and instances starting together wait on an
// advisory lock instead of racing to migrate. A schema-parity test keeps the two
// schemas equal.
package pierredb
