package fbverify_test

import (
	"strings"
	"testing"

	"github.com/reelrank/reelrank/internal/fbverify"
)

// testFBS is the test schema, as a .fbs file would hold it.
const testFBS = `
namespace test;
file_identifier "TEST";

enum Flag : ubyte { Off = 0, On }
struct Vec3 { x:float; y:float; z:float; }

// A leaf: table Fake { never:long; } in a comment is not a table.
table Leaf { weight:int; label:string; }

union Choice { Leaf, Node }

table Node {
  id:long;
  pos:Vec3;
  name:string;
  tags:[string];
  values:[float32];
  child:Node;
  leaves:[Leaf];
  choice:Choice;
  flag:Flag = Off;
}

root_type Node;
`

func TestCheckSchema(t *testing.T) {
	s := newSchema()
	tables := map[string]*fbverify.Table{"Node": s.node, "Leaf": s.leaf}
	unions := map[string]*fbverify.Union{"Choice": s.choice}
	if errs := fbverify.CheckSchema(testFBS, tables, unions); len(errs) != 0 {
		t.Fatalf("the test schema's descriptors: %v", errs)
	}

	cases := []struct {
		name string
		edit func(s *schema, tables map[string]*fbverify.Table, unions map[string]*fbverify.Union)
		want string
	}{
		{"a field missing", func(s *schema, _ map[string]*fbverify.Table, _ map[string]*fbverify.Union) {
			s.leaf.Fields = s.leaf.Fields[:1]
		}, "Leaf: the schema has 2 slots, the descriptor 1"},
		{"a wrong width", func(s *schema, _ map[string]*fbverify.Table, _ map[string]*fbverify.Union) {
			s.node.Fields[0] = fbverify.Scalar(4)
		}, "Node slot 0 (id): the schema says scalar(8), the descriptor scalar(4)"},
		{"a struct's width", func(s *schema, _ map[string]*fbverify.Table, _ map[string]*fbverify.Union) {
			s.node.Fields[1] = fbverify.Struct(8)
		}, "Node slot 1 (pos): the schema says struct(12)"},
		{"a string for a table", func(s *schema, _ map[string]*fbverify.Table, _ map[string]*fbverify.Union) {
			s.node.Fields[5] = fbverify.String()
		}, "Node slot 5 (child): the schema says Node, the descriptor string"},
		{"another union", func(s *schema, _ map[string]*fbverify.Table, _ map[string]*fbverify.Union) {
			s.node.Fields[8] = fbverify.UnionOf(&fbverify.Union{Name: "Other"})
		}, "Node slot 8 (choice): the schema says union Choice, the descriptor union Other"},
		{"a table without a descriptor", func(_ *schema, tables map[string]*fbverify.Table, _ map[string]*fbverify.Union) {
			delete(tables, "Leaf")
		}, "table Leaf has no descriptor"},
		{"a descriptor without a table", func(_ *schema, tables map[string]*fbverify.Table, _ map[string]*fbverify.Union) {
			tables["Fake"] = &fbverify.Table{Name: "Fake"}
		}, "descriptor of table Fake, which the schema does not declare"},
		{"a misnamed descriptor", func(s *schema, _ map[string]*fbverify.Table, _ map[string]*fbverify.Union) {
			s.leaf.Name = "Leaves"
		}, "the descriptor of table Leaf is named Leaves"},
		{"a union without a descriptor", func(_ *schema, _ map[string]*fbverify.Table, unions map[string]*fbverify.Union) {
			delete(unions, "Choice")
		}, "union Choice has no descriptor"},
	}
	for _, c := range cases {
		s := newSchema()
		tables := map[string]*fbverify.Table{"Node": s.node, "Leaf": s.leaf}
		unions := map[string]*fbverify.Union{"Choice": s.choice}
		c.edit(s, tables, unions)
		errs := fbverify.CheckSchema(testFBS, tables, unions)
		var msgs []string
		for _, err := range errs {
			msgs = append(msgs, err.Error())
		}
		if !strings.Contains(strings.Join(msgs, "\n"), c.want) {
			t.Errorf("%s: %q, want an error containing %q", c.name, msgs, c.want)
		}
	}
}
