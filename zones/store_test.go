package zones

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridian-gtm/meridian/geo"
	"github.com/meridian-gtm/meridian/geo/mmdbgen"
	"github.com/miekg/dns"
)

// randomGeo writes and loads a City database of n4 IPv4 and n6 IPv6
// networks laid out one after another from random bases, so neighbours
// are common and prefix lengths vary, over nLocs random places.
func randomGeo(t testing.TB, rng *rand.Rand, n4, n6, nLocs int) (*geo.Table, []netip.Prefix) {
	t.Helper()
	countries := []struct{ cont, country string }{{"NA", "US"}, {"EU", "DE"}, {"AS", "SG"}, {"EU", "FR"}, {"AS", "JP"}, {"SA", "BR"}, {"OC", "AU"}, {"AF", "ZA"}}
	locs := make([]mmdbgen.Network, nLocs)
	for i := range locs {
		c := countries[rng.IntN(len(countries))]
		locs[i] = mmdbgen.Network{Continent: c.cont, Country: c.country, City: fmt.Sprint("city", i),
			Lat: rng.Float64()*160 - 80, Lon: rng.Float64()*360 - 180, HasCoords: true}
	}
	var nets []mmdbgen.Network
	add := func(p netip.Prefix) {
		n := locs[rng.IntN(nLocs)]
		if len(nets) > 0 && rng.IntN(3) == 0 {
			n = nets[len(nets)-1] // same place as the neighbour: ranges merge
		}
		n.Prefix = p
		nets = append(nets, n)
	}
	for next := uint32(0); len(nets) < n4; {
		if next == 0 || rng.IntN(50) == 0 {
			next = uint32(rng.IntN(200)+1) << 24 // a new block in 1/8..200/8
		}
		bits := 20 + rng.IntN(9)
		size := uint32(1) << (32 - bits)
		next = (next + size - 1) &^ (size - 1)
		add(netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(next >> 24), byte(next >> 16), byte(next >> 8), byte(next)}), bits))
		next += size * uint32(1+rng.IntN(2)) // sometimes a gap
	}
	for next, count := uint64(0), 0; count < n6; count++ {
		if next == 0 || rng.IntN(50) == 0 {
			next = 0x2400_0000_0000_0000 | uint64(rng.IntN(1<<12))<<40
		}
		bits := 32 + rng.IntN(33)
		size := uint64(1) << (64 - bits)
		next = (next + size - 1) &^ (size - 1)
		var a [16]byte
		for i := range 8 {
			a[i] = byte(next >> (56 - 8*i))
		}
		add(netip.PrefixFrom(netip.AddrFrom16(a), bits))
		next += size * uint64(1+rng.IntN(2))
	}
	var buf bytes.Buffer
	if err := mmdbgen.Write(&buf, mmdbgen.City, nets); err != nil {
		t.Fatal(err)
	}
	g, err := geo.Load(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	prefixes := make([]netip.Prefix, len(nets))
	for i, n := range nets {
		prefixes[i] = n.Prefix
	}
	return g, prefixes
}

// flipZone has pools of every policy over five regions, in several shapes.
const flipZone = `
zone = "flip.example"
ns = ["ns1"]
[soa]
rname = "hostmaster@flip.example"
[records.ns1]
A = ["192.0.2.53"]
[regions.us-east]
lat = 38.95
lon = -77.45
[regions.us-west]
lat = 45.6
lon = -121.2
[regions.eu-west]
lat = 50.11
lon = 8.68
[regions.ap-southeast]
lat = 1.35
lon = 103.82
[regions.sa-east]
lat = -23.5
lon = -46.6

[pools.a]
order = ["us-east", "eu-west", "ap-southeast"]
[pools.a.members.us-east]
addresses = ["192.0.2.1"]
[pools.a.members.eu-west]
addresses = ["192.0.2.2"]
[pools.a.members.ap-southeast]
addresses = ["192.0.2.3"]

[pools.b]
order = ["us-west", "sa-east", "eu-west", "us-east"]
[pools.b.members.us-west]
addresses = ["192.0.2.11"]
[pools.b.members.sa-east]
addresses = ["192.0.2.12"]
[pools.b.members.eu-west]
addresses = ["192.0.2.13"]
[pools.b.members.us-east]
addresses = ["192.0.2.14"]
[pools.b.geo]
country = { DE = ["us-east", "eu-west"] }
continent = { OC = ["ap-southeast", "us-west"] }
[pools.b.members.ap-southeast]
addresses = ["192.0.2.15"]

[pools.c]
policy = "failover"
order = ["eu-west", "us-east"]
[pools.c.members.eu-west]
addresses = ["192.0.2.21"]
[pools.c.members.us-east]
addresses = ["192.0.2.22"]

[pools.d]
policy = "weighted"
[pools.d.geo]
continent = { SA = ["sa-east", "us-east"] }
[pools.d.members.us-east]
addresses = ["192.0.2.31"]
[pools.d.members.eu-west]
addresses = ["192.0.2.32"]
[pools.d.members.sa-east]
addresses = ["192.0.2.33"]
`

