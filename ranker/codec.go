package ranker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime"
	"time"

	flatbuffers "github.com/google/flatbuffers/go"

	"github.com/reelrank/reelrank/features"
	"github.com/reelrank/reelrank/internal/fbverify"
	"github.com/reelrank/reelrank/kernels"
	"github.com/reelrank/reelrank/ranker/internal/fb"
)

// fileIdentifier is model.fb's flatbuffers file identifier.
const fileIdentifier = "RRMB"

// encodeModel builds model.fb.
func encodeModel(b *Bundle) []byte {
	bld := flatbuffers.NewBuilder(1 << 16)
	version := bld.CreateString(b.Version)

	user, reel, cross := stringVec(bld, b.Spec.User), stringVec(bld, b.Spec.Reel), stringVec(bld, b.Spec.Cross)
	fb.SpecStart(bld)
	fb.SpecAddUser(bld, user)
	fb.SpecAddReel(bld, reel)
	fb.SpecAddCross(bld, cross)
	fb.SpecAddEmbedDim(bld, int32(b.Spec.EmbedDim))
	fb.SpecAddVersion(bld, int32(b.Spec.Version))
	fb.SpecAddFingerprint(bld, b.Spec.Fingerprint())
	spec := fb.SpecEnd(bld)

	var ranker, userTower, reelTower flatbuffers.UOffsetT
	if m := b.Ranker; m != nil {
		var bottom, experts, gates flatbuffers.UOffsetT
		if m.MMoE == nil {
			bottom = encodeMLP(bld, &m.Bottom)
		} else {
			offs := make([]flatbuffers.UOffsetT, len(m.MMoE.Experts))
			for i := range m.MMoE.Experts {
				offs[i] = encodeMLP(bld, &m.MMoE.Experts[i])
			}
			experts = offsetVec(bld, offs)
			gates = denseVec(bld, m.MMoE.Gates)
		}
		heads := denseVec(bld, m.Heads)
		tasks := stringVec(bld, m.Tasks)
		weights := floatVec(bld, m.Weights)
		fb.MultitaskStart(bld)
		if bottom != 0 {
			fb.MultitaskAddBottom(bld, bottom)
		}
		if experts != 0 {
			fb.MultitaskAddExperts(bld, experts)
			fb.MultitaskAddGates(bld, gates)
		}
		fb.MultitaskAddHeads(bld, heads)
		fb.MultitaskAddTasks(bld, tasks)
		fb.MultitaskAddWeights(bld, weights)
		fb.MultitaskAddPrecision(bld, byte(m.Precision))
		if m.FixPosition {
			fb.MultitaskAddServePosition(bld, int32(m.ServePosition))
		}
		ranker = fb.MultitaskEnd(bld)
	}
	if t := b.UserTower; t != nil {
		mlp := encodeMLP(bld, &t.MLP)
		fb.UserTowerStart(bld)
		fb.UserTowerAddMlp(bld, mlp)
		userTower = fb.UserTowerEnd(bld)
	}
	if t := b.ReelTower; t != nil {
		bld.StartVector(8, len(t.IDs), 8)
		for i := len(t.IDs) - 1; i >= 0; i-- {
			bld.PrependInt64(t.IDs[i])
		}
		ids := bld.EndVector(len(t.IDs))
		emb := floatVec(bld, t.IDEmb)
		content := encodeMLP(bld, &t.Content)
		fb.ReelTowerStart(bld)
		fb.ReelTowerAddDim(bld, uint32(t.Dim))
		fb.ReelTowerAddReelFeatures(bld, uint32(t.ReelFeatures))
		fb.ReelTowerAddIds(bld, ids)
		fb.ReelTowerAddIdEmb(bld, emb)
		fb.ReelTowerAddContent(bld, content)
		reelTower = fb.ReelTowerEnd(bld)
	}

	fb.ModelStart(bld)
	fb.ModelAddFormatVersion(bld, FormatVersion)
	fb.ModelAddModelVersion(bld, version)
	fb.ModelAddSpec(bld, spec)
	if ranker != 0 {
		fb.ModelAddRanker(bld, ranker)
	}
	if userTower != 0 {
		fb.ModelAddUserTower(bld, userTower)
	}
	if reelTower != 0 {
		fb.ModelAddReelTower(bld, reelTower)
	}
	fb.ModelAddTrainFromMs(bld, timeMs(b.TrainFrom))
	fb.ModelAddTrainToMs(bld, timeMs(b.TrainTo))
	fb.ModelAddCreatedMs(bld, timeMs(b.Created))
	bld.FinishWithFileIdentifier(fb.ModelEnd(bld), []byte(fileIdentifier))
	return bld.FinishedBytes()
}

