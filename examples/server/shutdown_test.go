package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/pierredb"
)

// sendRaw dials addr and writes req (a request, perhaps cut short), leaving
// the connection open; it is closed when t ends.
func sendRaw(t *testing.T, addr, req string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	_, err = io.WriteString(c, req)
	require.NoError(t, err)
	return c
}

// unfinished is a POST whose body announces more than it sends.
func unfinished(path string) string {
	return "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"email\":"
}

// serveWith serves h through bodyDeadlines with timeout on a loopback port.
func serveWith(t *testing.T, timeout time.Duration, h http.Handler) (*http.Server, string) {
	t.Helper()
	b := newBodyDeadlines(timeout)
	srv := &http.Server{Handler: b.wrap(h), ReadHeaderTimeout: 10 * time.Second}
	srv.RegisterOnShutdown(b.cut)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return srv, ln.Addr().String()
}

// TestBodyDeadlines: a body is bounded in time while it arrives, and only
// then: a handler that runs long after reading its body, or a request without
// a body (an MCP stream), keeps its context.
func TestBodyDeadlines(t *testing.T) {
	const timeout = 300 * time.Millisecond
	for _, tc := range []struct {
		name    string
		req     string
		handler func(w http.ResponseWriter, r *http.Request) string // what the handler saw
		want    string
	}{
		{
			name: "a stalled body is cut",
			req:  unfinished("/"),
			handler: func(w http.ResponseWriter, r *http.Request) string {
				if _, err := io.ReadAll(r.Body); err != nil {
					return "body cut"
				}
				return "body read"
			},
			want: "body cut",
		},
		{
			name: "a long handler after its body keeps its context",
			req:  "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
			handler: func(w http.ResponseWriter, r *http.Request) string {
				if _, err := io.ReadAll(r.Body); err != nil {
					return "body cut"
				}
				select {
				case <-r.Context().Done():
					return "cancelled"
				case <-time.After(4 * timeout):
					return "finished"
				}
			},
			want: "finished",
		},
		{
			name: "a long bodiless stream keeps its context",
			req:  "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
			handler: func(w http.ResponseWriter, r *http.Request) string {
				select {
				case <-r.Context().Done():
					return "cancelled"
				case <-time.After(4 * timeout):
					return "finished"
				}
			},
			want: "finished",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			saw := make(chan string, 1)
			_, addr := serveWith(t, timeout, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				saw <- tc.handler(w, r)
			}))
			sendRaw(t, addr, tc.req)
			select {
			case got := <-saw:
				assert.Equal(t, tc.want, got)
			case <-time.After(10 * time.Second):
				t.Fatal("the handler never returned")
			}
		})
	}
}

// TestShutdownCutsBodiesStillArriving: Shutdown does not wait for clients
// that never finish their body, whether the handler reads it or answers
// without it, while a request whose body has arrived still finishes, its
// context intact.
func TestShutdownCutsBodiesStillArriving(t *testing.T) {
	handlerDone := make(chan string, 1)
	srv, addr := serveWith(t, time.Minute, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/read":
			_, _ = io.ReadAll(r.Body)
		case "/ignore":
			w.WriteHeader(http.StatusUnauthorized)
		case "/slow":
			_, _ = io.ReadAll(r.Body)
			saw := "done"
			select {
			case <-r.Context().Done():
				saw = "cancelled"
			case <-time.After(time.Second):
			}
			_, _ = io.WriteString(w, saw)
			handlerDone <- saw
		}
	}))
	sendRaw(t, addr, unfinished("/read"))
	sendRaw(t, addr, unfinished("/ignore"))
	slow := sendRaw(t, addr, "POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
	time.Sleep(200 * time.Millisecond) // the server has the three requests

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	begin := time.Now()
	require.NoError(t, srv.Shutdown(ctx))
	assert.Less(t, time.Since(begin), 5*time.Second)
	assert.Equal(t, "done", <-handlerDone)
	resp, err := http.ReadResponse(bufio.NewReader(slow), nil)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	assert.Equal(t, "done", string(body), "the complete request finished")
}

