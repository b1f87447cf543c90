// Package modeldir owns the folder of one served model version: what
// `reelrank train --out DIR` writes and `reelrank serve --bundle DIR`
// reads. Nothing else needs to know its file names.
//
// # Layout
//
// A version folder holds
//
//	bundle/          the model bundle (ranker.Save: ranker, user and reel towers, report)
//	reels.fvecs      the reel tower's vectors of the catalogue
//	reels.ids        their reel ids, one decimal id a line
//	features.snap    the feature store after the training log
//	reference.json   the drift reference of the model's inputs and heads (optional)
//	manifest.json    format, model version, creation time, spec fingerprint, dimensions,
//	                 and the size and SHA-256 of every file above
//	reels.ivf        the IVF-PQ index, built from the vectors on first Open and saved
//	served/          the engine's durable state (engine.Config.Dir), left to the engine
//
// The index carries its own checksums (ann.Open checks them), and served/
// changes while serving, so neither is in the manifest.
//
// # Writing
//
// [Write] writes every file into a hidden sibling folder, syncs them,
// writes the manifest last and renames the folder into place
// (fsutil.ReplaceDir): a crash leaves the old version or the new one,
// never part of one. It refuses to replace a folder that holds served/
// state, which would be thrown away with it.
//
//	err := modeldir.Write(dir, modeldir.Contents{Bundle: b, IDs: ids,
//		Vectors: ann.Vectors{Dim: b.ReelTower.Dim, Data: vecs}, Store: store})
//
// # Opening
//
// [Open] reads the manifest and checks every file's size and checksum
// before loading anything; a missing, truncated or corrupt file is an
// error wrapping [ErrCorrupt] that names the file and what is wrong. It
// then loads the bundle and the reference and opens the index, building
// and saving it when it is missing. A folder without a manifest (written
// by an older build) opens too, without checksums, with a note through
// Options.Logf.
//
//	v, err := modeldir.Open(ctx, dir, modeldir.Options{Logf: logf})
//	model, err := engine.NewModel(v.Bundle(), v.Index(), "default")
//	state, err := v.StateDir()  // served/, with the older layout's logs adopted
//	clock, err := v.Clock(modeldir.ClockAuto) // wall or the data's, once it Observes the state's newest event
//
// [List] lists the version folders under a root, newest first.
package modeldir
