package manage

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb"
)

// Exit codes of Main.
const (
	// ExitOK: the command did what it says.
	ExitOK = 0
	// ExitError: the command failed; stderr says why and what to do. Nothing
	// was changed unless the message says otherwise.
	ExitError = 1
	// ExitUsage: the command line is wrong (unknown command, missing argument,
	// bad flag).
	ExitUsage = 2
	// ExitManual: pierre cannot do this here by itself (a PostgreSQL backup
	// without pg_dump, a PostgreSQL restore); stdout holds the documented
	// commands to run instead. Nothing was done.
	ExitManual = 3
)

// DefaultService is the service name the commands act as: it is recorded as
// the approver of the users they approve (users approve) and in the audit
// trail of the admin tokens they act through (admin-tokens).
const DefaultService = "pierre-cli"

// Env is where the commands find the database and write their output. Its zero
// value is the process's own: os.Stdout, os.Stderr, os.Stdin and os.Getenv.
//
// The database is the one the environment names, exactly as
// pierredb.OpenFromEnv reads it (DATABASE_URL, PIERRE_MASTER_ENCRYPTION_KEY or
// DATABASE_ENCRYPTION_KEY_PATH, PIERRE_PREVIOUS_MASTER_ENCRYPTION_KEY,
// DATABASE_MAX_CONNECTIONS, AUTO_APPROVE_USERS, PIERREDB_LOG_QUERIES). With
// Getenv set, those variables are read through it instead of the process
// environment.
type Env struct {
	// Stdout receives what a command exists to produce: listings, and the one
	// secret a command hands out (keygen's key, setup's and admin-tokens
	// create's token, api-key create's key), alone on a line, once.
	Stdout io.Writer
	// Stderr receives messages for the operator: what was done, progress,
	// warnings and errors. No secret is ever written to it.
	Stderr io.Writer
	// Stdin is read by --password-stdin and --new-key-stdin.
	Stdin io.Reader
	// Getenv looks up environment variables; nil means os.Getenv.
	Getenv func(string) string
	// Options are added to every Open (after the environment's, so they win):
	// the host's pierredb.WithHostMigrations, a logger, ...
	Options []pierredb.Option
	// Program names the binary in usage messages ("server", "pierre", ...);
	// "" means the base name of os.Args[0].
	Program string
	// Service is the service name the commands act as; "" means
	// DefaultService.
	Service string
	// PGDump is the pg_dump executable backup runs on PostgreSQL; "" looks
	// for pg_dump on PATH.
	PGDump string

	// hooks replace steps of the commands in tests (see export_test.go).
	hooks *hooks
}

// hooks are stand-ins for steps whose failure a test cannot cause otherwise.
type hooks struct {
	rotateMasterKey    func(ctx context.Context, kr *keyring.Keyring, k keyring.MasterKey) error
	storedFingerprints func(ctx context.Context) ([]string, error)
}

func (e Env) stdout() io.Writer {
	if e.Stdout == nil {
		return os.Stdout
	}
	return e.Stdout
}

func (e Env) stderr() io.Writer {
	if e.Stderr == nil {
		return os.Stderr
	}
	return e.Stderr
}

func (e Env) stdin() io.Reader {
	if e.Stdin == nil {
		return os.Stdin
	}
	return e.Stdin
}

func (e Env) getenv(name string) string {
	if e.Getenv == nil {
		return os.Getenv(name)
	}
	return e.Getenv(name)
}

