// Package fbverify checks a flatbuffer against a description of its
// schema before the generated Go code reads it.
//
// The flatbuffers Go runtime trusts its buffer: a bad offset indexes out of
// range and panics, and offsets that alias make a small buffer costly to
// read. Code that reads buffers from outside (package wire's frames,
// package ranker's model files) first walks the buffer as its schema
// describes it, with Verify, and only then uses the generated accessors.
//
// # Describing a schema
//
// Each table of the schema gets a *Table listing its fields in schema
// order, one Field per vtable slot:
//
//	// table Reel { id:long; tags:[string]; embedding:[float]; }
//	// table Batch { reels:[Reel]; note:string; body_type:ubyte; body:Body; }
//	// union Body { Reel }
//	reel := &fbverify.Table{Name: "Reel", Fields: []fbverify.Field{
//		fbverify.Scalar(8), fbverify.Strings(), fbverify.Vector(4)}}
//	body := &fbverify.Union{Name: "Body", Members: []*fbverify.Table{1: reel}}
//	batch := &fbverify.Table{Name: "Batch", Fields: []fbverify.Field{
//		fbverify.TablesOf(reel), fbverify.String(), fbverify.UnionType(), fbverify.UnionOf(body)}}
//
// A union field of the schema is two fields here, its type and its value,
// as it is two vtable slots. A table that refers to itself is described by
// setting its Fields after making it.
//
// A description kept by hand drifts from its schema: a field added to the
// .fbs but not here would be read unchecked. So each package's tests hold
// its descriptors to its .fbs with CheckSchema:
//
//	src, _ := os.ReadFile("reelrank.fbs")
//	for _, err := range fbverify.CheckSchema(string(src), tables, unions) {
//		t.Error(err)
//	}
//
// # Verifying
//
//	err := fbverify.Verify(buf, batch, fbverify.Options{Identifier: "RRW1", MaxDepth: 8})
//
// checks the root offset; for every table reachable from the root its
// vtable (inside the buffer, of a sane size) and each described field
// (inside its table); every uoffset, vector (n elements of size bytes) and
// string (and its NUL) inside the buffer; union values of a known type;
// nesting up to Options.MaxDepth; and the work, at most
// Options.AliasFactor times the buffer's size in visited bytes. An
// unknown union type is an *UnknownTypeError, which callers may turn into
// their own error ("unknown message type"); any other failure is an error
// that says where the walk stopped.
//
// Verify reads nothing but the fields described, allocates nothing unless
// it fails, and never panics whatever the bytes (FuzzVerify checks this,
// and that the generated-style accessors read inside every buffer it
// accepts).
package fbverify
