package password

import (
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"golang.org/x/crypto/argon2"
)

// cheap is a policy far below the floor, for tests that are about behaviour
// rather than cost. Only newHasher accepts it.
var cheap = Policy{MemoryKiB: 64, Iterations: 1, Parallelism: 1}

// Vectors computed once with the reference C implementation (Debian package
// argon2 0~20171227), e.g.
//
//	printf %s 'correct horse battery staple' | argon2 'pierre-kat-salt!' -id -t 2 -k 19456 -p 1 -l 32 -e
const (
	katDefaultPassword = "correct horse battery staple"
	katDefaultSalt     = "pierre-kat-salt!"
	katDefault         = "$argon2id$v=19$m=19456,t=2,p=1$cGllcnJlLWthdC1zYWx0IQ$raAmzr1Mf8v0nzncifg/qJvsCc86+/EB9aiWZXh3xVo"

	katSmallPassword = "pässwörd-ünïcode"
	katSmallSalt     = "saltsaltsaltsalt"
	katSmall         = "$argon2id$v=19$m=64,t=1,p=2$c2FsdHNhbHRzYWx0c2FsdA$mZMuDV8ZCegT0TrB/2YBSg"
)

// bcrypt vectors computed once with Apache's htpasswd (apache2-utils 2.4),
// an implementation independent of x/crypto:
//
//	htpasswd -nbBC 12 u legacy-password-12
const (
	bcrypt12Password = "legacy-password-12"
	bcrypt12         = "$2y$12$QAXeRFKARBDl9xTaLne6pOUQY6H6pMHxxuWNKtz5mxqhZip0oC1EW"

	bcrypt4Password = "legacy-password-4"
	bcrypt4         = "$2y$04$Su3Hk7nnoXI1X1EntbeEeu2w03KOLoHGPNWgcuKKS0jbFQtkIl5cC"
)

// makeArgon2id builds a PHC string directly with x/crypto/argon2, bypassing
// the Hasher, with a deterministic salt of saltLen bytes.
func makeArgon2id(t testing.TB, password string, m, iter uint32, p uint8, saltLen, keyLen int) string {
	t.Helper()
	salt := []byte(strings.Repeat("s", saltLen))
	key := argon2.IDKey([]byte(password), salt, iter, m, p, uint32(keyLen))
	return argon2Hash{memoryKiB: m, iterations: iter, parallelism: p, salt: salt, key: key}.encode()
}

// opRecorder is a Hasher hook that records every hash computation.
type opRecorder struct {
	mu  sync.Mutex
	ops []hashOp
}

func (r *opRecorder) hook(op hashOp) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = append(r.ops, op)
}

func (r *opRecorder) take() []hashOp {
	r.mu.Lock()
	defer r.mu.Unlock()
	ops := r.ops
	r.ops = nil
	return ops
}

func recorded(h *Hasher) *opRecorder {
	r := new(opRecorder)
	h.hook = r.hook
	return r
}

// assertNoLeak checks that an error message quotes neither the password nor
// any substantial piece of the stored hash.
func assertNoLeak(t *testing.T, err error, password, stored string) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	if len(password) >= 4 {
		assert.NotContains(t, msg, password, "error message contains the password")
	}
	if len(stored) >= 8 {
		assert.NotContains(t, msg, stored, "error message contains the stored hash")
	}
	for _, part := range strings.Split(stored, "$") {
		if len(part) >= 8 {
			assert.NotContains(t, msg, part, "error message contains part of the stored hash")
		}
	}
}
