package geo

import "math/bits"

// bucketIndex narrows the binary search of a large range table to the few
// ranges around one bucket of addresses, so that a lookup touches a couple
// of cache lines instead of missing the cache on each of twenty steps of a
// search over megabytes.
//
// Buckets split a window of the address space, the prefix that the middle
// 97% of range starts share (for IPv6 in practice 2000::/3), into 2^b equal
// parts by the b address bits after the window's prefix. Addresses outside
// the window search the whole table, which is still correct. Only the top 64
// bits of an address take part: all of an IPv4 address (shifted up), the
// high half of an IPv6 one.
//
// The zero bucketIndex indexes nothing; lookups then search the whole table.
type bucketIndex struct {
	// idx[k] is the range holding the first address of bucket k, and
	// idx[2^b] the range holding the first address after the window.
	idx      []uint32
	win      uint64 // the window's prefix, in the top p bits
	p        uint8  // the window's prefix length
	winShift uint8  // 64-p; Go shifts of 64 give 0, which makes p = 0 work
	keyShift uint8  // 64-b
}

// indexMin is the table size from which an index pays: below it the whole
// table stays in cache.
const indexMin = 1024

// bounds returns lo, hi such that the range holding an address whose top 64
// bits are top lies in [lo, hi), hi-lo > 0, for a table of n ranges.
func (ix *bucketIndex) bounds(top uint64, n int) (lo, hi int) {
	if ix.idx == nil || (top^ix.win)>>ix.winShift != 0 {
		return 0, n
	}
	k := top << ix.p >> ix.keyShift
	return int(ix.idx[k]), int(ix.idx[k+1]) + 1
}

// newBucketIndex indexes starts, sorted range starts of an address family
// width bits wide. top returns a start's top 64 bits and whether its other
// bits are all zero.
func newBucketIndex[S any](starts []S, width int, top func(S) (uint64, bool)) bucketIndex {
	n := len(starts)
	if n < indexMin {
		return bucketIndex{}
	}
	first, _ := top(starts[n/64])
	last, _ := top(starts[n-1-n/64])
	p := bits.LeadingZeros64(first ^ last)
	// About eight ranges a bucket, so that the index costs an eighth of the
	// table, and at most 2^16 buckets; only address bits below the window.
	b := min(bits.Len(uint(n/8)), 16, width-p)
	if b <= 0 {
		return bucketIndex{}
	}
	ix := bucketIndex{
		idx:      make([]uint32, 1<<b+1),
		p:        uint8(p),
		winShift: uint8(64 - p),
		keyShift: uint8(64 - b),
	}
	if p > 0 {
		ix.win = first >> (64 - p) << (64 - p)
	}
	// atOrBefore reports whether starts[j] <= the address with top 64 bits a
	// and all other bits zero.
	atOrBefore := func(j int, a uint64) bool {
		t, rest0 := top(starts[j])
		return t < a || t == a && rest0
	}
	j := 0
	for k := range 1 << b {
		a := ix.win | uint64(k)<<(64-p-b)
		for j+1 < n && atOrBefore(j+1, a) {
			j++
		}
		ix.idx[k] = uint32(j)
	}
	// The address after the window, unless the window runs to the top.
	ix.idx[1<<b] = uint32(n - 1)
	if after := ix.win + 1<<(64-p); p > 0 && after != 0 {
		for j+1 < n && atOrBefore(j+1, after) {
			j++
		}
		ix.idx[1<<b] = uint32(j)
	}
	return ix
}
