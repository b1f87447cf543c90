package ann

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkTrainKMeans trains the IVF coarse quantizer (K=4096, d=128) and
// one product-quantizer sub-space (K=16, d=2) on 262,144 points drawn around
// 1,024 Gaussian centres, 10 iterations. It reports the seconds per training
// and, of them, the k-means++ seeding and the Lloyd iterations.
//
//	flock /tmp/reelrank-bench.lock go test -run '^$' -bench TrainKMeans -benchtime 1x ./ann
func BenchmarkTrainKMeans(b *testing.B) {
	for _, tc := range []struct{ n, d, k int }{{262144, 128, 4096}, {262144, 2, 16}} {
		b.Run(fmt.Sprintf("n=%d/d=%d/k=%d", tc.n, tc.d, tc.k), func(b *testing.B) {
			x, _ := kmBlobs(rand.New(rand.NewPCG(1, 1)), tc.n, tc.d, 1024, 1, 0.3)
			var st kmStats
			var seed, lloydT float64
			for b.Loop() {
				if _, err := trainKMeans(x, tc.d, KMeansOptions{K: tc.k, Seed: 1}, &st); err != nil {
					b.Fatal(err)
				}
				seed += st.seedTime.Seconds()
				lloydT += st.lloydTime.Seconds()
			}
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/train")
			b.ReportMetric(seed/float64(b.N), "s-seed")
			b.ReportMetric(lloydT/float64(b.N), "s-lloyd")
			b.ReportMetric(float64(st.sample), "points")
			b.ReportMetric(st.objective[len(st.objective)-1]/float64(st.sample), "mse")
		})
	}
}
