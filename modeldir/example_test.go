package modeldir_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/reelrank/reelrank/modeldir"
)

// Example writes a version folder, opens it (which builds its index) and
// lists the versions beside it.
func Example() {
	root, err := os.MkdirTemp("", "modeldir-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(root)
	c, err := newContents("2026-01-05.1", 1) // a store, a random bundle and vectors of 300 reels
	if err != nil {
		panic(err)
	}

	dir := filepath.Join(root, "2026-01-05.1")
	if err := modeldir.Write(dir, c); err != nil {
		panic(err)
	}
	v, err := modeldir.Open(context.Background(), dir, modeldir.Options{})
	if err != nil {
		panic(err)
	}
	defer v.Close()
	fmt.Printf("model %s, checked against its manifest: %v\n", v.Version(), v.Verified())
	fmt.Printf("index of %d reels in %d dimensions, drift series %v\n", v.Index().Len(), v.Index().Options().Dim, v.Reference().Names())
	fmt.Println("spec check:", v.Check(c.Store.Spec()))

	infos, err := modeldir.List(root)
	if err != nil {
		panic(err)
	}
	for _, in := range infos {
		fmt.Println(in.Version, in.Created.Format("2006-01-02"))
	}
	// Output:
	// model 2026-01-05.1, checked against its manifest: true
	// index of 300 reels in 8 dimensions, drift series [a b]
	// spec check: <nil>
	// 2026-01-05.1 2026-01-05
}
