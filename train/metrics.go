package train

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/reelrank/reelrank/kernels"
)

// ErrNoData is returned by a metric that has nothing to measure: no rows,
// or (for AUC) no positive or no negative row.
var ErrNoData = errors.New("train: no data for the metric")

// AUC returns the area under the ROC curve of scores against labels: the
// probability that a random positive scores above a random negative,
// counting ties as one half. weights, when not nil, weighs each row (a
// clipped inverse propensity, say). It sorts once: O(n log n).
func AUC(scores []float32, labels []bool, weights []float32) (float64, error) {
	if len(scores) != len(labels) || weights != nil && len(weights) != len(scores) {
		return 0, fmt.Errorf("train: AUC: %d scores, %d labels, %d weights", len(scores), len(labels), len(weights))
	}
	idx := make([]int32, len(scores))
	for i := range idx {
		if math.IsNaN(float64(scores[i])) {
			return 0, fmt.Errorf("train: AUC: score %d is NaN", i)
		}
		idx[i] = int32(i)
	}
	slices.SortFunc(idx, func(a, b int32) int {
		switch {
		case scores[a] < scores[b]:
			return -1
		case scores[a] > scores[b]:
			return 1
		}
		return 0
	})
	w := func(i int32) float64 {
		if weights == nil {
			return 1
		}
		return float64(weights[i])
	}
	// Walk the scores upward in groups of equal score: every positive of a
	// group outranks the negatives below the group, and ties half of the
	// negatives inside it.
	var negBelow, pos, neg, area float64
	for lo := 0; lo < len(idx); {
		hi := lo + 1
		for hi < len(idx) && scores[idx[hi]] == scores[idx[lo]] {
			hi++
		}
		var gp, gn float64
		for _, i := range idx[lo:hi] {
			if labels[i] {
				gp += w(i)
			} else {
				gn += w(i)
			}
		}
		area += gp * (negBelow + gn/2)
		negBelow += gn
		pos += gp
		neg += gn
		lo = hi
	}
	if pos <= 0 || neg <= 0 {
		return 0, fmt.Errorf("train: AUC of %d rows, positive weight %g, negative weight %g: %w", len(scores), pos, neg, ErrNoData)
	}
	return area / (pos * neg), nil
}

// ECE returns the expected calibration error of probabilities against
// labels over bins of equal width: the weighted mean, over the bins, of
// |mean predicted probability - observed rate|. weights may be nil.
func ECE(probs []float32, labels []bool, weights []float32, bins int) (float64, error) {
	if len(probs) != len(labels) || weights != nil && len(weights) != len(probs) {
		return 0, fmt.Errorf("train: ECE: %d probabilities, %d labels, %d weights", len(probs), len(labels), len(weights))
	}
	if bins < 1 {
		return 0, fmt.Errorf("train: ECE: %d bins", bins)
	}
	sumP := make([]float64, bins)
	sumY := make([]float64, bins)
	sumW := make([]float64, bins)
	var total float64
	for i, p := range probs {
		if !(p >= 0 && p <= 1) {
			return 0, fmt.Errorf("train: ECE: probability %d is %v", i, p)
		}
		w := 1.0
		if weights != nil {
			w = float64(weights[i])
		}
		b := min(int(float64(p)*float64(bins)), bins-1)
		sumP[b] += w * float64(p)
		if labels[i] {
			sumY[b] += w
		}
		sumW[b] += w
		total += w
	}
	if total <= 0 {
		return 0, fmt.Errorf("train: ECE: %w", ErrNoData)
	}
	var ece float64
	for b := range bins {
		if sumW[b] > 0 {
			ece += math.Abs(sumP[b]-sumY[b]) / total
		}
	}
	return ece, nil
}

// LogLoss returns the mean binary cross-entropy of probabilities against
// labels, each probability clamped to [eps, 1-eps] with eps = 1e-7.
func LogLoss(probs []float32, labels []bool, weights []float32) (float64, error) {
	if len(probs) != len(labels) || weights != nil && len(weights) != len(probs) {
		return 0, fmt.Errorf("train: LogLoss: %d probabilities, %d labels, %d weights", len(probs), len(labels), len(weights))
	}
	const eps = 1e-7
	var sum, total float64
	for i, p := range probs {
		if math.IsNaN(float64(p)) {
			return 0, fmt.Errorf("train: LogLoss: probability %d is NaN", i)
		}
		w := 1.0
		if weights != nil {
			w = float64(weights[i])
		}
		q := min(max(float64(p), eps), 1-eps)
		if labels[i] {
			sum -= w * math.Log(q)
		} else {
			sum -= w * math.Log(1-q)
		}
		total += w
	}
	if total <= 0 {
		return 0, fmt.Errorf("train: LogLoss: %w", ErrNoData)
	}
	return sum / total, nil
}

// RecallAtK returns the share of relevant ids found among the first k of
// retrieved (all of it when k exceeds its length).
func RecallAtK(retrieved, relevant []int64, k int) (float64, error) {
	if len(relevant) == 0 {
		return 0, fmt.Errorf("train: RecallAtK: %w", ErrNoData)
	}
	if k < 0 {
		return 0, fmt.Errorf("train: RecallAtK: k = %d", k)
	}
	top := retrieved[:min(k, len(retrieved))]
	set := make(map[int64]struct{}, len(top))
	for _, id := range top {
		set[id] = struct{}{}
	}
	found := 0
	for _, id := range relevant {
		if _, ok := set[id]; ok {
			found++
		}
	}
	return float64(found) / float64(len(relevant)), nil
}

// TopK returns the ids of the k highest scores, highest first, ties by
// smaller id (kernels.TopK's order). ids may be nil, meaning the
// positions. NaN scores are never chosen.
func TopK(scores []float32, ids []int64, k int) []int64 {
	if k < 1 || len(scores) == 0 {
		return nil
	}
	res := kernels.TopK(nil, scores, ids, k, true)
	out := make([]int64, len(res))
	for i, r := range res {
		out[i] = r.ID
	}
	return out
}
