package sim_test

import (
	"context"
	"fmt"
	"os"

	"github.com/reelrank/reelrank/sim"
)

// Generate a tiny world, open it, and ask the oracle about an impression.
func Example() {
	dir, err := os.MkdirTemp("", "world")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	cfg := sim.DefaultConfig()
	cfg.Users, cfg.Reels, cfg.Days = 500, 2000, 2
	s, err := sim.Generate(context.Background(), cfg, dir, sim.GenerateOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("uploads:", s.Counts.Uploads, "sessions:", s.Counts.Sessions, "impressions:", s.Counts.Impressions)

	w, err := sim.Open(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Close()
	reel, _ := w.Reel(42)
	fmt.Println("reel 42:", reel.Duration, "s,", reel.Description)
	p := w.Probs(7, 42, sim.Context{Time: w.Start() + 20*3600*1000})
	fmt.Printf("user 7 skips it with p=%.3f, watches half of it with p=%.3f\n", p.Skip, p.WatchThrough(0.5))
	fmt.Println("embedding dimension:", len(w.Embedding(42)))
	// Output:
	// uploads: 10 sessions: 329 impressions: 2025
	// reel 42: 6 s, #education history facts facts math must
	// user 7 skips it with p=0.491, watches half of it with p=0.408
	// embedding dimension: 64
}
