package drift

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"
)

func build(t *testing.T, names []string, rows int, gen func(r *rand.Rand, row []float32)) *Reference {
	t.Helper()
	b := NewBuilder(names, 5000, 1)
	r := rand.New(rand.NewPCG(1, 2))
	row := make([]float32, len(names))
	for range rows {
		gen(r, row)
		if err := b.Add(row); err != nil {
			t.Fatal(err)
		}
	}
	ref, err := b.Build(10)
	if err != nil {
		t.Fatal(err)
	}
	if err := ref.Validate(); err != nil {
		t.Fatal(err)
	}
	return ref
}

func TestBuildAndRoundTrip(t *testing.T) {
	ref := build(t, []string{"normal", "never", "binary"}, 20000, func(r *rand.Rand, row []float32) {
		row[0] = float32(r.NormFloat64())
		row[1] = 0
		row[2] = 0
		if r.Float64() < 0.2 {
			row[2] = 1
		}
	})
	if ref.Rows != 20000 || ref.Sample != 5000 {
		t.Fatalf("rows %d sample %d", ref.Rows, ref.Sample)
	}
	if n := len(ref.Series[0].Edges); n < 9 {
		t.Fatalf("a normal series got %d edges", n)
	}
	for i, s := range ref.Series[0].Share[:10] {
		if math.Abs(s-0.1) > 0.02 && i > 0 {
			t.Errorf("normal bin %d holds %.3f", i, s)
		}
	}
	never := ref.Series[1]
	if never.bin(1) == never.bin(0) {
		t.Fatalf("a value above every training value shares the training value's bin: edges %v", never.Edges)
	}
	var buf bytes.Buffer
	if err := ref.Write(&buf); err != nil {
		t.Fatal(err)
	}
	back, err := Read(&buf)
	if err != nil || len(back.Series) != 3 || back.Series[2].Name != "binary" {
		t.Fatalf("round trip: %v %+v", err, back)
	}
	for _, bad := range []string{`{"version":2,"series":[]}`, `{"version":1,"series":[{"name":"a","edges":[1,0],"share":[0.5,0.5,0,0]}]}`,
		`{"version":1,"series":[{"name":"a","edges":[0],"share":[0.5,0.6,0]}]}`, `{"version":1,"series":[{"name":"a","edges":[0],"share":[1]}]}`, `garbage`} {
		if _, err := Read(bytes.NewBufferString(bad)); err == nil {
			t.Errorf("Read(%s) took it", bad)
		}
	}
}

func TestMonitorFlagsShiftOnly(t *testing.T) {
	ref := build(t, []string{"x", "flag"}, 20000, func(r *rand.Rand, row []float32) {
		row[0] = float32(r.NormFloat64())
		row[1] = 0
	})
	m, err := NewMonitor(ref, Options{Window: 4000, MinCount: 1000})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(9, 9))
	rows := make([]float32, 0, 2*100)
	add := func(n int, mean float64, flag float32) {
		for range n / 100 {
			rows = rows[:0]
			for range 100 {
				rows = append(rows, float32(r.NormFloat64()+mean), flag)
			}
			m.AddRows([]int{0, 1}, rows)
		}
	}
	add(500, 0, 0)
	for _, s := range m.Report() {
		if s.Level != Unknown {
			t.Fatalf("%s judged on %d values: %v", s.Name, s.Count, s.Level)
		}
	}
	add(8000, 0, 0)
	for _, s := range m.Report() {
		if s.Level != OK {
			t.Fatalf("unshifted %s: PSI %.3f level %v", s.Name, s.PSI, s.Level)
		}
	}
	add(2000, 1, 1)
	rep := m.Report()
	if rep[0].Level != Drift || rep[1].Level != Drift {
		t.Fatalf("shifted: %+v", rep)
	}
	// The window slides: the shift ages out.
	add(8000, 0, 0)
	for _, s := range m.Report() {
		if s.Level != OK {
			t.Fatalf("after the window slid past the shift, %s: PSI %.3f", s.Name, s.PSI)
		}
	}
	if got := m.Report()[0].Total; got != 18500 {
		t.Fatalf("total %d", got)
	}
	// A NaN has a bin of its own.
	m.AddRows([]int{0, -1}, []float32{float32(math.NaN()), 0})
}

func TestPSI(t *testing.T) {
	if v := PSI([]float64{0.5, 0.5}, []float64{0.5, 0.5}); v != 0 {
		t.Fatalf("equal: %v", v)
	}
	if v := PSI([]float64{0.9, 0.1}, []float64{0.1, 0.9}); v < 1 {
		t.Fatalf("swapped: %v", v)
	}
}
