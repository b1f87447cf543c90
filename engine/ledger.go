package engine

// The ledger of idempotency keys: a write that carries a key (an Event
// batch, an Upsert, a Delete) is applied once however often it is sent; a
// retry is answered from the ledger with the first attempt's result. The
// ledger holds the Config.MaxKeys most recent keys. It is rebuilt on
// restart from the logs (a keyed write's key is logged with it, in the
// same write) and from the checkpoint, so that a retry after a crash is
// recognised too.

// Kinds of keyed writes.
const (
	keyEvent uint8 = iota + 1
	keyUpsert
	keyDelete
)

// ledgerEntry is what the ledger remembers of a keyed write.
type ledgerEntry struct {
	kind uint8
	// durable is the sequence of the log the write went to that must be
	// on disk before a retry is answered (the original may still be
	// waiting for its fsync); 0 when it is known to be.
	durable  uint64
	accepted uint32
	rejected uint32
	reason   string
	replaced bool
}

// ledger is a bounded map of keys, oldest dropped first. The engine's
// writeMu guards it.
type ledger struct {
	max   int
	m     map[string]ledgerEntry
	order []string // a ring of the keys in m, oldest at head
	head  int
}

func newLedger(max int) *ledger {
	return &ledger{max: max, m: make(map[string]ledgerEntry)}
}

func (l *ledger) get(key string) (ledgerEntry, bool) {
	if key == "" {
		return ledgerEntry{}, false
	}
	e, ok := l.m[key]
	return e, ok
}

// put records key, dropping the oldest key when the ledger is full.
func (l *ledger) put(key string, e ledgerEntry) {
	if key == "" || l.max <= 0 {
		return
	}
	if _, ok := l.m[key]; ok {
		l.m[key] = e
		return
	}
	if len(l.order) < l.max {
		l.order = append(l.order, key)
	} else {
		delete(l.m, l.order[l.head])
		l.order[l.head] = key
		l.head = (l.head + 1) % l.max
	}
	l.m[key] = e
}

// keys returns the keys oldest first, with their entries.
func (l *ledger) keys() []checkpointKey {
	out := make([]checkpointKey, 0, len(l.order))
	for i := range l.order {
		k := l.order[(l.head+i)%len(l.order)]
		e := l.m[k]
		out = append(out, checkpointKey{Key: k, Kind: e.kind, Accepted: e.accepted, Rejected: e.rejected,
			Reason: e.reason, Replaced: e.replaced})
	}
	return out
}
