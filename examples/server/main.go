// Command server is pierre's example host: an MCP server on pierre.
//
//	go run ./examples/server            serve (the default)
//	go run ./examples/server help       list the management commands
//
// With no settings at all it opens SQLite at ./data/users.db and listens on
// HTTP_PORT (default 8081):
//
//	GET  /api/health         health (the seed's curl check)
//	     /admin/...          the admin API (POST /admin/setup creates the first admin)
//	     /mcp                MCP over streamable HTTP, behind an API key
//	POST /api/auth/register  sign up (pending until an admin approves)
//
// The master key comes from PIERRE_MASTER_ENCRYPTION_KEY or
// DATABASE_ENCRYPTION_KEY_PATH. Only when neither is set and no database
// (SQLite or PostgreSQL) exists yet does serving or setup generate
// ./data/master.key (mode 0600), and it says so; a first run that fails
// removes it again with whatever else it created. A database that exists
// without its key, or with a wrong one, stops it with a clear message before
// anything is written. SIGINT or SIGTERM shut it down gracefully: requests in
// flight finish, bodies still arriving are cut, then the database is closed;
// a second signal ends it at once.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/pierre-mcp/pierre/httpserver"
	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/sqlite"
)

// Environment the example reads besides pierredb.OpenFromEnv's.
const (
	envPort = "HTTP_PORT"
	// devKeyPath is where a first run keeps its generated master key.
	devKeyPath = "data/master.key"
	version    = "0.1.0"
)

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first Ctrl-C or SIGTERM ends things gracefully (the server finishes
	// its requests in flight, a task cleans up after itself: a partial backup,
	// a restore's lock); stop restores the default handling, so a second one
	// ends the process at once.
	go func() { <-ctx.Done(); stop() }()
	args := os.Args[1:]
	if len(args) > 0 && args[0] != "serve" {
		code := manageMain(ctx, args, os.Stderr)
		stop()
		os.Exit(code)
	}
	if err := serve(ctx, logger, os.Stderr); err != nil {
		logger.Error("server stopped", "err", err.Error())
		os.Exit(1)
	}
}

// serve runs the server until ctx ends, then shuts it down gracefully. It
// checks the settings and takes the port before it writes anything, so that a
// bad setting or a busy port leaves the directory as it was.
func serve(ctx context.Context, logger *slog.Logger, stderr io.Writer) error {
	port, url, err := settings()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("", port))
	if err != nil {
		return fmt.Errorf("listen on port %s: %w (set %s to another port)", port, err, envPort)
	}
	defer ln.Close() // on every error path; Serve and Shutdown close it too

	openCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var db *pierredb.Database
	err = withMasterKey(openCtx, url, stderr, func() (err error) {
		db, err = pierredb.OpenFromEnv(openCtx, pierredb.WithLogger(logger), pierredb.WithHostMigrations(hostMigrations()))
		return err
	})
	if err != nil {
		return err
	}
	defer db.Close()

	mux, mcpServer, calls := routes(db, logger)
	srv := newHTTPServer(mux, logger)
	// MCP sessions keep a stream open for as long as the client stays: on
	// shutdown, let the calls in flight finish, then close the sessions so that
	// their streams end and Shutdown can complete.
	srv.RegisterOnShutdown(func() {
		calls.wait(20 * time.Second)
		for ss := range mcpServer.Sessions() {
			_ = ss.Close()
		}
	})
	info := db.Info()
	logger.Info("pierre example server listening", "addr", ln.Addr().String(), "backend", info.Backend, "location", info.Location,
		"health", "/api/health", "admin", "/admin/", "mcp", "/mcp")

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down: finishing requests in flight (a second Ctrl-C ends at once)")
	shutdownCtx, cancelShutdown := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelShutdown()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	if err := db.Close(); err != nil {
		return err
	}
	logger.Info("stopped cleanly")
	return nil
}

// settings checks everything serve reads from the environment that can be
// checked without writing anything or using the network, and returns the port
// and the database URL.
func settings() (port, url string, err error) {
	port = os.Getenv(envPort)
	if port == "" {
		port = "8081"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "", "", fmt.Errorf("%s=%q is not a port number", envPort, port)
	}
	url, err = checkDatabaseEnv()
	return port, url, err
}

