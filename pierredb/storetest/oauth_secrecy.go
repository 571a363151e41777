package storetest

// Secrecy of the OAuth domains: redaction everywhere a value can be printed,
// round trips across a reopen, ciphertexts moved by hand, and no plaintext in
// the database files or a dump.

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb"
)

// Secrets never show in fmt verbs, slog (text and JSON handlers), JSON or
// text marshalling of an OAuthSecret, an OAuthApp, an OAuthAppConfig or an
// OAuthToken; only Reveal gives the value.
var _ = register("OAuthSecrets", "Redacted", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		owner := activeUser(t, db, "owner")
		_, scope := newTenant(t, db, owner)
		cfg := appConfig("redacted")
		app, err := scope.OAuthApps().Set(ctx, pierredb.ProviderSuunto, cfg)
		require.NoError(t, err)
		tok := putToken(t, scope, owner.ID, pierredb.ProviderSuunto, "redacted")
		secrets := []string{cfg.ClientSecret.Reveal(), tok.AccessToken.Reveal(), tok.RefreshToken.Reveal()}
		for _, s := range secrets {
			require.NotEmpty(t, s)
		}

		var logs bytes.Buffer
		text := slog.New(slog.NewTextHandler(&logs, nil))
		js := slog.New(slog.NewJSONHandler(&logs, nil))
		values := map[string]any{"secret": tok.AccessToken, "secret pointer": &tok.RefreshToken, "app": app, "app pointer": &app,
			"config": cfg, "token": tok, "token pointer": &tok, "tokens": []pierredb.OAuthToken{tok},
			"nested": struct{ inner pierredb.OAuthToken }{tok}}
		for name, v := range values {
			var out []string
			for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%T"} {
				out = append(out, fmt.Sprintf(verb, v))
			}
			out = append(out, fmt.Sprint(v), fmt.Sprintln(v))
			if b, err := json.Marshal(v); err == nil {
				out = append(out, string(b))
			}
			text.Info("value", "v", v)
			js.Info("value", "v", v)
			for _, o := range append(out, logs.String()) {
				for _, s := range secrets {
					assert.NotContains(t, o, s, "%s leaks a secret", name)
				}
			}
		}
		assert.Contains(t, fmt.Sprintf("%+v", tok), "[REDACTED]")
		assert.Equal(t, "[EMPTY]", fmt.Sprint(pierredb.OAuthSecret{}))
		b, err := json.Marshal(app)
		require.NoError(t, err)
		assert.Contains(t, string(b), `"ClientSecret":"[REDACTED]"`)
		txt, err := tok.AccessToken.MarshalText()
		require.NoError(t, err)
		assert.Equal(t, "[REDACTED]", string(txt))
		assert.Equal(t, secrets[1], tok.AccessToken.Reveal(), "Reveal is the one way to the value")
		assert.True(t, pierredb.NewOAuthSecret("x").Equal(pierredb.NewOAuthSecret("x")))
		assert.False(t, pierredb.NewOAuthSecret("x").Equal(pierredb.NewOAuthSecret("y")))
		assert.True(t, pierredb.NewOAuthSecret("").IsZero())
	})
})

// Tokens and client secrets survive Close and a reopen with the same master
// key; another key cannot open the database at all.
var _ = register("OAuthSecrets", "Reopen", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		url := e.NewURL(t)
		db, err := pierredb.Open(url, e.Key)
		require.NoError(t, err)
		owner := activeUser(t, db, "owner")
		tn, scope := newTenant(t, db, owner)
		app, err := scope.OAuthApps().Set(ctx, pierredb.ProviderCoros, appConfig("reopen"))
		require.NoError(t, err)
		tok := putToken(t, scope, owner.ID, pierredb.ProviderCoros, "reopen")
		require.NoError(t, db.Close())

		wrong, err := keyring.Generate()
		require.NoError(t, err)
		_, err = pierredb.Open(url, wrong)
		require.ErrorIs(t, err, keyring.ErrWrongMasterKey)

		again := e.OpenURL(t, url)
		scope, err = again.Tenant(ctx, tn.ID)
		require.NoError(t, err)
		gotApp, err := scope.OAuthApps().Get(ctx, pierredb.ProviderCoros)
		require.NoError(t, err)
		sameApp(t, app, gotApp)
		gotTok, err := scope.OAuthTokens().Get(ctx, owner.ID, pierredb.ProviderCoros)
		require.NoError(t, err)
		sameToken(t, tok, gotTok)
	})
})

