package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

var build struct {
	once sync.Once
	path string
	err  error
}

// serverBinary builds this command once per test process.
func serverBinary(t *testing.T) string {
	t.Helper()
	build.once.Do(func() {
		dir, err := os.MkdirTemp("", "pierre-example-bin-")
		if err != nil {
			build.err = err
			return
		}
		build.path = filepath.Join(dir, "server")
		out, err := exec.Command("go", "build", "-o", build.path, ".").CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, build.err)
	return build.path
}

// syncBuffer collects a process's output for concurrent reading.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type server struct {
	cmd    *exec.Cmd
	base   string
	stderr *syncBuffer
	done   chan error
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// baseEnv is the process environment without any of the settings the example
// reads, so that "no settings at all" means that.
func baseEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case pierredb.EnvDatabaseURL, keyring.EnvMasterKey, keyring.EnvMasterKeyPath, keyring.EnvPreviousMasterKey,
			envPort, pierredb.EnvAutoApproveUsers, pierredb.EnvLogQueries, pierredb.EnvMaxConnections, pierredb.EnvUsageFlushInterval:
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// start runs the example in dir and waits for its health check.
func start(t *testing.T, dir string, env ...string) *server {
	t.Helper()
	port := freePort(t)
	cmd := exec.Command(serverBinary(t))
	cmd.Dir = dir
	cmd.Env = baseEnv(append(env, envPort+"="+port)...)
	s := &server{cmd: cmd, base: "http://127.0.0.1:" + port, stderr: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = io.Discard, s.stderr
	require.NoError(t, cmd.Start())
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(s.base + "/api/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case err := <-s.done:
			t.Fatalf("the server exited before answering (%v):\n%s", err, s.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no health answer:\n%s", s.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop interrupts the server as Ctrl-C would and checks it stops cleanly.
func (s *server) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGINT))
	select {
	case err := <-s.done:
		require.NoError(t, err, s.stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("the server did not stop:\n%s", s.stderr.String())
	}
	assert.Contains(t, s.stderr.String(), "stopped cleanly")
}

// runOnce runs the example expecting it to fail at start.
func runOnce(t *testing.T, dir string, env ...string) (string, error) {
	t.Helper()
	return runArgs(t, dir, nil, env...)
}

// runArgs runs the example with args (a management command) and returns its
// combined output.
func runArgs(t *testing.T, dir string, args []string, env ...string) (string, error) {
	t.Helper()
	stdout, stderr, err := runStdin(t, dir, args, "", env...)
	return stdout + stderr, err
}

// runStdin runs the example with args and stdin, and returns its stdout and
// stderr. It listens on a free port unless env names one.
func runStdin(t *testing.T, dir string, args []string, stdin string, env ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(serverBinary(t), args...)
	cmd.Dir = dir
	if !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, envPort+"=") }) {
		env = append(slices.Clone(env), envPort+"="+freePort(t))
	}
	cmd.Env = baseEnv(env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// call sends a JSON request and decodes the JSON answer.
func call(t *testing.T, method, url, token string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

func data(t *testing.T, m map[string]any) map[string]any {
	t.Helper()
	d, ok := m["data"].(map[string]any)
	require.True(t, ok, "an answer with data: %v", m)
	return d
}

// bearer adds an API key to every request of an MCP client.
type bearerTransport struct{ key string }

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.key)
	return http.DefaultTransport.RoundTrip(r)
}

// readDir returns every file of dir with its bytes.
func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		out[e.Name()] = b
	}
	return out
}

