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
