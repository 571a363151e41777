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
// exists yet does it generate ./data/master.key (mode 0600), and it says so; a
// database that exists without its key, or with a wrong one, stops it with a
// clear message before anything is written. SIGINT or SIGTERM shut it down
// gracefully: requests in flight finish, then the database is closed.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/pierre-mcp/pierre/httpserver"
	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb"
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
	args := os.Args[1:]
	if len(args) > 0 && args[0] != "serve" {
		// Ctrl-C cancels the task, which then cleans up after itself (a
		// partial backup, a restore's lock); a second Ctrl-C ends it at once.
		go func() { <-ctx.Done(); stop() }()
		code := manageMain(ctx, args)
		stop()
		os.Exit(code)
	}
	if err := serve(ctx, logger, os.Stderr); err != nil {
		logger.Error("server stopped", "err", err.Error())
		os.Exit(1)
	}
}

// serve runs the server until ctx ends, then shuts it down gracefully.
func serve(ctx context.Context, logger *slog.Logger, stderr io.Writer) error {
	port := os.Getenv(envPort)
	if port == "" {
		port = "8081"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%s=%q is not a port number", envPort, port)
	}
	generated, err := ensureMasterKey(stderr)
	if err != nil {
		return err
	}
	openCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	db, err := pierredb.OpenFromEnv(openCtx, pierredb.WithLogger(logger), pierredb.WithHostMigrations(hostMigrations()))
	if err != nil {
		if generated != "" && errors.Is(err, keyring.ErrWrongMasterKey) {
			// The database (PostgreSQL) already had a keyring: the key made just
			// now is not its key. Leave nothing behind.
			_ = os.Remove(generated)
			return fmt.Errorf("%w\nthis database already holds data: set %s (or %s) to its master key", err, keyring.EnvMasterKey, keyring.EnvMasterKeyPath)
		}
		return err
	}
	defer db.Close()

	mux, mcpServer, calls := routes(db, logger)

	ln, err := net.Listen("tcp", net.JoinHostPort("", port))
	if err != nil {
		return fmt.Errorf("listen on port %s: %w (set %s to another port)", port, err, envPort)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
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
	logger.Info("shutting down: finishing requests in flight")
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

// routes is everything the server answers: health and the admin API, MCP
// behind the API-key check, and registration. calls tracks the MCP calls in
// flight, so that shutdown can wait for them.
func routes(db *pierredb.Database, logger *slog.Logger) (mux *http.ServeMux, mcpServer *mcp.Server, calls *inflight) {
	hs := httpserver.Options{Logger: logger, Version: version}
	mux = http.NewServeMux()
	httpserver.Mount(mux, db, hs)
	mcpServer = newMCPServer(db, activities{db: db}, version)
	mcpHandler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return mcpServer }, nil)
	verifier := httpserver.MCPVerifier(db)
	calls = &inflight{}
	mux.Handle("/mcp", httpserver.RequireAPIKey(db, hs)(auth.RequireBearerToken(verifier, nil)(calls.track(mcpHandler))))
	mux.Handle("POST /api/auth/register", registerHandler(db))
	return mux, mcpServer, calls
}

// ensureMasterKey decides where the master key comes from. A key in the
// environment wins; otherwise ./data/master.key, when a first run made one;
// otherwise, only if no database exists yet, it makes that file (0600) and
// says so on stderr, returning its path. A SQLite database that exists
// without its key is an error that writes nothing.
func ensureMasterKey(stderr io.Writer) (generated string, err error) {
	if os.Getenv(keyring.EnvMasterKey) != "" || os.Getenv(keyring.EnvMasterKeyPath) != "" {
		return "", nil
	}
	if _, err := os.Stat(devKeyPath); err == nil {
		return "", os.Setenv(keyring.EnvMasterKeyPath, devKeyPath)
	}
	if path := sqliteFile(); path != "" {
		if _, err := os.Stat(path); err == nil {
			return "", fmt.Errorf("the database %s exists but no master key is configured: set %s or %s to the key it was created with (a new key would not open it)",
				path, keyring.EnvMasterKey, keyring.EnvMasterKeyPath)
		}
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
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	fmt.Fprintf(stderr, "pierre: no master key configured and no database yet: generated a development key in %s (mode 0600).\n"+
		"pierre: keep it safe; without it the database cannot be opened. In production set %s or %s.\n",
		devKeyPath, keyring.EnvMasterKey, keyring.EnvMasterKeyPath)
	return devKeyPath, os.Setenv(keyring.EnvMasterKeyPath, devKeyPath)
}

// sqliteFile is the SQLite file DATABASE_URL names (or the default), or "" for
// PostgreSQL and in-memory databases.
func sqliteFile() string {
	url := os.Getenv(pierredb.EnvDatabaseURL)
	if url == "" {
		url = pierredb.DefaultURL
	}
	rest, ok := strings.CutPrefix(url, "sqlite:")
	if !ok {
		rest, ok = strings.CutPrefix(url, "sqlite3:")
	}
	if !ok || strings.HasPrefix(rest, ":memory:") {
		return ""
	}
	path, _, _ := strings.Cut(strings.TrimPrefix(rest, "//"), "?")
	return path
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
