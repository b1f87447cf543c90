package drift

import (
	"bytes"
	"math"
	"testing"
)

// FuzzRead reads any bytes as a reference: it is refused with an error or
// it validates, and a monitor over it bins any value without panicking.
func FuzzRead(f *testing.F) {
	f.Add([]byte(`{"version":1,"rows":3,"sample":3,"series":[{"name":"a","edges":[0,1],"share":[0.2,0.3,0.5,0]}]}`))
	f.Add([]byte(`{"version":1,"series":[{"name":"a","edges":[],"share":[1,0]}]}`))
	f.Add([]byte(`{"version":1,"series":[{"name":"a","edges":[1e38,"x"],"share":[1]}]}`))
	f.Add([]byte(`garbage`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ref, err := Read(bytes.NewReader(data))
		if err != nil {
			return
		}
		if err := ref.Validate(); err != nil {
			t.Fatalf("Read returned a reference that does not validate: %v", err)
		}
		m, err := NewMonitor(ref, Options{Window: 64, MinCount: 1})
		if err != nil {
			t.Fatalf("a valid reference refused by NewMonitor: %v", err)
		}
		cols := make([]int, len(ref.Series))
		for i := range cols {
			cols[i] = i
		}
		row := make([]float32, 0, 4*len(cols))
		for _, v := range []float32{0, -1, float32(math.NaN()), float32(math.Inf(1))} {
			for range cols {
				row = append(row, v)
			}
		}
		m.AddRows(cols, row)
		for _, s := range m.Report() {
			if math.IsNaN(s.PSI) || s.PSI < 0 {
				t.Fatalf("series %s: PSI %v", s.Name, s.PSI)
			}
		}
	})
}
