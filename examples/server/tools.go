package main

import (
	"context"
	"errors"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/pierre-mcp/pierre/httpserver"
	"github.com/pierre-mcp/pierre/pierredb"
)

// errNoPrincipal means a tool was called without pierre's verifier in front
// of it: a wiring mistake, never a client's.
var errNoPrincipal = errors.New("no API key principal on the request; serve MCP behind httpserver.MCPVerifier")

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
	StartedAt       *time.Time `json:"started_at,omitempty" jsonschema:"RFC 3339; now when left out"`
	DurationSeconds int64      `json:"duration_seconds" jsonschema:"how long it lasted"`
	DistanceMeters  *float64   `json:"distance_meters,omitempty"`
	Notes           string     `json:"notes,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// newMCPServer builds the MCP server and its tools. Every tool acts for the
// user and tenant of the API key that called it, and nothing else.
func newMCPServer(db *pierredb.Database, acts activities, version string) *mcp.Server {
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
				return nil, connectionsOutput{}, err
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
			if list == nil {
				list = []activity{}
			}
			return nil, activitiesOutput{Activities: list}, err
		})

	mcp.AddTool(s, &mcp.Tool{Name: "record_activity", Description: "Record an activity for the user (kept in the example host's own table)."},
		func(ctx context.Context, req *mcp.CallToolRequest, in recordInput) (*mcp.CallToolResult, activity, error) {
			p, err := principal(req)
			if err != nil {
				return nil, activity{}, err
			}
			a := activity{Sport: in.Sport, DurationSeconds: in.DurationSeconds, DistanceMeters: in.DistanceMeters, Notes: in.Notes}
			if in.StartedAt != nil {
				a.StartedAt = *in.StartedAt
			}
			a, err = acts.record(ctx, p.Tenant, p.UserID, a)
			return nil, a, err
		})
	return s
}
