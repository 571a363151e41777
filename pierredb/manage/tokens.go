package manage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/uptrace/bun"

	"github.com/pierre-mcp/pierre/pierredb"
)

// How the commands issue and revoke admin tokens.
//
// pierredb issues an admin token on behalf of an issuer: a token whose row is
// re-read in the issuing transaction and must be usable and hold the rights
// it passes on. The commands run with the database and its master key, which
// already give every right, so they are a trusted operator: they act through
// a usable super-admin token of the database (the oldest, or the one --issuer
// names), and record what they did in that token's audit trail
// (AdminTokens.RecordUsage, action "cli_..."), so `admin-tokens list` and the
// admin API show it. When no usable super-admin token exists, `admin-tokens
// create --super-admin` issues the first one (AdminTokens.CreateFirst), as
// setup does.

// AdminTokenOptions is what CreateAdminToken needs.
type AdminTokenOptions struct {
	Service     string
	Description string
	Permissions []pierredb.AdminPermission
	SuperAdmin  bool
	// ExpiresIn is the token's lifetime; 0 means it does not expire.
	ExpiresIn time.Duration
	// Issuer is the id of the super-admin token to act through; "" picks the
	// oldest usable one.
	Issuer string
}

// permissionsFlag collects --permission values (repeated or comma-separated).
type permissionsFlag []pierredb.AdminPermission

func (p *permissionsFlag) String() string { return fmt.Sprint([]pierredb.AdminPermission(*p)) }
func (p *permissionsFlag) Set(s string) error {
	for v := range strings.SplitSeq(s, ",") {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		if v == "all" {
			*p = append(*p, pierredb.AdminPermissions()...)
			continue
		}
		if !pierredb.AdminPermission(v).Valid() {
			return fmt.Errorf("%q is not an admin permission; use %s", shorten(v), permissionList())
		}
		*p = append(*p, pierredb.AdminPermission(v))
	}
	return nil
}

func permissionList() string {
	var names []string
	for _, p := range pierredb.AdminPermissions() {
		names = append(names, string(p))
	}
	return strings.Join(names, ", ")
}

func runTokensCreate(ctx context.Context, env Env, args []string) error {
	fs := newFlags("admin-tokens create")
	var o AdminTokenOptions
	var perms permissionsFlag
	var exp durationFlag
	fs.StringVar(&o.Service, "service", "", "the service that will use the token")
	fs.StringVar(&o.Description, "description", "", "what the token is for")
	fs.Var(&perms, "permission", "a permission (repeat, or comma-separate): "+permissionList())
	fs.Var(&perms, "permissions", "same as --permission")
	fs.BoolVar(&o.SuperAdmin, "super-admin", false, "every permission, and the right to issue super-admin tokens")
	fs.Var(&exp, "expires-in", "lifetime (90d, 1y, 12h; default: never)")
	fs.StringVar(&o.Issuer, "issuer", "", "id of the super-admin token to act through (default: the oldest usable one)")
	if _, err := fs.parse(args, 0); err != nil {
		return err
	}
	if o.Service == "" {
		return usageErr("admin-tokens create", "admin-tokens create needs --service")
	}
	if len(perms) == 0 && !o.SuperAdmin {
		return usageErr("admin-tokens create", "admin-tokens create needs --permission (one or more of %s) or --super-admin", permissionList())
	}
	o.Permissions, o.ExpiresIn = perms, exp.d
	_, err := CreateAdminToken(ctx, env, o)
	return err
}

// issuer finds the super-admin token the commands act through: id, or the
// oldest usable super-admin token other than except.
func issuer(ctx context.Context, db *pierredb.Database, id, except string) (pierredb.AdminToken, bool, error) {
	if id != "" {
		t, err := db.AdminTokens().Get(ctx, id)
		if errors.Is(err, pierredb.ErrNotFound) {
			return t, false, &advice{err: fmt.Errorf("--issuer: %w", err), what: "`admin-tokens list` shows the tokens and their ids"}
		}
		return t, err == nil, err
	}
	var found []pierredb.AdminToken
	o := pierredb.ListOptions{Limit: 1000}
	now := time.Now()
	for {
		page, err := db.AdminTokens().List(ctx, o)
		if err != nil {
			return pierredb.AdminToken{}, false, err
		}
		for _, t := range page.Items {
			if t.SuperAdmin && t.Usable(now) {
				found = append(found, t)
			}
		}
		if page.Next == "" {
			break
		}
		o.Cursor = page.Next
	}
	for _, t := range found {
		if t.ID != except {
			return t, true, nil
		}
	}
	if len(found) > 0 {
		return found[0], true, nil
	}
	return pierredb.AdminToken{}, false, nil
}

