package fbverify_test

import (
	"math/rand/v2"
	"testing"

	"github.com/reelrank/reelrank/internal/fbverify"
)

// FuzzVerify: whatever the bytes, Verify does not panic, and a buffer it
// accepts is read by the generated-style accessors without leaving it.
func FuzzVerify(f *testing.F) {
	r := rand.New(rand.NewPCG(7, 8))
	for range 8 {
		f.Add(randBuffer(r, 3), uint8(8), uint8(2))
	}
	f.Add(chain(12, true), uint8(4), uint8(1))
	f.Add(aliased(20, 30), uint8(8), uint8(1))
	f.Add([]byte{}, uint8(0), uint8(0))
	f.Add([]byte("\x0c\x00\x00\x00TEST\x00\x00\x00\x00"), uint8(0), uint8(0))
	s := newSchema()
	f.Fuzz(func(t *testing.T, buf []byte, depth, factor uint8) {
		opt := fbverify.Options{Identifier: identifier, MaxDepth: int(depth % 16), AliasFactor: int(factor % 8)}
		if fbverify.Verify(buf, s.node, opt) == nil {
			readRoot(buf, s.node)
		}
	})
}