var flipRegions = []string{"us-east", "us-west", "eu-west", "ap-southeast", "sa-east"}

// randomHealth marks each region of each pool down, degraded or up.
func randomHealth(rng *rand.Rand, z *Zone) HealthView {
	h := HealthView{}
	for _, p := range z.Pools {
		for _, m := range p.Members {
			switch rng.IntN(4) {
			case 0:
				h[MemberKey{Pool: p.Owner, Region: m.Region}] = MemberHealth{State: Down}
			case 1:
				h[MemberKey{Pool: p.Owner, Region: m.Region}] = MemberHealth{State: Degraded}
			}
		}
	}
	return h
}

// answerID is the answer's identity for comparisons: the region, or for a
// weighted answer the set it picks from (the pick varies per query).
func answerID(s *Snapshot, r *Result, name string) string {
	if r.Rcode != dns.RcodeSuccess {
		return dns.RcodeToString[r.Rcode]
	}
	if n, _ := s.find(name); n != nil && n.pool >= 0 {
		p := &s.pools[n.pool]
		for _, c := range p.choices {
			if slices.Contains(c.regions, r.Region) && len(c.regions) > 1 {
				return strings.Join(c.regions, ",")
			}
		}
	}
	return r.Region
}

// TestStoreScopesWhileHealthFlips flips health and overrides continuously
// while queries with random ECS-like prefixes run. Every answer's scope is
// checked against the answers the same snapshot gives other addresses
// inside it, and every answer against a full compile of the same inputs;
// no query fails. Once the flipping stops, the widest scopes return.
func TestStoreScopesWhileHealthFlips(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	g, nets := randomGeo(t, rng, 3000, 800, 60)
	z := parseZone(t, flipZone)
	st, err := NewStore(&Config{Zones: []*Zone{z}}, g)
	if err != nil {
		t.Fatal(err)
	}
	runStore(t, st)
	var wg sync.WaitGroup
	defer wg.Wait()

	const flips = 400
	var done atomic.Bool
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer done.Store(true)
		frng := rand.New(rand.NewPCG(3, 4))
		for i := range flips {
			if i%10 == 9 {
				var o []Override
				if frng.IntN(2) == 0 {
					o = append(o, Override{Action: Drain, Region: flipRegions[frng.IntN(len(flipRegions))]})
				} else {
					o = append(o, Override{Action: Pin, Pool: "a.flip.example.", Region: "eu-west"})
				}
				st.SetOverrides(o)
			}
			st.SetHealth(randomHealth(frng, z))
			// Paced like a busy cluster, so that queries overlap every
			// state and the scope builder finishes some batches and is
			// overtaken on others.
			time.Sleep(time.Duration(frng.IntN(1000)) * time.Microsecond)
		}
	}()

	pools := []string{"a.flip.example.", "b.flip.example.", "c.flip.example.", "d.flip.example."}
	var refs sync.Map // *Snapshot → *Snapshot compiled from scratch
	var queries, widened atomic.Int64
	check := func(seed uint64) {
		qrng := rand.New(rand.NewPCG(seed, 5))
		var r, r2 Result
		for i := 0; !done.Load() || i < 200; i++ {
			snap := st.Load()
			name := pools[qrng.IntN(len(pools))]
			// An ECS source around a database network: mostly /24 and
			// /56, from /16 to /32 and /32 to /64.
			a := randomAddrsIn(qrng, nets[qrng.IntN(len(nets))], 1)[0]
			src := 24
			if a.Is6() {
				src = 56
			}
			if qrng.IntN(2) == 0 {
				src = 16 + qrng.IntN(17)
				if a.Is6() {
					src += 16 + qrng.IntN(17)
				}
			}
			a = netip.PrefixFrom(a, src).Masked().Addr() // the address as sent
			r.Reset()
			snap.Answer(&r, name, dns.TypeA, a)
			queries.Add(1)
			if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 && r.Region != "none (fail closed)" {
				t.Errorf("%s from %s: rcode %s, %d answers", name, a, dns.RcodeToString[r.Rcode], len(r.Answer))
				return
			}
			want := answerID(snap, &r, name)
			scope := netip.PrefixFrom(a, r.ScopeBits).Masked()
			if r.ScopeBits > src {
				widened.Add(1)
			}
			for _, x := range append([]netip.Addr{scope.Addr(), lastIn(scope)}, randomAddrsIn(qrng, scope, 6)...) {
				r2.Reset()
				snap.Answer(&r2, name, dns.TypeA, x)
				if got := answerID(snap, &r2, name); got != want {
					t.Errorf("%s from %s: %s with scope %s, but %s in it gets %s (health %v, overrides %v)", name, a, want, scope, x, got, snap.Inputs.Health, snap.Inputs.Overrides)
					return
				}
			}
			if i%16 == 0 {
				ref, ok := refs.Load(snap)
				if !ok {
					c, err := Compile(snap.Inputs)
					if err != nil {
						t.Error(err)
						return
					}
					ref, _ = refs.LoadOrStore(snap, c)
				}
				r2.Reset()
				ref.(*Snapshot).Answer(&r2, name, dns.TypeA, a)
				if got := answerID(ref.(*Snapshot), &r2, name); got != want {
					t.Errorf("%s from %s: %s, but a full compile of the same inputs says %s", name, a, want, got)
					return
				}
			}
		}
	}
	var qwg sync.WaitGroup
	for w := range 2 {
		qwg.Add(1)
		go func() {
			defer qwg.Done()
			check(uint64(w))
		}()
	}
	qwg.Wait()
	t.Logf("%d queries over %d health changes; %d scopes longer than the source", queries.Load(), flips, widened.Load())

	deadline := time.Now().Add(10 * time.Second)
	for !st.Load().WidestScopes() {
		if time.Now().After(deadline) {
			t.Fatal("widest scopes did not return within 10s of the last change")
		}
		time.Sleep(time.Millisecond)
	}
	// The widest scopes are those of a fresh compile of the same inputs.
	snap := st.Load()
	ref, err := Compile(snap.Inputs)
	if err != nil {
		t.Fatal(err)
	}
	var r, r2 Result
	for range 2000 {
		a := netip.AddrFrom4([4]byte{byte(rng.IntN(201)), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())})
		name := pools[rng.IntN(len(pools))]
		r.Reset()
		r2.Reset()
		snap.Answer(&r, name, dns.TypeA, a)
		ref.Answer(&r2, name, dns.TypeA, a)
		if answerID(snap, &r, name) != answerID(ref, &r2, name) || r.ScopeBits != r2.ScopeBits {
			t.Fatalf("%s from %s: served %s /%d, fresh compile %s /%d", name, a, answerID(snap, &r, name), r.ScopeBits, answerID(ref, &r2, name), r2.ScopeBits)
		}
	}
}

// runStore runs st's background scope builder until the test ends.
func runStore(t testing.TB, st *Store) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		st.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

func lastIn(p netip.Prefix) netip.Addr {
	a := p.Addr().As16()
	off := 0
	if p.Addr().Is4() {
		off = 96
	}
	for i := off + p.Bits(); i < 128; i++ {
		a[i/8] |= 0x80 >> (i % 8)
	}
	if p.Addr().Is4() {
		return netip.AddrFrom16(a).Unmap()
	}
	return netip.AddrFrom16(a)
}

func randomAddrsIn(rng *rand.Rand, p netip.Prefix, n int) []netip.Addr {
	out := make([]netip.Addr, n)
	off := 0
	if p.Addr().Is4() {
		off = 96
	}
	for k := range out {
		a := p.Addr().As16()
		for i := off + p.Bits(); i < 128; i++ {
			if rng.IntN(2) == 1 {
				a[i/8] |= 0x80 >> (i % 8)
			}
		}
		out[k] = netip.AddrFrom16(a)
		if p.Addr().Is4() {
			out[k] = out[k].Unmap()
		}
	}
	return out
}
