package gossip

import (
	"sync"
	"time"
)

// A version is a hybrid logical clock reading (Kulkarni et al., "Logical
// Physical Clocks", 2014): the upper 48 bits are wall-clock milliseconds,
// the lower 16 a counter. It orders what one node wrote after what it had
// seen (a node observes every version it receives, so anything it writes
// next is newer), like a Lamport clock, while staying close to real time,
// so that "the newer override" means what an operator expects and a
// version also dates its entry (tombstone expiry reads the date from it).
const logicalBits = 16

// maxClockSkew bounds how far ahead of our own clock a remote version may
// be. One from further ahead comes from a node whose clock is wrong: taken,
// it would beat every override written anywhere until real time caught up,
// so it is refused (and counted) rather than observed.
const maxClockSkew = time.Minute

// hlc is this node's hybrid logical clock. It is safe for concurrent use.
type hlc struct {
	now func() time.Time

	mu   sync.Mutex
	last uint64 // the highest version issued or observed; under mu
}

// physical is the clock's reading of t with a zero counter.
func physical(t time.Time) uint64 {
	ms := t.UnixMilli()
	if ms < 0 {
		return 0
	}
	return uint64(ms) << logicalBits
}

// versionTime is the wall-clock time a version was issued at (to the
// millisecond).
func versionTime(v uint64) time.Time {
	return time.UnixMilli(int64(v >> logicalBits))
}

// Now issues a version newer than every one issued or observed before.
func (h *hlc) Now() uint64 {
	pt := physical(h.now())
	h.mu.Lock()
	defer h.mu.Unlock()
	if pt > h.last {
		h.last = pt
	} else {
		// The counter may carry into the milliseconds: the clock then runs
		// a little ahead of the wall, which HLC allows.
		h.last++
	}
	return h.last
}

// Observe takes in a version received from a peer, so that versions issued
// later are newer. It reports false, observing nothing, for a version more
// than maxClockSkew ahead of our clock.
func (h *hlc) Observe(v uint64) bool {
	if v > physical(h.now().Add(maxClockSkew)) {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.last = max(h.last, v)
	return true
}

// Last is the highest version issued or observed.
func (h *hlc) Last() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}
