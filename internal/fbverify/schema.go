package fbverify

import (
	"fmt"
	"regexp"
	"strings"
)

// schemaScalars returns the widths of flatbuffers' scalar types.
func schemaScalars() map[string]uint16 {
	return map[string]uint16{
		"bool": 1, "byte": 1, "ubyte": 1, "int8": 1, "uint8": 1,
		"short": 2, "ushort": 2, "int16": 2, "uint16": 2,
		"int": 4, "uint": 4, "float": 4, "int32": 4, "uint32": 4, "float32": 4,
		"long": 8, "ulong": 8, "double": 8, "int64": 8, "uint64": 8, "float64": 8,
	}
}

var (
	schemaEnum  = regexp.MustCompile(`enum (\w+)\s*:\s*(\w+)`)
	schemaUnion = regexp.MustCompile(`union (\w+)`)
	schemaDecl  = regexp.MustCompile(`(?s)(table|struct) (\w+)\s*\{(.*?)\}`)
	schemaField = regexp.MustCompile(`(\w+)\s*:\s*(\[?\w+\]?)`)
)

// CheckSchema compares descriptors with the flatbuffers schema src (the
// text of a .fbs file), for the tests of packages that describe their
// schema to Verify: every table the schema declares must have a
// descriptor in tables, under its name, listing each of its fields in
// order with the kind and width the schema gives it (a union field is two:
// UnionType, then UnionOf the descriptor unions holds under the union's
// name), and tables must hold no descriptor of a table the schema lacks.
// It returns one error per mismatch, none when the descriptors match.
//
// It reads the schema subset this project writes: tables, structs of
// scalars, enums with a base type, unions, and comments starting with //.
func CheckSchema(src string, tables map[string]*Table, unions map[string]*Union) []error {
	var lines []string
	for _, l := range strings.Split(src, "\n") {
		if i := strings.Index(l, "//"); i >= 0 {
			l = l[:i]
		}
		lines = append(lines, l)
	}
	text := strings.Join(lines, "\n")

	scalars := schemaScalars()
	for _, m := range schemaEnum.FindAllStringSubmatch(text, -1) {
		scalars[m[1]] = scalars[m[2]]
	}
	isUnion := map[string]bool{}
	for _, m := range schemaUnion.FindAllStringSubmatch(text, -1) {
		isUnion[m[1]] = true
	}
	structs := map[string]uint16{}
	var errs []error
	seen := map[string]bool{}
	for _, m := range schemaDecl.FindAllStringSubmatch(text, -1) {
		kind, name, body := m[1], m[2], m[3]
		fields := schemaField.FindAllStringSubmatch(body, -1)
		if kind == "struct" {
			var size uint16
			for _, f := range fields {
				size += scalars[f[2]]
			}
			structs[name] = size
			continue
		}
		seen[name] = true
		d, ok := tables[name]
		if !ok {
			errs = append(errs, fmt.Errorf("table %s has no descriptor", name))
			continue
		}
		if d.Name != name {
			errs = append(errs, fmt.Errorf("the descriptor of table %s is named %s", name, d.Name))
		}
		var want []Field
		var names []string
		for _, f := range fields {
			fname, typ := f[1], f[2]
			elem := strings.Trim(typ, "[]")
			vector := elem != typ
			switch {
			case isUnion[typ]:
				u, ok := unions[typ]
				if !ok {
					errs = append(errs, fmt.Errorf("union %s has no descriptor", typ))
				}
				want = append(want, UnionType(), UnionOf(u))
				names = append(names, fname+"_type")
			case typ == "string":
				want = append(want, String())
			case typ == "[string]":
				want = append(want, Strings())
			case vector && scalars[elem] != 0:
				want = append(want, Vector(scalars[elem]))
			case vector && structs[elem] != 0:
				want = append(want, Vector(structs[elem]))
			case vector:
				want = append(want, TablesOf(tables[elem]))
			case scalars[typ] != 0:
				want = append(want, Scalar(scalars[typ]))
			case structs[typ] != 0:
				want = append(want, Struct(structs[typ]))
			default:
				want = append(want, TableOf(tables[typ]))
			}
			names = append(names, fname)
		}
		if len(want) != len(d.Fields) {
			errs = append(errs, fmt.Errorf("%s: the schema has %d slots, the descriptor %d", name, len(want), len(d.Fields)))
			continue
		}
		for i := range want {
			if want[i] != d.Fields[i] {
				errs = append(errs, fmt.Errorf("%s slot %d (%s): the schema says %s, the descriptor %s",
					name, i, names[i], want[i], d.Fields[i]))
			}
		}
	}
	for name := range tables {
		if !seen[name] {
			errs = append(errs, fmt.Errorf("descriptor of table %s, which the schema does not declare", name))
		}
	}
	return errs
}

// String describes f for errors: its kind, width and table or union.
func (f Field) String() string {
	var what string
	switch f.Kind {
	case KindScalar:
		what = fmt.Sprintf("scalar(%d)", f.Size)
	case KindStruct:
		what = fmt.Sprintf("struct(%d)", f.Size)
	case KindString:
		what = "string"
	case KindVector:
		what = fmt.Sprintf("vector(%d)", f.Size)
	case KindStrings:
		what = "[string]"
	case KindUnionType:
		what = "union type"
	case KindTable, KindTables:
		name := "<nil>"
		if f.Table != nil {
			name = f.Table.Name
		}
		what = name
		if f.Kind == KindTables {
			what = "[" + name + "]"
		}
	case KindUnion:
		what = "union <nil>"
		if f.Union != nil {
			what = "union " + f.Union.Name
		}
	default:
		what = fmt.Sprintf("kind(%d)", f.Kind)
	}
	return what
}
