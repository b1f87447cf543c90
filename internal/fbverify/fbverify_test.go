package fbverify_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	flatbuffers "github.com/google/flatbuffers/go"

	"github.com/reelrank/reelrank/internal/fbverify"
)

// Random valid buffers of every shape verify, and read back.
func TestValid(t *testing.T) {
	s := newSchema()
	r := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		buf := randBuffer(r, 4)
		if err := fbverify.Verify(buf, s.node, opts); err != nil {
			t.Fatalf("a valid buffer: %v", err)
		}
		readRoot(buf, s.node)
	}
}

// Every byte of valid buffers changed in turn, and every truncation:
// Verify gives an error or accepts a buffer that the generated-style
// accessors read without leaving it (a panic fails the test).
func TestEveryByte(t *testing.T) {
	s := newSchema()
	r := rand.New(rand.NewPCG(3, 4))
	rounds := 20
	if testing.Short() {
		rounds = 4
	}
	for range rounds {
		buf := randBuffer(r, 3)
		mut := make([]byte, len(buf))
		for i := range buf {
			for _, x := range []byte{0x01, 0x80, 0xff} {
				copy(mut, buf)
				mut[i] ^= x
				if fbverify.Verify(mut, s.node, opts) == nil {
					readRoot(mut, s.node)
				}
			}
		}
		for n := range len(buf) {
			if fbverify.Verify(buf[:n], s.node, opts) == nil {
				readRoot(buf[:n], s.node)
			}
		}
	}
}

// simple returns a valid buffer: a Node with a name, a vector of two
// floats and a Leaf as its choice; and the positions of its root table and
// the root's vtable.
func simple(t *testing.T) (buf []byte, root, vtable uint32) {
	t.Helper()
	b := flatbuffers.NewBuilder(0)
	l := leaf(b, 7, "leaf")
	name := b.CreateString("hello")
	b.StartVector(4, 2, 4)
	b.PrependFloat32(2)
	b.PrependFloat32(1)
	values := b.EndVector(2)
	b.StartObject(nodeSlots)
	b.PrependInt64Slot(slotID, 42, 0)
	b.PrependUOffsetTSlot(slotName, name, 0)
	b.PrependUOffsetTSlot(slotValues, values, 0)
	b.PrependUOffsetTSlot(slotChoice, l, 0)
	b.PrependByteSlot(slotChoiceType, 1, 0)
	buf = finish(b, b.EndObject())
	root = binary.LittleEndian.Uint32(buf)
	vtable = uint32(int64(root) - int64(int32(binary.LittleEndian.Uint32(buf[root:]))))
	return buf, root, vtable
}

// field returns the position of the root field in slot i.
func field(buf []byte, root, vtable uint32, i int) uint32 {
	return root + uint32(binary.LittleEndian.Uint16(buf[vtable+4+2*uint32(i):]))
}

// target returns where the uoffset of the root field in slot i points.
func target(buf []byte, root, vtable uint32, i int) uint32 {
	at := field(buf, root, vtable, i)
	return at + binary.LittleEndian.Uint32(buf[at:])
}

