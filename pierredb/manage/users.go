package manage

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/uptrace/bun"

	"github.com/pierre-mcp/pierre/pierredb"
)

// EnvAdminPassword may hold setup's password, for scripts that cannot use
// --password-stdin or --password-file.
const EnvAdminPassword = "PIERRE_ADMIN_PASSWORD"

// SetupOptions is what Setup needs. It redacts its password when printed.
type SetupOptions struct {
	Email       string
	Password    string
	DisplayName string
	// Service names the super-admin token's service; "" means
	// "initial_admin_setup", as the admin API's setup route names it.
	Service string
	// ExpiresIn is the token's lifetime; 0 means one year, and Never makes a
	// token that does not expire.
	ExpiresIn time.Duration
	Never     bool
}

// Format prints the options with the password redacted, for every verb.
func (o SetupOptions) Format(f fmt.State, _ rune) {
	pw := "(none)"
	if o.Password != "" {
		pw = "REDACTED"
	}
	fmt.Fprintf(f, "manage.SetupOptions{Email: %q, Password: %s, DisplayName: %q, Service: %q, ExpiresIn: %s, Never: %t}",
		o.Email, pw, o.DisplayName, o.Service, o.ExpiresIn, o.Never)
}

// defaultTokenLifetime is how long setup's token lives unless told otherwise.
const defaultTokenLifetime = 365 * 24 * time.Hour

func runSetup(ctx context.Context, env Env, args []string) error {
	fs := newFlags("setup")
	var o SetupOptions
	fs.StringVar(&o.Email, "email", "", "the admin's email")
	fs.StringVar(&o.DisplayName, "name", "", "the admin's display name")
	fs.StringVar(&o.Service, "service", "", "the token's service name")
	stdin := fs.Bool("password-stdin", false, "read the password from the first line of stdin")
	file := fs.String("password-file", "", "read the password from the first line of FILE")
	var exp durationFlag
	fs.Var(&exp, "expires-in", "the token's lifetime (default 1y; 0 for never)")
	if _, err := fs.parse(args, 0); err != nil {
		return err
	}
	if o.Email == "" {
		return usageErr("setup", "setup needs --email")
	}
	pw, err := readPassword(env, *stdin, *file)
	if err != nil {
		return err
	}
	o.Password = pw
	if exp.set {
		o.ExpiresIn, o.Never = exp.d, exp.d == 0
	}
	_, err = Setup(ctx, env, o)
	return err
}

// readPassword reads setup's password from stdin, a file, or
// PIERRE_ADMIN_PASSWORD; never from the command line, where other users of
// the machine can read it.
func readPassword(env Env, stdin bool, file string) (string, error) {
	if stdin && file != "" {
		return "", usageErr("setup", "give --password-stdin or --password-file, not both")
	}
	if !stdin && file == "" {
		if pw := env.getenv(EnvAdminPassword); pw != "" {
			return pw, nil
		}
		return "", usageErr("setup", "setup needs the password: --password-stdin (echo \"$PW\" | ... setup --password-stdin), --password-file FILE, or %s", EnvAdminPassword)
	}
	var r io.Reader
	switch {
	case stdin:
		r = env.stdin()
	default:
		f, err := os.Open(file)
		if err != nil {
			return "", fmt.Errorf("password file: %w", err)
		}
		defer func() { _ = f.Close() }()
		r = f
	}
	line, err := bufio.NewReader(io.LimitReader(r, 8192)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("the password read is empty")
	}
	return line, nil
}

// SetupResult is what Setup created. Its Token redacts itself.
type SetupResult struct {
	User  pierredb.User
	Token pierredb.CreatedAdminToken
}

// Setup creates the first admin user, active at once, and a super-admin admin
// token, in one transaction: both or neither. The token is written to
// env.Stdout once, alone on a line. Once an admin exists it fails with
// pierredb.ErrAlreadyExists.
func Setup(ctx context.Context, env Env, o SetupOptions) (SetupResult, error) {
	var res SetupResult
	service := o.Service
	if service == "" {
		service = "initial_admin_setup"
	}
	nt := pierredb.NewAdminToken{ServiceName: service, Description: "Initial admin setup token (" + env.service() + ")", SuperAdmin: true}
	switch {
	case o.Never:
	case o.ExpiresIn > 0:
		nt.ExpiresIn = o.ExpiresIn
	default:
		nt.ExpiresIn = defaultTokenLifetime
	}
	err := env.withNewDB(ctx, func(db *pierredb.Database) error {
		return db.RunInTx(ctx, func(ctx context.Context, _ bun.Tx) error {
			var err error
			res.User, err = db.Users().CreateFirstAdmin(ctx, pierredb.NewUser{Email: o.Email, Password: o.Password, DisplayName: o.DisplayName})
			if err != nil {
				return err
			}
			res.Token, err = db.AdminTokens().CreateFirst(ctx, nt)
			return err
		})
	})
	if err != nil {
		if errors.Is(err, pierredb.ErrAlreadyExists) {
			err = &advice{err: err, what: "setup runs once; an admin can grant admin rights (`users make-admin EMAIL`) and issue tokens (`admin-tokens create`)"}
		}
		return SetupResult{}, fmt.Errorf("setup: %w", err)
	}
	env.say("setup: created admin %s (user %s), active", res.User.Email, res.User.ID)
	expires := "never expires"
	if !res.Token.ExpiresAt.IsZero() {
		expires = "expires " + stamp(res.Token.ExpiresAt)
	}
	env.say("setup: super-admin token %s for service %q, %s; it is printed below once and cannot be shown again:", res.Token.ID, res.Token.ServiceName, expires)
	fmt.Fprintln(env.stdout(), res.Token.Token.Reveal())
	return res, nil
}

