//go:build amd64 && gc && !purego && !noasm

package kernels

// filterScoresAVX512 and filterScoresAVX2 do what filterScoresGeneric does for
// the first len(scores) rounded down to 16 (8) scores, and return the count.
// They may write 16 (8) entries past the count, so idx must hold
// len(scores)+16 entries.

//go:noescape
func filterScoresAVX512(idx []int32, scores []float32, thresh float32, largest bool) int // reference: filterScoresGeneric

//go:noescape
func filterScoresAVX2(idx []int32, scores []float32, thresh float32, largest bool) int // reference: filterScoresGeneric

func filterScores(idx []int32, scores []float32, thresh float32, largest bool) int {
	var n, done int
	switch {
	case cpu.level >= AVX512:
		done = len(scores) &^ 15
		n = filterScoresAVX512(idx, scores[:done], thresh, largest)
	case cpu.level >= AVX2:
		done = len(scores) &^ 7
		n = filterScoresAVX2(idx, scores[:done], thresh, largest)
	}
	if done == len(scores) {
		return n
	}
	m := filterScoresGeneric(idx[n:], scores[done:], thresh, largest)
	for i := n; i < n+m; i++ {
		idx[i] += int32(done)
	}
	return n + m
}
