package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/pierre-mcp/pierre/httpserver"
	"github.com/pierre-mcp/pierre/pierredb"
)

// errNoPrincipal means a tool was called without pierre's verifier in front
// of it: a wiring mistake, never a client's.
var errNoPrincipal = errors.New("no API key principal on the request; serve MCP behind httpserver.MCPVerifier")

// errInternal is what a client sees of a failure that is not its own (a
// database error, say): the details, which may name tables or quote SQL, go to
// the server log only.
var errInternal = errors.New("internal error; see the server log")

// toolError is err as the MCP client may see it: a client mistake as it is,
// anything else logged and replaced by errInternal. The log names the tool,
// the user and the tenant, never the tool's arguments.
func toolError(ctx context.Context, logger *slog.Logger, tool string, p pierredb.APIKeyPrincipal, err error) error {
	if err == nil || errors.Is(err, errBadActivity) || errors.Is(err, errNoPrincipal) {
		return err
	}
	logger.ErrorContext(ctx, "MCP tool failed", "tool", tool, "user_id", p.UserID, "tenant_id", tenantID(p), "err", err.Error())
	return errInternal
}

func tenantID(p pierredb.APIKeyPrincipal) string {
	if p.Tenant == nil {
		return ""
	}
	return p.Tenant.ID()
}

// principal is the verified API key of a tool call.
func principal(req *mcp.CallToolRequest) (pierredb.APIKeyPrincipal, error) {
	if req == nil || req.Extra == nil {
		return pierredb.APIKeyPrincipal{}, errNoPrincipal
	}
	p, ok := httpserver.PrincipalFromTokenInfo(req.Extra.TokenInfo)
	if !ok {
		return pierredb.APIKeyPrincipal{}, errNoPrincipal
	}
	return p, nil
}

type noInput struct{}

type whoamiOutput struct {
	Email    string `json:"email"`
	UserID   string `json:"user_id"`
	TenantID string `json:"tenant_id"`
	Tier     string `json:"tier"`
	KeyName  string `json:"api_key_name"`
	// QuotaLeft is how many requests the key may still make in this window
	// (null when unlimited), QuotaLimit the window's limit, QuotaResets its end.
	QuotaLeft   *int64     `json:"quota_left"`
	QuotaLimit  *int64     `json:"quota_limit"`
	QuotaPeriod string     `json:"quota_period"`
	QuotaResets *time.Time `json:"quota_resets_at,omitempty"`
}

type connection struct {
	Provider   string     `json:"provider"`
	ExpiresAt  *time.Time `json:"expires_at"`
	Scope      string     `json:"scope,omitempty"`
	LastSyncAt *time.Time `json:"last_sync_at,omitempty"`
}

type connectionsOutput struct {
	Connections []connection `json:"connections"`
}

type recentInput struct {
	Limit int `json:"limit,omitempty" jsonschema:"how many activities, newest first (default 10, at most 100)"`
}

type activitiesOutput struct {
	Activities []activity `json:"activities"`
}

type recordInput struct {
	Sport           string     `json:"sport" jsonschema:"run, ride, swim, ..."`
	StartedAt       *time.Time `json:"started_at,omitempty" jsonschema:"RFC 3339, from 1970-01-01 to a day from now; now when left out"`
	DurationSeconds int64      `json:"duration_seconds" jsonschema:"how long it lasted, at most a week"`
	DistanceMeters  *float64   `json:"distance_meters,omitempty" jsonschema:"at most 10000 km"`
	Notes           string     `json:"notes,omitempty" jsonschema:"free text, at most 1000 bytes"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// newMCPServer builds the MCP server and its tools. Every tool acts for the
// user and tenant of the API key that called it, and nothing else; failures
// that are not the client's go to logger, not to the client.
func newMCPServer(acts activities, logger *slog.Logger, version string) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "pierre-example", Version: version}, nil)

	mcp.AddTool(s, &mcp.Tool{Name: "whoami", Description: "Who the API key acts for: email, user, tenant, tier and the quota left."},
		func(ctx context.Context, req *mcp.CallToolRequest, _ noInput) (*mcp.CallToolResult, whoamiOutput, error) {
			p, err := principal(req)
			if err != nil {
				return nil, whoamiOutput{}, err
			}
			out := whoamiOutput{Email: p.Email, UserID: p.UserID, TenantID: p.Tenant.ID(), Tier: string(p.Tier), KeyName: p.KeyName,
				QuotaPeriod: string(p.RateLimit.Period)}
			if !p.RateLimit.Unlimited {
				left, limit := p.Remaining, p.RateLimit.Requests
				out.QuotaLeft, out.QuotaLimit, out.QuotaResets = &left, &limit, timePtr(p.Reset)
			}
			return nil, out, nil
		})

	mcp.AddTool(s, &mcp.Tool{Name: "connections", Description: "The fitness providers the user has connected, and when each token expires."},
		func(ctx context.Context, req *mcp.CallToolRequest, _ noInput) (*mcp.CallToolResult, connectionsOutput, error) {
			p, err := principal(req)
			if err != nil {
				return nil, connectionsOutput{}, err
			}
			tokens, err := p.Tenant.OAuthTokens().List(ctx, p.UserID)
			if err != nil {
				return nil, connectionsOutput{}, toolError(ctx, logger, "connections", p, err)
			}
			out := connectionsOutput{Connections: make([]connection, 0, len(tokens))}
			for _, t := range tokens {
				out.Connections = append(out.Connections, connection{Provider: string(t.Provider), ExpiresAt: timePtr(t.ExpiresAt),
					Scope: t.Scope, LastSyncAt: timePtr(t.LastSyncAt)})
			}
			return nil, out, nil
		})

	mcp.AddTool(s, &mcp.Tool{Name: "recent_activities", Description: "The user's latest recorded activities, newest first."},
		func(ctx context.Context, req *mcp.CallToolRequest, in recentInput) (*mcp.CallToolResult, activitiesOutput, error) {
			p, err := principal(req)
			if err != nil {
				return nil, activitiesOutput{}, err
			}
			list, err := acts.recent(ctx, p.Tenant, p.UserID, in.Limit)
			if err != nil {
				return nil, activitiesOutput{}, toolError(ctx, logger, "recent_activities", p, err)
			}
			if list == nil {
				list = []activity{}
			}
			return nil, activitiesOutput{Activities: list}, nil
		})

	mcp.AddTool(s, &mcp.Tool{Name: "record_activity", Description: "Record an activity for the user (kept in the example host's own table)."},
		func(ctx context.Context, req *mcp.CallToolRequest, in recordInput) (*mcp.CallToolResult, activity, error) {
			p, err := principal(req)
			if err != nil {
				return nil, activity{}, err
			}
			a := activity{Sport: in.Sport, DurationSeconds: in.DurationSeconds, DistanceMeters: in.DistanceMeters, Notes: in.Notes}
			if in.StartedAt != nil {
				if in.StartedAt.IsZero() {
					// record reads a zero time as now; a client that sent
					// 0001-01-01 meant that date, which is out of range.
					return nil, activity{}, errBadStart
				}
				a.StartedAt = *in.StartedAt
			}
			a, err = acts.record(ctx, p.Tenant, p.UserID, a)
			if err != nil {
				return nil, activity{}, toolError(ctx, logger, "record_activity", p, err)
			}
			return nil, a, nil
		})
	return s
}