// ListUsersOptions selects the users ListUsers prints.
type ListUsersOptions struct {
	// Status keeps users of that status ("" for all).
	Status pierredb.UserStatus
	// Admins keeps admins only.
	Admins bool
	// JSON prints a JSON array instead of a table.
	JSON bool
}

func runUsersList(ctx context.Context, env Env, args []string) error {
	fs := newFlags("users list")
	var o ListUsersOptions
	status := fs.String("status", "", "pending, active or suspended")
	fs.BoolVar(&o.Admins, "admins", false, "admins only")
	fs.BoolVar(&o.JSON, "json", false, "print JSON")
	if _, err := fs.parse(args, 0); err != nil {
		return err
	}
	o.Status = pierredb.UserStatus(*status)
	switch o.Status {
	case "", pierredb.StatusPending, pierredb.StatusActive, pierredb.StatusSuspended:
	default:
		return usageErr("users list", "--status %q: use pending, active or suspended", shorten(*status))
	}
	return ListUsers(ctx, env, o)
}

type userJSON struct {
	ID         string  `json:"id"`
	Email      string  `json:"email"`
	Name       string  `json:"display_name,omitempty"`
	Status     string  `json:"status"`
	Admin      bool    `json:"is_admin"`
	Tier       string  `json:"tier"`
	TenantID   string  `json:"tenant_id,omitempty"`
	CreatedAt  string  `json:"created_at"`
	ApprovedAt *string `json:"approved_at,omitempty"`
	ApprovedBy string  `json:"approved_by,omitempty"`
	LastActive *string `json:"last_active,omitempty"`
}

func optTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339)
	return &s
}