// checkDatabaseEnv checks the database settings pierredb.OpenFromEnv reads
// (the URL, the pool and logging options, the master keys when set) and
// returns the URL. Its errors never repeat a key or a password.
func checkDatabaseEnv() (url string, err error) {
	url = databaseURL()
	if err := pierredb.CheckURL(url); err != nil {
		return "", fmt.Errorf("%s: %w", pierredb.EnvDatabaseURL, err)
	}
	if _, err := pierredb.OptionsFromEnv(os.Getenv, io.Discard); err != nil {
		return "", err
	}
	if os.Getenv(keyring.EnvMasterKey) != "" || os.Getenv(keyring.EnvMasterKeyPath) != "" {
		if _, err := keyring.LoadMasterKey(keyring.LoadOptions{}); err != nil {
			return "", err
		}
	}
	if _, err := keyring.LoadPreviousMasterKey(keyring.LoadOptions{}); err != nil {
		return "", err
	}
	return url, nil
}

// routes is everything the server answers: health and the admin API, MCP
// behind the API-key check, and registration. calls tracks the MCP calls in
// flight, so that shutdown can wait for them.
func routes(db *pierredb.Database, logger *slog.Logger) (mux *http.ServeMux, mcpServer *mcp.Server, calls *inflight) {
	hs := httpserver.Options{Logger: logger, Version: version}
	mux = http.NewServeMux()
	httpserver.Mount(mux, db, hs)
	mcpServer = newMCPServer(activities{db: db}, logger, version)
	mcpHandler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return mcpServer }, nil)
	verifier := httpserver.MCPVerifier(db)
	calls = &inflight{}
	mux.Handle("/mcp", httpserver.RequireAPIKey(db, hs)(auth.RequireBearerToken(verifier, nil)(calls.track(mcpHandler))))
	mux.Handle("POST /api/auth/register", registerHandler(db))
	return mux, mcpServer, calls
}

// databaseURL is DATABASE_URL, or pierre's default.
func databaseURL() string {
	if url := os.Getenv(pierredb.EnvDatabaseURL); url != "" {
		return url
	}
	return pierredb.DefaultURL
}

// withMasterKey decides the master key (ensureMasterKey), then runs open. A
// first run that generated the key and then failed to open leaves nothing
// behind: the key, and the files and directories this run created (the SQLite
// database, its -wal and -shm, an empty ./data), go; whatever existed before
// stays. Two exceptions: a database this run did not create as a new file
// (PostgreSQL, say) that the failed open did initialise needs that key, so
// both are kept (also when that cannot be checked); and a
// database another process created meanwhile under its own key (the open
// fails with a wrong key) is that process's: only the key made here goes.
func withMasterKey(ctx context.Context, url string, stderr io.Writer, open func() error) error {
	made := notThereYet(url) // before anything is written
	generated, err := ensureMasterKey(ctx, url, stderr)
	if err != nil {
		made.removeDirs()
		return err
	}
	err = open()
	if err == nil || generated == "" {
		return err
	}
	if errors.Is(err, keyring.ErrWrongMasterKey) {
		// Another process made the database meanwhile, under its own key: the
		// key made here wraps nothing, and the database is not this run's.
		_ = os.Remove(generated)
		made.removeDirs()
		fmt.Fprintf(stderr, "pierre: the database was created meanwhile with another key: removed the development key %s\n", generated)
		return err
	}
	if path := sqliteFile(url); path == "" || !slices.Contains(made.files, path) {
		// Not a file this run created (a PostgreSQL database, or a SQLite file
		// that was there, empty): if it holds a keyring now, it was made with
		// this key before the failure; when that cannot be checked, keep both.
		if exists, xerr := pierredb.Exists(context.WithoutCancel(ctx), url); xerr != nil || exists {
			fmt.Fprintf(stderr, "pierre: kept %s and the database: it may have been initialised with that key before the failure\n", generated)
			return err
		}
	}
	_ = os.Remove(generated)
	made.remove()
	fmt.Fprintf(stderr, "pierre: the first start failed: removed the development key %s and what this run created\n", generated)
	return err
}

