package geo

import (
	"encoding/binary"
	"math"
	"math/bits"
	"net/netip"
	"slices"
)

// u128 is an IPv6 address as two big-endian halves, so that ordering is
// (hi, lo) and a range table compares two integers instead of 16 bytes.
type u128 struct{ hi, lo uint64 }

var maxU128 = u128{math.MaxUint64, math.MaxUint64}

func u128Of(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

func (u u128) addr() netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], u.hi)
	binary.BigEndian.PutUint64(b[8:], u.lo)
	return netip.AddrFrom16(b)
}

func (u u128) less(v u128) bool { return u.hi < v.hi || (u.hi == v.hi && u.lo < v.lo) }

// next returns u+1; callers check u != maxU128 first.
func (u u128) next() u128 {
	if u.lo == math.MaxUint64 {
		return u128{u.hi + 1, 0}
	}
	return u128{u.hi, u.lo + 1}
}

// prev returns u-1; callers check u != 0 first.
func (u u128) prev() u128 {
	if u.lo == 0 {
		return u128{u.hi - 1, math.MaxUint64}
	}
	return u128{u.hi, u.lo - 1}
}

// hostMask returns the mask of the host bits of a /n prefix.
func hostMask(n int) u128 {
	switch {
	case n <= 0:
		return maxU128
	case n < 64:
		return u128{math.MaxUint64 >> n, math.MaxUint64}
	case n < 128:
		return u128{0, math.MaxUint64 >> (n - 64)}
	default:
		return u128{}
	}
}

func (u u128) or(v u128) u128 { return u128{u.hi | v.hi, u.lo | v.lo} }

// commonBits returns how many leading bits u and v share (128 when equal).
func commonBits(u, v u128) int {
	if x := u.hi ^ v.hi; x != 0 {
		return bits.LeadingZeros64(x)
	}
	return 64 + bits.LeadingZeros64(u.lo^v.lo)
}

// ipv4At returns the 32 bits of u that follow its first n bits (n <= 96):
// the IPv4 address an alias network embeds.
func (u u128) ipv4At(n int) uint32 {
	var top uint64
	switch {
	case n == 0:
		top = u.hi
	case n < 64:
		top = u.hi<<n | u.lo>>(64-n)
	default:
		top = u.lo << (n - 64)
	}
	return uint32(top >> 32)
}

// alias is an IPv6 network the database points at its IPv4 subtree: an
// address inside it is answered as the IPv4 address in the 32 bits after
// the prefix (6to4 2002:c000:0201:: is 192.0.2.1).
type alias struct {
	first, last u128
	bits        int
}

func (a *alias) contains(u u128) bool { return !u.less(a.first) && !a.last.less(u) }

// rangeSet maps every address to a value with two sorted tables of range
// starts. Range i of a family covers [start[i], start[i+1]-1] (the last one
// runs to the top of the address space) and start[0] is always 0, so every
// address falls in exactly one range. Neighbouring ranges carry different
// values, which is what lets lookup report the widest prefix of one value.
// The exception is an alias range (see alias): it stands for a copy of the
// IPv4 table, never merges with its neighbours, and lookup answers addresses
// in it from the IPv4 table instead of from its value.
//
// The slices are written once, while building, and only read afterwards.
type rangeSet[V uint16 | uint32] struct {
	start4  []uint32
	val4    []V
	start6  []u128
	val6    []V
	aliases []alias // at most four, sorted; empty when the IPv4 table is one range
	unknown V       // the value of invalid addresses (location 0's)

	// Indexes that narrow the binary search of a large table (see
	// bucketIndex); zero for small ones.
	idx4, idx6 bucketIndex
}

// lookup returns the value at addr and the shortest prefix length L such
// that addr/L gets that value throughout. IPv4-mapped IPv6 addresses are
// looked up, and measured, as IPv4.
func (s *rangeSet[V]) lookup(addr netip.Addr) (V, int) {
	if addr.Is4In6() {
		addr = addr.Unmap()
	}
	if addr.Is4() {
		a4 := addr.As4()
		return s.lookup4(binary.BigEndian.Uint32(a4[:]))
	}
	if !addr.IsValid() {
		return s.unknown, 0
	}
	u := u128Of(addr)
	for i := range s.aliases {
		if a := &s.aliases[i]; a.contains(u) {
			v, b := s.lookup4(u.ipv4At(a.bits))
			return v, a.bits + b
		}
	}
	return s.lookup6(u)
}

