package modeldir_test

import (
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/reelrank/reelrank/ann"
	"github.com/reelrank/reelrank/drift"
	"github.com/reelrank/reelrank/features"
	"github.com/reelrank/reelrank/modeldir"
	"github.com/reelrank/reelrank/ranker"
)

// The tests' small world: a store of testReels reels with content
// embeddings of testEmbed, towers of testDim.
const (
	testReels = 300
	testEmbed = 8
	testDim   = 8
)

// smallContents returns the contents of a version: a store, a random
// bundle for it named version, the reel vectors and a drift reference.
func smallContents(t testing.TB, version string, seed uint64) modeldir.Contents {
	t.Helper()
	c, err := newContents(version, seed)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newContents is smallContents for an example, which has no testing.T.
func newContents(version string, seed uint64) (modeldir.Contents, error) {
	var c modeldir.Contents
	st, err := features.NewStore(features.Config{EmbedDim: testEmbed, Categories: 4})
	if err != nil {
		return c, err
	}
	r := rand.New(rand.NewPCG(seed, 5))
	emb := make([]float32, testEmbed)
	ids := make([]int64, testReels)
	for i := range ids {
		ids[i] = int64(i + 1)
		for j := range emb {
			emb[j] = float32(r.NormFloat64())
		}
		if err := st.PutReel(features.Reel{ID: ids[i], Author: 1000 + int64(i%17), Upload: 1767571200000 - int64(i)*60_000,
			Duration: 15, Embedding: emb, Category: -1}); err != nil {
			return c, err
		}
	}
	if err := st.FitCategories(seed); err != nil {
		return c, err
	}
	sp := st.Spec()
	mt, err := ranker.NewMultitask(sp, ranker.Config{Hidden: []int{8}}, r)
	if err != nil {
		return c, err
	}
	b := &ranker.Bundle{Version: version, Spec: sp, Ranker: mt,
		UserTower: ranker.NewUserTower(len(sp.User), []int{8}, testDim, r),
		ReelTower: ranker.NewReelTower(sp, []int{8}, testDim, ids[:testReels/2], r)}
	vecs := make([]float32, testReels*testDim)
	for i := range vecs {
		vecs[i] = float32(r.NormFloat64())
	}
	rb := drift.NewBuilder([]string{"a", "b"}, 0, seed)
	for range 200 {
		if err := rb.Add([]float32{float32(r.NormFloat64()), float32(r.IntN(2))}); err != nil {
			return c, err
		}
	}
	ref, err := rb.Build(0)
	if err != nil {
		return c, err
	}
	return modeldir.Contents{Bundle: b, IDs: ids, Vectors: ann.Vectors{Dim: testDim, Data: vecs}, Store: st, Reference: ref,
		Created: time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)}, nil
}

// copyDir copies the folder src to dst, files and sub-folders.
func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(to)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
}
