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
// # Errors
//
// Errors wrap the sentinel values of this package (ErrNotFound, ErrAlreadyExists,
// ErrConflict, ErrInvalidURL, ErrUnreachable, ...) and of package keyring
// (keyring.ErrWrongMasterKey, keyring.ErrDecrypt, ...); test them with errors.Is.
// The driver's own error stays in the chain for errors.As. No error, log line or
// fmt output of this package contains a key, a token, a password or the password of
// a database URL.
//
// # Engines
//
// Queries are written once against bun; the dialect packages hold only what truly
// differs. On SQLite, writes go through one connection whose transactions begin
// IMMEDIATE and reads through a small query_only pool; WAL, synchronous=NORMAL,
// foreign_keys and busy_timeout are set on every connection and read back at start.
// On PostgreSQL, pierre's tables live in the first schema of the URL's search_path
// (default public), and instances starting together wait on an advisory lock
// instead of racing to migrate. A schema-parity test keeps the two schemas equal.
package pierredb
