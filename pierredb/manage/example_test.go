package manage_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/manage"
)

// A host offers the management commands as subcommands of its own binary.
func ExampleMain() {
	ctx := context.Background()
	args := []string{"help", "users"} // os.Args[1:] in a real main
	if manage.IsCommand(args[0]) {
		code := manage.Main(ctx, args, manage.Env{Program: "server", Stdout: os.Stdout})
		fmt.Println("exit", code)
	}
	// Output:
	//   server users list [--status pending|active|suspended] [--admins] [--json]
	//       list users, oldest first
	//   server users approve EMAIL
	//       approve a pending user
	//   server users suspend EMAIL
	//       suspend a user: they can no longer sign in
	//   server users reactivate EMAIL
	//       lift a suspension
	//   server users make-admin EMAIL
	//       grant platform admin rights
	// exit 0
}

// The commands are also functions. Here the environment is a map (a host with
// its own configuration source can do the same), the first admin is made,
// and a backup taken.
func ExampleSetup() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "manage-example")
	defer os.RemoveAll(dir)
	key, _ := keyring.Generate()
	vars := map[string]string{
		pierredb.EnvDatabaseURL: "sqlite:" + filepath.Join(dir, "users.db"),
		keyring.EnvMasterKey:    key.EncodeBase64(),
	}
	var token bytes.Buffer
	env := manage.Env{Getenv: func(k string) string { return vars[k] }, Stdout: &token, Stderr: io.Discard}

	res, err := manage.Setup(ctx, env, manage.SetupOptions{Email: "admin@example.com", Password: "correct horse battery"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("admin:", res.User.Email, res.User.IsAdmin)
	fmt.Println("token printed once:", strings.TrimSpace(token.String()) == res.Token.Token.Reveal())
	fmt.Printf("options print redacted: %v\n", manage.SetupOptions{Email: "a@b.c", Password: "hunter2hunter2"})

	b, err := manage.Backup(ctx, env, filepath.Join(dir, "backup.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("backup opens with the key:", b.Fingerprints[0] == key.Fingerprint())
	// Output:
	// admin: admin@example.com true
	// token printed once: true
	// options print redacted: manage.SetupOptions{Email: "a@b.c", Password: REDACTED, DisplayName: "", Service: "", ExpiresIn: 0s, Never: false}
	// backup opens with the key: true
}