// ensureMasterKey decides where the master key comes from. A key in the
// environment wins; otherwise ./data/master.key, when a first run made one;
// otherwise, only if url names no pierre database yet (SQLite or PostgreSQL),
// it makes that file (0600) and says so on stderr, returning its path. A
// database that exists without its key is an error that writes nothing.
func ensureMasterKey(ctx context.Context, url string, stderr io.Writer) (generated string, err error) {
	if os.Getenv(keyring.EnvMasterKey) != "" || os.Getenv(keyring.EnvMasterKeyPath) != "" {
		return "", nil
	}
	if _, err := os.Stat(devKeyPath); err == nil {
		return "", os.Setenv(keyring.EnvMasterKeyPath, devKeyPath)
	}
	exists, err := pierredb.Exists(ctx, url)
	if err != nil {
		return "", fmt.Errorf("no master key is configured, and whether a database exists could not be checked: %w", err)
	}
	if exists {
		where := "the PostgreSQL database " + pierredb.EnvDatabaseURL + " names"
		if path := sqliteFile(url); path != "" {
			where = "the database " + path
		}
		return "", fmt.Errorf("%s exists but no master key is configured: set %s or %s to the key it was created with (a new key would not open it); nothing was written",
			where, keyring.EnvMasterKey, keyring.EnvMasterKeyPath)
	}
	key, err := keyring.Generate()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(devKeyPath), 0o700); err != nil {
		return "", err
	}
	f, err := os.OpenFile(devKeyPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	if _, err := f.WriteString(key.EncodeBase64() + "\n"); err != nil {
		_ = f.Close()
		_ = os.Remove(devKeyPath)
		return "", err
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(devKeyPath)
		return "", err
	}
	fmt.Fprintf(stderr, "pierre: no master key configured and no database yet: generated a development key in %s (mode 0600).\n"+
		"pierre: keep it safe; without it the database cannot be opened. In production set %s or %s.\n",
		devKeyPath, keyring.EnvMasterKey, keyring.EnvMasterKeyPath)
	return devKeyPath, os.Setenv(keyring.EnvMasterKeyPath, devKeyPath)
}

// sqliteFile is the SQLite file url names, or "" for PostgreSQL, in-memory
// databases and URLs that do not parse. pierre's own parser reads it, so that
// every spelling Open accepts (SQLITE:, sqlite3:, sqlite://) is recognised.
func sqliteFile(url string) string {
	cfg, err := sqlite.ParseURL(url)
	if err != nil || cfg.Memory {
		return ""
	}
	return cfg.Path
}

// leftovers are the paths a first run may create that did not exist before
// it: only those may be removed when it fails.
type leftovers struct {
	files []string
	dirs  []string // deepest first
}

// notThereYet lists what of the key file, the SQLite files of url and their
// directories does not exist yet.
func notThereYet(url string) leftovers {
	var l leftovers
	dirs := []string{filepath.Dir(devKeyPath)}
	if path := sqliteFile(url); path != "" {
		for _, f := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
			if _, err := os.Lstat(f); errors.Is(err, fs.ErrNotExist) {
				l.files = append(l.files, f)
			}
		}
		dirs = append(dirs, filepath.Dir(path))
	}
	for _, dir := range dirs {
		for d := filepath.Clean(dir); d != "." && d != string(filepath.Separator); d = filepath.Dir(d) {
			if _, err := os.Lstat(d); !errors.Is(err, fs.ErrNotExist) {
				break
			}
			if !slices.Contains(l.dirs, d) {
				l.dirs = append(l.dirs, d)
			}
		}
	}
	// Deepest first, so that a directory is empty when its turn comes.
	slices.SortFunc(l.dirs, func(a, b string) int { return len(b) - len(a) })
	return l
}

// remove deletes the files, then the directories if they are empty.
func (l leftovers) remove() {
	for _, f := range l.files {
		_ = os.Remove(f)
	}
	l.removeDirs()
}

