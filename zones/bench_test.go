package zones

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// The answer path must not allocate: it runs hundreds of thousands of
// times a second per node.
func TestAnswerDoesNotAllocate(t *testing.T) {
	s := compile(t, Inputs{Config: &Config{Zones: []*Zone{demoZone(t)}}, Geo: demoGeo(t)})
	cases := []struct {
		qname  string
		qtype  uint16
		client netip.Addr
	}{
		{"www.gslb.example.com.", dns.TypeA, netip.MustParseAddr("198.51.100.7")},
		{"www.gslb.example.com.", dns.TypeAAAA, netip.MustParseAddr("2001:db8:3::1")},
		{"api.gslb.example.com.", dns.TypeA, netip.MustParseAddr("198.51.100.7")},
		{"status.gslb.example.com.", dns.TypeA, netip.MustParseAddr("203.0.113.1")},
		{"nope.gslb.example.com.", dns.TypeA, netip.MustParseAddr("203.0.113.1")},
		{"gslb.example.com.", dns.TypeNS, netip.Addr{}},
		{"example.org.", dns.TypeA, netip.Addr{}},
	}
	var r Result
	for _, c := range cases {
		s.Answer(&r, c.qname, c.qtype, c.client) // grow r's slices once
		allocs := testing.AllocsPerRun(200, func() {
			r.Reset()
			s.Answer(&r, c.qname, c.qtype, c.client)
		})
		if allocs != 0 {
			t.Errorf("%s %s: %.1f allocs per answer, want 0", c.qname, dns.TypeToString[c.qtype], allocs)
		}
	}
}

func BenchmarkAnswer(b *testing.B) {
	s := compile(b, Inputs{Config: &Config{Zones: []*Zone{demoZone(b)}}, Geo: demoGeo(b)})
	clients := []netip.Addr{
		netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("203.0.113.9"),
		netip.MustParseAddr("192.0.2.200"), netip.MustParseAddr("10.9.8.7"),
	}
	for _, bc := range []struct {
		name  string
		qname string
		qtype uint16
	}{
		{"nearest", "www.gslb.example.com.", dns.TypeA},
		{"weighted", "api.gslb.example.com.", dns.TypeA},
		{"static", "gslb.example.com.", dns.TypeMX},
		{"nxdomain", "nope.gslb.example.com.", dns.TypeA},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			var r Result
			i := 0
			for b.Loop() {
				r.Reset()
				s.Answer(&r, bc.qname, bc.qtype, clients[i&3])
				i++
			}
		})
	}
}

// zone10k is a zone with 10,000 names: 5,000 static A records and 5,000
// nearest pools over three regions.
func zone10k() string {
	var b strings.Builder
	b.WriteString(`zone = "big.test"
ns = ["ns.example.net."]
[regions.us-east]
lat = 38.95
lon = -77.45
[regions.eu-west]
lat = 50.11
lon = 8.68
[regions.ap-southeast]
lat = 1.35
lon = 103.82
`)
	for i := 0; i < 5000; i++ {
		fmt.Fprintf(&b, "[records.host%d]\nA = [\"10.%d.%d.1\"]\n", i, i/256, i%256)
	}
	for i := 0; i < 5000; i++ {
		fmt.Fprintf(&b, `[pools.app%d]
order = ["us-east", "eu-west", "ap-southeast"]
[pools.app%d.members.us-east]
addresses = ["192.0.2.%d"]
[pools.app%d.members.eu-west]
addresses = ["198.51.100.%d"]
[pools.app%d.members.ap-southeast]
addresses = ["203.0.113.%d"]
`, i, i, i%250+1, i, i%250+1, i, i%250+1)
	}
	return b.String()
}

func BenchmarkCompile10k(b *testing.B) {
	src := []byte(zone10k())
	g := demoGeo(b)
	b.Run("parse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ParseZone("big.toml", src); err != nil {
				b.Fatal(err)
			}
		}
	})
	z, err := ParseZone("big.toml", src)
	if err != nil {
		b.Fatal(err)
	}
	cfg := &Config{Zones: []*Zone{z}}
	b.Run("compile", func(b *testing.B) {
		b.ReportAllocs()
		var s *Snapshot
		for b.Loop() {
			s = compile(b, Inputs{Config: cfg, Geo: g})
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heapMiB")
		runtime.KeepAlive(s)
	})
}

