package pierredb

import (
	"fmt"
	"time"
)

// UserStatus is where a user stands in the admin approval workflow.
type UserStatus string

// The user statuses. New users are pending until an admin approves them (or
// auto-approval is on); suspended users cannot log in.
const (
	StatusPending   UserStatus = "pending"
	StatusActive    UserStatus = "active"
	StatusSuspended UserStatus = "suspended"
)

func (s UserStatus) valid() bool {
	return s == StatusPending || s == StatusActive || s == StatusSuspended
}

// Tier is a subscription tier of a user, a tenant plan or an API key.
type Tier string

// The tiers. TierTrial applies to API keys only.
const (
	TierTrial        Tier = "trial"
	TierStarter      Tier = "starter"
	TierProfessional Tier = "professional"
	TierEnterprise   Tier = "enterprise"
)

func (t Tier) validPlan() bool {
	return t == TierStarter || t == TierProfessional || t == TierEnterprise
}

// Role is a user's role in a tenant.
type Role string

// The tenant roles, from most to least privileged. A tenant always keeps at least
// one owner.
const (
	RoleOwner  Role = "owner"
	RoleAdmin  Role = "admin"
	RoleMember Role = "member"
	RoleViewer Role = "viewer"
)

func (r Role) valid() bool {
	return r == RoleOwner || r == RoleAdmin || r == RoleMember || r == RoleViewer
}

// User is a person's account. Users are global (an email is unique across the
// whole database) and belong to tenants through memberships. The password hash is
// never part of a User.
type User struct {
	ID          string
	Email       string
	DisplayName string
	Tier        Tier
	// TenantID is the user's home tenant, "" when none.
	TenantID string
	Status   UserStatus
	// IsActive is false while the account is suspended.
	IsActive bool
	IsAdmin  bool
	// ApprovedBy is the id of the admin who approved the user, or "".
	ApprovedBy string
	// ApprovedByService names the service that approved the user ("auto-approval",
	// an admin token's service, ...), or "".
	ApprovedByService string
	ApprovedAt        time.Time
	CreatedAt         time.Time
	UpdatedAt         time.Time
	// LastActive is when the user was last seen, to within the throttle interval
	// (see WithLastActiveInterval); zero if never.
	LastActive time.Time
}

// NewUser is what CreateUser needs.
type NewUser struct {
	// Email is trimmed and lower-cased before it is stored.
	Email string
	// Password is hashed with argon2id; it must have at least 8 characters and at
	// most 4096 bytes.
	Password    string
	DisplayName string
	// Tier defaults to TierStarter.
	Tier Tier
	// Role is the membership role when the user is created through a TenantScope;
	// it defaults to RoleMember. Database.CreateUser ignores it.
	Role Role
}

// Approver says who approved a user: an admin user or a named service. Exactly one
// field is set.
type Approver struct {
	UserID  string
	Service string
}

// ByUser is an Approver that is an admin user.
func ByUser(id string) Approver { return Approver{UserID: id} }

// ByService is an Approver that is a service (an admin token, a provisioning job).
func ByService(name string) Approver { return Approver{Service: name} }

func (a Approver) validate() error {
	if (a.UserID == "") == (a.Service == "") {
		return fmt.Errorf("%w: an approver is either a user or a service", ErrInvalidArgument)
	}
	if len(a.Service) > 200 {
		return fmt.Errorf("%w: approver service name is longer than 200 bytes", ErrInvalidArgument)
	}
	return nil
}

// UserFilter selects users for ListUsers and CountUsers. Zero fields do not filter.
type UserFilter struct {
	Status UserStatus
	// TenantID keeps members of that tenant (Database only; a TenantScope always
	// filters by its own tenant).
	TenantID string
	// IsAdmin keeps admins (true) or non-admins (false) when set.
	IsAdmin *bool
	// Limit is the page size: default 50, at most 1000.
	Limit int
	// Cursor continues a listing where the previous page ended (Page.Next).
	Cursor string
}

// Page is one page of a listing in a stable order (created_at, then id).
type Page[T any] struct {
	Items []T
	// Next is the cursor of the following page, or "" on the last page.
	Next string
}

// Tenant is an organisation that owns API keys, OAuth configurations, A2A clients
// and its members' OAuth tokens.
type Tenant struct {
	ID   string
	Name string
	// Slug is the tenant's unique URL-safe name.
	Slug string
	Plan Tier
	// OwnerUserID is the tenant's primary owner; it always holds RoleOwner.
	OwnerUserID string
	IsActive    bool
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// NewTenant is what CreateTenant needs.
type NewTenant struct {
	Name string
	// Slug: 2 to 63 characters of a-z, 0-9 and '-', starting and ending with a
	// letter or digit; lower-cased before it is checked.
	Slug string
	// Plan defaults to TierStarter.
	Plan        Tier
	OwnerUserID string
}

// TenantUpdate changes a tenant; nil fields are left alone. The slug never changes.
type TenantUpdate struct {
	Name     *string
	Plan     *Tier
	IsActive *bool
}

// TenantFilter selects tenants for ListTenants.
type TenantFilter struct {
	// OwnerUserID keeps tenants whose primary owner is that user.
	OwnerUserID string
	// Limit is the page size: default 50, at most 1000.
	Limit  int
	Cursor string
}

// Membership is a user's place in a tenant.
type Membership struct {
	TenantID  string
	UserID    string
	Role      Role
	CreatedAt time.Time
	UpdatedAt time.Time
}

// TenantMembership is a tenant a user belongs to, with the user's role in it.
type TenantMembership struct {
	Tenant Tenant
	Role   Role
}

// ListOptions pages through a listing.
type ListOptions struct {
	// Limit is the page size: default 50, at most 1000.
	Limit  int
	Cursor string
}