// removeDirs deletes the directories that are empty; os.Remove refuses the
// others.
func (l leftovers) removeDirs() {
	for _, d := range l.dirs {
		_ = os.Remove(d)
	}
}

// bodyReadTimeout bounds how long a client may take to send a request body.
const bodyReadTimeout = 30 * time.Second

// newHTTPServer is the server for h: bounded header and body reads, idle
// connections closed after a while, and request bodies still arriving cut
// when it shuts down.
func newHTTPServer(h http.Handler, logger *slog.Logger) *http.Server {
	bodies := newBodyDeadlines(bodyReadTimeout)
	srv := &http.Server{Handler: bodies.wrap(h), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	srv.RegisterOnShutdown(bodies.cut)
	return srv
}

// bodyDeadlines bounds the time a client takes to send a request body, and
// cuts the bodies still arriving on shutdown, so that a stalled client holds
// neither a handler nor the shutdown (Shutdown waits for every active
// connection). http.Server.ReadTimeout is not used: it is one deadline for
// headers and body from the request's first byte, which shutdown cannot
// shorten. Here the deadline is the request's own, set only while its body
// arrives; once the body is in, the request is no longer tracked, so that
// neither the deadline nor the cut reaches the server's background read on
// the connection, whose failure would cancel a long MCP call's context.
// Bodiless requests (MCP's GET streams) get no deadline at all.
type bodyDeadlines struct {
	timeout time.Duration
	mu      sync.Mutex
	reading map[*deadlineBody]struct{}
	closing bool
}

func newBodyDeadlines(timeout time.Duration) *bodyDeadlines {
	return &bodyDeadlines{timeout: timeout, reading: map[*deadlineBody]struct{}{}}
}

type deadlineBody struct {
	io.ReadCloser
	rc    *http.ResponseController
	owner *bodyDeadlines
}

func (b *bodyDeadlines) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		body := &deadlineBody{ReadCloser: r.Body, rc: http.NewResponseController(w), owner: b}
		if !b.start(body) {
			next.ServeHTTP(w, r)
			return
		}
		// A handler that returns before the body's end (a 401, say) leaves
		// the rest unread: the server would wait for it to reuse the
		// connection; it closes the connection after the reply instead.
		defer b.end(body, time.Now())
		r2 := *r
		r2.Body = body
		next.ServeHTTP(w, &r2)
	})
}

// start sets the body's deadline (now, once shutting down) and tracks it;
// false when the connection has no deadlines to set.
func (b *bodyDeadlines) start(body *deadlineBody) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	deadline := time.Now().Add(b.timeout)
	if b.closing {
		deadline = time.Now()
	}
	if body.rc.SetReadDeadline(deadline) != nil {
		return false
	}
	b.reading[body] = struct{}{}
	return true
}

// end stops tracking body and sets the connection's read deadline, once.
func (b *bodyDeadlines) end(body *deadlineBody, deadline time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.reading[body]; !ok {
		return
	}
	delete(b.reading, body)
	_ = body.rc.SetReadDeadline(deadline)
}

// cut ends the reads of the bodies still arriving: their handlers see an
// error and return, and Shutdown need not wait for slow clients. Requests
// whose body has arrived are not touched and finish.
func (b *bodyDeadlines) cut() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closing = true
	for body := range b.reading {
		_ = body.rc.SetReadDeadline(time.Now())
	}
}

func (d *deadlineBody) Read(p []byte) (int, error) {
	n, err := d.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) {
		// The whole body is in: the handler may now run as long as it
		// needs, and a cut on shutdown must not reach it.
		d.owner.end(d, time.Time{})
	}
	return n, err
}

// inflight counts MCP requests that carry calls (POSTs), as opposed to the
// long-lived streams a session keeps open.
type inflight struct{ n atomic.Int64 }

func (c *inflight) track(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			c.n.Add(1)
			defer c.n.Add(-1)
		}
		next.ServeHTTP(w, r)
	})
}

// wait returns once no call is in flight, or after max.
func (c *inflight) wait(max time.Duration) {
	for deadline := time.Now().Add(max); c.n.Load() > 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
}
