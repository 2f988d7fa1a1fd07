package geo

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// TestBucketIndex holds lookups through the bucket index to lookups that
// search the whole table; the database tests use tables too small to get an
// index.
func TestBucketIndex(t *testing.T) {
	for _, tc := range []struct {
		name  string
		win4  uint32 // IPv4 starts share the first bits4 bits of win4
		bits4 int
		win6  uint64 // IPv6 starts share the first bits6 bits of win6
		bits6 int
		n     int
	}{
		{"everywhere", 0, 0, 0, 0, 20000},
		{"windows", 0x0a000000, 8, 0x2000 << 48, 3, 5000},
		{"narrow windows", 0xc0000000, 20, 0x20010db8 << 32, 32, 3000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, uint64(tc.n)))
			var s rangeSet[uint32]
			s.start4 = []uint32{0}
			for range tc.n {
				s.start4 = append(s.start4, tc.win4|rng.Uint32()>>tc.bits4)
			}
			slices.Sort(s.start4)
			s.start4 = slices.Compact(s.start4)
			s.start6 = []u128{{}}
			for i := range tc.n {
				hi := tc.win6 | rng.Uint64()>>tc.bits6
				if i%4 == 0 {
					// Starts just past a bucket's first address.
					hi &^= 1<<(64-tc.bits6-16) - 1
				}
				s.start6 = append(s.start6, u128{hi, rng.Uint64() & 1})
			}
			slices.SortFunc(s.start6, func(a, b u128) int {
				switch {
				case a.less(b):
					return -1
				case b.less(a):
					return 1
				}
				return 0
			})
			s.start6 = slices.Compact(s.start6)
			for i := range s.start4 {
				s.val4 = append(s.val4, uint32(i%5))
			}
			for i := range s.start6 {
				s.val6 = append(s.val6, uint32(i%5))
			}
			plain := s
			s.buildIndex()
			if s.idx4.idx == nil || s.idx6.idx == nil {
				t.Fatalf("no index built for %d and %d ranges", len(s.start4), len(s.start6))
			}

			var probes []netip.Addr
			add4 := func(x uint32) {
				probes = append(probes, netip.AddrFrom4([4]byte(binary.BigEndian.AppendUint32(nil, x))))
			}
			add6 := func(u u128) { probes = append(probes, u.addr()) }
			for _, x := range s.start4 {
				add4(x)
				add4(x - 1)
				add4(x + 1)
			}
			for _, u := range s.start6 {
				add6(u)
				add6(u.prev())
				add6(u.next())
				add6(u128{u.hi, 0})
			}
			for _, ix := range []bucketIndex{s.idx4, s.idx6} {
				for k := range len(ix.idx) {
					a := ix.win | uint64(k)<<(ix.keyShift-ix.p)
					add4(uint32(a >> 32))
					add4(uint32(a>>32) - 1)
					add6(u128{a, 0})
					add6(u128{a, 0}.prev())
				}
			}
			for range 10000 {
				add4(rng.Uint32())
				add4(tc.win4 | rng.Uint32()>>tc.bits4)
				add6(u128{rng.Uint64(), rng.Uint64()})
				add6(u128{tc.win6 | rng.Uint64()>>tc.bits6, rng.Uint64()})
			}
			for _, a := range probes {
				v, b := s.lookup(a)
				wv, wb := plain.lookup(a)
				if v != wv || b != wb {
					t.Fatalf("lookup(%s) = %d, /%d through the index, %d, /%d without", a, v, b, wv, wb)
				}
			}
		})
	}
}
