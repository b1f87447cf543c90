package ranker

import (
	"os"
	"testing"

	"github.com/reelrank/reelrank/internal/fbverify"
)

// TestVerifierMatchesSchema reads bundle.fbs and checks that the model
// verifier's descriptors list every field of every table with its kind and
// width: a field added to the schema but not to the verifier would be read
// by the generated code unchecked.
func TestVerifierMatchesSchema(t *testing.T) {
	src, err := os.ReadFile("bundle.fbs")
	if err != nil {
		t.Fatal(err)
	}
	descs := map[string]*fbverify.Table{"Dense": denseDesc, "MLP": mlpDesc, "Spec": specDesc, "Multitask": multitaskDesc,
		"UserTower": userTowerDesc, "ReelTower": reelTowerDesc, "Model": modelDesc}
	for _, err := range fbverify.CheckSchema(string(src), descs, nil) {
		t.Error(err)
	}
}
