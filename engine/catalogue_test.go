package engine

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestCatalogueJournal upserts and deletes reels, then starts a second
// engine over a fresh copy of the same store and index with the same
// journal: it must serve what the first was left serving.
func TestCatalogueJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalogue.jsonl")
	cfg := worldConfig{reels: 300, users: 5, authors: 30, known: 300, seed: 31}
	w := newWorld(t, cfg)
	e := w.engine(t, Config{CatalogueLog: path, Epsilon: -1}, w.model(t, "v1", "A", 31))
	if _, err := e.Upsert(Reel{ID: 9001, Author: 4, Upload: w.now - 30_000, Category: -1, Duration: 12}); err != nil {
		t.Fatal(err)
	}
	if err := e.Delete(7); err != nil {
		t.Fatal(err)
	}
	if err := e.Delete(123456); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete of an unknown reel: %v", err)
	}
	// A refused upsert is journaled but refused again on replay.
	if _, err := e.Upsert(Reel{ID: 9002, Author: 4, Embedding: []float32{1}}); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("upsert of a bad embedding: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	// A crash in the middle of a line leaves a torn last line.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"op":"delete","i`)
	f.Close()

	w2 := newWorld(t, cfg)
	e2 := w2.engine(t, Config{CatalogueLog: path, Epsilon: -1}, w2.model(t, "v1", "A", 31))
	if _, ok := w2.store.ReelInfo(9001); !ok || !e2.Model().Index().Contains(9001) {
		t.Error("the upserted reel is not back")
	}
	if e2.Model().Index().Contains(7) || !e2.isDeleted(7) {
		t.Error("the deleted reel is back")
	}
	if _, ok := w2.store.ReelInfo(9002); ok {
		t.Error("the refused upsert was applied")
	}
	if err := e2.Delete(7); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleting the deleted reel again: %v", err)
	}
	// The torn line was cut, and new changes append after the whole ones.
	if _, err := e2.Upsert(Reel{ID: 9003, Author: 4, Upload: w.now, Category: -1}); err != nil {
		t.Fatal(err)
	}
	e2.Close()
	w3 := newWorld(t, cfg)
	e3 := w3.engine(t, Config{CatalogueLog: path, Epsilon: -1}, w3.model(t, "v1", "A", 31))
	defer e3.Close()
	if _, ok := w3.store.ReelInfo(9003); !ok || !e3.isDeleted(7) {
		t.Error("the journal after the cut does not replay")
	}
	// A damaged line before the end is an error, not a silent skip.
	data, _ := os.ReadFile(path)
	os.WriteFile(path, append([]byte("not json\n"), data...), 0o644)
	w4 := newWorld(t, cfg)
	if _, err := New(Config{CatalogueLog: path, Clock: w4.clock()}, w4.store, w4.model(t, "v1", "A", 31)); err == nil {
		t.Error("a damaged journal accepted")
	}
}
