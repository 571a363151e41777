package password_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/pierre-mcp/pierre/pierredb/internal/password"
)

func ExampleHasher_Hash() {
	ctx := context.Background()
	h := password.NewHasher(password.Policy{}) // the default (minimum) policy

	phc, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		panic(err)
	}
	fmt.Println(strings.HasPrefix(phc, "$argon2id$v=19$m=19456,t=2,p=1$"))

	needsRehash, err := h.Verify(ctx, "correct horse battery staple", phc)
	fmt.Println(needsRehash, err)

	_, err = h.Verify(ctx, "Tr0ub4dor&3", phc)
	fmt.Println(errors.Is(err, password.ErrMismatch))
	// Output:
	// true
	// false <nil>
	// true
}

// A login against a bcrypt hash imported from the reference server succeeds
// and asks for a rehash; the new hash is then argon2id at policy.
func ExampleHasher_Verify_rehash() {
	ctx := context.Background()
	h := password.NewHasher(password.Policy{})
	imported := "$2y$04$Su3Hk7nnoXI1X1EntbeEeu2w03KOLoHGPNWgcuKKS0jbFQtkIl5cC"

	needsRehash, err := h.Verify(ctx, "legacy-password-4", imported)
	if err != nil {
		panic(err)
	}
	if needsRehash {
		// A failed rehash must not fail the login: log it and carry on.
		if phc, err := h.Hash(ctx, "legacy-password-4"); err == nil {
			fmt.Println(strings.HasPrefix(phc, "$argon2id$"))
		}
	}
	// Output: true
}

// An unknown account still costs one hash, and fails like a wrong password.
func ExampleHasher_DummyVerify() {
	h := password.NewHasher(password.Policy{})
	err := h.DummyVerify(context.Background(), "whatever was typed")
	fmt.Println(errors.Is(err, password.ErrMismatch))
	// Output: true
}

// At start-up, tell the Hasher about the costliest hash the database holds
// (here imported bcrypt hashes of cost 10, costlier than argon2id at the
// default policy): unknown accounts then cost a bcrypt-10 verification, and
// cheaper hashes are padded to its time.
func ExampleHasher_RaiseFloor() {
	ctx := context.Background()
	h := password.NewHasher(password.Policy{})

	raised, err := h.RaiseFloor(ctx, "$2y$10$") // the cost header of the costliest bcrypt hash
	fmt.Println(raised, err)
	raised, err = h.RaiseFloor(ctx, "$2y$04$") // cheaper: the floor is never lowered
	fmt.Println(raised, err)

	err = h.DummyVerify(ctx, "whatever was typed") // a bcrypt-10 verification
	fmt.Println(errors.Is(err, password.ErrMismatch))
	// Output:
	// true <nil>
	// false <nil>
	// true
}

func ExampleCost() {
	for _, stored := range []string{
		"$argon2id$v=19$m=19456,t=2,p=1$", // the default policy
		"$2y$04$Su3Hk7nnoXI1X1EntbeEeu2w03KOLoHGPNWgcuKKS0jbFQtkIl5cC",
		"$2y$10$",
		"$2y$12$",
	} {
		cost, err := password.Cost(stored)
		fmt.Println(cost, err)
	}
	// Output:
	// 38912 <nil>
	// 1440 <nil>
	// 92160 <nil>
	// 368640 <nil>
}

func ExampleValidateNew() {
	fmt.Println(password.ValidateNew("short"))
	fmt.Println(password.ValidateNew("ünïcödé!")) // eight characters, twelve bytes
	// Output:
	// password: too short
	// <nil>
}
