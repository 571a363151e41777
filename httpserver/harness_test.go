package httpserver_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/httpserver"
	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

// clock is the store's clock (pierredb.WithClock): the wall clock moved by
// hand, so that tests expire credentials without sleeping.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// harness is one database behind the full Handler, with everything needed to
// check what it says: every answer is kept, so is everything logged (by the
// handler's Options.Logger, by pierredb's logger and its query log), and every
// secret the test hands in or gets out is searched for in all of it when the
// test ends.
type harness struct {
	t     *testing.T
	e     storetest.Engine
	db    *pierredb.Database
	url   string
	h     http.Handler
	clock *clock
	logs  *syncBuffer
	opts  httpserver.Options

	mu        sync.Mutex
	exchanges []exchange
	secrets   []secret
}

// exchange is one answer the handler gave.
type exchange struct {
	what string // "METHOD path"
	body string
	hdr  http.Header
}

// secret is a value that must not appear in any answer (but the one that
// handed it out, exchange index from; -1 for none) nor in any log line.
type secret struct {
	what, value string
	from        int
}

// newHarness opens a fresh database on e with the store's clock and loggers
// captured, and serves it with Handler(opts).
func newHarness(t *testing.T, e storetest.Engine, opts httpserver.Options, dbOpts ...pierredb.Option) *harness {
	t.Helper()
	return newHarnessAt(t, e, e.NewURL(t), opts, dbOpts...)
}

// newHarnessAt is newHarness on the database at url (from e.NewURL).
func newHarnessAt(t *testing.T, e storetest.Engine, url string, opts httpserver.Options, dbOpts ...pierredb.Option) *harness {
	t.Helper()
	h := &harness{t: t, e: e, clock: &clock{}, logs: &syncBuffer{}}
	logger := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.url = url
	dbOpts = append([]pierredb.Option{pierredb.WithClock(h.clock.now), pierredb.WithLogger(logger), pierredb.WithQueryLog(logger)}, dbOpts...)
	h.db = e.OpenURL(t, h.url, dbOpts...)
	if opts.Logger == nil {
		opts.Logger = logger
	}
	h.opts = opts
	h.h = httpserver.Handler(h.db, opts)
	// Registered after OpenURL's cleanup, so it runs first, while the database
	// is still open (the stored hashes join the secrets).
	t.Cleanup(h.checkSecrets)
	return h
}

// use makes h report to t (a subtest) until the returned function runs:
//
//	t.Run("step", func(t *testing.T) { defer h.use(t)(); ... })
//
// Not for subtests that run in parallel.
func (h *harness) use(t *testing.T) func() {
	parent := h.t
	h.t = t
	return func() { h.t = parent }
}

// result is an answer.
type result struct {
	t      *testing.T
	idx    int
	Code   int
	Header http.Header
	Body   []byte
}

// request describes a request to the handler.
type request struct {
	method, path string
	token        string      // Authorization: Bearer token, when set
	body         any         // string or []byte sent as is; anything else as JSON; nil for none
	header       http.Header // more headers
}

// do sends r through the handler and keeps the answer.
func (h *harness) do(r request) *result {
	h.t.Helper()
	return h.serve(h.h, r)
}

func (h *harness) serve(handler http.Handler, r request) *result {
	h.t.Helper()
	var body io.Reader
	switch b := r.body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	case []byte:
		body = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		require.NoError(h.t, err)
		body = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(r.method, r.path, body)
	req.RemoteAddr = "192.0.2.7:4711"
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	for k, vs := range r.header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	return h.keep(r.method+" "+r.path, rec.Code, rec.Header(), rec.Body.Bytes())
}

func (h *harness) keep(what string, code int, hdr http.Header, body []byte) *result {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.exchanges = append(h.exchanges, exchange{what: what, body: string(body), hdr: hdr.Clone()})
	return &result{t: h.t, idx: len(h.exchanges) - 1, Code: code, Header: hdr, Body: body}
}

// secret registers a value that must appear nowhere.
func (h *harness) secret(what, value string) {
	h.addSecret(what, value, -1)
}

