package keyring_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/pierre-mcp/pierre/keyring"
)

// exampleKey is a fixed master key so that the examples print stable
// fingerprints. Never hard-code a real one: use keyring.LoadMasterKey.
const exampleKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

func mustKey() keyring.MasterKey {
	mek, err := keyring.ParseMasterKey(exampleKey)
	if err != nil {
		log.Fatal(err)
	}
	return mek
}

// Encrypt a field bound to where it is stored, then read it back.
func Example() {
	ctx := context.Background()
	store := keyring.NewMemoryStore() // pierredb provides the SQL-backed Store
	k, err := keyring.Open(ctx, store, mustKey())
	if err != nil {
		log.Fatal(err)
	}

	where := keyring.Context{Tenant: "acme", Table: "user_oauth_tokens", Column: "access_token", RowID: "42", Extra: []string{"strava"}}
	envelope, err := k.Encrypt([]byte("ya29.secret-token"), where)
	if err != nil {
		log.Fatal(err)
	}
	plaintext, err := k.Decrypt(envelope, where)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s (%d bytes stored)\n", plaintext, len(envelope))

	// The same bytes copied to another row do not decrypt.
	where.RowID = "43"
	_, err = k.Decrypt(envelope, where)
	fmt.Println(errors.Is(err, keyring.ErrDecrypt))
	// Output:
	// ya29.secret-token (51 bytes stored)
	// true
}

// LoadMasterKey reads PIERRE_MASTER_ENCRYPTION_KEY or the file named by
// DATABASE_ENCRYPTION_KEY_PATH; Getenv stands in for the environment here.
func ExampleLoadMasterKey() {
	env := map[string]string{keyring.EnvMasterKey: exampleKey}
	mek, err := keyring.LoadMasterKey(keyring.LoadOptions{Getenv: func(name string) string { return env[name] }})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(mek.Fingerprint())

	_, err = keyring.LoadMasterKey(keyring.LoadOptions{Getenv: func(string) string { return "" }})
	fmt.Println(errors.Is(err, keyring.ErrMasterKeyMissing))
	// Output:
	// 5cb36d8eae9c8d73
	// true
}

// A master key prints only its fingerprint, whatever the verb.
func ExampleMasterKey_String() {
	mek := mustKey()
	fmt.Println(mek)
	fmt.Printf("%#v\n", mek)
	_, err := keyring.ParseMasterKey(exampleKey[:40])
	fmt.Println(err)
	// Output:
	// keyring.MasterKey(REDACTED fp=5cb36d8eae9c8d73)
	// keyring.MasterKey(REDACTED fp=5cb36d8eae9c8d73)
	// keyring: invalid master encryption key: decoded to 30 bytes, want 32
}

// Generate makes a key for a new deployment; EncodeBase64 is the form
// PIERRE_MASTER_ENCRYPTION_KEY expects.
func ExampleGenerate() {
	mek, err := keyring.Generate()
	if err != nil {
		log.Fatal(err)
	}
	again, err := keyring.ParseMasterKey(mek.EncodeBase64())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(mek.EncodeBase64()), again.Equal(mek))
	// Output: 44 true
}

// Credential hashes are keyed and name the key version that made them.
func ExampleKeyring_HashCredential() {
	k, err := keyring.Open(context.Background(), keyring.NewMemoryStore(), mustKey())
	if err != nil {
		log.Fatal(err)
	}
	stored := k.HashCredential("api_key", []byte("pk_live_example"))
	version, _ := keyring.CredentialHashVersion(stored)
	ok, _ := k.VerifyCredential("api_key", []byte("pk_live_example"), stored)
	wrong, _ := k.VerifyCredential("api_key", []byte("pk_live_guess"), stored)
	fmt.Println(stored[:15], version, ok, wrong)
	// Output: hmac-sha256$v1$ 1 true false
}

// Rotate the data key: new writes use the new version, old values still
// read, Reencrypt moves them over, and the old version retires once nothing
// uses it.
func ExampleKeyring_Rotate() {
	ctx := context.Background()
	k, err := keyring.Open(ctx, keyring.NewMemoryStore(), mustKey())
	if err != nil {
		log.Fatal(err)
	}
	where := keyring.Context{Tenant: "acme", Table: "tenant_oauth_apps", Column: "client_secret", RowID: "7"}
	old, _ := k.Encrypt([]byte("s3cr3t"), where)

	version, err := k.Rotate(ctx, keyring.PurposeEncryption)
	if err != nil {
		log.Fatal(err)
	}
	moved, changed, err := k.Reencrypt(old, where)
	if err != nil {
		log.Fatal(err)
	}
	movedVersion, _ := keyring.EnvelopeKeyVersion(moved)
	fmt.Println(version, changed, movedVersion)

	// pierredb counts the stored values still under a version.
	stillUsing := map[uint32]int64{1: 1}
	counter := keyring.InUseCounterFunc(func(_ context.Context, _ keyring.Purpose, v uint32) (int64, error) {
		return stillUsing[v], nil
	})
	fmt.Println(errors.Is(k.Retire(ctx, keyring.PurposeEncryption, 1, counter), keyring.ErrKeyInUse))
	stillUsing[1] = 0 // the batch job stored `moved` in place of `old`
	fmt.Println(k.Retire(ctx, keyring.PurposeEncryption, 1, counter))
	_, err = k.Decrypt(old, where)
	fmt.Println(errors.Is(err, keyring.ErrUnknownKeyVersion))
	// Output:
	// 2 true 2
	// true
	// <nil>
	// true
}

// Rotate the master key: only the wrapped key rows are rewritten, and the
// old master key no longer opens the store.
func ExampleKeyring_RotateMasterKey() {
	ctx := context.Background()
	store := keyring.NewMemoryStore()
	oldMEK := mustKey()
	k, err := keyring.Open(ctx, store, oldMEK)
	if err != nil {
		log.Fatal(err)
	}
	where := keyring.Context{Tenant: "acme", Table: "users", Column: "totp_secret", RowID: "1"}
	envelope, _ := k.Encrypt([]byte("JBSWY3DPEHPK3PXP"), where)

	newMEK, err := keyring.Generate()
	if err != nil {
		log.Fatal(err)
	}
	if err := k.RotateMasterKey(ctx, newMEK); err != nil {
		log.Fatal(err)
	}

	_, err = keyring.Open(ctx, store, oldMEK)
	fmt.Println(errors.Is(err, keyring.ErrWrongMasterKey))
	reopened, err := keyring.Open(ctx, store, newMEK)
	if err != nil {
		log.Fatal(err)
	}
	plaintext, _ := reopened.Decrypt(envelope, where)
	fmt.Println(string(plaintext))
	// Output:
	// true
	// JBSWY3DPEHPK3PXP
}
