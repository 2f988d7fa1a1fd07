package geo

import (
	"math/rand/v2"
	"net/netip"
	"sort"
	"testing"
)

// TestMapScopeProperty holds Map.Lookup's scope to its definition over
// random tables and random maps: for an address a, Lookup returns (v, bits)
// such that every address in a/bits gets v (checked at the prefix's first,
// last and random addresses, and against every raw range the prefix
// overlaps) and a/(bits-1) holds an address that does not: the scope is the
// widest prefix of one answer, which is what a DNS answer's ECS scope must
// be (RFC 7871 §7.2.1). The reference values come from the Table's raw
// ranges, before the Map merged them, so the merging, the bucket index and
// the bit arithmetic are all under test.
func TestMapScopeProperty(t *testing.T) {
	for seed := range uint64(6) {
		rng := rand.New(rand.NewPCG(seed, 7))
		// Small tables (every range reachable by random addresses) and
		// large ones (the bucket index in use).
		n4, n6 := 300, 100
		if seed%2 == 1 {
			n4, n6 = 20_000, 5_000
		}
		tab := syntheticTable(rng, n4, n6, 40)
		for _, kinds := range []int{1, 2, 3, 12} {
			vals := make([]uint16, len(tab.locs))
			for i := range vals {
				vals[i] = uint16(rng.IntN(kinds))
			}
			m := tab.Map(func(loc int) uint16 { return vals[loc] })
			ref := scopeRef{tab: tab, vals: vals}
			widerFound, checked := 0, 0
			for i := range 3000 {
				var a netip.Addr
				switch i % 3 {
				case 0:
					a = ref.nearBoundary(rng)
				case 1:
					a = benchAddrs(rng, "v4", 1)[0]
				default:
					a = benchAddrs(rng, "v6", 1)[0]
				}
				v, bits := m.Lookup(a)
				if want := ref.at(a); v != want {
					t.Fatalf("seed %d kinds %d: Lookup(%s) = %d, reference %d", seed, kinds, a, v, want)
				}
				p := netip.PrefixFrom(a, bits).Masked()
				for _, x := range append([]netip.Addr{p.Addr(), lastAddr(p)}, randomIn(rng, p, 8)...) {
					if got := ref.at(x); got != v {
						t.Fatalf("seed %d kinds %d: %s gets %d with scope %s, but %s in it gets %d", seed, kinds, a, v, p, x, got)
					}
				}
				if others := ref.values(p); len(others) != 1 {
					t.Fatalf("seed %d kinds %d: %s: scope %s holds values %v", seed, kinds, a, p, others)
				}
				if bits == 0 {
					continue
				}
				checked++
				parent := netip.PrefixFrom(a, bits-1).Masked()
				if len(ref.values(parent)) < 2 {
					t.Fatalf("seed %d kinds %d: %s: scope %s is not the widest: %s gets %d throughout", seed, kinds, a, p, parent, v)
				}
				// The same, found by sampling the parent as a resolver
				// would see it: some address in it gets another answer.
				for _, x := range append([]netip.Addr{parent.Addr(), lastAddr(parent)}, randomIn(rng, parent, 64)...) {
					if ref.at(x) != v {
						widerFound++
						break
					}
				}
			}
			if kinds > 1 && checked == 0 {
				t.Fatalf("seed %d kinds %d: no lookup had a scope to check", seed, kinds)
			}
			t.Logf("seed %d, %d values: %d scopes checked widest; sampling alone found the wider prefix mixed in %d", seed, kinds, checked, widerFound)
		}
	}
}

// scopeRef answers from a Table's raw ranges and a value per location.
type scopeRef struct {
	tab  *Table
	vals []uint16
}

func (r scopeRef) at(a netip.Addr) uint16 {
	s := &r.tab.set
	if a.Is4() {
		x := u128Of(netip.AddrFrom16(a.As16())).lo & 0xffffffff
		i := sort.Search(len(s.start4), func(i int) bool { return uint64(s.start4[i]) > x }) - 1
		return r.vals[s.val4[i]]
	}
	u := u128Of(a)
	i := sort.Search(len(s.start6), func(i int) bool { return u.less(s.start6[i]) }) - 1
	return r.vals[s.val6[i]]
}

// values returns the set of values the raw ranges overlapping p carry.
func (r scopeRef) values(p netip.Prefix) map[uint16]bool {
	s := &r.tab.set
	out := map[uint16]bool{}
	first, last := p.Addr(), lastAddr(p)
	if first.Is4() {
		f, l := u128Of(netip.AddrFrom16(first.As16())).lo&0xffffffff, u128Of(netip.AddrFrom16(last.As16())).lo&0xffffffff
		i := sort.Search(len(s.start4), func(i int) bool { return uint64(s.start4[i]) > f }) - 1
		for ; i < len(s.start4) && uint64(s.start4[i]) <= l; i++ {
			out[r.vals[s.val4[i]]] = true
		}
		return out
	}
	f, l := u128Of(first), u128Of(last)
	i := sort.Search(len(s.start6), func(i int) bool { return f.less(s.start6[i]) }) - 1
	for ; i < len(s.start6) && !l.less(s.start6[i]); i++ {
		out[r.vals[s.val6[i]]] = true
	}
	return out
}

// nearBoundary returns an address at or next to a raw range boundary,
// where scopes are longest.
func (r scopeRef) nearBoundary(rng *rand.Rand) netip.Addr {
	s := &r.tab.set
	if rng.IntN(2) == 0 {
		x := s.start4[rng.IntN(len(s.start4))] - uint32(rng.IntN(2))
		return netip.AddrFrom4([4]byte{byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)})
	}
	u := s.start6[rng.IntN(len(s.start6))]
	if rng.IntN(2) == 0 && u != (u128{}) {
		u = u.prev()
	}
	return u.addr()
}

// randomIn returns n random addresses in p.
func randomIn(rng *rand.Rand, p netip.Prefix, n int) []netip.Addr {
	out := make([]netip.Addr, n)
	for i := range out {
		r := u128{rng.Uint64(), rng.Uint64()}
		if p.Addr().Is4() {
			r = u128{0, uint64(rng.Uint32())}
			host := hostMask(96 + p.Bits())
			x := u128Of(netip.AddrFrom16(p.Addr().As16()))
			x = u128{x.hi, x.lo | r.lo&host.lo}
			out[i] = x.addr().Unmap()
			continue
		}
		host := hostMask(p.Bits())
		x := u128Of(p.Addr())
		out[i] = u128{x.hi | r.hi&host.hi, x.lo | r.lo&host.lo}.addr()
	}
	return out
}

// LocationIndex is Locate without building the Location: the same
// location, and the same prefix length.
func TestLocationIndexMatchesLocate(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	demo, err := Open(demoDB)
	if err != nil {
		t.Fatal(err)
	}
	for _, tab := range []*Table{syntheticTable(rng, 20_000, 5_000, 100), demo} {
		for i := range 20_000 {
			a := benchAddrs(rng, []string{"v4", "v6", "v4mapped"}[i%3], 1)[0]
			loc, bits := tab.LocationIndex(a)
			l, p := tab.Locate(a)
			if tab.locs[loc] != l || bits != p.Bits() {
				t.Fatalf("LocationIndex(%s) = %d (%v), /%d; Locate says %v, %s", a, loc, tab.locs[loc], bits, l, p)
			}
		}
		if loc, bits := tab.LocationIndex(netip.Addr{}); loc != 0 || bits != 0 {
			t.Fatalf("invalid address: %d, /%d; want 0, /0", loc, bits)
		}
	}
}
