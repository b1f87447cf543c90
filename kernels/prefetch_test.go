package kernels

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestPrefetch runs the prefetch over ragged lengths and offsets, at the
// ends of allocations included, and checks that it changes nothing: its
// reference is the generic no-op.
func TestPrefetch(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	buf := make([]byte, 1<<16)
	for i := range buf {
		buf[i] = byte(r.Uint32())
	}
	want := bytes.Clone(buf)
	for _, n := range []int{0, 1, 2, 63, 64, 65, 127, 128, 129, 4095, 4096, 4097, 1 << 16} {
		for _, off := range []int{0, 1, 31, 63} {
			if off+n > len(buf) {
				continue
			}
			Prefetch(buf[off : off+n])
			Prefetch(buf[len(buf)-n:])
		}
	}
	Prefetch(nil)
	if !bytes.Equal(buf, want) {
		t.Fatal("Prefetch changed its buffer")
	}
}

func FuzzPrefetch(f *testing.F) {
	f.Add(uint16(0), uint16(0))
	f.Add(uint16(7), uint16(4000))
	f.Fuzz(func(t *testing.T, off, n uint16) {
		buf := make([]byte, int(off)+int(n))
		for i := range buf {
			buf[i] = byte(i)
		}
		Prefetch(buf[off:])
		for i := range buf {
			if buf[i] != byte(i) {
				t.Fatalf("byte %d changed", i)
			}
		}
	})
}
