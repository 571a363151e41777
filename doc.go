// Package pierre is the module root of pierre, the persistence layer for Go MCP
// (Model Context Protocol) servers: user accounts with an admin approval workflow,
// tenants, API keys, admin tokens, A2A clients, per-tenant OAuth app configurations
// and per-user OAuth tokens, with every secret encrypted at rest under two-tier keys.
//
// The module's packages:
//
//	pierredb           Open(url, key) -> *Database: SQLite by default, PostgreSQL when
//	                   the URL says so; a handle per domain (db.Users(),
//	                   db.Tenants(), db.Tenant(ctx, id).Members(), ...); sentinel errors
//	pierredb/sqlite    the SQLite connector (pragmas, pools, embedded migrations)
//	pierredb/postgres  the PostgreSQL connector (pgx pool or the host's own, session
//	                   settings, advisory lock, migrations)
//	pierredb/storetest the conformance suite: every behaviour on every engine, run by
//	                   pierre and by hosts (storetest.Conformance(t))
//	keyring            the master key, the data keys it wraps, the field envelope
//	                   and key rotation: crypto only, no SQL
//	pierredb/manage    the seed's management tasks (setup, users, tokens, keys,
//	                   backup, restore, rotation) as functions and commands
//	httpserver         health, the admin API, API-key middleware and an MCP token
//	                   verifier, as handlers a host mounts in any router
//	examples/server    a runnable MCP host: go run ./examples/server
//
// A host opens one Database per process and shares it:
//
//	db, err := pierredb.OpenFromEnv(ctx) // DATABASE_URL, PIERRE_MASTER_ENCRYPTION_KEY, ...
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer db.Close()
//
// This package itself holds no code.
package pierre
