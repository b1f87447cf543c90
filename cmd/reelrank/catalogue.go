package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/reelrank/reelrank/sim"
	"github.com/reelrank/reelrank/train"
)

// trainFrom trains on the events for the catalogue and oracle the flags
// name: with a catalogue (a served model folder, a snapshot or an export,
// train.OpenCatalogue), that catalogue, and the world, when named, as the
// oracle only; without one, the world's catalogue and oracle, the world
// being the log's folder when not named.
func trainFrom(ctx context.Context, events, catalogue, world string, cfg train.Config) (*train.Result, error) {
	var oracle train.Oracle
	var cat *train.Catalogue
	if catalogue == "" && world == "" {
		world = filepath.Dir(events)
	}
	if world != "" {
		w, err := sim.Open(world)
		if err != nil {
			if catalogue == "" {
				return nil, fmt.Errorf("train: the catalogue: %w (name it with --catalogue, or the world with --world)", err)
			}
			return nil, fmt.Errorf("train: the oracle: %w", err)
		}
		defer w.Close()
		oracle = train.WorldOracle(w)
		if catalogue == "" {
			cat = train.CatalogueOfWorld(w)
		}
	}
	if catalogue != "" {
		var err error
		if cat, err = train.OpenCatalogue(catalogue); err != nil {
			return nil, err
		}
		cfg.Log("catalogue %s: %d users, %d authors, %d follows, %d reels", catalogue, len(cat.Users), len(cat.Authors), len(cat.Follows), len(cat.Reels))
	}
	return train.RunCatalogue(ctx, cat, events, oracle, cfg)
}
