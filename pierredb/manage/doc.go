// Package manage is pierre's management tasks: the operator's commands of the
// reference server (first admin, approvals, admin tokens, API keys, backups,
// starting fresh, key rotation), as functions and as a command dispatcher that
// a host's main can offer as subcommands:
//
//	func main() {
//		ctx := context.Background()
//		if len(os.Args) > 1 && manage.IsCommand(os.Args[1]) {
//			os.Exit(manage.Main(ctx, os.Args[1:], manage.Env{Program: "server"}))
//		}
//		// ... serve ...
//	}
//
// and then:
//
//	server keygen --out ./data/master.key
//	echo "$ADMIN_PASSWORD" | server setup --email admin@example.com --password-stdin
//	server users list --status pending
//	server users approve alice@example.com
//	server backup ./backups/
//	server restore ./backups/users-20250101T120000.000Z.db
//
// # The database
//
// Every command works on the database the environment names, as
// pierredb.OpenFromEnv reads it: DATABASE_URL (default
// sqlite:./data/users.db) and the master key in PIERRE_MASTER_ENCRYPTION_KEY
// or in the file named by DATABASE_ENCRYPTION_KEY_PATH. A wrong or missing key
// fails before anything is written, with a message that says which key is
// wanted. backup and fresh-start need no key; restore needs the key the backup
// was made with. Only setup creates a database: every other command fails
// (pierredb.ErrNotFound, creating nothing) when the database DATABASE_URL
// names does not exist or holds no pierre schema, so that a mistyped path or
// search_path is an error rather than a new, empty database.
//
// # Output
//
// What a command exists to produce goes to stdout: listings, and the one
// secret a command hands out (keygen's key, setup's and admin-tokens create's
// token, api-key create's key), alone on its line, once, so that
// TOKEN=$(server setup ...) captures exactly it. Everything else (what was
// done, progress on long work, warnings, errors with what to do about them)
// goes to stderr and never holds a secret. Main's exit status is 0 when the
// command did its work, 1 when it failed (nothing was changed unless the
// message says otherwise), 2 for a wrong command line, 3 when it printed
// commands to run by hand instead.
//
// # Backups
//
// On SQLite, backup writes a consistent snapshot with VACUUM INTO through a
// read-only connection of its own: it is correct while the server runs and
// writes, and holds every write committed before it began. Copying the
// database file with cp while a server runs is not a backup: in WAL mode
// recent writes are still in the -wal file, and a copy misses them. restore
// checks a backup (SQLite's integrity check, a pierre keyring, and that the
// master key opens it) before it replaces anything, refuses while any process
// has the database open, keeps the database it replaces beside it, and swaps
// the files with an atomic rename. On PostgreSQL, backup runs pg_dump on
// pierre's schema; restore checks the dump and prints the commands that
// restore it in one transaction.
package manage
