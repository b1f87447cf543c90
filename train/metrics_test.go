package train

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// aucPairs counts every (positive, negative) pair: the definition.
func aucPairs(scores []float32, labels []bool, weights []float32) float64 {
	var num, den float64
	for i := range scores {
		for j := range scores {
			if !labels[i] || labels[j] {
				continue
			}
			w := 1.0
			if weights != nil {
				w = float64(weights[i]) * float64(weights[j])
			}
			den += w
			switch {
			case scores[i] > scores[j]:
				num += w
			case scores[i] == scores[j]:
				num += w / 2
			}
		}
	}
	return num / den
}

func TestAUC(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		n := 2 + rng.IntN(200)
		scores := make([]float32, n)
		labels := make([]bool, n)
		var weights []float32
		if trial%2 == 1 {
			weights = make([]float32, n)
		}
		for i := range scores {
			scores[i] = float32(rng.IntN(20)) / 4 // many ties
			labels[i] = rng.Float32() < float32(scores[i])/5
			if weights != nil {
				weights[i] = 0.1 + rng.Float32()
			}
		}
		labels[0], labels[1] = true, false
		got, err := AUC(scores, labels, weights)
		if err != nil {
			t.Fatal(err)
		}
		if want := aucPairs(scores, labels, weights); math.Abs(got-want) > 1e-9 {
			t.Fatalf("trial %d: AUC %v, pairs %v", trial, got, want)
		}
	}
	perfect, _ := AUC([]float32{0.1, 0.2, 0.8, 0.9}, []bool{false, false, true, true}, nil)
	inverse, _ := AUC([]float32{0.9, 0.8, 0.2, 0.1}, []bool{false, false, true, true}, nil)
	ties, _ := AUC([]float32{0.5, 0.5, 0.5, 0.5}, []bool{false, true, false, true}, nil)
	if perfect != 1 || inverse != 0 || ties != 0.5 {
		t.Fatalf("perfect %v, inverse %v, ties %v", perfect, inverse, ties)
	}
	if _, err := AUC([]float32{1, 2}, []bool{true, true}, nil); !errors.Is(err, ErrNoData) {
		t.Fatalf("one class: %v", err)
	}
	if _, err := AUC([]float32{1, float32(math.NaN())}, []bool{true, false}, nil); err == nil {
		t.Fatal("a NaN score accepted")
	}
	if _, err := AUC([]float32{1}, []bool{true, false}, nil); err == nil {
		t.Fatal("mismatched lengths accepted")
	}
}

func TestECEAndLogLoss(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	n := 200000
	probs := make([]float32, n)
	labels := make([]bool, n)
	for i := range probs {
		probs[i] = rng.Float32()
		labels[i] = rng.Float32() < probs[i] // calibrated by construction
	}
	ece, err := ECE(probs, labels, nil, 10)
	if err != nil || ece > 0.01 {
		t.Fatalf("calibrated ECE %v, %v", ece, err)
	}
	skewed := make([]float32, n)
	for i, p := range probs {
		skewed[i] = p * p // under-confident for every p in (0, 1)
	}
	if bad, _ := ECE(skewed, labels, nil, 10); bad < 0.1 {
		t.Fatalf("miscalibrated ECE %v", bad)
	}
	ll, err := LogLoss([]float32{1, 0, 0.5}, []bool{true, false, true}, nil)
	if want := math.Log(2) / 3; err != nil || math.Abs(ll-want) > 1e-6 {
		t.Fatalf("LogLoss %v, want %v (%v)", ll, want, err)
	}
	if _, err := ECE([]float32{1.5}, []bool{true}, nil, 10); err == nil {
		t.Fatal("a probability above 1 accepted")
	}
}

func TestRecallAndTopK(t *testing.T) {
	top := TopK([]float32{0.1, 0.9, 0.5, 0.9, float32(math.NaN())}, []int64{10, 11, 12, 13, 14}, 3)
	if !slices.Equal(top, []int64{11, 13, 12}) {
		t.Fatalf("TopK %v", top)
	}
	r, err := RecallAtK(top, []int64{13, 10}, 3)
	if err != nil || r != 0.5 {
		t.Fatalf("recall %v, %v", r, err)
	}
	if r, _ := RecallAtK(top, []int64{13, 10}, 1); r != 0 {
		t.Fatalf("recall@1 %v", r)
	}
	if _, err := RecallAtK(top, nil, 3); !errors.Is(err, ErrNoData) {
		t.Fatalf("no relevant ids: %v", err)
	}
}
