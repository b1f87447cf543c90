package engine

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Experiment is an arm served beside the control to a fixed share of the
// users: its own post-rank settings (an exploration policy, head
// weights), and the control's model or its own.
type Experiment struct {
	// Name names the arm in responses, impressions and metrics. It must
	// differ from the other arms' names ("control", "canary", "holdout"
	// and the control model's arm).
	Name string
	// Share is the share of users the arm serves, in (0, 1).
	Share float64
	// Model is the arm's model; nil serves the control's, whichever it is
	// after promotions and rollbacks.
	Model *Model
	// Settings are the arm's post-rank settings.
	Settings ArmSettings
}

// experiment is an Experiment being served.
type experiment struct {
	Experiment
	ent *armEntry
}

// maxExperiments bounds the experiments served at once.
const maxExperiments = 32

// SetExperiments replaces the experiment arms. Each serves its share of
// the users, taken from the first buckets of the users' hash in the order
// given, so that an experiment keeps its users whatever the canary and
// the holdout do; an experiment that keeps its name and share across
// calls keeps its users and its statistics. The control serves what the
// experiments, the holdout and the canary leave. An experiment with its
// own model is checked as a canary is (spec, dimensions, probe requests)
// and its index caught up with the catalogue. An empty list ends every
// experiment.
func (e *Engine) SetExperiments(exps []Experiment) error {
	if len(exps) > maxExperiments {
		return fmt.Errorf("%w: set experiments: %d arms, at most %d", ErrBadRequest, len(exps), maxExperiments)
	}
	total := 0.0
	for i, x := range exps {
		switch {
		case x.Name == "" || strings.ContainsAny(x.Name, " \t\n\"") || len(x.Name) > 64:
			return fmt.Errorf("%w: set experiments: arm %d: name %q: want 1 to 64 characters without spaces or quotes", ErrBadRequest, i, x.Name)
		case x.Name == RoleControl || x.Name == RoleCanary || x.Name == HoldoutArm:
			return fmt.Errorf("%w: set experiments: arm name %q is reserved", ErrBadRequest, x.Name)
		case math.IsNaN(x.Share) || !(x.Share > 0 && x.Share < 1):
			return fmt.Errorf("%w: set experiments: arm %q: share %v outside (0, 1)", ErrBadRequest, x.Name, x.Share)
		}
		if slices.IndexFunc(exps[:i], func(y Experiment) bool { return y.Name == x.Name }) >= 0 {
			return fmt.Errorf("%w: set experiments: arm name %q twice", ErrBadRequest, x.Name)
		}
		total += x.Share
	}
	// Build and check the arms with their own models before taking any
	// lock: probes run requests.
	built := make([]*live, len(exps))
	for i, x := range exps {
		if x.Model == nil {
			continue
		}
		lv, err := e.newLive(x.Model, x.Settings, RoleExperiment)
		if err != nil {
			return fmt.Errorf("engine: set experiments: arm %q: %w", x.Name, err)
		}
		if err := e.probe(lv); err != nil {
			return fmt.Errorf("engine: set experiments: arm %q: %w", x.Name, err)
		}
		lv.arm = x.Name
		built[i] = lv
	}
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	for _, lv := range built {
		if lv != nil {
			if err := e.catchUp(lv.m); err != nil {
				return err
			}
		}
	}
	a := &e.arms
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.control == nil {
		return fmt.Errorf("%w: set experiments: no control model", ErrUnavailable)
	}
	if total+a.canaryShare+a.holdoutShare >= 1 {
		return fmt.Errorf("%w: set experiments: shares %.4f with the canary's %v and the holdout's %v leave the control nothing",
			ErrBadRequest, total, a.canaryShare, a.holdoutShare)
	}
	for _, x := range exps {
		if x.Name == a.control.lv.arm {
			return fmt.Errorf("%w: set experiments: arm name %q is the control's", ErrBadRequest, x.Name)
		}
	}
	next := make([]*experiment, len(exps))
	for i, x := range exps {
		lv := built[i]
		if lv == nil {
			var err error
			if lv, err = e.experimentLive(a.control.lv.m, x); err != nil {
				return err
			}
		}
		stats := newArmStats()
		since := time.Now()
		if j := slices.IndexFunc(a.experiments, func(y *experiment) bool { return y.Name == x.Name && y.Share == x.Share }); j >= 0 {
			stats, since = a.experiments[j].ent.stats, a.experiments[j].ent.since
		}
		next[i] = &experiment{Experiment: x, ent: &armEntry{role: RoleExperiment, lv: lv, stats: stats, settings: x.Settings, since: since}}
	}
	a.experiments = next
	e.publish()
	names := make([]string, len(exps))
	for i, x := range exps {
		names[i] = fmt.Sprintf("%s %.1f%%", x.Name, 100*x.Share)
	}
	e.record("experiments", "", "arms: "+strings.Join(names, ", "))
	return nil
}

// experimentLive is the live model of an experiment that serves the
// control's model m with its own settings.
func (e *Engine) experimentLive(m *Model, x Experiment) (*live, error) {
	lv, err := e.newLive(m, x.Settings, RoleExperiment)
	if err != nil {
		return nil, fmt.Errorf("engine: experiment %q: %w", x.Name, err)
	}
	lv.arm = x.Name
	return lv, nil
}

// followControl points the experiments that serve the control's model at
// the control now in force; the caller holds a.mu. An experiment whose
// settings the new model refuses (a head it lacks) keeps the model it
// had, and the refusal is in the history.
func (e *Engine) followControl() {
	a := &e.arms
	if a.control == nil {
		return
	}
	for _, x := range a.experiments {
		if x.Model != nil || x.ent.lv.m == a.control.lv.m {
			continue
		}
		lv, err := e.experimentLive(a.control.lv.m, x.Experiment)
		if err != nil {
			e.record("refused", a.control.lv.m.version, err.Error())
			continue
		}
		x.ent.lv = lv
	}
}

// Experiments returns the experiments being served.
func (e *Engine) Experiments() []Experiment {
	a := &e.arms
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Experiment, len(a.experiments))
	for i, x := range a.experiments {
		out[i] = x.Experiment
	}
	return out
}
