package engine

import (
	"io"
	"sync"

	"github.com/reelrank/reelrank/ranker"
)

// gpuBatchers holds, with Config.Device ranker.CUDA, one ranker.Batcher
// per model scored on the GPU (nil for a model the GPU cannot run). A
// model retired by a swap keeps its batcher until the engine closes; the
// oldest goes past maxGPUModels.
type gpuBatchers struct {
	mu     sync.Mutex
	order  []*ranker.Multitask
	m      map[*ranker.Multitask]*ranker.Batcher
	closed bool
}

// maxGPUModels bounds the models resident on the GPU: the control, a
// canary and the ones just swapped out.
const maxGPUModels = 4

// batcherFor returns m's batcher, making it (the model uploaded to the
// GPU) on first use; nil means the CPU path.
func (e *Engine) batcherFor(m *ranker.Multitask) *ranker.Batcher {
	if e.cfg.Device != ranker.CUDA {
		return nil
	}
	g := &e.gpu
	g.mu.Lock()
	defer g.mu.Unlock()
	if b, ok := g.m[m]; ok || g.closed {
		return b
	}
	if g.m == nil {
		g.m = map[*ranker.Multitask]*ranker.Batcher{}
	}
	var b *ranker.Batcher
	sc, err := ranker.NewDeviceScorer(m, ranker.CUDA)
	if err == nil {
		b, err = ranker.NewBatcher(m, sc, e.cfg.Batch)
		if err == nil {
			e.cfg.Logger.Info("engine: ranker batches on the GPU", "backend", sc.Backend())
		} else if c, ok := sc.(io.Closer); ok {
			_ = c.Close()
		}
	}
	if err != nil {
		e.cfg.Logger.Warn("engine: the ranker scores on the CPU", "reason", err)
	}
	if len(g.order) == maxGPUModels {
		old := g.order[0]
		g.order = g.order[1:]
		closeBatcher(g.m[old])
		delete(g.m, old)
	}
	g.order = append(g.order, m)
	g.m[m] = b
	return b
}

func (g *gpuBatchers) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	for m, b := range g.m {
		closeBatcher(b)
		delete(g.m, m)
	}
	g.order = nil
}

// closeBatcher drains b and frees its GPU scorer.
func closeBatcher(b *ranker.Batcher) {
	if b == nil {
		return
	}
	_ = b.Close()
	if c, ok := b.Primary().(io.Closer); ok {
		_ = c.Close()
	}
}
