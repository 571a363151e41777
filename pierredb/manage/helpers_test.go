package manage_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/manage"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

// syncBuffer is a bytes.Buffer safe for the goroutines of one command.
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

// harness runs commands against one test database with an environment of its
// own (no process environment, so tests run in parallel).
type harness struct {
	t   *testing.T
	e   storetest.Engine
	url string
	key keyring.MasterKey
	env map[string]string
	// stdin is what the next run reads from stdin.
	stdin string
	// opts are Env.Options.
	opts   []pierredb.Option
	pgDump string
}

func newHarness(t *testing.T, e storetest.Engine) *harness {
	t.Helper()
	h := &harness{t: t, e: e, url: e.NewURL(t), key: e.Key}
	h.env = map[string]string{
		pierredb.EnvDatabaseURL: h.url,
		keyring.EnvMasterKey:    e.Key.EncodeBase64(),
	}
	return h
}

// path is the SQLite file of the harness's database.
func (h *harness) path() string {
	return strings.TrimPrefix(h.url, "sqlite:")
}

// result is one command's outcome.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.code, r.stdout, r.stderr)
}

func (h *harness) environ() manage.Env {
	return manage.Env{
		Getenv:  func(k string) string { return h.env[k] },
		Options: h.opts,
		Program: "pierre",
		PGDump:  h.pgDump,
	}
}

func (h *harness) run(args ...string) result {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return h.runWith(ctx, nil, args...)
}

// runWith runs a command with ctx and the harness's environment as wrap
// changes it (nil: unchanged).
func (h *harness) runWith(ctx context.Context, wrap func(manage.Env) manage.Env, args ...string) result {
	h.t.Helper()
	var out, errb syncBuffer
	env := h.environ()
	if wrap != nil {
		env = wrap(env)
	}
	env.Stdout, env.Stderr, env.Stdin = &out, &errb, strings.NewReader(h.stdin)
	code := manage.Main(ctx, args, env)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// must runs a command that must succeed.
func (h *harness) must(args ...string) result {
	h.t.Helper()
	r := h.run(args...)
	if r.code != manage.ExitOK {
		h.t.Fatalf("%s: %v", strings.Join(args, " "), r)
	}
	return r
}

// fails runs a command that must exit with code and mention every word of
// want in its stderr.
func (h *harness) fails(code int, want []string, args ...string) result {
	h.t.Helper()
	r := h.run(args...)
	if r.code != code {
		h.t.Fatalf("%s: want exit %d, got %v", strings.Join(args, " "), code, r)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			h.t.Fatalf("%s: stderr lacks %q:\n%v", strings.Join(args, " "), w, r)
		}
	}
	return r
}

// open opens the harness's database with its key.
func (h *harness) open(opts ...pierredb.Option) *pierredb.Database {
	h.t.Helper()
	return h.e.OpenURL(h.t, h.url, opts...)
}

// secretLine returns the single line of stdout, failing unless there is
// exactly one.
func secretLine(t *testing.T, r result) string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	if len(lines) != 1 || lines[0] == "" {
		t.Fatalf("stdout should hold exactly one line (the secret): %v", r)
	}
	if strings.Contains(r.stderr, lines[0]) {
		t.Fatalf("the secret appears on stderr too: %v", r)
	}
	return lines[0]
}

// newUser creates a pending user.
func newUser(t *testing.T, db *pierredb.Database, email string) pierredb.User {
	t.Helper()
	u, err := db.Users().Create(context.Background(), pierredb.NewUser{Email: email, Password: "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// snapshot hashes every file in dir, by name.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		_, _ = io.Copy(h, f)
		_ = f.Close()
		out[e.Name()] = hex.EncodeToString(h.Sum(nil))
	}
	return out
}

func sameSnapshot(t *testing.T, before, after map[string]string) {
	t.Helper()
	var diff []string
	for k, v := range before {
		if after[k] != v {
			diff = append(diff, k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			diff = append(diff, k+" (new)")
		}
	}
	sort.Strings(diff)
	if len(diff) > 0 {
		t.Fatalf("files changed: %v", diff)
	}
}

func otherKey(t *testing.T) keyring.MasterKey {
	t.Helper()
	k, err := keyring.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return k
}