func (e Env) program() string {
	if e.Program != "" {
		return e.Program
	}
	if len(os.Args) > 0 && os.Args[0] != "" {
		name := os.Args[0]
		if i := strings.LastIndexAny(name, `/\`); i >= 0 {
			name = name[i+1:]
		}
		return name
	}
	return "pierre"
}

func (e Env) service() string {
	if e.Service != "" {
		return e.Service
	}
	return DefaultService
}

// say writes one message line for the operator (stderr).
func (e Env) say(format string, args ...any) {
	fmt.Fprintf(e.stderr(), format+"\n", args...)
}

// UsageError is a wrong command line: Main prints it with the usage of the
// command and exits with ExitUsage.
type UsageError struct {
	// Command is the command whose usage applies ("" for the top level).
	Command string
	Msg     string
}

func (e *UsageError) Error() string { return e.Msg }

func usageErr(cmd, format string, args ...any) error {
	return &UsageError{Command: cmd, Msg: fmt.Sprintf(format, args...)}
}

// ErrManual is returned by a command that printed the documented commands to
// run instead of doing the work itself (see ExitManual). Nothing was done.
var ErrManual = errors.New("not done here: run the commands printed above")

// command is one subcommand: its name (words, as typed), usage and runner.
type command struct {
	name    string
	args    string // what follows the name in the usage line
	summary string
	run     func(ctx context.Context, env Env, args []string) error
}

var commands []command

func init() {
	commands = []command{
		{"keygen", "[--out FILE]", "print a new master key (base64), or write it to FILE (mode 0600) and print its fingerprint", runKeygen},
		{"setup", "--email EMAIL (--password-stdin | --password-file FILE) [--name NAME] [--service NAME] [--expires-in DURATION]",
			"create the first admin user and a super-admin token, in one transaction; prints the token once", runSetup},
		{"users list", "[--status pending|active|suspended] [--admins] [--json]", "list users, oldest first", runUsersList},
		{"users approve", "EMAIL", "approve a pending user", runUsersApprove},
		{"users suspend", "EMAIL", "suspend a user: they can no longer sign in", runUsersSuspend},
		{"users reactivate", "EMAIL", "lift a suspension", runUsersReactivate},
		{"users make-admin", "EMAIL", "grant platform admin rights", runUsersMakeAdmin},
		{"admin-tokens create", "--service NAME (--permission P ... | --super-admin) [--description TEXT] [--expires-in DURATION] [--issuer TOKEN_ID]",
			"issue an admin token; prints it once", runTokensCreate},
		{"admin-tokens list", "[--json]", "list admin tokens", runTokensList},
		{"admin-tokens revoke", "TOKEN_ID [--issuer TOKEN_ID]", "revoke an admin token for good", runTokensRevoke},
		{"api-key create", "EMAIL [--name NAME] [--tier TIER] [--description TEXT] [--expires-in DURATION]",
			"issue an API key in the user's home tenant (made if the user has none); prints it once", runAPIKeyCreate},
		{"backup", "DEST", "SQLite: a consistent online snapshot (safe while the server runs); PostgreSQL: pg_dump of pierre's schema", runBackup},
		{"restore", "SRC", "SQLite: check SRC, then replace the database with it (stop the server first); PostgreSQL: check SRC and print the commands that restore it", runRestore},
		{"fresh-start", "--yes", "delete the database: the SQLite file, or pierre's tables on PostgreSQL", runFreshStart},
		{"rotate-master-key", "(--new-key-file FILE | --new-key-stdin | --generate FILE)",
			"rewrap the data keys under a new master key; then switch every instance to it", runRotateMasterKey},
		{"rotate-data-key", "[--resume] [--retire | --keep-old] [--batch N] [--pause DURATION]",
			"make a new data key, re-encrypt every stored secret with it, retire the old one", runRotateDataKey},
		{"status", "[--json]", "migrations, keys, secrets per key version, users and connection pools", runStatus},
	}
}

// aliases are other spellings of the first word of a command.
var aliases = map[string]string{"tokens": "admin-tokens", "admin-token": "admin-tokens", "api-keys": "api-key", "user": "users"}

// Main runs the command that args name (os.Args[1:]) and returns the exit
// status for os.Exit: ExitOK, ExitError (the message is on stderr), ExitUsage
// or ExitManual.
//
//	func main() {
//		if len(os.Args) > 1 && manage.IsCommand(os.Args[1]) {
//			os.Exit(manage.Main(ctx, os.Args[1:], manage.Env{Program: "server"}))
//		}
//		... serve ...
//	}
func Main(ctx context.Context, args []string, env Env) int {
	err := Run(ctx, args, env)
	if err == nil {
		return ExitOK
	}
	var ue *UsageError
	switch {
	case errors.As(err, &ue):
		env.say("%s: %s", env.program(), ue.Msg)
		printUsage(env.stderr(), env, ue.Command)
		return ExitUsage
	case errors.Is(err, ErrManual):
		env.say("%s: %s", env.program(), err)
		return ExitManual
	default:
		env.say("%s: error: %s", env.program(), err)
		return ExitError
	}
}

// IsCommand reports whether word starts one of the commands (or is help), so
// that a host's main can tell a management command from its own arguments.
func IsCommand(word string) bool {
	if a, ok := aliases[word]; ok {
		word = a
	}
	if word == "help" || word == "-h" || word == "--help" {
		return true
	}
	for _, c := range commands {
		if strings.SplitN(c.name, " ", 2)[0] == word {
			return true
		}
	}
	return false
}

// Run is Main without the exit status: it returns the command's error
// (*UsageError for a wrong command line, ErrManual when it printed commands to
// run instead).
func Run(ctx context.Context, args []string, env Env) error {
	if len(args) == 0 {
		return usageErr("", "no command given")
	}
	words := slices.Clone(args)
	if a, ok := aliases[words[0]]; ok {
		words[0] = a
	}
	switch words[0] {
	case "help", "-h", "--help", "-help":
		topic := strings.Join(words[1:], " ")
		if topic != "" && findCommand(topic) == nil && !isGroup(topic) {
			return usageErr("", "unknown command %q", topic)
		}
		printUsage(env.stdout(), env, topic)
		return nil
	}
	// The longest command name that the first words spell.
	for n := min(2, len(words)); n >= 1; n-- {
		if c := findCommand(strings.Join(words[:n], " ")); c != nil {
			return c.run(ctx, env, words[n:])
		}
	}
	if isGroup(words[0]) {
		if len(words) == 1 {
			return usageErr(words[0], "%s needs a subcommand", words[0])
		}
		return usageErr(words[0], "unknown command %q", words[0]+" "+words[1])
	}
	return usageErr("", "unknown command %q", words[0])
}

func findCommand(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

// isGroup reports whether word is the first word of two-word commands.
func isGroup(word string) bool {
	for _, c := range commands {
		if strings.HasPrefix(c.name, word+" ") {
			return true
		}
	}
	return false
}

// printUsage prints the usage of topic (a command, a group such as "users", or
// "" for everything).
func printUsage(w io.Writer, env Env, topic string) {
	p := env.program()
	if topic == "" {
		fmt.Fprintf(w, "Usage: %s <command> [arguments]\n\n", p)
		fmt.Fprintf(w, "The database is DATABASE_URL (default %s), opened with the master key in\n", pierredb.DefaultURL)
		fmt.Fprintf(w, "PIERRE_MASTER_ENCRYPTION_KEY or the file DATABASE_ENCRYPTION_KEY_PATH names.\n\nCommands:\n")
	}
	for _, c := range commands {
		if topic != "" && c.name != topic && !strings.HasPrefix(c.name, topic+" ") {
			continue
		}
		fmt.Fprintf(w, "  %s %s %s\n      %s\n", p, c.name, c.args, c.summary)
	}
	if topic == "" {
		fmt.Fprintf(w, "\nSecrets a command hands out go to stdout, alone on a line; everything else goes to stderr.\n")
		fmt.Fprintf(w, "Exit status: 0 done, 1 failed (nothing changed unless stated), 2 bad command line, 3 printed commands to run by hand.\n")
	}
}

// flagSet is a flag.FlagSet that reports errors as UsageErrors and accepts
// flags after positional arguments ("users approve EMAIL --json").
type flagSet struct {
	*flag.FlagSet
	cmd string
}

func newFlags(cmd string) *flagSet {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &flagSet{FlagSet: fs, cmd: cmd}
}

// parse parses args and returns the positional arguments, checking that there
// are exactly want of them (want < 0: any number).
func (fs *flagSet) parse(args []string, want int, names ...string) ([]string, error) {
	var pos []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, usageErr(fs.cmd, "usage of %s", fs.cmd)
			}
			return nil, usageErr(fs.cmd, "%v", err)
		}
		consumed := len(args) - len(fs.Args())
		rest := fs.Args()
		if consumed > 0 && args[consumed-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if want >= 0 && len(pos) != want {
		if len(pos) < want {
			return nil, usageErr(fs.cmd, "%s needs %s", fs.cmd, strings.Join(names[len(pos):], " "))
		}
		return nil, usageErr(fs.cmd, "%s: unexpected argument %q", fs.cmd, shorten(pos[want]))
	}
	return pos, nil
}

// durationFlag parses durations with a day unit as well ("30d", "1y" = 365d).
type durationFlag struct {
	d   time.Duration
	set bool
}

func (f *durationFlag) String() string { return f.d.String() }

func (f *durationFlag) Set(s string) error {
	d, err := parseDuration(s)
	if err != nil {
		return err
	}
	f.d, f.set = d, true
	return nil
}

func parseDuration(s string) (time.Duration, error) {
	if s == "0" || s == "never" || s == "none" {
		return 0, nil
	}
	for _, u := range []struct {
		suffix string
		d      time.Duration
	}{{"y", 365 * 24 * time.Hour}, {"d", 24 * time.Hour}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			var v int
			if _, err := fmt.Sscanf(n, "%d", &v); err != nil || v < 0 || fmt.Sprint(v) != n {
				return 0, fmt.Errorf("%q is not a duration (use 90d, 1y, 12h, 30m, or 0 for never)", shorten(s))
			}
			if int64(v) > math.MaxInt64/int64(u.d) {
				return 0, fmt.Errorf("%q is too long a duration (use 0 for never)", shorten(s))
			}
			return time.Duration(v) * u.d, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration (use 90d, 1y, 12h, 30m, or 0 for never)", shorten(s))
	}
	return d, nil
}

// shorten keeps user input in messages short.
func shorten(s string) string {
	const limit = 64
	r := []rune(s)
	if len(r) <= limit {
		return s
	}
	return string(r[:limit]) + "…"
}

// stamp formats a time for listings: UTC to the second, "-" when zero.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}
