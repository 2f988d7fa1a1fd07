package geo

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
	"github.com/meridian-gtm/meridian/geo/mmdbgen"
)

// syntheticTable builds, without a database, a Table the size of a real
// GeoLite2-City: n4 IPv4 and n6 IPv6 ranges over nLocs locations, a tenth
// of the ranges gaps.
func syntheticTable(rng *rand.Rand, n4, n6, nLocs int) *Table {
	t := &Table{locs: make([]Location, nLocs)}
	for i := 1; i < nLocs; i++ {
		t.locs[i] = Location{City: fmt.Sprint("city", i), HasCoords: true, Lat: rng.Float64()*180 - 90, Lon: rng.Float64()*360 - 180}
	}
	loc := func(prev uint32) uint32 {
		for {
			v := uint32(0)
			if rng.IntN(10) != 0 {
				v = 1 + uint32(rng.IntN(nLocs-1))
			}
			if v != prev {
				return v
			}
		}
	}
	s4 := make([]uint32, n4)
	for i := range s4 {
		s4[i] = rng.Uint32()
	}
	s4[0] = 0
	slices.Sort(s4)
	s4 = slices.Compact(s4)
	t.set.start4 = s4
	t.set.val4 = make([]uint32, len(s4))
	for i := range s4 {
		t.set.val4[i] = loc(t.set.val4[max(i-1, 0)])
	}
	// IPv6 data lives in 2000::/4 with /32../64 granularity; the rest is a gap.
	s6 := make([]u128, n6)
	for i := range s6 {
		s6[i] = u128{hi: 0x2000_0000_0000_0000 | rng.Uint64()>>4&^0xffff}
	}
	s6 = append(s6, u128{}, u128{hi: 0x3000_0000_0000_0000})
	slices.SortFunc(s6, func(a, b u128) int {
		if a.less(b) {
			return -1
		}
		if b.less(a) {
			return 1
		}
		return 0
	})
	s6 = slices.Compact(s6)
	t.set.start6 = s6
	t.set.val6 = make([]uint32, len(s6))
	for i := 1; i < len(s6)-1; i++ {
		t.set.val6[i] = loc(t.set.val6[i-1])
	}
	t.set.val6[len(s6)-1] = 0
	t.set.unknown = 0
	t.set.buildIndex()
	return t
}

var benchTables = sync.OnceValue(func() map[string]*Table {
	rng := rand.New(rand.NewPCG(1, 2))
	demo, err := Open(demoDB)
	if err != nil {
		panic(err)
	}
	return map[string]*Table{
		"demo": demo,
		// About GeoLite2-City's size after merging: 3.5M IPv4 and 1.5M
		// IPv6 networks, 150k distinct records.
		"geolite-sized": syntheticTable(rng, 3_500_000, 1_500_000, 150_000),
	}
})

func benchAddrs(rng *rand.Rand, family string, n int) []netip.Addr {
	out := make([]netip.Addr, n)
	for i := range out {
		var b [16]byte
		switch family {
		case "v4":
			out[i] = netip.AddrFrom4([4]byte{byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())})
			continue
		case "v6":
			b[0] = 0x20 | byte(rng.IntN(16))
			for j := 1; j < 16; j++ {
				b[j] = byte(rng.Uint32())
			}
		case "v4mapped":
			b[10], b[11] = 0xff, 0xff
			for j := 12; j < 16; j++ {
				b[j] = byte(rng.Uint32())
			}
		}
		out[i] = netip.AddrFrom16(b)
	}
	return out
}

// BenchmarkMapLookup looks up random addresses, so that a large table
// misses the CPU caches as it would under real traffic.
func BenchmarkMapLookup(b *testing.B) {
	for _, name := range []string{"demo", "geolite-sized"} {
		tab := benchTables()[name]
		// A nearest-of-three-regions map: what a pool compiles to.
		m := tab.Map(func(i int) uint16 { return uint16(i % 3) })
		for _, family := range []string{"v4", "v6", "v4mapped"} {
			addrs := benchAddrs(rand.New(rand.NewPCG(3, 4)), family, 1<<16)
			b.Run(fmt.Sprintf("%s/%s", name, family), func(b *testing.B) {
				b.ReportAllocs()
				b.ReportMetric(float64(m.Ranges()), "ranges")
				i := 0
				for b.Loop() {
					m.Lookup(addrs[i&(len(addrs)-1)])
					i++
				}
			})
		}
	}
}

func BenchmarkLocate(b *testing.B) {
	tab := benchTables()["geolite-sized"]
	addrs := benchAddrs(rand.New(rand.NewPCG(3, 4)), "v4", 1<<16)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tab.Locate(addrs[i&(len(addrs)-1)])
		i++
	}
}

// BenchmarkTableMap compiles a Map from a GeoLite2-sized table, as each
// pool does when a snapshot is built.
func BenchmarkTableMap(b *testing.B) {
	tab := benchTables()["geolite-sized"]
	b.ReportAllocs()
	for b.Loop() {
		tab.Map(func(i int) uint16 { return uint16(i % 3) })
	}
}

var benchDB = sync.OnceValue(func() []byte {
	// A database of realistic shape: many small networks and few records.
	rng := rand.New(rand.NewPCG(5, 6))
	w, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoIP2-City", IncludeReservedNetworks: true})
	if err != nil {
		panic(err)
	}
	recs := make([]mmdbtype.Map, 5000)
	for i := range recs {
		recs[i] = mmdbtype.Map{
			"city":     mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(fmt.Sprint("city", i))}},
			"location": mmdbtype.Map{"latitude": mmdbtype.Float64(rng.Float64()*180 - 90), "longitude": mmdbtype.Float64(rng.Float64()*360 - 180)},
		}
	}
	for range 200_000 {
		ip := make(net.IP, 4)
		for j := range ip {
			ip[j] = byte(rng.Uint32())
		}
		bits := 20 + rng.IntN(9)
		n := &net.IPNet{IP: ip.Mask(net.CIDRMask(bits, 32)), Mask: net.CIDRMask(bits, 32)}
		if err := w.Insert(n, recs[rng.IntN(len(recs))]); err != nil {
			panic(err)
		}
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		panic(err)
	}
	return buf.Bytes()
})

// BenchmarkLoad compiles a 200k-network database; ns/op divided by the
// networks metric is the cost per network.
func BenchmarkLoad(b *testing.B) {
	db := benchDB()
	b.ReportAllocs()
	var tab *Table
	for b.Loop() {
		var err error
		if tab, err = Load(db); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(tab.Info().Networks), "networks")
}

// BenchmarkLoadDemo is Load of the small demo database, for comparison.
func BenchmarkLoadDemo(b *testing.B) {
	db := writeDB(b, mmdbgen.City, fixture)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(db); err != nil {
			b.Fatal(err)
		}
	}
}