// lockSQLite holds SQLite's write lock on path until the returned func runs.
func lockSQLite(t *testing.T, path string) (release func()) {
	t.Helper()
	sqlite3, err := exec.LookPath("sqlite3")
	if err != nil {
		t.Fatalf("this test needs sqlite3 (apt-get install sqlite3)")
	}
	cmd := exec.Command(sqlite3, path)
	in, err := cmd.StdinPipe()
	require.NoError(t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	_, err = io.WriteString(in, "BEGIN IMMEDIATE;\nSELECT 'locked';\n")
	require.NoError(t, err)
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "locked\n", line)
	release = func() {
		_ = in.Close() // sqlite3 ends, rolling back
		_ = cmd.Wait()
	}
	t.Cleanup(release)
	return release
}

// register posts a complete sign-up and reports its status code.
func register(base, email string) <-chan int {
	status := make(chan int, 1)
	go func() {
		resp, err := http.Post(base+"/api/auth/register", "application/json",
			strings.NewReader(`{"email":"`+email+`","password":"tempo run 10k","display_name":"R"}`))
		if err != nil {
			status <- 0
			return
		}
		resp.Body.Close()
		status <- resp.StatusCode
	}()
	return status
}

// TestSlowClientsDoNotHoldShutdown: after SIGTERM the server stops within
// seconds even though clients never finish their request bodies, and a
// complete request in flight (held on the database's lock) still finishes.
func TestSlowClientsDoNotHoldShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the example server")
	}
	dir := t.TempDir()
	s := start(t, dir)
	addr := strings.TrimPrefix(s.base, "http://")
	for _, path := range []string{"/api/auth/register", "/mcp", "/admin/setup"} {
		sendRaw(t, addr, unfinished(path))
	}
	sendRaw(t, addr, "POST /api/auth/register HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"ema\r\n")
	release := lockSQLite(t, filepath.Join(dir, "data", "users.db"))
	status := register(s.base, "held@example.com")
	time.Sleep(500 * time.Millisecond) // the server has every request

	require.NoError(t, s.cmd.Process.Signal(syscall.SIGTERM))
	begin := time.Now()
	time.Sleep(time.Second)
	release()
	select {
	case err := <-s.done:
		require.NoError(t, err, s.stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatalf("the server did not stop within seconds:\n%s", s.stderr.String())
	}
	assert.Less(t, time.Since(begin), 10*time.Second)
	assert.Contains(t, s.stderr.String(), "stopped cleanly")
	assert.Equal(t, http.StatusCreated, <-status, "the complete request in flight finished")
}

// TestSecondSignalEndsAtOnce: while a graceful shutdown waits for a request
// in flight, a second SIGTERM or SIGINT ends the process at once.
func TestSecondSignalEndsAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the example server")
	}
	for _, sig := range []os.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			// A request waits up to a minute for the database's lock.
			s := start(t, dir, pierredb.EnvDatabaseURL+"=sqlite:./data/users.db?busy_timeout=60000")
			lockSQLite(t, filepath.Join(dir, "data", "users.db"))
			register(s.base, "held@example.com")
			time.Sleep(500 * time.Millisecond)

			require.NoError(t, s.cmd.Process.Signal(sig))
			select {
			case err := <-s.done:
				t.Fatalf("the first signal did not wait for the request in flight (%v):\n%s", err, s.stderr.String())
			case <-time.After(time.Second):
			}
			require.NoError(t, s.cmd.Process.Signal(sig))
			select {
			case err := <-s.done:
				var exit *exec.ExitError
				require.True(t, errors.As(err, &exit), "%v", err)
				assert.False(t, exit.Success())
			case <-time.After(5 * time.Second):
				t.Fatalf("the second signal was ignored:\n%s", s.stderr.String())
			}
		})
	}
}