// audit records a command's action in the issuer's trail; a failure to record
// is reported but does not undo the action.
func audit(ctx context.Context, env Env, db *pierredb.Database, tokenID, action, target string, took time.Duration) {
	err := db.AdminTokens().RecordUsage(ctx, tokenID, pierredb.AdminAction{
		Action: action, TargetResource: target, UserAgent: env.service() + " (operator with database access)",
		Success: true, ResponseTime: took,
	})
	if err != nil {
		env.say("warning: could not record %s in the audit trail of admin token %s: %v", action, tokenID, err)
	}
}

// CreateAdminToken issues an admin token (see the package documentation for
// how the commands issue) and writes it to env.Stdout once, alone on a line.
func CreateAdminToken(ctx context.Context, env Env, o AdminTokenOptions) (pierredb.CreatedAdminToken, error) {
	var created pierredb.CreatedAdminToken
	start := time.Now()
	nt := pierredb.NewAdminToken{ServiceName: o.Service, Description: o.Description, Permissions: o.Permissions,
		SuperAdmin: o.SuperAdmin, ExpiresIn: o.ExpiresIn}
	via := ""
	err := env.withDB(ctx, func(db *pierredb.Database) error {
		iss, ok, err := issuer(ctx, db, o.Issuer, "")
		if err != nil {
			return err
		}
		if !ok {
			if !o.SuperAdmin {
				return errors.New("no usable super-admin token exists to issue it through\n  -> run `setup`, or `admin-tokens create --super-admin` to make the first super-admin token")
			}
			if created, err = db.AdminTokens().CreateFirst(ctx, nt); err != nil {
				return err
			}
			via = "as the first super-admin token"
			return nil
		}
		if created, err = db.AdminTokens().Create(ctx, pierredb.AdminPrincipal{TokenID: iss.ID}, nt); err != nil {
			if errors.Is(err, pierredb.ErrPermissionDenied) {
				return &advice{err: err, what: "act through a usable super-admin token (--issuer, see `admin-tokens list`)"}
			}
			return err
		}
		via = "through super-admin token " + iss.ID
		audit(ctx, env, db, iss.ID, "cli_create_admin_token", created.ID, time.Since(start))
		return nil
	})
	if err != nil {
		return pierredb.CreatedAdminToken{}, fmt.Errorf("admin-tokens create: %w", err)
	}
	kind := "permissions " + joinPerms(created.Permissions)
	if created.SuperAdmin {
		kind = "super-admin"
	}
	expires := "never expires"
	if !created.ExpiresAt.IsZero() {
		expires = "expires " + stamp(created.ExpiresAt)
	}
	env.say("admin-tokens: issued token %s for service %q (%s), %s, %s; it is printed below once and cannot be shown again:",
		created.ID, created.ServiceName, kind, expires, via)
	fmt.Fprintln(env.stdout(), created.Token.Reveal())
	return created, nil
}

func joinPerms(ps []pierredb.AdminPermission) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = string(p)
	}
	return strings.Join(s, ",")
}

func runTokensList(ctx context.Context, env Env, args []string) error {
	fs := newFlags("admin-tokens list")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := fs.parse(args, 0); err != nil {
		return err
	}
	_, err := ListAdminTokens(ctx, env, *asJSON)
	return err
}

// tokenState says in one word where a token stands.
func tokenState(t pierredb.AdminToken, now time.Time) string {
	switch {
	case !t.IsActive:
		return "revoked"
	case t.Superseded:
		return "superseded"
	case !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt):
		return "expired"
	default:
		return "active"
	}
}

type tokenJSON struct {
	ID          string   `json:"id"`
	Service     string   `json:"service_name"`
	Description string   `json:"description,omitempty"`
	SuperAdmin  bool     `json:"is_super_admin"`
	Permissions []string `json:"permissions"`
	State       string   `json:"state"`
	CreatedAt   string   `json:"created_at"`
	ExpiresAt   *string  `json:"expires_at,omitempty"`
	LastUsedAt  *string  `json:"last_used_at,omitempty"`
	UsageCount  int64    `json:"usage_count"`
}