// takeSecret registers a value that res handed out: it may appear in res only.
func (h *harness) takeSecret(res *result, what, value string) string {
	h.t.Helper()
	require.NotEmpty(h.t, value, "%s handed out by answer %d", what, res.idx)
	h.addSecret(what, value, res.idx)
	return value
}

func (h *harness) addSecret(what, value string, from int) {
	if len(value) < 8 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.secrets = append(h.secrets, secret{what: what, value: value, from: from})
	// The part of a JWT that proves it (its signature) is as secret as the
	// whole.
	if parts := strings.Split(value, "."); len(parts) == 3 && len(parts[2]) >= 16 {
		h.secrets = append(h.secrets, secret{what: what + " (signature)", value: parts[2], from: from})
	}
}

// storedSecrets reads the hashes and ciphertexts the database keeps.
func (h *harness) storedSecrets() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	text := map[string]string{
		"password hash":           "SELECT password_hash FROM users",
		"api key hash":            "SELECT key_hash FROM api_keys",
		"admin token hash":        "SELECT token_hash FROM admin_tokens",
		"admin signing secret id": "SELECT secret_hash FROM admin_jwt_secret",
	}
	blobs := map[string]string{
		"sealed oauth client secret": "SELECT client_secret_encrypted FROM tenant_oauth_configs",
		"sealed signing secret":      "SELECT secret_encrypted FROM admin_jwt_secret",
		"wrapped data key":           "SELECT wrapped_key FROM keyring_keys",
	}
	for what, q := range text {
		rows, err := h.db.Bun().QueryContext(ctx, q)
		if err != nil {
			if !errors.Is(err, sql.ErrConnDone) && !strings.Contains(err.Error(), "closed") {
				h.t.Errorf("secrecy check: %s: %v", what, err)
			}
			continue
		}
		for rows.Next() {
			var s string
			if rows.Scan(&s) == nil {
				h.secret(what, s)
				// The digest alone, without its scheme and parameters.
				if i := strings.LastIndexByte(s, '$'); i >= 0 && len(s)-i > 16 {
					h.secret(what+" (digest)", s[i+1:])
				}
			}
		}
		_ = rows.Close()
	}
	for what, q := range blobs {
		rows, err := h.db.Bun().QueryContext(ctx, q)
		if err != nil {
			if !errors.Is(err, sql.ErrConnDone) && !strings.Contains(err.Error(), "closed") {
				h.t.Errorf("secrecy check: %s: %v", what, err)
			}
			continue
		}
		for rows.Next() {
			var b []byte
			if rows.Scan(&b) == nil && len(b) >= 16 {
				h.secret(what+" (hex)", hex.EncodeToString(b))
				h.secret(what+" (base64)", base64.StdEncoding.EncodeToString(b)[:20])
				h.secret(what+" (base64url)", base64.RawURLEncoding.EncodeToString(b)[:20])
			}
		}
		_ = rows.Close()
	}
}

// checkSecrets fails the test if a secret appears in an answer that did not
// hand it out, in a header, or in anything logged.
func (h *harness) checkSecrets() {
	h.t.Helper()
	h.storedSecrets()
	logs := h.logs.String()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.secrets {
		for i, x := range h.exchanges {
			if i != s.from && strings.Contains(x.body, s.value) {
				h.t.Errorf("secrecy: the %s is in the answer to %s: %.300s", s.what, x.what, x.body)
			}
			for k, vs := range x.hdr {
				for _, v := range vs {
					if strings.Contains(v, s.value) {
						h.t.Errorf("secrecy: the %s is in header %s of the answer to %s", s.what, k, x.what)
					}
				}
			}
		}
		for _, line := range strings.Split(logs, "\n") {
			if strings.Contains(line, s.value) {
				h.t.Errorf("secrecy: the %s is in the logs: %.400s", s.what, line)
				break
			}
		}
	}
}

// json decodes the answer's body.
func (r *result) json() map[string]any {
	r.t.Helper()
	var m map[string]any
	require.NoError(r.t, json.Unmarshal(r.Body, &m), "body: %s", r.Body)
	return m
}

