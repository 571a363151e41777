package pierredb_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/internal/credential"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

// FuzzAPIKeyVerify: whatever the input, Verify and Check never panic; an input
// that is not a well-formed key answers ErrInvalidCredential without running a
// single statement; a well-formed one that is not the fixture's key answers
// ErrInvalidCredential after the one lookup.
//
//	go test -run '^$' -fuzz FuzzAPIKeyVerify -fuzztime 60s ./pierredb/
func FuzzAPIKeyVerify(f *testing.F) {
	e := storetest.Engines()[0] // SQLite: the parser path does not depend on the engine
	fx := newKeyFixture(f, e)
	plain := fx.key.Key.Reveal()
	log := traceStatements(fx.db)
	for _, seed := range []string{plain, plain[:len(plain)-1], "pk_live_", "pk_trial_" + plain[8:], "", "\x00", "pk_live_\xff",
		strings.Repeat("pk_live_", 20), "PK_LIVE_" + plain[8:], plain + "\n"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _, parseErr := credential.Parse(s, "pk_live", "pk_trial")
		for _, verify := range []func() error{
			func() error { _, err := fx.db.APIKeys().Verify(t.Context(), s); return err },
			func() error { _, err := fx.db.APIKeys().Check(t.Context(), s); return err },
		} {
			err := verify()
			reads, writes := log.take()
			switch {
			case parseErr != nil:
				if !errors.Is(err, pierredb.ErrInvalidCredential) || len(reads)+len(writes) != 0 {
					t.Fatalf("malformed %q: err %v, %d reads, %d writes", s, err, len(reads), len(writes))
				}
			case s == plain:
				if err != nil {
					t.Fatalf("the fixture's key: %v", err)
				}
			default:
				if all := append(reads, writes...); !errors.Is(err, pierredb.ErrInvalidCredential) || len(all) != 1 || all[0] != pierredb.VerifyAPIKeySQL {
					t.Fatalf("well-formed %q: err %v, %d reads, %d writes", s, err, len(reads), len(writes))
				}
			}
			if err != nil && strings.Contains(err.Error(), s) && len(s) >= 8 {
				t.Fatalf("the error repeats the input: %v", err)
			}
		}
	})
}

// FuzzA2AClientVerify: the same for an A2A client's id and secret.
func FuzzA2AClientVerify(f *testing.F) {
	e := storetest.Engines()[0]
	fx := newKeyFixture(f, e)
	c, err := fx.scope.A2AClients().Register(f.Context(), pierredb.NewA2AClient{UserID: fx.userID, Name: "fuzz"})
	if err != nil {
		f.Fatal(err)
	}
	secret := c.Secret.Reveal()
	log := traceStatements(fx.db)
	f.Add(c.ClientID, secret)
	f.Add(c.ClientID, secret[:len(secret)-1])
	f.Add("a2a_", "a2a_secret_")
	f.Add(c.ClientID+"\x00", secret)
	f.Add(strings.ToUpper(c.ClientID), secret)
	f.Fuzz(func(t *testing.T, id, s string) {
		_, err := fx.db.A2AClients().Verify(t.Context(), id, s)
		reads, writes := log.take()
		if id == c.ClientID && s == secret {
			if err != nil {
				t.Fatalf("the fixture's client: %v", err)
			}
			return
		}
		if !errors.Is(err, pierredb.ErrInvalidCredential) {
			t.Fatalf("%q %q: %v", id, s, err)
		}
		if _, _, perr := credential.Parse(s, "a2a_secret"); perr != nil && len(reads)+len(writes) != 0 {
			t.Fatalf("malformed secret %q ran %d statements", s, len(reads)+len(writes))
		}
		for _, q := range append(reads, writes...) {
			if !strings.HasPrefix(q, "SELECT") {
				t.Fatalf("a refused credential ran %.40q", q)
			}
		}
		if len(reads)+len(writes) > 1 {
			t.Fatalf("a refused credential ran %d statements", len(reads)+len(writes))
		}
	})
}