// A ciphertext copied by hand to another row, user, tenant, provider or
// column never decrypts there: the read fails with keyring.ErrDecrypt, and
// returns no value at all, least of all another person's token.
var _ = register("OAuthSecrets", "MovedCiphertext", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		owner := activeUser(t, db, "owner")
		_, a := newTenant(t, db, owner)
		_, b := newTenant(t, db, owner) // the owner is a member of both tenants
		other := member(t, db, a, "other", pierredb.RoleMember)

		src := putToken(t, a, owner.ID, pierredb.ProviderStrava, "source")
		fitbit := putToken(t, a, owner.ID, pierredb.ProviderFitbit, "fitbit")
		otherUser := putToken(t, a, other.ID, pierredb.ProviderStrava, "other-user")
		otherTenant := putToken(t, b, owner.ID, pierredb.ProviderStrava, "other-tenant")
		srcApp, err := a.OAuthApps().Set(ctx, pierredb.ProviderStrava, appConfig("source"))
		require.NoError(t, err)
		appFitbit, err := a.OAuthApps().Set(ctx, pierredb.ProviderFitbit, appConfig("fitbit"))
		require.NoError(t, err)
		appOtherTenant, err := b.OAuthApps().Set(ctx, pierredb.ProviderStrava, appConfig("other-tenant"))
		require.NoError(t, err)
		leaked := []string{src.AccessToken.Reveal(), src.RefreshToken.Reveal(), srcApp.ClientSecret.Reveal()}

		const tok, app = "user_oauth_tokens", "tenant_oauth_configs"
		const access, refresh, secret = "access_token_encrypted", "refresh_token_encrypted", "client_secret_encrypted"
		getToken := func(s *pierredb.TenantScope, o pierredb.OAuthToken) func() (any, error) {
			return func() (any, error) { return s.OAuthTokens().Get(ctx, o.UserID, o.Provider) }
		}
		getApp := func(s *pierredb.TenantScope, p pierredb.Provider) func() (any, error) {
			return func() (any, error) { return s.OAuthApps().Get(ctx, p) }
		}
		for _, tc := range []struct {
			name                 string
			fromTable, fromCol   string
			fromID               string
			toTable, toCol, toID string
			read                 func() (any, error)
		}{
			{"to another user", tok, access, src.ID, tok, access, otherUser.ID, getToken(a, otherUser)},
			{"to another provider", tok, access, src.ID, tok, access, fitbit.ID, getToken(a, fitbit)},
			{"to another tenant", tok, access, src.ID, tok, access, otherTenant.ID, getToken(b, otherTenant)},
			{"to another column", tok, access, src.ID, tok, refresh, src.ID, getToken(a, src)},
			{"refresh to access", tok, refresh, src.ID, tok, access, src.ID, getToken(a, src)},
			{"refresh to another user", tok, refresh, src.ID, tok, refresh, otherUser.ID, getToken(a, otherUser)},
			{"client secret to another tenant", app, secret, srcApp.ID, app, secret, appOtherTenant.ID, getApp(b, pierredb.ProviderStrava)},
			{"client secret to another provider", app, secret, srcApp.ID, app, secret, appFitbit.ID, getApp(a, pierredb.ProviderFitbit)},
			{"token to a client secret", tok, access, src.ID, app, secret, srcApp.ID, getApp(a, pierredb.ProviderStrava)},
			{"client secret to a token", app, secret, srcApp.ID, tok, access, src.ID, getToken(a, src)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				saved := rawSealed(t, db, tc.toTable, tc.toCol, tc.toID)
				_, err := db.Bun().ExecContext(ctx, "UPDATE "+tc.toTable+" SET "+tc.toCol+" = ? WHERE id = ?",
					rawSealed(t, db, tc.fromTable, tc.fromCol, tc.fromID), tc.toID)
				require.NoError(t, err)
				got, err := tc.read()
				require.ErrorIs(t, err, keyring.ErrDecrypt)
				onePrefix(t, err)
				noLeak(t, err, leaked...)
				assert.Contains(t, err.Error(), "does not decrypt")
				assert.Zero(t, got, "no value comes back")

				_, err = db.Bun().ExecContext(ctx, "UPDATE "+tc.toTable+" SET "+tc.toCol+" = ? WHERE id = ?", saved, tc.toID)
				require.NoError(t, err)
				_, err = tc.read()
				require.NoError(t, err, "restored, the row reads again")
			})
		}

		// A listing that meets a moved token fails the same way.
		_, err = db.Bun().ExecContext(ctx, "UPDATE user_oauth_tokens SET access_token_encrypted = ? WHERE id = ?",
			rawSealed(t, db, tok, access, src.ID), otherUser.ID)
		require.NoError(t, err)
		_, err = a.OAuthTokens().List(ctx, other.ID)
		require.ErrorIs(t, err, keyring.ErrDecrypt)
		_, err = a.OAuthTokens().ListExpiring(ctx, base.Add(24*time.Hour), pierredb.ListOptions{})
		require.ErrorIs(t, err, keyring.ErrDecrypt)
		noLeak(t, err, leaked...)
	})
})

