package fbverify_test

import (
	"math/rand/v2"

	flatbuffers "github.com/google/flatbuffers/go"

	"github.com/reelrank/reelrank/internal/fbverify"
)

// The test schema, every kind of field in it:
//
//	struct Vec3 { x:float; y:float; z:float; }
//	table Leaf { weight:int; label:string; }
//	union Choice { Leaf = 1, Node = 2 }
//	table Node {
//	  id:long; pos:Vec3; name:string; tags:[string]; values:[float];
//	  child:Node; leaves:[Leaf]; choice:Choice; flag:bool;
//	}
//	root_type Node; file_identifier "TEST";
const identifier = "TEST"

// The vtable slots of Node's fields; choice takes two (type and value).
const (
	slotID = iota
	slotPos
	slotName
	slotTags
	slotValues
	slotChild
	slotLeaves
	slotChoiceType
	slotChoice
	slotFlag
	nodeSlots
)

type schema struct {
	node, leaf *fbverify.Table
	choice     *fbverify.Union
}

func newSchema() *schema {
	s := &schema{
		leaf: &fbverify.Table{Name: "Leaf", Fields: []fbverify.Field{fbverify.Scalar(4), fbverify.String()}},
		node: &fbverify.Table{Name: "Node"},
	}
	s.choice = &fbverify.Union{Name: "Choice", Members: []*fbverify.Table{1: s.leaf, 2: s.node}}
	s.node.Fields = []fbverify.Field{
		fbverify.Scalar(8), fbverify.Struct(12), fbverify.String(), fbverify.Strings(), fbverify.Vector(4),
		fbverify.TableOf(s.node), fbverify.TablesOf(s.leaf), fbverify.UnionType(), fbverify.UnionOf(s.choice),
		fbverify.Scalar(1),
	}
	return s
}

// opts are the options the tests verify with, unless they say otherwise.
var opts = fbverify.Options{Identifier: identifier, MaxDepth: 8, AliasFactor: 2}

func leaf(b *flatbuffers.Builder, weight int32, label string) flatbuffers.UOffsetT {
	var l flatbuffers.UOffsetT
	if label != "" {
		l = b.CreateString(label)
	}
	b.StartObject(2)
	b.PrependInt32Slot(0, weight, 0)
	if l != 0 {
		b.PrependUOffsetTSlot(1, l, 0)
	}
	return b.EndObject()
}

func offsets(b *flatbuffers.Builder, offs []flatbuffers.UOffsetT) flatbuffers.UOffsetT {
	b.StartVector(4, len(offs), 4)
	for i := len(offs) - 1; i >= 0; i-- {
		b.PrependUOffsetT(offs[i])
	}
	return b.EndVector(len(offs))
}

// randNode builds a random Node, nesting children and unions up to depth
// more levels.
func randNode(b *flatbuffers.Builder, r *rand.Rand, depth int) flatbuffers.UOffsetT {
	var name, tags, values, child, leaves, choice flatbuffers.UOffsetT
	var choiceType byte
	if r.IntN(2) == 0 {
		name = b.CreateString(randString(r))
	}
	if r.IntN(2) == 0 {
		ts := make([]flatbuffers.UOffsetT, r.IntN(4))
		for i := range ts {
			ts[i] = b.CreateString(randString(r))
		}
		tags = offsets(b, ts)
	}
	if r.IntN(2) == 0 {
		n := r.IntN(6)
		b.StartVector(4, n, 4)
		for range n {
			b.PrependFloat32(r.Float32())
		}
		values = b.EndVector(n)
	}
	if depth > 0 && r.IntN(2) == 0 {
		child = randNode(b, r, depth-1)
	}
	if r.IntN(2) == 0 {
		ls := make([]flatbuffers.UOffsetT, r.IntN(4))
		for i := range ls {
			ls[i] = leaf(b, r.Int32(), randString(r))
		}
		leaves = offsets(b, ls)
	}
	switch r.IntN(3) {
	case 1:
		choiceType, choice = 1, leaf(b, r.Int32(), randString(r))
	case 2:
		if depth > 0 {
			choiceType, choice = 2, randNode(b, r, depth-1)
		}
	}
	b.StartObject(nodeSlots)
	b.PrependInt64Slot(slotID, r.Int64(), 0)
	if r.IntN(2) == 0 {
		b.Prep(4, 12)
		b.PrependFloat32(3)
		b.PrependFloat32(2)
		b.PrependFloat32(1)
		b.Slot(slotPos)
	}
	for _, f := range []struct {
		slot int
		off  flatbuffers.UOffsetT
	}{{slotName, name}, {slotTags, tags}, {slotValues, values}, {slotChild, child}, {slotLeaves, leaves}, {slotChoice, choice}} {
		if f.off != 0 {
			b.PrependUOffsetTSlot(f.slot, f.off, 0)
		}
	}
	b.PrependByteSlot(slotChoiceType, choiceType, 0)
	b.PrependBoolSlot(slotFlag, r.IntN(2) == 0, false)
	return b.EndObject()
}

