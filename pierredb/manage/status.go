package manage

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/pierre-mcp/pierre/pierredb"
)

func runStatus(ctx context.Context, env Env, args []string) error {
	fs := newFlags("status")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := fs.parse(args, 0); err != nil {
		return err
	}
	_, err := Status(ctx, env, *asJSON)
	return err
}

// StatusReport is what Status reports. It holds no secret.
type StatusReport struct {
	Backend              string            `json:"backend"`
	Driver               string            `json:"driver"`
	Location             string            `json:"location"`
	Schema               string            `json:"schema,omitempty"`
	Settings             map[string]string `json:"settings"`
	SchemaVersion        string            `json:"schema_version"`
	Migrations           []MigrationStatus `json:"migrations"`
	AppliedNow           []string          `json:"applied_now,omitempty"`
	KeyringID            string            `json:"keyring_id"`
	MasterKeyFingerprint string            `json:"master_key_fingerprint"`
	Keys                 []KeyStatus       `json:"keys"`
	// Secrets counts the stored sealed values per data key version.
	Secrets map[string]int64 `json:"secrets_by_key_version"`
	Users   map[string]int   `json:"users"`
	Pools   PoolStatus       `json:"pools"`
}

// MigrationStatus is one migration in a StatusReport.
type MigrationStatus struct {
	Set       string `json:"set"`
	Name      string `json:"name"`
	Comment   string `json:"comment"`
	Applied   bool   `json:"applied"`
	AppliedAt string `json:"applied_at,omitempty"`
}

// KeyStatus is one keyring key in a StatusReport (metadata only).
type KeyStatus struct {
	Purpose string `json:"purpose"`
	Version uint32 `json:"version"`
	State   string `json:"state"`
	Created string `json:"created_at"`
}

// PoolStatus is the connection pools in a StatusReport.
type PoolStatus struct {
	WriteOpen, WriteInUse, WriteIdle int
	ReadOpen, ReadInUse, ReadIdle    int
	PreparedStatements               int
	WaitCount                        int64
	WaitDuration                     string
}

// Status reports on the database: engine and location, migrations, keyring
// and keys, secrets per data key version, users per status, and the pools.
// Opening applies pending migrations, as a server start would; the report
// says which it applied.
func Status(ctx context.Context, env Env, asJSON bool) (StatusReport, error) {
	var r StatusReport
	err := env.withDB(ctx, func(db *pierredb.Database) error {
		info := db.Info()
		r = StatusReport{Backend: string(info.Backend), Driver: info.Driver, Location: info.Location, Schema: info.Schema,
			Settings: info.Settings, SchemaVersion: info.SchemaVersion, AppliedNow: info.MigrationsApplied,
			KeyringID: info.KeyringID, MasterKeyFingerprint: info.MasterKeyFingerprint,
			Secrets: map[string]int64{}, Users: map[string]int{}}
		ms, err := db.Migrations(ctx)
		if err != nil {
			return err
		}
		for _, m := range ms {
			s := MigrationStatus{Set: m.Set, Name: m.Name, Comment: m.Comment, Applied: m.Applied}
			if m.Applied && !m.AppliedAt.IsZero() {
				s.AppliedAt = m.AppliedAt.UTC().Format(time.RFC3339)
			}
			r.Migrations = append(r.Migrations, s)
		}
		for _, k := range db.Keyring().Keys() {
			r.Keys = append(r.Keys, KeyStatus{Purpose: string(k.Purpose), Version: k.Version, State: string(k.State), Created: k.CreatedAt.UTC().Format(time.RFC3339)})
		}
		prog, err := db.Rotation().Progress(ctx)
		if err != nil {
			return err
		}
		for v, n := range prog.Versions {
			r.Secrets[fmt.Sprint(v)] = n
		}
		for _, s := range []pierredb.UserStatus{pierredb.StatusPending, pierredb.StatusActive, pierredb.StatusSuspended} {
			n, err := db.Users().Count(ctx, pierredb.UserFilter{Status: s})
			if err != nil {
				return err
			}
			r.Users[string(s)] = n
		}
		n, err := db.Users().Count(ctx, pierredb.UserFilter{IsAdmin: new(true)})
		if err != nil {
			return err
		}
		r.Users["admins"] = n
		st := db.Stats()
		r.Pools = PoolStatus{WriteOpen: st.Write.OpenConnections, WriteInUse: st.Write.InUse, WriteIdle: st.Write.Idle,
			ReadOpen: st.Read.OpenConnections, ReadInUse: st.Read.InUse, ReadIdle: st.Read.Idle,
			PreparedStatements: st.PreparedStatements, WaitCount: st.Write.WaitCount + st.Read.WaitCount,
			WaitDuration: (st.Write.WaitDuration + st.Read.WaitDuration).String()}
		return nil
	})
	if err != nil {
		return StatusReport{}, fmt.Errorf("status: %w", err)
	}
	out := env.stdout()
	if asJSON {
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return r, err
		}
		fmt.Fprintln(out, string(b))
		return r, nil
	}
	where := r.Location
	if r.Schema != "" {
		where += ", schema " + r.Schema
	}
	fmt.Fprintf(out, "database    %s %s (%s)\n", r.Backend, where, r.Driver)
	if len(r.Settings) > 0 {
		var s []string
		for _, k := range slices.Sorted(maps.Keys(r.Settings)) {
			s = append(s, k+"="+r.Settings[k])
		}
		fmt.Fprintf(out, "settings    %s\n", strings.Join(s, " "))
	}
	pending := 0
	for _, m := range r.Migrations {
		if !m.Applied {
			pending++
		}
	}
	fmt.Fprintf(out, "schema      version %s, %d migrations, %d pending", r.SchemaVersion, len(r.Migrations), pending)
	if len(r.AppliedNow) > 0 {
		fmt.Fprintf(out, " (applied now: %s)", strings.Join(r.AppliedNow, ", "))
	}
	fmt.Fprintln(out)
	for _, m := range r.Migrations {
		at := "pending"
		if m.Applied {
			at = "applied " + m.AppliedAt
		}
		fmt.Fprintf(out, "  %-8s %s_%s  %s\n", m.Set, m.Name, m.Comment, at)
	}
	fmt.Fprintf(out, "keyring     %s, master key fingerprint %s\n", r.KeyringID, r.MasterKeyFingerprint)
	for _, k := range r.Keys {
		fmt.Fprintf(out, "  %-10s v%-3d %-8s created %s\n", k.Purpose, k.Version, k.State, k.Created)
	}
	var sec []string
	for _, v := range slices.Sorted(maps.Keys(r.Secrets)) {
		sec = append(sec, fmt.Sprintf("v%s: %d", v, r.Secrets[v]))
	}
	if len(sec) == 0 {
		sec = []string{"none stored"}
	}
	fmt.Fprintf(out, "secrets     %s\n", strings.Join(sec, ", "))
	fmt.Fprintf(out, "users       %d pending, %d active, %d suspended; %d admins\n",
		r.Users["pending"], r.Users["active"], r.Users["suspended"], r.Users["admins"])
	p := r.Pools
	fmt.Fprintf(out, "pools       write %d open (%d in use), read %d open (%d in use), %d prepared statements, %d waits (%s)\n",
		p.WriteOpen, p.WriteInUse, p.ReadOpen, p.ReadInUse, p.PreparedStatements, p.WaitCount, p.WaitDuration)
	return r, nil
}
