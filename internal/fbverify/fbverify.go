package fbverify

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Kind is what a field of a table holds.
type Kind uint8

// The kinds of fields.
const (
	KindScalar    Kind = iota // Size bytes inline: a number, a bool, an enum
	KindStruct                // Size bytes inline: a struct
	KindString                // a uoffset to a string (its bytes and a NUL)
	KindTable                 // a uoffset to a table described by Table
	KindVector                // a uoffset to a vector of Size-byte scalars or structs
	KindStrings               // a uoffset to a vector of uoffsets to strings
	KindTables                // a uoffset to a vector of uoffsets to tables described by Table
	KindUnionType             // a union's type, one byte; the next field is the union's value
	KindUnion                 // a uoffset to a table of the type the field before holds, described by Union
)

// Field describes one field of a table: one vtable slot.
type Field struct {
	Kind  Kind
	Size  uint16 // bytes of a scalar or struct, or of one element of a vector
	Table *Table // the table of a KindTable or KindTables field
	Union *Union // the members of a KindUnion field
}

// Table describes a table: its name, for errors, and its fields in schema
// order (field i is vtable slot i, at vtable offset 4+2i). A vtable may
// have fewer slots (a buffer from an older schema) or more (from a newer
// one): the missing fields are absent, the extra ones are not looked at.
type Table struct {
	Name   string
	Fields []Field
}

// Union describes a union: Members[t] is the table of type t. Type 0
// (NONE) and types without a member (nil, or past the end) are unknown.
type Union struct {
	Name    string
	Members []*Table
}

// Scalar is a field of size bytes inline (1, 2, 4 or 8).
func Scalar(size uint16) Field { return Field{Kind: KindScalar, Size: size} }

// Struct is a struct field of size bytes inline.
func Struct(size uint16) Field { return Field{Kind: KindStruct, Size: size} }

// String is a string field.
func String() Field { return Field{Kind: KindString} }

// Strings is a field of a vector of strings.
func Strings() Field { return Field{Kind: KindStrings} }

// Vector is a field of a vector of scalars or structs of elem bytes each.
func Vector(elem uint16) Field { return Field{Kind: KindVector, Size: elem} }

// TableOf is a field of a table described by t.
func TableOf(t *Table) Field { return Field{Kind: KindTable, Table: t} }

// TablesOf is a field of a vector of tables described by t.
func TablesOf(t *Table) Field { return Field{Kind: KindTables, Table: t} }

// UnionType is the type field of a union; the union's value, UnionOf,
// follows it.
func UnionType() Field { return Field{Kind: KindUnionType, Size: 1} }

// UnionOf is the value field of the union u; its type is the field before.
func UnionOf(u *Union) Field { return Field{Kind: KindUnion, Union: u} }

// DefaultMaxDepth is the nesting of tables Verify allows when
// Options.MaxDepth is 0, as flatbuffers' own verifiers do.
const DefaultMaxDepth = 64

// Options configures Verify.
type Options struct {
	// Identifier, when set, is the file identifier the buffer must hold at
	// bytes 4..8.
	Identifier string
	// MaxDepth bounds the nesting of tables: the root table is at depth 0,
	// a table it refers to at 1, and so on (0: DefaultMaxDepth).
	MaxDepth int
	// AliasFactor bounds the work: the tables, vectors and strings
	// visited may add up to at most AliasFactor times the buffer's size
	// (0: 1). A builder writes each once, but may share strings (as
	// flatbuffers' CreateSharedString does); past the bound, offsets alias
	// on purpose (a vector of a million uoffsets to one big table), which
	// would make reading the buffer cost far more than its size.
	AliasFactor int
}

// UnknownTypeError is Verify's error for a union value whose type has no
// member in the union's descriptor (or is NONE).
type UnknownTypeError struct {
	Union string // the union's name
	Type  uint8
}

func (e *UnknownTypeError) Error() string {
	return fmt.Sprintf("%s: unknown type %d", e.Union, e.Type)
}