func randString(r *rand.Rand) string {
	s := make([]byte, r.IntN(12))
	for i := range s {
		s[i] = byte('a' + r.IntN(26))
	}
	return string(s)
}

// finish ends the buffer with root as its root table.
func finish(b *flatbuffers.Builder, root flatbuffers.UOffsetT) []byte {
	b.FinishWithFileIdentifier(root, []byte(identifier))
	return b.FinishedBytes()
}

// randBuffer returns a random valid buffer of the test schema.
func randBuffer(r *rand.Rand, depth int) []byte {
	b := flatbuffers.NewBuilder(0)
	return finish(b, randNode(b, r, depth))
}

// read reads every field described by d of the table tab, as generated code
// does, and returns a sum of what it read (so that nothing is skipped). On
// a buffer Verify accepted it must never index out of range.
func read(tab flatbuffers.Table, d *fbverify.Table) uint64 {
	var sum uint64
	var utype byte
	for i, f := range d.Fields {
		o := flatbuffers.UOffsetT(tab.Offset(flatbuffers.VOffsetT(4 + 2*i)))
		if o == 0 {
			if f.Kind == fbverify.KindUnionType {
				utype = 0
			}
			continue
		}
		switch f.Kind {
		case fbverify.KindScalar, fbverify.KindStruct:
			x := o + tab.Pos
			for k := range flatbuffers.UOffsetT(f.Size) {
				sum += uint64(tab.GetByte(x + k))
			}
		case fbverify.KindUnionType:
			utype = tab.GetByte(o + tab.Pos)
		case fbverify.KindString:
			sum += uint64(len(tab.ByteVector(o + tab.Pos)))
		case fbverify.KindVector:
			n, start := tab.VectorLen(o), tab.Vector(o)
			for j := range n {
				x := start + flatbuffers.UOffsetT(j)*flatbuffers.UOffsetT(f.Size)
				for k := range flatbuffers.UOffsetT(f.Size) {
					sum += uint64(tab.GetByte(x + k))
				}
			}
		case fbverify.KindTable:
			sum += read(flatbuffers.Table{Bytes: tab.Bytes, Pos: tab.Indirect(o + tab.Pos)}, f.Table)
		case fbverify.KindStrings:
			n, start := tab.VectorLen(o), tab.Vector(o)
			for j := range n {
				sum += uint64(len(tab.ByteVector(start + flatbuffers.UOffsetT(4*j))))
			}
		case fbverify.KindTables:
			n, start := tab.VectorLen(o), tab.Vector(o)
			for j := range n {
				sum += read(flatbuffers.Table{Bytes: tab.Bytes, Pos: tab.Indirect(start + flatbuffers.UOffsetT(4*j))}, f.Table)
			}
		case fbverify.KindUnion:
			var u flatbuffers.Table
			tab.Union(&u, o)
			sum += read(u, f.Union.Members[utype])
		}
	}
	return sum
}

// readRoot reads the whole buffer from its root table.
func readRoot(buf []byte, root *fbverify.Table) uint64 {
	return read(flatbuffers.Table{Bytes: buf, Pos: flatbuffers.GetUOffsetT(buf)}, root)
}
