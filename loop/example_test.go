package loop_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/reelrank/reelrank/loop"
)

// A loop over a small world: two days of the simulator's popularity
// policy, then the engine serving and retraining every night.
func Example() {
	dir, err := os.MkdirTemp("", "loop")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	w := loop.DefaultWorld()
	w.Users, w.Reels, w.Days = 600, 1200, 4
	rep, err := loop.Run(context.Background(), loop.Config{World: w, Threads: 1}, dir)
	if err != nil {
		log.Fatal(err)
	}
	for _, arm := range rep.Arms {
		f, _ := rep.Figure(w.Days, arm)
		fmt.Printf("%s: %.1f s watched per user, %d distinct reels, regret %.3f\n", arm, f.WatchTimePerUser, f.Reels, f.Regret)
	}
}