// ListUsers prints the users o selects, oldest first, every page.
func ListUsers(ctx context.Context, env Env, o ListUsersOptions) error {
	return env.withDB(ctx, func(db *pierredb.Database) error {
		f := pierredb.UserFilter{Status: o.Status, Limit: 1000}
		if o.Admins {
			f.IsAdmin = new(true)
		}
		var tw *tabwriter.Writer
		var enc *json.Encoder
		if o.JSON {
			enc = json.NewEncoder(env.stdout())
			fmt.Fprint(env.stdout(), "[")
		} else {
			tw = tabwriter.NewWriter(env.stdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "EMAIL\tSTATUS\tADMIN\tTIER\tCREATED\tLAST ACTIVE\tID")
		}
		n := 0
		for {
			page, err := db.Users().List(ctx, f)
			if err != nil {
				return err
			}
			for _, u := range page.Items {
				if o.JSON {
					if n > 0 {
						fmt.Fprint(env.stdout(), ",")
					}
					approver := u.ApprovedByService
					if u.ApprovedBy != "" {
						approver = u.ApprovedBy
					}
					if err := enc.Encode(userJSON{ID: u.ID, Email: u.Email, Name: u.DisplayName, Status: string(u.Status), Admin: u.IsAdmin,
						Tier: string(u.Tier), TenantID: u.TenantID, CreatedAt: u.CreatedAt.UTC().Format(time.RFC3339),
						ApprovedAt: optTime(u.ApprovedAt), ApprovedBy: approver, LastActive: optTime(u.LastActive)}); err != nil {
						return err
					}
				} else {
					admin := ""
					if u.IsAdmin {
						admin = "admin"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", u.Email, u.Status, admin, u.Tier, stamp(u.CreatedAt), stamp(u.LastActive), u.ID)
				}
				n++
			}
			if page.Next == "" {
				break
			}
			f.Cursor = page.Next
		}
		if o.JSON {
			fmt.Fprintln(env.stdout(), "]")
		} else if err := tw.Flush(); err != nil {
			return err
		}
		env.say("users: %d listed", n)
		return nil
	})
}

// userByEmail finds a user, saying what to do when there is none.
func userByEmail(ctx context.Context, db *pierredb.Database, email string) (pierredb.User, error) {
	u, err := db.Users().GetByEmail(ctx, email)
	if errors.Is(err, pierredb.ErrNotFound) {
		return u, &advice{err: fmt.Errorf("no user has the email %q: %w", shorten(email), err), what: "`users list` shows who exists"}
	}
	return u, err
}

// changeUser finds the user with email and applies change to it.
func changeUser(ctx context.Context, env Env, cmd, email string, change func(db *pierredb.Database, u pierredb.User) (pierredb.User, error)) (pierredb.User, error) {
	var out pierredb.User
	err := env.withDB(ctx, func(db *pierredb.Database) error {
		u, err := userByEmail(ctx, db, email)
		if err != nil {
			return err
		}
		out, err = change(db, u)
		return err
	})
	if err != nil {
		return pierredb.User{}, fmt.Errorf("%s: %w", cmd, err)
	}
	return out, nil
}

func emailArg(cmd string, args []string) (string, error) {
	pos, err := newFlags(cmd).parse(args, 1, "EMAIL")
	if err != nil {
		return "", err
	}
	return pos[0], nil
}

func runUsersApprove(ctx context.Context, env Env, args []string) error {
	email, err := emailArg("users approve", args)
	if err != nil {
		return err
	}
	_, err = ApproveUser(ctx, env, email)
	return err
}

// ApproveUser approves the pending user with email, as the service env.Service
// (recorded as the approver).
func ApproveUser(ctx context.Context, env Env, email string) (pierredb.User, error) {
	u, err := changeUser(ctx, env, "users approve", email, func(db *pierredb.Database, u pierredb.User) (pierredb.User, error) {
		out, err := db.Users().Approve(ctx, u.ID, pierredb.ByService(env.service()))
		if errors.Is(err, pierredb.ErrConflict) {
			return out, &advice{err: err, what: fmt.Sprintf("%s is %s; only pending users are approved (`users reactivate` lifts a suspension)", u.Email, u.Status)}
		}
		return out, err
	})
	if err == nil {
		env.say("users: approved %s (user %s) as %s", u.Email, u.ID, env.service())
	}
	return u, err
}

func runUsersSuspend(ctx context.Context, env Env, args []string) error {
	email, err := emailArg("users suspend", args)
	if err != nil {
		return err
	}
	_, err = SuspendUser(ctx, env, email)
	return err
}

// SuspendUser suspends the user with email: they can no longer sign in, and
// their API keys stop working.
func SuspendUser(ctx context.Context, env Env, email string) (pierredb.User, error) {
	u, err := changeUser(ctx, env, "users suspend", email, func(db *pierredb.Database, u pierredb.User) (pierredb.User, error) {
		return db.Users().Suspend(ctx, u.ID)
	})
	if err == nil {
		env.say("users: suspended %s (user %s)", u.Email, u.ID)
	}
	return u, err
}

func runUsersReactivate(ctx context.Context, env Env, args []string) error {
	email, err := emailArg("users reactivate", args)
	if err != nil {
		return err
	}
	_, err = ReactivateUser(ctx, env, email)
	return err
}

// ReactivateUser lifts the suspension of the user with email (back to active,
// or to pending if they were never approved).
func ReactivateUser(ctx context.Context, env Env, email string) (pierredb.User, error) {
	u, err := changeUser(ctx, env, "users reactivate", email, func(db *pierredb.Database, u pierredb.User) (pierredb.User, error) {
		return db.Users().Reactivate(ctx, u.ID)
	})
	if err == nil {
		env.say("users: reactivated %s (user %s), now %s", u.Email, u.ID, u.Status)
	}
	return u, err
}

func runUsersMakeAdmin(ctx context.Context, env Env, args []string) error {
	email, err := emailArg("users make-admin", args)
	if err != nil {
		return err
	}
	_, err = MakeAdmin(ctx, env, email)
	return err
}

// MakeAdmin grants platform admin rights to the user with email (the seed's
// `is_admin = 1` recipe, done through pierre).
func MakeAdmin(ctx context.Context, env Env, email string) (pierredb.User, error) {
	was := false
	u, err := changeUser(ctx, env, "users make-admin", email, func(db *pierredb.Database, u pierredb.User) (pierredb.User, error) {
		was = u.IsAdmin
		return db.Users().SetAdmin(ctx, u.ID, true)
	})
	switch {
	case err != nil:
	case was:
		env.say("users: %s (user %s) is an admin already", u.Email, u.ID)
	default:
		note := ""
		if u.Status != pierredb.StatusActive {
			note = "; note: the user is " + string(u.Status) + ", and signs in only once active"
		}
		env.say("users: %s (user %s) is now an admin%s", u.Email, u.ID, note)
	}
	return u, err
}
