package password

import (
	"context"
	"testing"
)

// Benchmarks at the real default policy. Compare DummyVerify with Verify:
// they should cost about the same.
//
//	go test -run '^$' -bench . -benchmem ./pierredb/internal/password/

func BenchmarkHash(b *testing.B) {
	ctx := context.Background()
	h := NewHasher(Policy{})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Hash(ctx, katDefaultPassword); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	ctx := context.Background()
	h := NewHasher(Policy{})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Verify(ctx, katDefaultPassword, katDefault); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyMismatch(b *testing.B) {
	ctx := context.Background()
	h := NewHasher(Policy{})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Verify(ctx, "wrong password", katDefault); err == nil {
			b.Fatal("wrong password accepted")
		}
	}
}

func BenchmarkDummyVerify(b *testing.B) {
	ctx := context.Background()
	h := NewHasher(Policy{})
	b.ReportAllocs()
	for b.Loop() {
		if err := h.DummyVerify(ctx, katDefaultPassword); err == nil {
			b.Fatal("DummyVerify succeeded")
		}
	}
}

func BenchmarkVerifyBcrypt12(b *testing.B) {
	ctx := context.Background()
	h := NewHasher(Policy{})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Verify(ctx, bcrypt12Password, bcrypt12); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHashParallel shows throughput when more goroutines than
// GOMAXPROCS hash at once (the rest wait on the semaphore).
func BenchmarkHashParallel(b *testing.B) {
	ctx := context.Background()
	h := NewHasher(Policy{})
	b.ReportAllocs()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := h.Hash(ctx, katDefaultPassword); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parse(katDefault); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRejectOutOfBounds(b *testing.B) {
	ctx := context.Background()
	h := NewHasher(Policy{})
	stored := phcWith("m=4294967295,t=1,p=1", 16, 32)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Verify(ctx, katDefaultPassword, stored); err == nil {
			b.Fatal("accepted")
		}
	}
}

// bcrypt10Floor returns a default-policy Hasher whose floor is bcrypt cost 10,
// as for a database holding imported bcrypt-10 hashes.
func bcrypt10Floor(b *testing.B) *Hasher {
	b.Helper()
	h := NewHasher(Policy{})
	if _, err := h.RaiseFloor(context.Background(), "$2y$10$"); err != nil {
		b.Fatal(err)
	}
	return h
}

// BenchmarkDummyVerifyBcrypt10Floor: an unknown email with bcrypt-10 hashes
// in the database does a real bcrypt-10 verification (about 60 ms).
func BenchmarkDummyVerifyBcrypt10Floor(b *testing.B) {
	ctx := context.Background()
	h := bcrypt10Floor(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := h.DummyVerify(ctx, katDefaultPassword); err == nil {
			b.Fatal("DummyVerify succeeded")
		}
	}
}

// BenchmarkVerifyPaddedToBcrypt10Floor: an argon2id login at policy (about
// 25 ms of hashing) is padded to the bcrypt-10 floor's time; compare with
// BenchmarkDummyVerifyBcrypt10Floor.
func BenchmarkVerifyPaddedToBcrypt10Floor(b *testing.B) {
	ctx := context.Background()
	h := bcrypt10Floor(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Verify(ctx, katDefaultPassword, katDefault); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyPaddedParallel: padded argon2id logins from more goroutines
// than slots. The padding holds no slot, so the slots are only busy for the
// argon2id work; compare with BenchmarkHashParallel.
func BenchmarkVerifyPaddedParallel(b *testing.B) {
	ctx := context.Background()
	h := bcrypt10Floor(b)
	b.ReportAllocs()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := h.Verify(ctx, katDefaultPassword, katDefault); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkCost(b *testing.B) {
	for _, tc := range []struct{ name, stored string }{
		{"argon2id hash", katDefault},
		{"argon2id header", "$argon2id$v=19$m=19456,t=2,p=1$"},
		{"bcrypt hash", bcrypt12},
		{"bcrypt header", "$2y$12$"},
	} {
		stored := tc.stored
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Cost(stored); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRaiseFloorNotCostlier is the cost of telling the Hasher about a
// hash that does not raise the floor: a parse, no hashing.
func BenchmarkRaiseFloorNotCostlier(b *testing.B) {
	ctx := context.Background()
	h := NewHasher(Policy{})
	b.ReportAllocs()
	for b.Loop() {
		if raised, err := h.RaiseFloor(ctx, bcrypt4); err != nil || raised {
			b.Fatal(raised, err)
		}
	}
}