// ListAdminTokens prints every admin token (never a token itself: pierre
// keeps only a keyed hash) and returns them.
func ListAdminTokens(ctx context.Context, env Env, asJSON bool) ([]pierredb.AdminToken, error) {
	var all []pierredb.AdminToken
	err := env.withDB(ctx, func(db *pierredb.Database) error {
		o := pierredb.ListOptions{Limit: 1000}
		for {
			page, err := db.AdminTokens().List(ctx, o)
			if err != nil {
				return err
			}
			all = append(all, page.Items...)
			if page.Next == "" {
				return nil
			}
			o.Cursor = page.Next
		}
	})
	if err != nil {
		return nil, fmt.Errorf("admin-tokens list: %w", err)
	}
	now := time.Now()
	if asJSON {
		out := make([]tokenJSON, len(all))
		for i, t := range all {
			perms := make([]string, len(t.Permissions))
			for j, p := range t.Permissions {
				perms[j] = string(p)
			}
			out[i] = tokenJSON{ID: t.ID, Service: t.ServiceName, Description: t.Description, SuperAdmin: t.SuperAdmin, Permissions: perms,
				State: tokenState(t, now), CreatedAt: t.CreatedAt.UTC().Format(time.RFC3339), ExpiresAt: optTime(t.ExpiresAt),
				LastUsedAt: optTime(t.LastUsedAt), UsageCount: t.UsageCount}
		}
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return nil, err
		}
		fmt.Fprintln(env.stdout(), string(b))
	} else {
		tw := tabwriter.NewWriter(env.stdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSERVICE\tSTATE\tPERMISSIONS\tCREATED\tEXPIRES\tLAST USED\tUSES")
		for _, t := range all {
			perms := joinPerms(t.Permissions)
			if t.SuperAdmin {
				perms = "super-admin"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", t.ID, t.ServiceName, tokenState(t, now), perms,
				stamp(t.CreatedAt), stamp(t.ExpiresAt), stamp(t.LastUsedAt), t.UsageCount)
		}
		if err := tw.Flush(); err != nil {
			return nil, err
		}
	}
	env.say("admin-tokens: %d listed", len(all))
	return all, nil
}

func runTokensRevoke(ctx context.Context, env Env, args []string) error {
	fs := newFlags("admin-tokens revoke")
	iss := fs.String("issuer", "", "id of the super-admin token to act through (default: the oldest usable one)")
	pos, err := fs.parse(args, 1, "TOKEN_ID")
	if err != nil {
		return err
	}
	_, err = RevokeAdminToken(ctx, env, pos[0], *iss)
	return err
}

// RevokeAdminToken revokes the admin token id for good, acting through the
// super-admin token issuerID ("" picks the oldest usable one that is not id).
// The last usable super-admin token cannot be revoked: issue another first.
func RevokeAdminToken(ctx context.Context, env Env, id, issuerID string) (pierredb.AdminToken, error) {
	var out pierredb.AdminToken
	start := time.Now()
	err := env.withDB(ctx, func(db *pierredb.Database) error {
		tok, err := db.AdminTokens().Get(ctx, id)
		if errors.Is(err, pierredb.ErrNotFound) {
			return &advice{err: err, what: "`admin-tokens list` shows the tokens and their ids"}
		}
		if err != nil {
			return err
		}
		if !tok.IsActive {
			out = tok
			env.say("admin-tokens: token %s (%s) was revoked already", tok.ID, tok.ServiceName)
			return nil
		}
		iss, ok, err := issuer(ctx, db, issuerID, id)
		if err != nil {
			return err
		}
		if !ok {
			return errors.New("no usable super-admin token exists to act through")
		}
		if out, err = db.AdminTokens().Revoke(ctx, pierredb.AdminPrincipal{TokenID: iss.ID}, id); err != nil {
			if errors.Is(err, pierredb.ErrConflict) {
				return &advice{err: err, what: "issue another super-admin token first (`admin-tokens create --super-admin --service NAME`)"}
			}
			return err
		}
		if iss.ID != id {
			audit(ctx, env, db, iss.ID, "cli_revoke_admin_token", id, time.Since(start))
		}
		env.say("admin-tokens: revoked token %s (%s); it never verifies again", out.ID, out.ServiceName)
		return nil
	})
	if err != nil {
		return pierredb.AdminToken{}, fmt.Errorf("admin-tokens revoke: %w", err)
	}
	return out, nil
}

