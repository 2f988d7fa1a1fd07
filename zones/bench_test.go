package zones

import (
	"fmt"
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
