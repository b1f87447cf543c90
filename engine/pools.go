package engine

import (
	"math/rand/v2"
	"slices"
	"sync"
)

// freshPool holds the reels uploaded recently, by upload time, so that a
// request can add the newest of them to its candidates whatever the index
// holds; and the reels pinned in it because the index could not take them
// (no trained index yet), which stay until a model's index does.
type freshPool struct {
	mu     sync.RWMutex
	ids    []int64 // by upload time, then id, ascending
	up     []int64
	at     map[int64]int64 // id → upload, for the reels in ids
	pinned []int64         // oldest first
}

// add puts reel id uploaded at up (ms) in the pool, moving it when it is
// there already, and drops the reels older than oldest. pin keeps it
// whatever its age.
func (p *freshPool) add(id, up, oldest int64, pin bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.at == nil {
		p.at = make(map[int64]int64)
	}
	p.removeLocked(id)
	if pin {
		p.pinned = append(p.pinned, id)
	}
	// Drop what aged out of the window, from the front.
	k := 0
	for k < len(p.ids) && p.up[k] < oldest {
		delete(p.at, p.ids[k])
		k++
	}
	if k > 0 {
		p.ids, p.up = slices.Delete(p.ids, 0, k), slices.Delete(p.up, 0, k)
	}
	if up < oldest {
		return
	}
	j, _ := slices.BinarySearch(p.up, up)
	for j < len(p.ids) && p.up[j] == up && p.ids[j] < id {
		j++
	}
	p.ids = slices.Insert(p.ids, j, id)
	p.up = slices.Insert(p.up, j, up)
	p.at[id] = up
}

// remove takes reel id out of the pool, pinned or not.
func (p *freshPool) remove(id int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.removeLocked(id)
}

func (p *freshPool) removeLocked(id int64) {
	if i := slices.Index(p.pinned, id); i >= 0 {
		p.pinned = slices.Delete(p.pinned, i, i+1)
	}
	up, ok := p.at[id]
	if !ok {
		return
	}
	delete(p.at, id)
	j, _ := slices.BinarySearch(p.up, up)
	for ; j < len(p.ids) && p.up[j] == up; j++ {
		if p.ids[j] == id {
			p.ids, p.up = slices.Delete(p.ids, j, j+1), slices.Delete(p.up, j, j+1)
			return
		}
	}
}

// unpin stops pinning reel id; it stays while its upload time is in the
// window.
func (p *freshPool) unpin(id int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if i := slices.Index(p.pinned, id); i >= 0 {
		p.pinned = slices.Delete(p.pinned, i, i+1)
	}
}

// pinnedIDs returns a copy of the pinned reels.
func (p *freshPool) pinnedIDs() []int64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return slices.Clone(p.pinned)
}

// newest appends to dst up to max reels: the newest pinned ones, then the
// newest uploaded in [from, to].
func (p *freshPool) newest(dst []int64, from, to int64, max int) []int64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	n := 0
	for i := len(p.pinned) - 1; i >= 0 && n < max; i-- {
		dst = append(dst, p.pinned[i])
		n++
	}
	j, _ := slices.BinarySearch(p.up, to+1)
	for j--; j >= 0 && n < max && p.up[j] >= from; j-- {
		dst = append(dst, p.ids[j])
		n++
	}
	return dst
}

// size returns the reels in the window part and the pinned ones.
func (p *freshPool) size() (window, pinned int) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.ids), len(p.pinned)
}

// explorePool holds the reels with little evidence. Reels join it when
// the engine starts (every reel under the threshold), when they are
// uploaded or upserted, and leave it once a request sees that they have
// gathered enough impressions, or when they are deleted.
type explorePool struct {
	mu  sync.RWMutex
	ids []int64
	pos map[int64]int
}

func (p *explorePool) add(id int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pos == nil {
		p.pos = make(map[int64]int)
	}
	if _, ok := p.pos[id]; ok {
		return
	}
	p.pos[id] = len(p.ids)
	p.ids = append(p.ids, id)
}

// remove takes the reels out of the pool (swapping the last into each
// hole).
func (p *explorePool) remove(ids ...int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range ids {
		i, ok := p.pos[id]
		if !ok {
			continue
		}
		last := len(p.ids) - 1
		p.ids[i] = p.ids[last]
		p.pos[p.ids[i]] = i
		p.ids = p.ids[:last]
		delete(p.pos, id)
	}
}

// sample appends to dst up to k reels of the pool drawn at random (all
// of them when the pool holds k or fewer). Draws may repeat a reel; the
// candidates are deduplicated after.
func (p *explorePool) sample(r *rand.Rand, k int, dst []int64) []int64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if len(p.ids) <= k {
		return append(dst, p.ids...)
	}
	for range k {
		dst = append(dst, p.ids[r.IntN(len(p.ids))])
	}
	return dst
}

func (p *explorePool) size() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.ids)
}
