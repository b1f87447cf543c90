package hashx

import "testing"

// The first outputs of splitmix64 seeded with 0 (its reference sequence
// steps the state by the constant before mixing, as Mix64 does).
func TestMix64(t *testing.T) {
	want := []uint64{0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f}
	var state uint64
	for i, w := range want {
		if got := Mix64(state); got != w {
			t.Fatalf("output %d: %#x, want %#x", i, got, w)
		}
		state += 0x9e3779b97f4a7c15
	}
}

// Jump's placements of a few ids, fixed: a change would move every
// served reel to another shard.
func TestJump(t *testing.T) {
	for _, c := range []struct {
		id   int64
		n    int
		want int
	}{{0, 1, 0}, {42, 0, 0}, {1, 4, 3}, {1, 7, 3}, {2, 4, 0}, {2, 7, 0}, {3, 4, 1}, {3, 7, 4},
		{12345, 4, 2}, {12345, 7, 5}, {1 << 40, 4, 0}, {1 << 40, 7, 5}} {
		if got := Jump(c.id, c.n); got != c.want {
			t.Errorf("Jump(%d, %d) = %d, want %d", c.id, c.n, got, c.want)
		}
	}
	seen := map[int]bool{}
	for id := range int64(1000) {
		b := Jump(id, 4)
		if b < 0 || b >= 4 {
			t.Fatalf("Jump(%d, 4) = %d", id, b)
		}
		seen[b] = true
	}
	if len(seen) != 4 {
		t.Errorf("1000 ids fill %d of 4 buckets", len(seen))
	}
}