// TestEndToEnd builds the example, starts it with no settings (SQLite) or with
// DATABASE_URL=postgres://..., and walks the flow a newcomer follows: the
// seed's health check, setup, sign-up, a provisioned API key, MCP tools with
// the go-sdk's client, 401 without a key, the seed's approval recipe run by
// hand against the live database, and a restart with a wrong key.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the example server")
	}
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		ctx := t.Context()
		dir := t.TempDir()
		var env []string
		var pgURL string
		if e.Backend == pierredb.Postgres {
			pgURL = e.NewURL(t)
			key, err := keyring.Generate()
			require.NoError(t, err)
			env = []string{pierredb.EnvDatabaseURL + "=" + pgURL, keyring.EnvMasterKey + "=" + key.EncodeBase64()}
		}
		s := start(t, dir, env...)
		if e.Backend == pierredb.SQLite {
			assert.Contains(t, s.stderr.String(), "generated a development key")
			st, err := os.Stat(filepath.Join(dir, "data", "master.key"))
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
		}

		// The seed's health check, with curl when the machine has it.
		if curl, err := exec.LookPath("curl"); err == nil {
			out, err := exec.Command(curl, "-fsS", strings.Replace(s.base, "127.0.0.1", "localhost", 1)+"/api/health").Output()
			require.NoError(t, err)
			assert.Contains(t, string(out), `"status":"healthy"`)
		}

		code, body := call(t, http.MethodGet, s.base+"/admin/setup/status", "", nil)
		require.Equal(t, http.StatusOK, code)
		assert.Equal(t, true, body["needs_setup"])
		code, body = call(t, http.MethodPost, s.base+"/admin/setup", "", map[string]string{
			"email": "admin@example.com", "password": "correct horse battery staple", "display_name": "Admin"})
		require.Equal(t, http.StatusCreated, code, "%v", body)
		adminToken := data(t, body)["admin_token"].(string)

		code, body = call(t, http.MethodPost, s.base+"/api/auth/register", "", map[string]string{
			"email": "runner@example.com", "password": "tempo run 10k", "display_name": "Runner"})
		require.Equal(t, http.StatusCreated, code, "%v", body)
		assert.Equal(t, "pending", data(t, body)["user_status"])

		code, body = call(t, http.MethodPost, s.base+"/admin/provision", adminToken, map[string]any{
			"user_email": "admin@example.com", "tier": "starter", "description": "e2e"})
		require.Equal(t, http.StatusCreated, code, "%v", body)
		apiKey := data(t, body)["api_key"].(string)
		require.True(t, strings.HasPrefix(apiKey, "pk_live_"))

		// MCP with the go-sdk's client and the key.
		client := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil)
		session, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: s.base + "/mcp",
			HTTPClient: &http.Client{Transport: bearerTransport{key: apiKey}}}, nil)
		require.NoError(t, err)
		defer session.Close()
		tools, err := session.ListTools(ctx, nil)
		require.NoError(t, err)
		var names []string
		for _, tool := range tools.Tools {
			names = append(names, tool.Name)
		}
		slices.Sort(names)
		assert.Equal(t, []string{"connections", "recent_activities", "record_activity", "whoami"}, names)
		toolCall := func(name string, args map[string]any) map[string]any {
			t.Helper()
			res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
			require.NoError(t, err)
			require.False(t, res.IsError, "%s: %v", name, res.Content)
			b, err := json.Marshal(res.StructuredContent)
			require.NoError(t, err)
			var out map[string]any
			require.NoError(t, json.Unmarshal(b, &out))
			return out
		}
		who := toolCall("whoami", nil)
		assert.Equal(t, "admin@example.com", who["email"])
		assert.Equal(t, "starter", who["tier"])
		assert.NotEmpty(t, who["tenant_id"])
		assert.Positive(t, who["quota_left"])
		conns := toolCall("connections", nil)
		assert.Empty(t, conns["connections"])
		rec := toolCall("record_activity", map[string]any{"sport": "Run", "duration_seconds": 1800, "distance_meters": 5000})
		assert.Equal(t, "run", rec["sport"])
		recent := toolCall("recent_activities", map[string]any{"limit": 5})
		require.Len(t, recent["activities"], 1)

		// Without a key, or with a wrong one: 401.
		for _, auth := range []string{"", "pk_live_wrong"} {
			req, err := http.NewRequest(http.MethodPost, s.base+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			if auth != "" {
				req.Header.Set("Authorization", "Bearer "+auth)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "auth %q", auth)
		}

		// The seed's approval recipe, by hand, against the running server's
		// database; the admin API sees it at once.
		if e.Backend == pierredb.SQLite {
			sqlite3, err := exec.LookPath("sqlite3")
			if err != nil {
				t.Fatalf("the approval recipe needs sqlite3 (apt-get install sqlite3)")
			}
			out, err := exec.Command(sqlite3, filepath.Join(dir, "data", "users.db"),
				"UPDATE users SET user_status = 'active', approved_at = datetime('now') WHERE email = 'runner@example.com';").CombinedOutput()
			require.NoError(t, err, string(out))
		} else {
			psql, err := exec.LookPath("psql")
			require.NoError(t, err, "the approval recipe needs psql")
			u, err := url.Parse(pgURL)
			require.NoError(t, err)
			schema := u.Query().Get("search_path")
			q := u.Query()
			q.Del("search_path")
			u.RawQuery = q.Encode()
			cmd := exec.Command(psql, u.String(), "-v", "ON_ERROR_STOP=1", "-c",
				"UPDATE users SET user_status = 'active', approved_at = now() WHERE email = 'runner@example.com';")
			cmd.Env = append(os.Environ(), "PGOPTIONS=-c search_path="+schema)
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, string(out))
		}
		code, body = call(t, http.MethodGet, s.base+"/admin/users?status=active", adminToken, nil)
		require.Equal(t, http.StatusOK, code)
		var emails []string
		for _, u := range data(t, body)["users"].([]any) {
			emails = append(emails, u.(map[string]any)["email"].(string))
		}
		assert.Contains(t, emails, "runner@example.com")
		s.stop(t)

		// The management tasks run from the same binary, with the same key.
		out, err := runArgs(t, dir, []string{"users", "list"}, env...)
		require.NoError(t, err, out)
		assert.Contains(t, out, "runner@example.com")

		// A restart with the right key works; with a wrong key it stops with a
		// message about the key and writes nothing.
		s = start(t, dir, env...)
		s.stop(t)
		var before map[string][]byte
		if e.Backend == pierredb.SQLite {
			before = readDir(t, filepath.Join(dir, "data"))
		}
		wrong, err := keyring.Generate()
		require.NoError(t, err)
		wrongEnv := append(slices.Clone(env), keyring.EnvMasterKey+"="+wrong.EncodeBase64())
		out, err = runOnce(t, dir, wrongEnv...)
		require.Error(t, err, out)
		assert.Contains(t, out, "wrong master encryption key")
		assert.NotContains(t, out, wrong.EncodeBase64())
		if e.Backend == pierredb.SQLite {
			assert.Equal(t, before, readDir(t, filepath.Join(dir, "data")), "database files are byte-identical")

			// The database without its key file: refused, nothing written.
			require.NoError(t, os.Rename(filepath.Join(dir, "data", "master.key"), filepath.Join(dir, "master.key.moved")))
			before = readDir(t, filepath.Join(dir, "data"))
			out, err = runOnce(t, dir)
			require.Error(t, err, out)
			assert.Contains(t, out, "exists but no master key is configured")
			assert.Equal(t, before, readDir(t, filepath.Join(dir, "data")))
		}
	})
}