// data is the data object of a {success, message, data} answer.
func (r *result) data() map[string]any {
	r.t.Helper()
	m := r.json()
	require.Equal(r.t, true, m["success"], "body: %s", r.Body)
	d, ok := m["data"].(map[string]any)
	require.True(r.t, ok, "no data object in %s", r.Body)
	return d
}

// expect checks the status and, for every JSON answer, the envelope.
func (r *result) expect(code int) *result {
	r.t.Helper()
	require.Equal(r.t, code, r.Code, "body: %s", r.Body)
	if len(r.Body) == 0 {
		return r
	}
	assert.Equal(r.t, "application/json", r.Header.Get("Content-Type"))
	assert.Equal(r.t, "no-store", r.Header.Get("Cache-Control"))
	return r
}

// expectError checks an error answer: status, {success: false, message, code}.
func (r *result) expectError(code int, errCode string) map[string]any {
	r.t.Helper()
	r.expect(code)
	m := r.json()
	assert.Equal(r.t, false, m["success"], "body: %s", r.Body)
	assert.NotEmpty(r.t, m["message"], "body: %s", r.Body)
	if errCode != "" {
		assert.Equal(r.t, errCode, m["code"], "body: %s", r.Body)
	}
	for _, leak := range []string{"goroutine", ".go:", "sql:", "SELECT ", "INSERT ", "UPDATE ", "pq:", "SQLSTATE"} {
		assert.NotContains(r.t, string(r.Body), leak, "internals in an error body")
	}
	return m
}

// keys returns the sorted keys of a JSON object.
func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// hasFields checks that m has every field in want.
func hasFields(t *testing.T, m map[string]any, want ...string) {
	t.Helper()
	for _, f := range want {
		_, ok := m[f]
		assert.True(t, ok, "field %q missing from %v", f, keys(m))
	}
}

func obj(t *testing.T, v any) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	require.True(t, ok, "not a JSON object: %#v", v)
	return m
}

func list(t *testing.T, v any) []any {
	t.Helper()
	l, ok := v.([]any)
	require.True(t, ok, "not a JSON array: %#v", v)
	return l
}

func str(t *testing.T, v any) string {
	t.Helper()
	s, ok := v.(string)
	require.True(t, ok, "not a JSON string: %#v", v)
	return s
}

// setup runs POST /admin/setup and returns the admin user's id and the
// super-admin token.
func (h *harness) setup() (userID, token string) {
	h.t.Helper()
	pw := "correct horse battery staple"
	h.secret("admin password", pw)
	res := h.do(request{method: http.MethodPost, path: "/admin/setup",
		body: map[string]any{"email": "root@example.com", "password": pw, "display_name": "Root"}}).expect(http.StatusCreated)
	d := res.data()
	return str(h.t, d["user_id"]), h.takeSecret(res, "setup admin token", str(h.t, d["admin_token"]))
}

// newToken issues an admin token through the API.
func (h *harness) newToken(issuer string, body map[string]any) (id, token string) {
	h.t.Helper()
	res := h.do(request{method: http.MethodPost, path: "/admin/tokens", token: issuer, body: body}).expect(http.StatusCreated)
	d := res.data()
	return str(h.t, d["token_id"]), h.takeSecret(res, "admin token "+str(h.t, d["service_name"]), str(h.t, d["jwt_token"]))
}

// user creates a user (pending unless activate) directly in the store.
func (h *harness) user(email string, activate bool) pierredb.User {
	h.t.Helper()
	ctx := context.Background()
	pw := "password-of-" + email
	h.secret("password of "+email, pw)
	u, err := h.db.Users().Create(ctx, pierredb.NewUser{Email: email, Password: pw})
	require.NoError(h.t, err)
	if activate && u.Status != pierredb.StatusActive {
		u, err = h.db.Users().Approve(ctx, u.ID, pierredb.ByService("test"))
		require.NoError(h.t, err)
	}
	return u
}

// usage lists the admin actions recorded for a token.
func (h *harness) usage(tokenID string) []pierredb.AdminTokenUsage {
	h.t.Helper()
	page, err := h.db.AdminTokens().ListUsage(context.Background(), tokenID, pierredb.AdminUsageFilter{Limit: 1000})
	require.NoError(h.t, err)
	return page.Items
}
