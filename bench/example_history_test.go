package bench_test

import (
	"fmt"

	"github.com/reelrank/reelrank/bench"
)

// Two runs of six samples each: the p99 rose by a fifth, significantly,
// and is flagged; the goodput, the same six values in another order, did not move.
func ExampleCompare() {
	a := bench.Run{Command: "load"}
	a.Add("qps=100/p99_us", "us", 0, 1000, 1010, 990, 1005, 995, 1002)
	a.Add("qps=100/goodput_qps", "qps", 0, 100, 99, 101, 100, 98, 102)
	b := bench.Run{Command: "load"}
	b.Add("qps=100/p99_us", "us", 0, 1200, 1210, 1190, 1205, 1195, 1202)
	b.Add("qps=100/goodput_qps", "qps", 0, 101, 99, 100, 98, 102, 100)
	changes, err := bench.Compare([]bench.Run{a}, []bench.Run{b}, bench.CompareOptions{Threshold: 0.05, Alpha: 0.05})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range changes {
		fmt.Printf("%s: %.0f → %.0f, p=%.3f, significant %v, regression %v\n", c.Name, c.A, c.B, c.P, c.Significant, c.Regression)
	}
	// Output:
	// qps=100/p99_us: 1001 → 1201, p=0.002, significant true, regression true
	// qps=100/goodput_qps: 100 → 100, p=1.000, significant false, regression false
}
