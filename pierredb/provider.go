package pierredb

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Provider names an OAuth provider whose tokens and app configurations pierre
// keeps: a lower-case slug such as "strava". Every operation that takes a
// provider refuses one that is not known (ErrInvalidArgument, listing the known
// ones), so a typo never becomes a row of its own.
//
// The known set is the built-in providers below plus those a host registers at
// start-up with RegisterProvider.
type Provider string

// The built-in providers.
const (
	ProviderStrava Provider = "strava"
	ProviderFitbit Provider = "fitbit"
	ProviderGarmin Provider = "garmin"
	ProviderWhoop  Provider = "whoop"
	ProviderTerra  Provider = "terra"
	ProviderPolar  Provider = "polar"
	ProviderOura   Provider = "oura"
	ProviderCoros  Provider = "coros"
	ProviderSuunto Provider = "suunto"
)

// maxProviderLength bounds a provider name.
const maxProviderLength = 32

// providerSet is an immutable snapshot of the known providers; registering
// replaces it, so checking a name (on every OAuth operation) takes no lock.
type providerSet struct {
	known  map[Provider]struct{}
	sorted []Provider
}

var (
	providersMu sync.Mutex // serialises RegisterProvider
	providers   atomic.Pointer[providerSet]
)

func init() {
	providers.Store(newProviderSet([]Provider{ProviderStrava, ProviderFitbit, ProviderGarmin, ProviderWhoop,
		ProviderTerra, ProviderPolar, ProviderOura, ProviderCoros, ProviderSuunto}))
}

func newProviderSet(names []Provider) *providerSet {
	s := &providerSet{known: make(map[Provider]struct{}, len(names)), sorted: slices.Clone(names)}
	for _, n := range names {
		s.known[n] = struct{}{}
	}
	slices.Sort(s.sorted)
	s.sorted = slices.Compact(s.sorted)
	return s
}

// RegisterProvider adds name to the known providers, for a host that connects
// a provider pierre does not list. Call it at start-up, before the Database is
// used (it is safe to call at any time and from several goroutines, but an
// operation racing with it may or may not see the new name). Registering a
// known name again is a no-op.
//
// A name is 1 to 32 bytes of lower-case ASCII letters, digits, '-' and '_',
// starting with a letter and ending with a letter or digit ("acme",
// "acme-health", "acme_2"); anything else is ErrInvalidArgument, so no name can
// hide a space, a capital or an invisible character. Names cannot be
// unregistered: rows stored under a name must stay reachable.
func RegisterProvider(name string) error {
	if err := validProviderName(name); err != nil {
		return fmt.Errorf("pierredb: register provider: %w", err)
	}
	providersMu.Lock()
	defer providersMu.Unlock()
	cur := providers.Load()
	if _, ok := cur.known[Provider(name)]; ok {
		return nil
	}
	providers.Store(newProviderSet(append(slices.Clone(cur.sorted), Provider(name))))
	return nil
}

// Providers lists the known providers, built-in and registered, in
// alphabetical order.
func Providers() []Provider { return slices.Clone(providers.Load().sorted) }

// validProviderName checks the spelling of a provider name, known or not.
func validProviderName(name string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w: provider name %q %s; use 1 to %d lower-case letters, digits, '-' or '_', starting with a letter",
			ErrInvalidArgument, shorten(name), why, maxProviderLength)
	}
	switch {
	case name == "":
		return fmt.Errorf("%w: provider is required", ErrInvalidArgument)
	case len(name) > maxProviderLength:
		return bad(fmt.Sprintf("is longer than %d bytes", maxProviderLength))
	case name[0] < 'a' || name[0] > 'z':
		return bad("does not start with a lower-case letter")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return bad("holds a character other than a-z, 0-9, '-' and '_'")
		}
	}
	if last := name[len(name)-1]; last == '-' || last == '_' {
		return bad("ends with '-' or '_'")
	}
	return nil
}

// checkProvider refuses a provider that is not known, naming the known ones.
func checkProvider(p Provider) error {
	set := providers.Load()
	if _, ok := set.known[p]; ok {
		return nil
	}
	if p == "" {
		return fmt.Errorf("%w: provider is required", ErrInvalidArgument)
	}
	names := make([]string, len(set.sorted))
	for i, n := range set.sorted {
		names[i] = string(n)
	}
	return fmt.Errorf("%w: unknown provider %q; known providers are %s (a host adds its own with pierredb.RegisterProvider at start-up)",
		ErrInvalidArgument, shorten(string(p)), strings.Join(names, ", "))
}
