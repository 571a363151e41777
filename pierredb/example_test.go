package pierredb_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb"
)

// Open a private in-memory database. A real host loads its master key with
// keyring.LoadMasterKey (or calls OpenFromEnv) and opens a file or PostgreSQL.
func ExampleOpen() {
	key, err := keyring.Generate()
	if err != nil {
		panic(err)
	}
	db, err := pierredb.Open("sqlite::memory:", key)
	if err != nil {
		panic(err)
	}
	defer db.Close()

	fmt.Println(db.Backend())
	fmt.Println("migrations applied:", len(db.Info().MigrationsApplied) > 0)
	fmt.Println("ping:", db.Ping(context.Background()))
	// Output:
	// sqlite
	// migrations applied: true
	// ping: <nil>
}

// New users wait for an admin's approval, unless auto-approval is on.
func ExampleUsers_Create() {
	ctx := context.Background()
	key, err := keyring.Generate()
	if err != nil {
		panic(err)
	}
	db, err := pierredb.Open("sqlite::memory:", key)
	if err != nil {
		panic(err)
	}
	defer db.Close()

	admin, err := db.Users().CreateFirstAdmin(ctx, pierredb.NewUser{Email: "root@example.com", Password: "correct horse battery staple"})
	if err != nil {
		panic(err)
	}
	ada, err := db.Users().Create(ctx, pierredb.NewUser{
		Email:       "  Ada@Example.com ",
		Password:    "analytical engine",
		DisplayName: "Ada",
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(ada.Email, ada.Status)

	_, err = db.Users().Create(ctx, pierredb.NewUser{Email: "ADA@example.com", Password: "another password"})
	fmt.Println("same email again:", errors.Is(err, pierredb.ErrAlreadyExists))
	fmt.Println(err)

	pending, err := db.Users().List(ctx, pierredb.UserFilter{Status: pierredb.StatusPending})
	if err != nil {
		panic(err)
	}
	for _, u := range pending.Items {
		u, err := db.Users().Approve(ctx, u.ID, pierredb.ByUser(admin.ID))
		if err != nil {
			panic(err)
		}
		fmt.Println(u.Email, u.Status, u.ApprovedBy == admin.ID)
	}

	// With auto-approval on, new users are active at once.
	if err := db.Settings().SetAutoApproveUsers(ctx, true); err != nil {
		panic(err)
	}
	grace, err := db.Users().Create(ctx, pierredb.NewUser{Email: "grace@example.com", Password: "compiler pioneer"})
	if err != nil {
		panic(err)
	}
	fmt.Println(grace.Email, grace.Status, grace.ApprovedByService)
	// Output:
	// ada@example.com pending
	// same email again: true
	// pierredb: create user: already exists: email already registered; sign in, or use another email
	// ada@example.com active true
	// grace@example.com active auto-approval
}

// Authenticate answers the same ErrInvalidCredentials for a wrong password and
// an unknown email; only a right password tells pending and suspended apart.
func ExampleDatabase_Authenticate() {
	ctx := context.Background()
	key, err := keyring.Generate()
	if err != nil {
		panic(err)
	}
	db, err := pierredb.Open("sqlite::memory:", key)
	if err != nil {
		panic(err)
	}
	defer db.Close()

	u, err := db.Users().Create(ctx, pierredb.NewUser{Email: "runner@example.com", Password: "marathon-2026"})
	if err != nil {
		panic(err)
	}
	_, err = db.Authenticate(ctx, "runner@example.com", "marathon-2026")
	fmt.Println("pending:", errors.Is(err, pierredb.ErrUserPending))

	if _, err := db.Users().Approve(ctx, u.ID, pierredb.ByService("admin-console")); err != nil {
		panic(err)
	}
	me, err := db.Authenticate(ctx, "Runner@Example.com", "marathon-2026")
	fmt.Println("approved:", me.Email, err)

	_, err = db.Authenticate(ctx, "runner@example.com", "half-marathon")
	fmt.Println("wrong password:", errors.Is(err, pierredb.ErrInvalidCredentials))
	_, err = db.Authenticate(ctx, "nobody@example.com", "marathon-2026")
	fmt.Println("unknown email:", errors.Is(err, pierredb.ErrInvalidCredentials))

	if _, err := db.Users().Suspend(ctx, u.ID); err != nil {
		panic(err)
	}
	_, err = db.Authenticate(ctx, "runner@example.com", "marathon-2026")
	fmt.Println("suspended:", errors.Is(err, pierredb.ErrUserSuspended))
	// Output:
	// pending: true
	// approved: runner@example.com <nil>
	// wrong password: true
	// unknown email: true
	// suspended: true
}

// A TenantScope is the only way to reach a tenant's data; every query it runs
// is filtered by its tenant.
func ExampleDatabase_Tenant() {
	ctx := context.Background()
	key, err := keyring.Generate()
	if err != nil {
		panic(err)
	}
	db, err := pierredb.Open("sqlite::memory:", key)
	if err != nil {
		panic(err)
	}
	defer db.Close()

	owner, err := db.Users().CreateFirstAdmin(ctx, pierredb.NewUser{Email: "coach@example.com", Password: "interval training"})
	if err != nil {
		panic(err)
	}
	club, err := db.Tenants().Create(ctx, pierredb.NewTenant{Name: "Acme Running Club", Slug: "Acme-Running", OwnerUserID: owner.ID})
	if err != nil {
		panic(err)
	}
	fmt.Println(club.Slug)

	scope, err := db.Tenant(ctx, club.ID)
	if err != nil {
		panic(err)
	}
	member, err := scope.Members().CreateUser(ctx, pierredb.NewUser{Email: "athlete@example.com", Password: "tempo run 10k", Role: pierredb.RoleMember})
	if err != nil {
		panic(err)
	}
	m, err := scope.Members().Get(ctx, member.ID)
	if err != nil {
		panic(err)
	}
	fmt.Println("athlete:", m.Role, member.TenantID == club.ID)
	m, err = scope.Members().Get(ctx, owner.ID)
	if err != nil {
		panic(err)
	}
	fmt.Println("coach:", m.Role)
	n, err := scope.Members().CountUsers(ctx, pierredb.UserFilter{})
	if err != nil {
		panic(err)
	}
	fmt.Println("members:", n)

	memberships, err := db.Users().Tenants(ctx, member.ID)
	if err != nil {
		panic(err)
	}
	for _, m := range memberships {
		fmt.Println(m.Tenant.Slug, m.Role)
	}

	// There is no scope without a tenant, and no "default" tenant.
	_, err = db.Tenant(ctx, "")
	fmt.Println("empty id:", errors.Is(err, pierredb.ErrInvalidArgument))
	ghost, err := db.Tenant(ctx, "no-such-tenant") // a scope costs no query...
	if err != nil {
		panic(err)
	}
	_, err = ghost.Members().List(ctx, pierredb.ListOptions{}) // ...its operations find out
	fmt.Println("unknown id:", errors.Is(err, pierredb.ErrNotFound))
	fmt.Println(err)
	// Output:
	// acme-running
	// athlete: member true
	// coach: owner
	// members: 2
	// acme-running member
	// empty id: true
	// unknown id: true
	// pierredb: list members: not found: no tenant has that id
}