// APIKeyOptions is what CreateAPIKey needs.
type APIKeyOptions struct {
	Email string
	// Name is the key's name, unique among the user's keys in the tenant;
	// "" makes one from the date.
	Name        string
	Description string
	// Tier defaults to the user's own tier.
	Tier pierredb.Tier
	// ExpiresIn is the key's lifetime; 0 means it does not expire (a trial
	// key expires after pierredb.TrialKeyLifetime).
	ExpiresIn time.Duration
}

func runAPIKeyCreate(ctx context.Context, env Env, args []string) error {
	fs := newFlags("api-key create")
	var o APIKeyOptions
	var exp durationFlag
	tier := fs.String("tier", "", "trial, starter, professional or enterprise (default: the user's tier)")
	fs.StringVar(&o.Name, "name", "", "the key's name")
	fs.StringVar(&o.Description, "description", "", "what the key is for")
	fs.Var(&exp, "expires-in", "lifetime (90d, 1y; default: never)")
	pos, err := fs.parse(args, 1, "EMAIL")
	if err != nil {
		return err
	}
	o.Email, o.Tier, o.ExpiresIn = pos[0], pierredb.Tier(*tier), exp.d
	_, err = CreateAPIKey(ctx, env, o)
	return err
}

// CreateAPIKey issues an API key for the user with email in the user's home
// tenant, creating the user's own tenant ("<name>'s Organization", slug
// user-<id>) first when the user has none, as the admin API's approval does,
// all in one transaction. The key is written to env.Stdout once, alone on a
// line.
func CreateAPIKey(ctx context.Context, env Env, o APIKeyOptions) (pierredb.CreatedAPIKey, error) {
	var created pierredb.CreatedAPIKey
	var user pierredb.User
	var tenant *pierredb.Tenant
	err := env.withDB(ctx, func(db *pierredb.Database) error {
		return db.RunInTx(ctx, func(ctx context.Context, _ bun.Tx) error {
			var err error
			if user, err = userByEmail(ctx, db, o.Email); err != nil {
				return err
			}
			tenantID := user.TenantID
			if tenantID == "" {
				name := user.Email + "'s Organization"
				if user.DisplayName != "" {
					name = user.DisplayName + "'s Organization"
				}
				slug := "user-" + strings.ReplaceAll(user.ID, "-", "")[:20]
				t, err := db.Tenants().Create(ctx, pierredb.NewTenant{Name: name, Slug: slug, OwnerUserID: user.ID})
				if err != nil {
					return fmt.Errorf("create the user's own tenant: %w", err)
				}
				tenant, tenantID = &t, t.ID
			}
			scope, err := db.Tenant(ctx, tenantID)
			if err != nil {
				return err
			}
			nk := pierredb.NewAPIKey{UserID: user.ID, Name: o.Name, Description: o.Description, Tier: o.Tier}
			if nk.Tier == "" {
				nk.Tier = user.Tier
			}
			if nk.Name == "" {
				nk.Name = "cli-" + time.Now().UTC().Format("20060102-150405")
			}
			if o.ExpiresIn > 0 {
				nk.ExpiresAt = time.Now().Add(o.ExpiresIn)
			}
			created, err = scope.APIKeys().Create(ctx, nk)
			return err
		})
	})
	if err != nil {
		return pierredb.CreatedAPIKey{}, fmt.Errorf("api-key create: %w", err)
	}
	if tenant != nil {
		env.say("api-key: %s had no tenant: created %q (%s, slug %s), owned by them", user.Email, tenant.Name, tenant.ID, tenant.Slug)
	}
	limit := "unlimited"
	if !created.RateLimit.Unlimited {
		limit = fmt.Sprintf("%d requests per %s", created.RateLimit.Requests, created.RateLimit.Period)
	}
	expires := "never expires"
	if !created.ExpiresAt.IsZero() {
		expires = "expires " + stamp(created.ExpiresAt)
	}
	env.say("api-key: issued %q (%s, %s tier, %s, %s) for %s in tenant %s; it is printed below once and cannot be shown again:",
		created.Name, created.ID, created.Tier, limit, expires, user.Email, created.TenantID)
	if user.Status != pierredb.StatusActive {
		env.say("api-key: note: %s is %s; the key works once the user is active (`users approve` / `users reactivate`)", user.Email, user.Status)
	}
	fmt.Fprintln(env.stdout(), created.Key.Reveal())
	return created, nil
}
