package main

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

// mcpSession serves routes over db in process and connects an MCP client
// with a new member's API key; logs collects the server's log.
func mcpSession(t *testing.T, db *pierredb.Database) (session *mcp.ClientSession, logs *syncBuffer) {
	t.Helper()
	ctx := t.Context()
	u, err := db.Users().Create(ctx, pierredb.NewUser{Email: "runner@example.com", Password: storetest.Password})
	require.NoError(t, err)
	_, err = db.Users().Approve(ctx, u.ID, pierredb.ByService("test"))
	require.NoError(t, err)
	tenant, err := db.Tenants().Create(ctx, pierredb.NewTenant{Name: "Runners", Slug: "runners", OwnerUserID: u.ID})
	require.NoError(t, err)
	scope, err := db.Tenant(ctx, tenant.ID)
	require.NoError(t, err)
	key, err := scope.APIKeys().Create(ctx, pierredb.NewAPIKey{UserID: u.ID, Name: "test"})
	require.NoError(t, err)

	logs = &syncBuffer{}
	mux, _, _ := routes(db, slog.New(slog.NewTextHandler(logs, nil)))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	client := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	session, err = client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: srv.URL + "/mcp",
		HTTPClient: &http.Client{Transport: bearerTransport{key: key.Key.Reveal()}}}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = session.Close() })
	return session, logs
}

// toolText is a tool result's text content.
func toolText(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// sqlLeaks are fragments of database errors that must never reach a client.
var sqlLeaks = []string{"SQL", "sql", "syntax", "token", "SQLSTATE", "relation", "table", "pq:", "pgx", "sqlite"}

// TestRecordActivityInputs: record_activity refuses hostile or out-of-range
// input with the same clear "invalid activity" error on both engines, and
// never hands the client a database error; what it accepts reads back as
// sent.
func TestRecordActivityInputs(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		db := e.Open(t, pierredb.WithHostMigrations(hostMigrations()))
		session, logs := mcpSession(t, db)
		now := time.Now().UTC()
		for _, tc := range []struct {
			name string
			args map[string]any
			want string // "" accepts
		}{
			{"plain", map[string]any{"sport": "Run", "duration_seconds": 1800}, ""},
			{"notes on lines", map[string]any{"sport": "ride", "duration_seconds": 60, "notes": "hills\n\tthen flat; 'quoted' \"too\" é ✓"}, ""},
			{"epoch", map[string]any{"sport": "swim", "duration_seconds": 60, "started_at": "1970-01-01T00:00:00Z"}, ""},
			{"an hour ahead", map[string]any{"sport": "swim", "duration_seconds": 60, "started_at": now.Add(time.Hour).Format(time.RFC3339)}, ""},
			{"NUL in sport", map[string]any{"sport": "run\x00'; DROP TABLE activities; --", "duration_seconds": 60}, "sport"},
			{"NUL in notes", map[string]any{"sport": "run", "duration_seconds": 60, "notes": "a\x00b"}, "notes"},
			{"escape in notes", map[string]any{"sport": "run", "duration_seconds": 60, "notes": "\x1b[2Jcleared"}, "notes"},
			{"carriage return in notes", map[string]any{"sport": "run", "duration_seconds": 60, "notes": "a\rb"}, "notes"},
			{"bidi override in notes", map[string]any{"sport": "run", "duration_seconds": 60, "notes": "abc\u202edcb"}, "notes"},
			{"newline in sport", map[string]any{"sport": "run\nride", "duration_seconds": 60}, "sport"},
			{"zero-width in sport", map[string]any{"sport": "r\u200bun", "duration_seconds": 60}, "sport"},
			{"long sport", map[string]any{"sport": strings.Repeat("x", 41), "duration_seconds": 60}, "sport"},
			{"long notes", map[string]any{"sport": "run", "duration_seconds": 60, "notes": strings.Repeat("é", 501)}, "notes"},
			{"year 0", map[string]any{"sport": "run", "duration_seconds": 60, "started_at": "0000-01-01T00:00:00Z"}, "started_at"},
			{"year 1 (Go's zero)", map[string]any{"sport": "run", "duration_seconds": 60, "started_at": "0001-01-01T00:00:00Z"}, "started_at"},
			{"before 1970", map[string]any{"sport": "run", "duration_seconds": 60, "started_at": "1969-12-31T23:59:59Z"}, "started_at"},
			{"far future", map[string]any{"sport": "run", "duration_seconds": 60, "started_at": "9999-12-31T23:59:59Z"}, "started_at"},
			{"two days ahead", map[string]any{"sport": "run", "duration_seconds": 60, "started_at": now.Add(48 * time.Hour).Format(time.RFC3339)}, "started_at"},
			{"negative duration", map[string]any{"sport": "run", "duration_seconds": -1}, "duration_seconds"},
			{"negative distance", map[string]any{"sport": "run", "duration_seconds": 60, "distance_meters": -1}, "distance_meters"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				res, err := session.CallTool(t.Context(), &mcp.CallToolParams{Name: "record_activity", Arguments: tc.args})
				require.NoError(t, err)
				text := toolText(res)
				if tc.want == "" {
					require.False(t, res.IsError, text)
					out := res.StructuredContent.(map[string]any)
					assert.Equal(t, strings.ToLower(tc.args["sport"].(string)), out["sport"])
					if notes, ok := tc.args["notes"]; ok {
						assert.Equal(t, notes, out["notes"])
					}
					return
				}
				require.True(t, res.IsError, "accepted: %v", res.StructuredContent)
				assert.Contains(t, text, "invalid activity: "+tc.want)
				for _, leak := range sqlLeaks {
					assert.NotContains(t, text, leak)
				}
			})
		}
		res, err := session.CallTool(t.Context(), &mcp.CallToolParams{Name: "recent_activities", Arguments: map[string]any{"limit": 100}})
		require.NoError(t, err)
		require.False(t, res.IsError, toolText(res))
		assert.Len(t, res.StructuredContent.(map[string]any)["activities"], 4, "only the accepted ones were stored")
		assert.NotContains(t, logs.String(), "level=ERROR", "client mistakes are not server errors")
	})
}

// TestToolDatabaseErrorsStayInTheLog: when the database fails, the client
// gets a generic error and the server log the details, without the tool's
// arguments.
func TestToolDatabaseErrorsStayInTheLog(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		db := e.Open(t, pierredb.WithHostMigrations(hostMigrations()))
		session, logs := mcpSession(t, db)
		_, err := db.Bun().ExecContext(t.Context(), "DROP TABLE activities")
		require.NoError(t, err)
		for _, tc := range []struct {
			tool string
			args map[string]any
		}{
			{"record_activity", map[string]any{"sport": "run", "duration_seconds": 60, "notes": "private-note-text"}},
			{"recent_activities", map[string]any{"limit": 7}},
		} {
			t.Run(tc.tool, func(t *testing.T) {
				res, err := session.CallTool(t.Context(), &mcp.CallToolParams{Name: tc.tool, Arguments: tc.args})
				require.NoError(t, err)
				require.True(t, res.IsError)
				assert.Equal(t, "internal error; see the server log", toolText(res))
				assert.Contains(t, logs.String(), "tool="+tc.tool)
				assert.Contains(t, logs.String(), "activities", "the log has the database's error")
				assert.NotContains(t, logs.String(), "private-note-text")
			})
		}
	})
}