// Known tokens and client secrets are nowhere in the database's bytes: not in
// the SQLite file nor its WAL, not in a pg_dump of the test schema (neither as
// text nor hex-encoded), while a plain column written beside them is, so the
// search is not vacuous.
var _ = register("OAuthSecrets", "NoPlaintextAtRest", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		url := e.NewURL(t)
		db := e.OpenURL(t, url)
		owner := activeUser(t, db, "owner")
		_, scope := newTenant(t, db, owner)
		var secrets []string
		for _, p := range []pierredb.Provider{pierredb.ProviderStrava, pierredb.ProviderGarmin, pierredb.ProviderOura} {
			cfg := appConfig("at-rest-" + string(p))
			cfg.ClientID = "visible-client-id-" + string(p)
			_, err := scope.OAuthApps().Set(ctx, p, cfg)
			require.NoError(t, err)
			tok := putToken(t, scope, owner.ID, p, "at-rest")
			secrets = append(secrets, cfg.ClientSecret.Reveal(), tok.AccessToken.Reveal(), tok.RefreshToken.Reveal())
		}
		// A secret updated in place leaves no old plaintext behind either.
		_, err := scope.OAuthTokens().Update(ctx, owner.ID, pierredb.ProviderStrava, func(old pierredb.OAuthToken) (pierredb.OAuthToken, error) {
			old.AccessToken = pierredb.NewOAuthSecret(oauthSecret("access", "updated"))
			secrets = append(secrets, old.AccessToken.Reveal())
			return old, nil
		})
		require.NoError(t, err)

		search := func(t *testing.T, where string, data []byte) {
			t.Helper()
			for _, s := range secrets {
				assert.False(t, bytes.Contains(data, []byte(s)), "%s holds a secret in plain text", where)
				assert.False(t, bytes.Contains(bytes.ToLower(data), []byte(hex.EncodeToString([]byte(s)))), "%s holds a secret hex-encoded", where)
			}
		}
		switch e.Backend {
		case pierredb.SQLite:
			path := strings.TrimPrefix(url, "sqlite:")
			var all []byte
			for _, f := range []string{path, path + "-wal"} {
				data, err := os.ReadFile(f)
				if os.IsNotExist(err) {
					continue
				}
				require.NoError(t, err)
				search(t, filepath.Base(f), data)
				all = append(all, data...)
			}
			assert.True(t, bytes.Contains(all, []byte("visible-client-id-oura")), "the search sees the rows written")
			require.NoError(t, db.Close()) // checkpoints the WAL into the file
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			search(t, "the checkpointed file", data)
			assert.True(t, bytes.Contains(data, []byte("visible-client-id-oura")))
		default:
			pgDump, err := exec.LookPath("pg_dump")
			if err != nil {
				t.Skip("pg_dump is not installed: the dump cannot be searched")
			}
			schema := db.Info().Schema
			require.NotEmpty(t, schema)
			cmd := exec.CommandContext(ctx, pgDump, "--schema="+schema, "--no-owner", "--no-privileges", os.Getenv(EnvPostgresURL))
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			dump, err := cmd.Output()
			require.NoError(t, err, "pg_dump: %s", stderr.String())
			search(t, "pg_dump", dump)
			assert.True(t, bytes.Contains(dump, []byte("visible-client-id-oura")), "the dump holds the rows written")
		}
	})
})