// Verify checks the flatbuffer in buf, whose root table is described by
// root: that the root offset, every table's vtable (its size, its table's
// size, each field's offset and width), every uoffset, every vector (n
// elements need n×size bytes) and every string (with its NUL) that root's
// descriptor can reach lie inside buf; that union values have a known
// type; that tables nest at most opt.MaxDepth deep; and that the bytes
// visited stay within opt.AliasFactor times len(buf). After it returns
// nil, flatbuffers' generated accessors of the fields described read
// inside buf.
//
// Its errors say where the walk stopped, naming tables and fields by
// their place in the descriptors ("Envelope field 3: Item at 96: ...").
// A union value of an unknown type is an *UnknownTypeError in the chain.
func Verify(buf []byte, root *Table, opt Options) error {
	if len(buf) < 8 {
		return fmt.Errorf("%d bytes is too short for a flatbuffer", len(buf))
	}
	if len(buf) > math.MaxInt32 {
		return fmt.Errorf("%d bytes is over the flatbuffers limit of 2 GiB", len(buf))
	}
	if opt.Identifier != "" && string(buf[4:8]) != opt.Identifier {
		return fmt.Errorf("file identifier %q, want %q", buf[4:8], opt.Identifier)
	}
	v := verifier{buf: buf, end: uint64(len(buf)), maxDepth: opt.MaxDepth}
	if v.maxDepth <= 0 {
		v.maxDepth = DefaultMaxDepth
	}
	factor := int64(max(opt.AliasFactor, 1))
	v.budget = factor * int64(len(buf))
	v.limit = v.budget
	pos, err := v.indirect(0)
	if err != nil {
		return fmt.Errorf("root: %w", err)
	}
	return v.table(pos, root, 0)
}

// verifier walks one buffer. Positions are uint64: no sum of a position in
// a buffer under 2 GiB and a 32-bit offset or length overflows.
type verifier struct {
	buf           []byte
	end           uint64 // len(buf)
	budget, limit int64  // bytes left to visit, of limit
	maxDepth      int
}

// spend takes n bytes of visited tables, vectors or strings from the
// budget.
func (v *verifier) spend(n uint64) error {
	v.budget -= int64(n)
	if v.budget < 0 {
		return fmt.Errorf("tables, vectors and strings reference over %d bytes, more than %d times the buffer's %d: offsets alias",
			v.limit, v.limit/int64(v.end), v.end)
	}
	return nil
}

// u32 reads the little-endian uint32 at pos, inside the buffer.
func (v *verifier) u32(pos uint64) (uint64, error) {
	if pos+4 > v.end {
		return 0, fmt.Errorf("offset %d beyond the end (%d bytes)", pos, v.end)
	}
	return uint64(binary.LittleEndian.Uint32(v.buf[pos:])), nil
}

// indirect follows the uoffset stored at pos. Uoffsets are unsigned and
// point forward, so a walk of them cannot loop.
func (v *verifier) indirect(pos uint64) (uint64, error) {
	off, err := v.u32(pos)
	if err != nil {
		return 0, err
	}
	if pos+off >= v.end {
		return 0, fmt.Errorf("uoffset %d at %d points beyond the end (%d bytes)", off, pos, v.end)
	}
	return pos + off, nil
}

// vector checks the vector at pos of elements of size bytes (plus a NUL,
// for a string) and returns its length and the position of its first
// element.
func (v *verifier) vector(pos, size uint64, nul bool) (n, start uint64, err error) {
	n, err = v.u32(pos)
	if err != nil {
		return 0, 0, err
	}
	start = pos + 4
	end := start + n*size // n < 2³², size < 2¹⁶
	if nul {
		end++
	}
	if end > v.end {
		return 0, 0, fmt.Errorf("vector of %d×%d bytes at %d runs past the end (%d bytes)", n, size, pos, v.end)
	}
	if nul && v.buf[end-1] != 0 {
		return 0, 0, fmt.Errorf("string at %d is not NUL-terminated", pos)
	}
	if err := v.spend(end - pos); err != nil {
		return 0, 0, err
	}
	return n, start, nil
}

