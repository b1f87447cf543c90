package train

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/reelrank/reelrank/features"
)

func TestCatalogueExportRoundTrip(t *testing.T) {
	w := openSmallWorld(t)
	c := CatalogueOfWorld(w)
	var buf bytes.Buffer
	if err := c.Write(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := ReadCatalogue(&buf, "export")
	if err != nil {
		t.Fatal(err)
	}
	c.Seed = 0 // not exported
	if !reflect.DeepEqual(got, c) {
		t.Fatalf("round trip differs: %d/%d users, %d/%d reels", len(got.Users), len(c.Users), len(got.Reels), len(c.Reels))
	}
	// A store's catalogue comes back the same through the export.
	s, err := features.NewStore(features.Config{EmbedDim: c.EmbedDim})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Load(s); err != nil {
		t.Fatal(err)
	}
	sc := CatalogueOfStore(s)
	if len(sc.Users) != len(c.Users) || len(sc.Reels) != len(c.Reels) || len(sc.Follows) != len(c.Follows) || len(sc.Authors) != len(c.Authors) {
		t.Fatalf("store catalogue: %d users, %d reels, %d follows, %d authors", len(sc.Users), len(sc.Reels), len(sc.Follows), len(sc.Authors))
	}
	for i := range c.Reels {
		a, b := c.Reels[i], sc.Reels[i]
		if a.ID != b.ID || a.Author != b.Author || a.Upload != b.Upload || a.Duration != b.Duration || a.Language != b.Language || !reflect.DeepEqual(a.Embedding, b.Embedding) {
			t.Fatalf("reel %d: put %+v, read %+v", i, a, b)
		}
	}
}

func TestReadCatalogueRefusesBadLines(t *testing.T) {
	in := strings.Join([]string{
		`{"kind":"catalogue","version":1,"embed_dim":2}`,
		`{"kind":"user","id":1,"country":2}`,
		`not json`,
		`{"kind":"video","id":3}`,
		`{"kind":"user","id":-4}`,
		`{"kind":"reel","id":5,"author":1,"embedding":[1,2,3]}`,
		`{"kind":"follow","user":1}`,
		`[1,2]`,
		``,
		`{"kind":"reel","id":6,"author":1,"embedding":[1,2],"upload":7}`,
	}, "\n")
	_, err := ReadCatalogue(strings.NewReader(in), "cat.jsonl")
	if err == nil {
		t.Fatal("bad catalogue accepted")
	}
	for _, want := range []string{"6 bad lines", "cat.jsonl line 3:", "line 4: unknown kind \"video\"", "line 5: negative id -4",
		"line 6: reel 5: embedding of 3 values, the header says 2", "line 7: follow line without \"author\"", "line 8: not a JSON object"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if _, err := ReadCatalogue(strings.NewReader(`{"kind":"user","id":1}`), "x"); err == nil || !strings.Contains(err.Error(), "line 1: the first line must be the header") {
		t.Errorf("no header: %v", err)
	}
	c, err := ReadCatalogue(strings.NewReader(strings.Join([]string{
		`{"kind":"catalogue","version":1,"embed_dim":2}`,
		`{"kind":"reel","id":6,"author":1,"embedding":[1,2],"upload":7,"note":"unknown keys are ignored"}`,
	}, "\n")), "ok")
	if err != nil || len(c.Reels) != 1 || c.Reels[0].Upload != 7 || c.Reels[0].Category != -1 {
		t.Fatalf("good catalogue: %+v, %v", c, err)
	}
}
