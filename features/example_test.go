package features_test

import (
	"fmt"
	"slices"

	"github.com/reelrank/reelrank/eventlog"
	"github.com/reelrank/reelrank/features"
)

func Example() {
	store, err := features.NewStore(features.Config{EmbedDim: 2, Categories: 2})
	if err != nil {
		panic(err)
	}
	// The catalogue: one user, two reels by author 9.
	store.PutUser(features.User{ID: 1, Country: 0, Language: 0, AgeBucket: 1, Device: 0})
	store.PutAuthor(9, 1000)
	store.PutReel(features.Reel{ID: 100, Author: 9, Upload: 1767571200000, Duration: 15, Embedding: []float32{1, 0}, Category: 0})
	store.PutReel(features.Reel{ID: 101, Author: 9, Upload: 1767571200000, Duration: 30, Embedding: []float32{0, 1}, Category: 1})

	// The user watched reel 100 to the end and liked it.
	t := int64(1767571300000)
	err = store.Apply([]eventlog.Event{
		{Type: eventlog.Impression, Has: eventlog.Required(eventlog.Impression), Time: t, User: 1, Reel: 100, Author: 9, Session: 5, Propensity: 0.5, Arm: "demo"},
		{Type: eventlog.Watch, Has: eventlog.Required(eventlog.Watch), Time: t + 15000, User: 1, Reel: 100, Author: 9, Session: 5, Seconds: 15, Fraction: 1},
		{Type: eventlog.Like, Has: eventlog.Required(eventlog.Like), Time: t + 15500, User: 1, Reel: 100, Author: 9, Session: 5},
	})
	if err != nil {
		panic(err)
	}

	// Rank the next slot: features of both reels for user 1, a minute later.
	req := &features.Request{User: 1, Reels: []int64{100, 101},
		Context: features.Context{Time: t + 60000, Session: 5, Position: 1}}
	if err := store.Features(req); err != nil {
		panic(err)
	}
	spec := store.Spec()
	cross := func(i int, name string) float32 {
		return req.CrossVec[i*len(spec.Cross)+slices.Index(spec.Cross, name)]
	}
	for i, id := range req.Reels {
		fmt.Printf("reel %d: history cosine %.1f, same category as last %.0f\n",
			id, cross(i, "x_hist_cos"), cross(i, "x_same_cat_as_last"))
	}
	// Output:
	// reel 100: history cosine 1.0, same category as last 1
	// reel 101: history cosine 0.0, same category as last 0
}