func (s *rangeSet[V]) lookup4(x uint32) (V, int) {
	st := s.start4
	// Invariant: st[lo] <= x < st[hi], reading st[len(st)] as beyond the top.
	lo, hi := s.idx4.bounds(uint64(x)<<32, len(st))
	for hi-lo > 1 {
		m := int(uint(lo+hi) >> 1)
		if st[m] <= x {
			lo = m
		} else {
			hi = m
		}
	}
	// addr/L stays inside the range iff it excludes the address just below
	// the range and the one just above it, i.e. iff L exceeds the bits addr
	// shares with each.
	n := 0
	if lo > 0 {
		n = bits.LeadingZeros32(x^(st[lo]-1)) + 1
	}
	if hi < len(st) {
		n = max(n, bits.LeadingZeros32(x^st[hi])+1)
	}
	return s.val4[lo], n
}

func (s *rangeSet[V]) lookup6(u u128) (V, int) {
	st := s.start6
	lo, hi := s.idx6.bounds(u.hi, len(st))
	for hi-lo > 1 {
		m := int(uint(lo+hi) >> 1)
		if p := st[m]; p.hi < u.hi || (p.hi == u.hi && p.lo <= u.lo) {
			lo = m
		} else {
			hi = m
		}
	}
	n := 0
	if lo > 0 {
		n = commonBits(u, st[lo].prev()) + 1
	}
	if hi < len(st) {
		n = max(n, commonBits(u, st[hi])+1)
	}
	return s.val6[lo], n
}

func (s *rangeSet[V]) ranges() int { return len(s.start4) + len(s.start6) }

// buildIndex indexes both tables, if they are large enough to need it.
func (s *rangeSet[V]) buildIndex() {
	s.idx4 = newBucketIndex(s.start4, 32, func(v uint32) (uint64, bool) { return uint64(v) << 32, true })
	s.idx6 = newBucketIndex(s.start6, 64, func(v u128) (uint64, bool) { return v.hi, v.lo == 0 })
}

// aliasMark is the value of alias ranges in a rangeSet[uint32]; location
// indexes stay below it.
const aliasMark = math.MaxUint32

// remap derives a rangeSet whose value at every address is lut[v], v being
// src's value there, merging neighbours that become equal. aliasAt lists,
// in ascending order, the indexes of src's IPv6 alias ranges (see alias),
// whose values lut is not asked for. Alias ranges take the value of the
// derived IPv4 table when that is a single range, and merge; otherwise they
// stay separate ranges of value mark, and the aliases carry over.
//
// It is the cost of every widest-scope map a node builds, so it makes two tight
// passes over src (count, then fill, so each table is allocated once at its
// final size: a Map lives as long as its snapshot) and no other allocation.
func remap[S, V uint16 | uint32](src *rangeSet[S], lut []V, aliasAt []int, mark V) rangeSet[V] {
	var dst rangeSet[V]
	dst.unknown = lut[src.unknown]

	n := 0
	var prev V
	for i, v := range src.val4 {
		if x := lut[v]; i == 0 || x != prev {
			n++
			prev = x
		}
	}
	dst.start4 = make([]uint32, 0, n)
	dst.val4 = make([]V, 0, n)
	for i, v := range src.val4 {
		if x := lut[v]; i == 0 || x != prev {
			dst.start4 = append(dst.start4, src.start4[i])
			dst.val4 = append(dst.val4, x)
			prev = x
		}
	}

	fold := len(dst.val4) == 1
	if !fold {
		dst.aliases = src.aliases
	}
	// pass runs over the IPv6 ranges, calling keep for each range that
	// starts a range of dst.
	pass := func(keep func(i int, x V)) {
		next := 0 // index into aliasAt
		var prev V
		prevSep := false
		for i, v := range src.val6 {
			var x V
			sep := false
			if next < len(aliasAt) && aliasAt[next] == i {
				next++
				if fold {
					x = dst.val4[0]
				} else {
					x, sep = mark, true
				}
			} else {
				x = lut[v]
			}
			if i == 0 || x != prev || sep || prevSep {
				keep(i, x)
			}
			prev, prevSep = x, sep
		}
	}
	n = 0
	pass(func(int, V) { n++ })
	dst.start6 = make([]u128, 0, n)
	dst.val6 = make([]V, 0, n)
	pass(func(i int, x V) {
		dst.start6 = append(dst.start6, src.start6[i])
		dst.val6 = append(dst.val6, x)
	})
	dst.buildIndex()
	return dst
}

// aliasRanges returns the indexes of s's IPv6 alias ranges, ascending.
func (s *rangeSet[V]) aliasRanges() []int {
	var out []int
	for _, a := range s.aliases {
		i, ok := slices.BinarySearchFunc(s.start6, a.first, func(x, t u128) int {
			switch {
			case x.less(t):
				return -1
			case t.less(x):
				return 1
			}
			return 0
		})
		if ok {
			out = append(out, i)
		}
	}
	return out
}