// table checks the table at pos, described by d, and what its fields
// refer to, recursively.
func (v *verifier) table(pos uint64, d *Table, depth int) error {
	if depth > v.maxDepth {
		return fmt.Errorf("%s at %d: tables nested deeper than %d", d.Name, pos, v.maxDepth)
	}
	soff, err := v.u32(pos)
	if err != nil {
		return fmt.Errorf("%s: %w", d.Name, err)
	}
	vt := int64(pos) - int64(int32(uint32(soff)))
	if vt < 0 || uint64(vt)+4 > v.end {
		return fmt.Errorf("%s at %d: vtable at %d, outside the buffer", d.Name, pos, vt)
	}
	vtab := uint64(vt)
	vlen := uint64(binary.LittleEndian.Uint16(v.buf[vtab:]))
	tlen := uint64(binary.LittleEndian.Uint16(v.buf[vtab+2:]))
	if vlen < 4 || vlen%2 != 0 || vtab+vlen > v.end {
		return fmt.Errorf("%s at %d: vtable of %d bytes at %d", d.Name, pos, vlen, vtab)
	}
	if tlen < 4 || pos+tlen > v.end {
		return fmt.Errorf("%s at %d: table of %d bytes runs past the end (%d bytes)", d.Name, pos, tlen, v.end)
	}
	if err := v.spend(tlen); err != nil {
		return err
	}
	var union uint8 // the type of the union whose value comes next
	for i := range d.Fields {
		f := &d.Fields[i]
		slot := uint64(4 + 2*i)
		if slot >= vlen {
			break
		}
		off := uint64(binary.LittleEndian.Uint16(v.buf[vtab+slot:]))
		if off == 0 {
			if f.Kind == KindUnionType {
				union = 0
			}
			continue
		}
		size := uint64(4) // a uoffset
		switch f.Kind {
		case KindScalar, KindStruct, KindUnionType:
			size = uint64(f.Size)
		}
		if off < 4 || off+size > tlen {
			return fmt.Errorf("%s field %d: offset %d outside the table's %d bytes", d.Name, i, off, tlen)
		}
		switch f.Kind {
		case KindScalar, KindStruct:
			continue
		case KindUnionType:
			union = v.buf[pos+off]
			continue
		}
		target, err := v.indirect(pos + off)
		if err == nil {
			err = v.field(target, f, union, depth)
		}
		if err != nil {
			return fmt.Errorf("%s field %d: %w", d.Name, i, err)
		}
	}
	return nil
}

// field checks what the field f of a table at depth refers to, at pos.
func (v *verifier) field(pos uint64, f *Field, union uint8, depth int) error {
	switch f.Kind {
	case KindString:
		_, _, err := v.vector(pos, 1, true)
		return err
	case KindVector:
		_, _, err := v.vector(pos, uint64(f.Size), false)
		return err
	case KindTable:
		return v.table(pos, f.Table, depth+1)
	case KindUnion:
		if union == 0 {
			return fmt.Errorf("a %s value without a type", f.Union.Name)
		}
		if int(union) >= len(f.Union.Members) || f.Union.Members[union] == nil {
			return &UnknownTypeError{Union: f.Union.Name, Type: union}
		}
		return v.table(pos, f.Union.Members[union], depth+1)
	case KindStrings, KindTables:
		n, start, err := v.vector(pos, 4, false)
		if err != nil {
			return err
		}
		for j := range n {
			elem, err := v.indirect(start + 4*j)
			if err == nil {
				if f.Kind == KindStrings {
					_, _, err = v.vector(elem, 1, true)
				} else {
					err = v.table(elem, f.Table, depth+1)
				}
			}
			if err != nil {
				return fmt.Errorf("element %d: %w", j, err)
			}
		}
		return nil
	}
	return fmt.Errorf("field of kind %d", f.Kind)
}