func TestErrors(t *testing.T) {
	s := newSchema()
	good, root, vtable := simple(t)
	if err := fbverify.Verify(good, s.node, opts); err != nil {
		t.Fatal(err)
	}
	put16 := func(b []byte, at uint32, v uint16) { binary.LittleEndian.PutUint16(b[at:], v) }
	put32 := func(b []byte, at uint32, v uint32) { binary.LittleEndian.PutUint32(b[at:], v) }
	cases := []struct {
		name string
		edit func(b []byte) []byte
		want string
	}{
		{"too short", func(b []byte) []byte { return b[:7] }, "too short"},
		{"identifier", func(b []byte) []byte { b[5] = 'X'; return b }, `file identifier "TXST", want "TEST"`},
		{"root past the end", func(b []byte) []byte { put32(b, 0, uint32(len(b))); return b }, "root: uoffset"},
		{"vtable before the start", func(b []byte) []byte { put32(b, root, 1<<30); return b }, "Node at"},
		{"vtable past the end", func(b []byte) []byte { put32(b, root, 1<<31); return b }, "outside the buffer"},
		{"vtable of odd size", func(b []byte) []byte { put16(b, vtable, 7); return b }, "vtable of 7 bytes"},
		{"vtable longer than the buffer", func(b []byte) []byte { put16(b, vtable, 0xfffe); return b }, "vtable of 65534 bytes"},
		{"table past the end", func(b []byte) []byte { put16(b, vtable+2, 0xfffc); return b }, "table of 65532 bytes runs past the end"},
		{"field outside its table", func(b []byte) []byte { put16(b, vtable+4+2*slotID, 0xfff0); return b },
			"Node field 0: offset 65520 outside the table"},
		{"field over the soffset", func(b []byte) []byte { put16(b, vtable+4+2*slotName, 2); return b }, "Node field 2: offset 2"},
		{"uoffset past the end", func(b []byte) []byte { put32(b, field(b, root, vtable, slotName), 1<<20); return b },
			"Node field 2: uoffset 1048576"},
		{"string without its NUL", func(b []byte) []byte {
			b[target(b, root, vtable, slotName)+4+5] = 'x'
			return b
		}, "Node field 2: string at"},
		{"string past the end", func(b []byte) []byte { put32(b, target(b, root, vtable, slotName), 1<<20); return b },
			"Node field 2: vector of 1048576×1 bytes"},
		{"vector past the end", func(b []byte) []byte { put32(b, target(b, root, vtable, slotValues), 1<<30); return b },
			"Node field 4: vector of 1073741824×4 bytes"},
		{"union of type NONE", func(b []byte) []byte { b[field(b, root, vtable, slotChoiceType)] = 0; return b },
			"Node field 8: a Choice value without a type"},
		{"nested error", func(b []byte) []byte {
			leafAt := target(b, root, vtable, slotChoice)
			put32(b, leafAt, 1<<30)
			return b
		}, "Node field 8: Leaf at"},
	}
	for _, c := range cases {
		b := c.edit(bytes.Clone(good))
		err := fbverify.Verify(b, s.node, opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", c.name, err, c.want)
		}
	}

	for _, typ := range []byte{3, 200} {
		b := bytes.Clone(good)
		b[field(b, root, vtable, slotChoiceType)] = typ
		err := fbverify.Verify(b, s.node, opts)
		var ute *fbverify.UnknownTypeError
		if !errors.As(err, &ute) || ute.Type != typ || ute.Union != "Choice" {
			t.Errorf("union type %d: %v, want an *UnknownTypeError", typ, err)
		}
	}
	// A union member left out of the descriptor is unknown too.
	noLeaf := newSchema()
	noLeaf.choice.Members[1] = nil
	var ute *fbverify.UnknownTypeError
	if err := fbverify.Verify(good, noLeaf.node, opts); !errors.As(err, &ute) || ute.Type != 1 {
		t.Errorf("a type without a member: %v", err)
	}
	// A union type without its value is the reader's to refuse.
	b := bytes.Clone(good)
	put16(b, vtable+4+2*slotChoice, 0)
	if err := fbverify.Verify(b, s.node, opts); err != nil {
		t.Errorf("a union type without a value: %v", err)
	}
	// Without an identifier in the options, any identifier passes.
	b = bytes.Clone(good)
	b[5] = 'X'
	if err := fbverify.Verify(b, s.node, fbverify.Options{}); err != nil {
		t.Errorf("no identifier wanted: %v", err)
	}
}

// chain returns a buffer of n Nodes, each the child of the one before, or
// each the union value of the one before.
func chain(n int, union bool) []byte {
	b := flatbuffers.NewBuilder(0)
	var child flatbuffers.UOffsetT
	for i := range n {
		b.StartObject(nodeSlots)
		b.PrependInt64Slot(slotID, int64(i), 0)
		if child != 0 {
			if union {
				b.PrependByteSlot(slotChoiceType, 2, 0)
				b.PrependUOffsetTSlot(slotChoice, child, 0)
			} else {
				b.PrependUOffsetTSlot(slotChild, child, 0)
			}
		}
		child = b.EndObject()
	}
	return finish(b, child)
}

