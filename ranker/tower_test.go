package ranker

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func refEmbed(m *MLP, x []float32) []float64 {
	in := make([]float64, len(x))
	for i, v := range x {
		in[i] = float64(v)
	}
	return refMLP(m, in)
}

func unit(v []float64) []float64 {
	var s float64
	for _, x := range v {
		s += x * x
	}
	out := make([]float64, len(v))
	for i := range v {
		out[i] = v[i] / math.Sqrt(s)
	}
	return out
}

func near(t *testing.T, what string, got []float32, want []float64) {
	t.Helper()
	for i := range want {
		if math.Abs(float64(got[i])-want[i]) > 1e-5 {
			t.Fatalf("%s[%d] = %v, want %v", what, i, got[i], want[i])
		}
	}
}

func TestUserTower(t *testing.T) {
	sp := storeSpec(t)
	rng := rand.New(rand.NewPCG(8, 9))
	ut := NewUserTower(len(sp.User), []int{64}, 32, rng)
	const n = 5
	users := randVec(rng, n*len(sp.User))
	dst := make([]float32, n*32)
	if err := ut.EmbedBatch(users, dst, n); err != nil {
		t.Fatal(err)
	}
	one := make([]float32, 32)
	for i := range n {
		u := users[i*len(sp.User) : (i+1)*len(sp.User)]
		near(t, "batch", dst[i*32:(i+1)*32], unit(refEmbed(&ut.MLP, u)))
		if err := ut.Embed(u, one); err != nil {
			t.Fatal(err)
		}
		near(t, "one", one, unit(refEmbed(&ut.MLP, u)))
	}
	if err := ut.Embed(users[:10], one); !errors.Is(err, ErrBadInput) {
		t.Fatalf("short user vector: %v", err)
	}
	users[3] = float32(math.NaN())
	if err := ut.Embed(users[:len(sp.User)], one); !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "feature 3 is NaN") {
		t.Fatalf("NaN user feature: %v", err)
	}
}

func TestReelTower(t *testing.T) {
	sp := storeSpec(t)
	rng := rand.New(rand.NewPCG(8, 9))
	ids := []int64{100, 7, 55}
	rt := NewReelTower(sp, []int{48}, 16, ids, rng)
	nR, nE := len(sp.Reel), sp.EmbedDim
	batch := []int64{7, 999, 100} // 999 is new: content only
	reels := randVec(rng, len(batch)*nR)
	embs := randVec(rng, len(batch)*nE)
	dst := make([]float32, len(batch)*16)
	if err := rt.EmbedBatch(batch, reels, embs, dst); err != nil {
		t.Fatal(err)
	}
	for i, id := range batch {
		x := append(append([]float32(nil), reels[i*nR:(i+1)*nR]...), embs[i*nE:(i+1)*nE]...)
		want := refEmbed(&rt.Content, x)
		known, err := rt.Known(id)
		if err != nil {
			t.Fatal(err)
		}
		if j := indexOf(ids, id); j >= 0 {
			if !known {
				t.Fatalf("reel %d: not known", id)
			}
			for k := range want {
				want[k] += float64(rt.IDEmb[j*16+k])
			}
		} else if known {
			t.Fatalf("reel %d: known", id)
		}
		near(t, "reel", dst[i*16:(i+1)*16], unit(want))
		one := make([]float32, 16)
		if err := rt.Embed(id, reels[i*nR:(i+1)*nR], embs[i*nE:(i+1)*nE], one); err != nil {
			t.Fatal(err)
		}
		near(t, "one reel", one, unit(want))
	}
	if err := rt.Embed(7, reels[:nR], embs[:nE-1], dst[:16]); !errors.Is(err, ErrBadInput) {
		t.Fatalf("short embedding: %v", err)
	}
	embs[nE+2] = float32(math.Inf(-1))
	if err := rt.EmbedBatch(batch, reels, embs, dst); !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "reel 999: embedding value 2 is -Inf") {
		t.Fatalf("Inf embedding: %v", err)
	}
	dup := NewReelTower(sp, nil, 4, []int64{3, 3}, rng)
	if err := dup.Prepare(); !errors.Is(err, ErrInvalidModel) || !strings.Contains(err.Error(), "listed twice") {
		t.Fatalf("duplicate ids: %v", err)
	}
}

func indexOf(ids []int64, id int64) int {
	for i, x := range ids {
		if x == id {
			return i
		}
	}
	return -1
}
