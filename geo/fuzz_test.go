package geo

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/meridian-gtm/meridian/geo/mmdbgen"
)

// FuzzMapLookup checks Lookup's promise on any address: addr/bits gets the
// value throughout, addr/(bits-1) does not, and Locate agrees. It runs on
// the fixture (aliases, extremes) and on a synthetic table large enough to
// be indexed.
func FuzzMapLookup(f *testing.F) {
	fix := loadDB(f, mmdbgen.City, fixture)
	tables := []*Table{fix, syntheticTable(rand.New(rand.NewPCG(8, 9)), 5000, 5000, 40)}
	var maps []*Map
	for _, tab := range tables {
		maps = append(maps, tab.Map(func(i int) uint16 { return uint16(len(tab.Locations()[i].Country) + i%3) }))
	}
	for _, s := range []string{"10.0.0.1", "0.0.0.0", "255.255.255.255", "::", "::ffff:10.0.1.1",
		"2002:a00:101::1", "2001:0:a00:101::", "2001:db8:1::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2400::1"} {
		f.Add(netip.MustParseAddr(s).AsSlice())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, ok := netip.AddrFromSlice(b)
		if !ok {
			return
		}
		for i, m := range maps {
			v, bits := m.Lookup(a)
			loc, _ := tables[i].Locate(a)
			if want := uint16(len(loc.Country) + index(tables[i], loc)%3); v != want {
				t.Fatalf("table %d: Lookup(%s) = %d, Locate says %v, value %d", i, a, v, loc, want)
			}
			p, err := a.Unmap().Prefix(bits)
			if err != nil {
				t.Fatalf("table %d: Lookup(%s) bits %d: %v", i, a, bits, err)
			}
			// addr/bits is uniform iff its first address's own prefix is
			// at most as long and of the same value; likewise its last.
			for _, edge := range []netip.Addr{p.Addr(), lastAddr(p)} {
				if ev, eb := m.Lookup(edge); ev != v || eb > bits {
					t.Fatalf("table %d: Lookup(%s) = %d, /%d but Lookup(%s) = %d, /%d", i, a, v, bits, edge, ev, eb)
				}
			}
			if bits == 0 {
				continue
			}
			parent := netip.PrefixFrom(p.Addr(), bits-1).Masked()
			if pv, pb := m.Lookup(parent.Addr()); pv == v && pb < bits {
				t.Fatalf("table %d: Lookup(%s) = %d, /%d but %s is all %d", i, a, v, bits, parent, v)
			}
		}
	})
}

func index(t *Table, l Location) int {
	for i, x := range t.Locations() {
		if x == l {
			return i
		}
	}
	return -1
}