// timeMs is t in ms since the Unix epoch, 0 for the zero time.
func timeMs(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func msTime(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

func floatVec(bld *flatbuffers.Builder, v []float32) flatbuffers.UOffsetT {
	bld.StartVector(4, len(v), 4)
	for i := len(v) - 1; i >= 0; i-- {
		bld.PrependFloat32(v[i])
	}
	return bld.EndVector(len(v))
}

func offsetVec(bld *flatbuffers.Builder, offs []flatbuffers.UOffsetT) flatbuffers.UOffsetT {
	bld.StartVector(4, len(offs), 4)
	for i := len(offs) - 1; i >= 0; i-- {
		bld.PrependUOffsetT(offs[i])
	}
	return bld.EndVector(len(offs))
}

func stringVec(bld *flatbuffers.Builder, s []string) flatbuffers.UOffsetT {
	offs := make([]flatbuffers.UOffsetT, len(s))
	for i, x := range s {
		offs[i] = bld.CreateString(x)
	}
	return offsetVec(bld, offs)
}

func encodeDense(bld *flatbuffers.Builder, d *Dense) flatbuffers.UOffsetT {
	w, b := floatVec(bld, d.W), floatVec(bld, d.B)
	fb.DenseStart(bld)
	fb.DenseAddIn(bld, uint32(d.In))
	fb.DenseAddOut(bld, uint32(d.Out))
	fb.DenseAddAct(bld, byte(d.Act))
	fb.DenseAddW(bld, w)
	fb.DenseAddB(bld, b)
	return fb.DenseEnd(bld)
}

func denseVec(bld *flatbuffers.Builder, ds []Dense) flatbuffers.UOffsetT {
	offs := make([]flatbuffers.UOffsetT, len(ds))
	for i := range ds {
		offs[i] = encodeDense(bld, &ds[i])
	}
	return offsetVec(bld, offs)
}

func encodeMLP(bld *flatbuffers.Builder, m *MLP) flatbuffers.UOffsetT {
	layers := denseVec(bld, m.Layers)
	fb.MLPStart(bld)
	fb.MLPAddLayers(bld, layers)
	return fb.MLPEnd(bld)
}

// The verifier. The flatbuffers Go runtime trusts its buffer: a bad offset
// indexes out of range and panics. verifyModel walks every table, vtable,
// string and vector model.fb's schema can reach with package fbverify and
// checks that each lies inside the buffer, so that the generated accessors
// used after it cannot read out of range.

// The schema of bundle.fbs, field by field.
var (
	denseDesc = &fbverify.Table{Name: "Dense", Fields: []fbverify.Field{
		fbverify.Scalar(4), fbverify.Scalar(4), fbverify.Scalar(1), fbverify.Vector(4), fbverify.Vector(4),
	}}
	mlpDesc  = &fbverify.Table{Name: "MLP", Fields: []fbverify.Field{fbverify.TablesOf(denseDesc)}}
	specDesc = &fbverify.Table{Name: "Spec", Fields: []fbverify.Field{
		fbverify.Strings(), fbverify.Strings(), fbverify.Strings(),
		fbverify.Scalar(4), fbverify.Scalar(4), fbverify.Scalar(8),
	}}
	multitaskDesc = &fbverify.Table{Name: "Multitask", Fields: []fbverify.Field{
		fbverify.TableOf(mlpDesc), fbverify.TablesOf(mlpDesc), fbverify.TablesOf(denseDesc), fbverify.TablesOf(denseDesc),
		fbverify.Strings(), fbverify.Vector(4), fbverify.Scalar(1), fbverify.Scalar(4),
	}}
	userTowerDesc = &fbverify.Table{Name: "UserTower", Fields: []fbverify.Field{fbverify.TableOf(mlpDesc)}}
	reelTowerDesc = &fbverify.Table{Name: "ReelTower", Fields: []fbverify.Field{
		fbverify.Scalar(4), fbverify.Vector(8), fbverify.Vector(4), fbverify.TableOf(mlpDesc), fbverify.Scalar(4),
	}}
	modelDesc = &fbverify.Table{Name: "Model", Fields: []fbverify.Field{
		fbverify.Scalar(4), fbverify.String(), fbverify.TableOf(specDesc),
		fbverify.TableOf(multitaskDesc), fbverify.TableOf(userTowerDesc), fbverify.TableOf(reelTowerDesc),
		fbverify.Scalar(8), fbverify.Scalar(8), fbverify.Scalar(8),
	}}
)

// verifyModel checks model.fb's identifier and every offset it holds. The
// tables and vectors it visits may add up to the file's size and no more:
// a builder writes each once, so more means offsets that alias (a vector
// of a million tables all pointing at the same big one), which would make
// decoding cost far more than the file's size.
func verifyModel(buf []byte) error {
	return fbverify.Verify(buf, modelDesc, fbverify.Options{Identifier: fileIdentifier, AliasFactor: 1})
}

// errField reports a missing required field.
var errField = errors.New("missing field")

// decodeModel verifies model.fb and decodes it into a Bundle.
func decodeModel(buf []byte) (*Bundle, error) {
	if err := verifyModel(buf); err != nil {
		return nil, err
	}
	// Yields between the parts: a server decoding a model beside the one
	// it serves lets the requests waiting for the processor in.
	runtime.Gosched()
	root := fb.GetRootAsModel(buf, 0)
	if v := root.FormatVersion(); v != FormatVersion {
		return nil, fmt.Errorf("format version %d, this build reads version %d", v, FormatVersion)
	}
	b := &Bundle{
		Version:   string(root.ModelVersion()),
		TrainFrom: msTime(root.TrainFromMs()),
		TrainTo:   msTime(root.TrainToMs()),
		Created:   msTime(root.CreatedMs()),
	}
	spec := root.Spec(nil)
	if spec == nil {
		return nil, fmt.Errorf("%w: spec", errField)
	}
	b.Spec = features.Spec{
		User:     decodeStrings(spec.UserLength(), spec.User),
		Reel:     decodeStrings(spec.ReelLength(), spec.Reel),
		Cross:    decodeStrings(spec.CrossLength(), spec.Cross),
		EmbedDim: int(spec.EmbedDim()),
		Version:  int(spec.Version()),
	}
	if fp := b.Spec.Fingerprint(); fp != spec.Fingerprint() {
		return nil, fmt.Errorf("spec fingerprint %016x does not match its names (%016x)", spec.Fingerprint(), fp)
	}
	if r := root.Ranker(nil); r != nil {
		m := &Multitask{Spec: b.Spec, Precision: Precision(r.Precision())}
		if bottom := r.Bottom(nil); bottom != nil {
			m.Bottom = decodeMLP(bottom)
		}
		if r.ExpertsLength() > 0 || r.GatesLength() > 0 {
			m.MMoE = &MMoE{}
			var x fb.MLP
			for i := range r.ExpertsLength() {
				r.Experts(&x, i)
				m.MMoE.Experts = append(m.MMoE.Experts, decodeMLP(&x))
			}
			m.MMoE.Gates = denses(r.GatesLength(), r.Gates)
		}
		m.Heads = denses(r.HeadsLength(), r.Heads)
		m.Tasks = decodeStrings(r.TasksLength(), r.Tasks)
		tab := r.Table()
		m.Weights = floats(&tab, 14)
		if p := r.ServePosition(); p >= 0 {
			m.FixPosition, m.ServePosition = true, int(p)
		}
		b.Ranker = m
		runtime.Gosched()
	}
	if t := root.UserTower(nil); t != nil {
		ut := &UserTower{}
		if mlp := t.Mlp(nil); mlp != nil {
			ut.MLP = decodeMLP(mlp)
		}
		b.UserTower = ut
	}
	if t := root.ReelTower(nil); t != nil {
		rt := &ReelTower{Dim: int(t.Dim()), ReelFeatures: int(t.ReelFeatures())}
		tab := t.Table()
		if o := flatbuffers.UOffsetT(tab.Offset(6)); o != 0 {
			start, n := tab.Vector(o), tab.VectorLen(o)
			rt.IDs = make([]int64, n)
			for i := range rt.IDs {
				rt.IDs[i] = int64(binary.LittleEndian.Uint64(tab.Bytes[int(start)+8*i:]))
			}
		}
		runtime.Gosched()
		rt.IDEmb = floats(&tab, 8)
		runtime.Gosched()
		if mlp := t.Content(nil); mlp != nil {
			rt.Content = decodeMLP(mlp)
		}
		b.ReelTower = rt
	}
	return b, nil
}

func decodeStrings(n int, at func(int) []byte) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = string(at(i))
	}
	return out
}

