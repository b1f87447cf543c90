package drift_test

import (
	"fmt"

	"github.com/reelrank/reelrank/drift"
)

// A reference built from training values, then a window of serving values
// from another distribution.
func Example() {
	b := drift.NewBuilder([]string{"user/age"}, 0, 1)
	for i := range 1000 {
		b.Add([]float32{float32(i % 50)})
	}
	ref, err := b.Build(10)
	if err != nil {
		panic(err)
	}
	m, err := drift.NewMonitor(ref, drift.Options{Window: 1000, MinCount: 100})
	if err != nil {
		panic(err)
	}
	rows := make([]float32, 500)
	for i := range rows {
		rows[i] = float32(40 + i%20) // older users, some beyond any seen in training
	}
	m.AddRows([]int{0}, rows)
	r := m.Report()[0]
	fmt.Printf("%s: %s (PSI over %.2f)\n", r.Name, r.Level, drift.DefaultThreshold)
	// Output: user/age: drift (PSI over 0.25)
}
