package train_test

import (
	"fmt"

	"github.com/reelrank/reelrank/train"
)

func ExampleAUC() {
	scores := []float32{0.9, 0.8, 0.3, 0.2, 0.5}
	watched := []bool{true, false, true, false, false}
	auc, err := train.AUC(scores, watched, nil)
	if err != nil {
		panic(err)
	}
	fmt.Printf("AUC %.3f\n", auc)
	// Output:
	// AUC 0.667
}