// scaleRegions are ten regions around the world.
var scaleRegions = []struct {
	name     string
	lat, lon float64
}{
	{"us-east", 38.95, -77.45}, {"us-west", 45.6, -121.2}, {"ca-central", 45.5, -73.6},
	{"sa-east", -23.5, -46.6}, {"eu-west", 50.11, 8.68}, {"eu-north", 59.3, 18.1},
	{"me-central", 25.2, 55.3}, {"ap-south", 19.1, 72.9}, {"ap-southeast", 1.35, 103.82},
	{"ap-northeast", 35.7, 139.7},
}

// zoneShapes is a zone of n nearest pools over the ten scaleRegions, in
// the given number of shapes: pool i uses the three regions of shape
// i%shapes, each shape its own set of three.
func zoneShapes(n, shapes int) string {
	var b strings.Builder
	b.WriteString("zone = \"scale.test\"\nns = [\"ns.example.net.\"]\n")
	for _, r := range scaleRegions {
		fmt.Fprintf(&b, "[regions.%s]\nlat = %v\nlon = %v\n", r.name, r.lat, r.lon)
	}
	var combos [][3]int
	for i := 0; i < len(scaleRegions); i++ {
		for j := i + 1; j < len(scaleRegions); j++ {
			for k := j + 1; k < len(scaleRegions); k++ {
				combos = append(combos, [3]int{i, j, k})
			}
		}
	}
	for i := range n {
		c := combos[(i%shapes)*len(combos)/shapes]
		fmt.Fprintf(&b, "[pools.app%d]\norder = [%q, %q, %q]\n", i,
			scaleRegions[c[0]].name, scaleRegions[c[1]].name, scaleRegions[c[2]].name)
		for k, r := range c {
			fmt.Fprintf(&b, "[pools.app%d.members.%s]\naddresses = [\"10.%d.%d.%d\"]\n", i, scaleRegions[r].name, k, i/256, i%256)
		}
	}
	return b.String()
}

// regionDown is the health of every pool with region down.
func regionDown(z *Zone, region string) HealthView {
	h := HealthView{}
	for _, p := range z.Pools {
		if p.member(region) != nil {
			h[MemberKey{Pool: p.Owner, Region: region}] = MemberHealth{State: Down, Reason: "test"}
		}
	}
	return h
}

// scaleStore is a Store over 1,000 pools in 50 shapes and a random table
// of 40,000 networks; how big the table is does not matter to a change.
func scaleStore(tb testing.TB) (*Store, *Zone) {
	tb.Helper()
	z, err := ParseZone("scale.toml", []byte(zoneShapes(1000, 50)))
	if err != nil {
		tb.Fatal(err)
	}
	g, _ := randomGeo(tb, rand.New(rand.NewPCG(1, 1)), 30_000, 10_000, 500)
	st, err := NewStore(&Config{Zones: []*Zone{z}}, g)
	if err != nil {
		tb.Fatal(err)
	}
	return st, z
}

// BenchmarkApplyChange publishes a health change (a region failing and
// recovering, which changes about a third of 1,000 pools) without building
// the widest-scope maps, which Run does in the background.
func BenchmarkApplyChange(b *testing.B) {
	st, z := scaleStore(b)
	views := []HealthView{regionDown(z, "eu-west"), nil}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		st.SetHealth(views[i&1])
		i++
	}
}

// Applying a change allocates a bounded, small amount per pool: its answer
// table, never anything that grows with the GeoIP table.
func TestApplyChangeAllocs(t *testing.T) {
	st, z := scaleStore(t)
	views := []HealthView{regionDown(z, "eu-west"), nil}
	i := 0
	allocs := testing.AllocsPerRun(20, func() {
		st.SetHealth(views[i&1])
		i++
	})
	perPool := allocs / float64(len(z.Pools))
	t.Logf("%.0f allocs per change, %.1f per pool", allocs, perPool)
	if perPool > 4 {
		t.Errorf("%.1f allocs per pool per change, want at most 4", perPool)
	}
}
