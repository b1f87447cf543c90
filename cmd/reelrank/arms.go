package main

import (
	"context"
	"path/filepath"
	"sync"

	"github.com/reelrank/reelrank/drift"
	"github.com/reelrank/reelrank/engine"
	"github.com/reelrank/reelrank/features"
	"github.com/reelrank/reelrank/modeldir"
)

// armsKeeper opens the version folders a server is asked to load and
// records which folders serve (modeldir.SaveArms in the state folder), so
// that a restart serves the same arms.
type armsKeeper struct {
	state string
	logf  func(string, ...any)

	mu   sync.Mutex
	dirs map[string]string // model version → its folder
	spec *features.Spec    // the store's, once the engine is open
	open []*modeldir.Version
}

func newArmsKeeper(state string, logf func(string, ...any)) *armsKeeper {
	return &armsKeeper{state: state, logf: logf, dirs: map[string]string{}}
}

// model makes the engine's model of an opened version, with its drift
// reference when it has one.
func versionModel(v *modeldir.Version, arm string) (*engine.Model, error) {
	m, err := engine.NewModel(v.Bundle(), v.Index(), arm)
	if err != nil {
		return nil, err
	}
	if ref := v.Reference(); ref != nil {
		if err := m.SetReference(ref, drift.Options{}); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// note records that version v lives in folder dir.
func (k *armsKeeper) note(v *modeldir.Version) {
	k.mu.Lock()
	defer k.mu.Unlock()
	dir, err := filepath.Abs(v.Dir())
	if err != nil {
		dir = v.Dir()
	}
	k.dirs[v.Version()] = dir
	k.open = append(k.open, v)
}

// load opens the version folder dir for an AdminRequest "load": checked
// (manifest, checksums, the spec against the serving store, the index
// against the towers) before the engine validates it further.
func (k *armsKeeper) load(ctx context.Context, dir string) (*engine.Model, error) {
	v, err := modeldir.Open(ctx, dir, modeldir.Options{Logf: k.logf})
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	spec := k.spec
	k.mu.Unlock()
	if spec != nil {
		if err := v.Check(*spec); err != nil {
			v.Close()
			return nil, err
		}
	}
	m, err := versionModel(v, engine.RoleCanary)
	if err != nil {
		v.Close()
		return nil, err
	}
	k.note(v)
	return m, nil
}

// onChange records the arms after a change (engine.Config.OnArmsChange).
func (k *armsKeeper) onChange(st engine.ArmsState) {
	k.mu.Lock()
	defer k.mu.Unlock()
	a := modeldir.Arms{Control: modeldir.Arm{Dir: k.dirs[st.Control], Version: st.Control, Weights: st.Settings.Weights},
		HoldoutShare: st.HoldoutShare}
	if st.Canary != "" {
		a.Canary = &modeldir.Arm{Dir: k.dirs[st.Canary], Version: st.Canary, Weights: st.CanarySettings.Weights}
		a.CanaryShare = st.CanaryShare
	}
	if err := modeldir.SaveArms(k.state, a); err != nil {
		k.logf("the served arms are not recorded, a restart serves the bundle's version: %v", err)
	}
}

// close releases the versions opened for loads.
func (k *armsKeeper) close() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, v := range k.open {
		v.Close()
	}
	k.open = nil
}