// floats copies the float vector in the given vtable slot, nil if absent.
func floats(tab *flatbuffers.Table, slot flatbuffers.VOffsetT) []float32 {
	o := flatbuffers.UOffsetT(tab.Offset(slot))
	if o == 0 {
		return nil
	}
	start, n := int(tab.Vector(o)), tab.VectorLen(o)
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(tab.Bytes[start+4*i:]))
		if i%yieldFloats == yieldFloats-1 {
			// A large vector (the reel tower's id vectors) faults its fresh
			// pages in as it is written: a yield now and then lets a
			// server's requests in while a model loads beside it.
			runtime.Gosched()
		}
	}
	return out
}

// yieldFloats is how many floats a decode copies between yields (256 KiB).
const yieldFloats = 1 << 16

func denses(n int, at func(*fb.Dense, int) bool) []Dense {
	out := make([]Dense, n)
	var d fb.Dense
	for i := range out {
		at(&d, i)
		out[i] = decodeDense(&d)
	}
	return out
}

func decodeDense(d *fb.Dense) Dense {
	tab := d.Table()
	return Dense{
		In:  int(d.In()),
		Out: int(d.Out()),
		Act: kernels.Activation(d.Act()),
		W:   floats(&tab, 10),
		B:   floats(&tab, 12),
	}
}

func decodeMLP(m *fb.MLP) MLP {
	return MLP{Layers: denses(m.LayersLength(), m.Layers)}
}
