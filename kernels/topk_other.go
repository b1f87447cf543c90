//go:build !amd64 || !gc || purego || noasm

package kernels

func filterScores(idx []int32, scores []float32, thresh float32, largest bool) int {
	return filterScoresGeneric(idx, scores, thresh, largest)
}
