package pierredb

import (
	"log/slog"
	"time"

	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb/internal/password"
)

// Option adjusts how Open connects and how the Database behaves. The zero
// configuration is the documented default of each option.
type Option func(*config)

type config struct {
	maxConns       int
	connectTimeout time.Duration
	busyTimeout    time.Duration
	noMigrations   bool
	logger         *slog.Logger
	now            func() time.Time
	previousKey    keyring.MasterKey
	passwordPolicy PasswordPolicy
	autoApprove    *bool
	lastActive     time.Duration
	usageFlush     *time.Duration
	host           []HostMigrations
	queryLog       *slog.Logger
	existing       bool
}

// PasswordPolicy is the argon2id cost of new password hashes. Zero fields mean the
// defaults (m=19456 KiB, t=2, p=1), which are also the floor: a policy can only
// raise the cost.
type PasswordPolicy = password.Policy

// WithPasswordPolicy raises the cost of new password hashes; users whose stored
// hash is below it are rehashed at their next login.
func WithPasswordPolicy(p PasswordPolicy) Option { return func(c *config) { c.passwordPolicy = p } }

// WithAutoApproveUsers overrides the stored auto-approval setting: new users are
// created active (true) or pending (false) whatever Settings.SetAutoApproveUsers
// stored.
func WithAutoApproveUsers(on bool) Option { return func(c *config) { c.autoApprove = &on } }

// WithLastActiveInterval sets how often Users.Touch (and a login) writes a user's
// last_active (default one minute); more frequent calls for the same user do
// nothing.
func WithLastActiveInterval(d time.Duration) Option { return func(c *config) { c.lastActive = d } }

// WithUsageFlushInterval sets how API key and A2A client verifications count
// requests against their quotas.
//
// With d > 0, this Database counts in memory, exactly under any concurrency
// within the process, and writes the counts to the database every d at most
// (and when it closes); usage listings write what is pending first. Inside
// RunInTx a request is counted in the host's transaction instead. A crash
// loses the counts of the last d, and quotas are exact only while one process
// counts a credential's requests: two processes would each allow up to d's worth
// of requests the other already counted. The first request of each credential
// in each window is counted in the database, and reads the counts other
// processes wrote.
//
// With d <= 0, each verification counts in the database with a statement that
// counts and refuses in one step, exact across any number of processes, at the
// cost of one commit per request. On PostgreSQL an API key's lookup and count
// are that one statement (a refused request takes a second one), and its
// commit does not wait for the disk: a server crash may lose the last fraction
// of a second of counts.
//
// The default follows the engine: one second on SQLite, whose file one process
// serves, and zero on PostgreSQL, which many instances share. Give 0 on SQLite
// when several processes verify credentials against one file.
func WithUsageFlushInterval(d time.Duration) Option {
	return func(c *config) { c.usageFlush = &d }
}

// WithMaxConnections bounds the PostgreSQL pool that Open creates (default 10,
// or DATABASE_MAX_CONNECTIONS with OpenFromEnv). SQLite ignores it: it keeps one
// writer connection and a reader pool sized to GOMAXPROCS. OpenConnector ignores
// it: the connector carries its own settings.
func WithMaxConnections(n int) Option { return func(c *config) { c.maxConns = n } }

// WithConnectTimeout bounds each PostgreSQL connection attempt of a pool that
// Open creates, when the URL has no connect_timeout (default 5 s).
func WithConnectTimeout(d time.Duration) Option { return func(c *config) { c.connectTimeout = d } }

// WithBusyTimeout sets how long SQLite waits for another writer's lock (default
// 5 s, or busy_timeout in the URL).
func WithBusyTimeout(d time.Duration) Option { return func(c *config) { c.busyTimeout = d } }

// WithHostMigrations makes Open apply the host's own migrations after pierre's
// (see HostMigrations). Several sets apply in the order given.
func WithHostMigrations(m HostMigrations) Option {
	return func(c *config) { c.host = append(c.host, m) }
}

// WithoutMigrations makes Open leave the schema alone. Open then fails with
// ErrSchemaNotCurrent if migrations are pending: use it when a deploy step migrates.
func WithoutMigrations() Option { return func(c *config) { c.noMigrations = true } }

// WithLogger sends pierredb's few operational log lines (open, migrations applied,
// keyring created) to l. By default pierredb logs nothing.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithClock replaces time.Now for every timestamp the store writes (tests).
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithPreviousMasterKey lets Open unlock keys still wrapped by the previous master
// key during a rollover (see keyring.WithPreviousMasterKey).
func WithPreviousMasterKey(k keyring.MasterKey) Option {
	return func(c *config) { c.previousKey = k }
}

// WithExistingDatabase makes Open refuse to create a database: when the SQLite
// file does not exist, or the database holds no pierre schema yet (a PostgreSQL
// schema never migrated, an empty file), Open fails with ErrNotFound naming
// where it looked, and creates nothing: no file, no directory, no schema, no
// keyring. Tools that read or maintain an existing database (listing users,
// rotating keys) use it, so that a mistyped DATABASE_URL is an error rather
// than a new, empty database.
func WithExistingDatabase() Option { return func(c *config) { c.existing = true } }

func newConfig(opts []Option) config {
	var c config
	for _, o := range opts {
		o(&c)
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	if c.lastActive <= 0 {
		c.lastActive = time.Minute
	}
	return c
}