func TestDepth(t *testing.T) {
	s := newSchema()
	for _, union := range []bool{false, true} {
		// MaxDepth 8 allows the root and 8 levels below it.
		if err := fbverify.Verify(chain(9, union), s.node, opts); err != nil {
			t.Errorf("9 nested tables, union %v: %v", union, err)
		}
		err := fbverify.Verify(chain(10, union), s.node, opts)
		if err == nil || !strings.Contains(err.Error(), "nested deeper than 8") {
			t.Errorf("10 nested tables, union %v: %v", union, err)
		}
	}
	deep := chain(fbverify.DefaultMaxDepth+2, false)
	if err := fbverify.Verify(deep, s.node, fbverify.Options{Identifier: identifier}); err == nil ||
		!strings.Contains(err.Error(), "nested deeper than 64") {
		t.Errorf("past the default depth: %v", err)
	}
}

// aliased returns a buffer whose Node has n leaves, all one Leaf with a
// label of size bytes.
func aliased(n, size int) []byte {
	b := flatbuffers.NewBuilder(0)
	l := leaf(b, 1, strings.Repeat("x", size))
	offs := make([]flatbuffers.UOffsetT, n)
	for i := range offs {
		offs[i] = l
	}
	leaves := offsets(b, offs)
	b.StartObject(nodeSlots)
	b.PrependUOffsetTSlot(slotLeaves, leaves, 0)
	return finish(b, b.EndObject())
}

func TestAliasBudget(t *testing.T) {
	s := newSchema()
	buf := aliased(100, 200) // about 600 bytes that reference 100 × 200
	err := fbverify.Verify(buf, s.node, opts)
	if err == nil || !strings.Contains(err.Error(), "offsets alias") {
		t.Errorf("100 leaves aliasing one: %v", err)
	}
	if err := fbverify.Verify(buf, s.node, fbverify.Options{AliasFactor: 100}); err != nil {
		t.Errorf("within a larger budget: %v", err)
	}
	// Shared strings, as CreateSharedString makes, pass within the budget.
	b := flatbuffers.NewBuilder(0)
	offs := make([]flatbuffers.UOffsetT, 10)
	for i := range offs {
		offs[i] = b.CreateSharedString("shared")
	}
	tags := offsets(b, offs)
	b.StartObject(nodeSlots)
	b.PrependUOffsetTSlot(slotTags, tags, 0)
	if err := fbverify.Verify(finish(b, b.EndObject()), s.node, opts); err != nil {
		t.Errorf("shared strings: %v", err)
	}
}

// A table from an older schema (fewer slots) or a newer one (more) passes:
// missing fields are absent, extra ones are not looked at.
func TestSchemaEvolution(t *testing.T) {
	s := newSchema()
	b := flatbuffers.NewBuilder(0)
	b.StartObject(1)
	b.PrependInt64Slot(0, 5, 0)
	if err := fbverify.Verify(finish(b, b.EndObject()), s.node, opts); err != nil {
		t.Errorf("an older table: %v", err)
	}
	b = flatbuffers.NewBuilder(0)
	b.StartObject(nodeSlots + 3)
	b.PrependInt64Slot(slotID, 5, 0)
	b.PrependUint32Slot(nodeSlots+2, 0xffffffff, 0) // garbage to this schema, unread
	buf := finish(b, b.EndObject())
	if err := fbverify.Verify(buf, s.node, opts); err != nil {
		t.Errorf("a newer table: %v", err)
	}
	readRoot(buf, s.node)
}

// Verify allocates nothing on a valid buffer.
func TestVerifyAllocs(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("allocation counts are meaningless under coverage")
	}
	s := newSchema()
	buf := randBuffer(rand.New(rand.NewPCG(5, 6)), 4)
	if allocs := testing.AllocsPerRun(100, func() {
		if err := fbverify.Verify(buf, s.node, opts); err != nil {
			t.Fatal(err)
		}
	}); allocs != 0 {
		t.Errorf("Verify of a valid buffer: %v allocations, want 0", allocs)
	}
}
