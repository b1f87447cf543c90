package modeldir

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"

	"github.com/reelrank/reelrank/internal/fsutil"
)

// ArmsFile is the record, in the state folder, of the model versions a
// server serves and their shares, so that a restart serves the same arms.
const ArmsFile = "arms.json"

// Arm is one served version in the Arms record.
type Arm struct {
	// Dir is the version folder; Version its model version.
	Dir     string `json:"dir"`
	Version string `json:"version"`
	// Weights are the arm's post-rank head weights.
	Weights map[string]float32 `json:"weights,omitempty"`
}

// Arms is what a server serves: the control version, a canary with its
// share, and the holdout's share.
type Arms struct {
	Control      Arm     `json:"control"`
	Canary       *Arm    `json:"canary,omitempty"`
	CanaryShare  float64 `json:"canary_share,omitempty"`
	HoldoutShare float64 `json:"holdout_share,omitempty"`
}

func (a *Arms) check() error {
	switch {
	case a.Control.Dir == "":
		return errors.New("no control folder")
	case a.Canary != nil && a.Canary.Dir == "":
		return errors.New("a canary with no folder")
	case math.IsNaN(a.CanaryShare) || a.CanaryShare < 0 || a.CanaryShare >= 1 || math.IsNaN(a.HoldoutShare) || a.HoldoutShare < 0 || a.HoldoutShare >= 1 || a.CanaryShare+a.HoldoutShare >= 1:
		return fmt.Errorf("shares %v and %v", a.CanaryShare, a.HoldoutShare)
	case (a.Canary == nil) != (a.CanaryShare == 0):
		return errors.New("a canary share without a canary, or a canary without a share")
	}
	return nil
}

// SaveArms records arms in the state folder state, atomically.
func SaveArms(state string, arms Arms) error {
	if err := arms.check(); err != nil {
		return fmt.Errorf("modeldir: save arms: %w", err)
	}
	if err := os.MkdirAll(state, 0o755); err != nil {
		return fmt.Errorf("modeldir: save arms: %w", err)
	}
	path := filepath.Join(state, ArmsFile)
	err := fsutil.WriteFile(path, 0o644, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(arms)
	})
	if err != nil {
		return fmt.Errorf("modeldir: save arms: %w", err)
	}
	return nil
}

// LoadArms reads the record in the state folder state; ok is false when
// there is none.
func LoadArms(state string) (arms Arms, ok bool, err error) {
	path := filepath.Join(state, ArmsFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Arms{}, false, nil
	}
	if err != nil {
		return Arms{}, false, fmt.Errorf("modeldir: load arms: %w", err)
	}
	if err := json.Unmarshal(b, &arms); err != nil {
		return Arms{}, false, fmt.Errorf("modeldir: load arms: %s: %w", path, err)
	}
	if err := arms.check(); err != nil {
		return Arms{}, false, fmt.Errorf("modeldir: load arms: %s: %w", path, err)
	}
	return arms, true, nil
}
