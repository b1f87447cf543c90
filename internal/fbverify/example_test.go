package fbverify_test

import (
	"encoding/binary"
	"errors"
	"fmt"

	flatbuffers "github.com/google/flatbuffers/go"

	"github.com/reelrank/reelrank/internal/fbverify"
)

// A schema of two tables and a union, a buffer built for it, and the same
// buffer broken in two ways.
func Example() {
	// table Reel { id:long; title:string; }
	// union Body { Reel }
	// table Envelope { request_id:ulong; body_type:ubyte; body:Body; }
	reel := &fbverify.Table{Name: "Reel", Fields: []fbverify.Field{fbverify.Scalar(8), fbverify.String()}}
	body := &fbverify.Union{Name: "Body", Members: []*fbverify.Table{1: reel}}
	envelope := &fbverify.Table{Name: "Envelope", Fields: []fbverify.Field{
		fbverify.Scalar(8), fbverify.UnionType(), fbverify.UnionOf(body)}}
	opt := fbverify.Options{Identifier: "DEMO", MaxDepth: 4}

	b := flatbuffers.NewBuilder(0)
	title := b.CreateString("cats")
	b.StartObject(2)
	b.PrependInt64Slot(0, 42, 0)
	b.PrependUOffsetTSlot(1, title, 0)
	r := b.EndObject()
	b.StartObject(3)
	b.PrependUint64Slot(0, 7, 0)
	b.PrependByteSlot(1, 1, 0)
	b.PrependUOffsetTSlot(2, r, 0)
	b.FinishWithFileIdentifier(b.EndObject(), []byte("DEMO"))
	buf := b.FinishedBytes()
	fmt.Println("valid:", fbverify.Verify(buf, envelope, opt))

	// The title's length, grown past the end of the buffer.
	at := len(buf) - 12 // "cats", its NUL and padding come last
	binary.LittleEndian.PutUint32(buf[at:], 1000)
	fmt.Println("long title:", fbverify.Verify(buf, envelope, opt))
	binary.LittleEndian.PutUint32(buf[at:], 4)

	// A body type the union does not have: the envelope's field 1, found
	// through the root table's vtable.
	root := binary.LittleEndian.Uint32(buf)
	vtable := int64(root) - int64(int32(binary.LittleEndian.Uint32(buf[root:])))
	buf[root+uint32(binary.LittleEndian.Uint16(buf[vtable+4+2*1:]))] = 9
	var unknown *fbverify.UnknownTypeError
	err := fbverify.Verify(buf, envelope, opt)
	fmt.Println("unknown type:", errors.As(err, &unknown), unknown.Type)
	// Output:
	// valid: <nil>
	// long title: Envelope field 2: Reel field 1: vector of 1000×1 bytes at 68 runs past the end (80 bytes)
	// unknown type: true 9
}
