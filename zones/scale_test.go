package zones

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/meridian-gtm/meridian/geo"
	"github.com/meridian-gtm/meridian/geo/mmdbgen"
	"github.com/miekg/dns"
)

// synthGeo loads a GeoLite2-shaped synthetic database of about 300,000
// networks (the CI size; `make bench-scale` runs the full size by hand).
func synthGeo(tb testing.TB) *geo.Table {
	tb.Helper()
	var buf bytes.Buffer
	if err := mmdbgen.WriteSynth(&buf, mmdbgen.SynthOptions{V4: 225_000, V6: 75_000, Locations: 30_000, Seed: 1}); err != nil {
		tb.Fatal(err)
	}
	g, err := geo.Load(buf.Bytes())
	if err != nil {
		tb.Fatal(err)
	}
	return g
}

// On a GeoLite2-shaped table with 1,000 pools in 50 shapes, a region
// failing moves every pool that has it in the publish that SetHealth makes,
// before any widest-scope map is rebuilt; every scope served in between is
// correct; and the widest scopes return, equal to a fresh compile's.
func TestScaleRegionFailure(t *testing.T) {
	g := synthGeo(t)
	z, err := ParseZone("scale.toml", []byte(zoneShapes(1000, 50)))
	if err != nil {
		t.Fatal(err)
	}
	st, err := NewStore(&Config{Zones: []*Zone{z}}, g)
	if err != nil {
		t.Fatal(err)
	}
	runStore(t, st)
	waitWidest(t, st)

	// Clients the database cannot place get each pool's order; the pools
	// whose order starts with eu-west are the ones that must move.
	unplaced := netip.MustParseAddr("10.1.2.3")
	var affected []string
	for _, p := range z.Pools {
		if p.Order[0] == "eu-west" {
			affected = append(affected, p.Owner)
		}
	}
	if len(affected) == 0 {
		t.Fatal("no pool has eu-west first")
	}
	st.SetHealth(regionDown(z, "eu-west"))
	snap := st.Load()
	var r Result
	for _, name := range affected {
		r.Reset()
		snap.Answer(&r, name, dns.TypeA, unplaced)
		if r.Region == "eu-west" || r.Rcode != dns.RcodeSuccess {
			t.Fatalf("%s: %s %s right after the change, want another region", name, dns.RcodeToString[r.Rcode], r.Region)
		}
	}
	// Scopes served before the widest maps return: each claims only
	// addresses with the same answer.
	rng := rand.New(rand.NewPCG(2, 2))
	checkScopes(t, rng, snap, z, 300)
	waitWidest(t, st)
	snap = st.Load()
	ref, err := Compile(snap.Inputs)
	if err != nil {
		t.Fatal(err)
	}
	var r2 Result
	for range 3000 {
		a := netip.AddrFrom4([4]byte{byte(1 + rng.IntN(223)), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())})
		name := z.Pools[rng.IntN(len(z.Pools))].Owner
		r.Reset()
		r2.Reset()
		snap.Answer(&r, name, dns.TypeA, a)
		ref.Answer(&r2, name, dns.TypeA, a)
		if r.Region != r2.Region || r.ScopeBits != r2.ScopeBits {
			t.Fatalf("%s from %s: served %s /%d, fresh compile %s /%d", name, a, r.Region, r.ScopeBits, r2.Region, r2.ScopeBits)
		}
	}
	checkScopes(t, rng, snap, z, 300)
}

// checkScopes asks n random clients of random pools and checks that
// addresses across each answer's scope get the same answer.
func checkScopes(t *testing.T, rng *rand.Rand, snap *Snapshot, z *Zone, n int) {
	t.Helper()
	var r, r2 Result
	for range n {
		a := netip.AddrFrom4([4]byte{byte(1 + rng.IntN(223)), byte(rng.Uint32()), byte(rng.Uint32()), 0})
		name := z.Pools[rng.IntN(len(z.Pools))].Owner
		r.Reset()
		snap.Answer(&r, name, dns.TypeA, a)
		p := netip.PrefixFrom(a, r.ScopeBits).Masked()
		for _, x := range append([]netip.Addr{p.Addr(), lastIn(p)}, randomAddrsIn(rng, p, 6)...) {
			r2.Reset()
			snap.Answer(&r2, name, dns.TypeA, x)
			if r2.Region != r.Region {
				t.Fatalf("%s from %s: %s with scope %s, but %s gets %s", name, a, r.Region, p, x, r2.Region)
			}
		}
	}
}

func waitWidest(t *testing.T, st *Store) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !st.Load().WidestScopes() {
		if time.Now().After(deadline) {
			t.Fatal("widest scopes not served within 60s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkBuildScale compiles 50 shapes over the 300k-network table: what
// a load costs before the first answer.
func BenchmarkBuildScale(b *testing.B) {
	g := synthGeo(b)
	z, err := ParseZone("scale.toml", []byte(zoneShapes(1000, 50)))
	if err != nil {
		b.Fatal(err)
	}
	cfg := &Config{Zones: []*Zone{z}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Build(cfg, g); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWidestMap builds one widest-scope map over the 300k-network
// table: the background cost of a change, per affected shape.
func BenchmarkWidestMap(b *testing.B) {
	g := synthGeo(b)
	z, err := ParseZone("scale.toml", []byte(zoneShapes(50, 50)))
	if err != nil {
		b.Fatal(err)
	}
	base, err := Build(&Config{Zones: []*Zone{z}}, g)
	if err != nil {
		b.Fatal(err)
	}
	sh := base.shapes[0]
	part := make([]uint16, len(sh.classes))
	for i := range part {
		part[i] = uint16(i % 3)
	}
	b.ReportAllocs()
	for b.Loop() {
		sh.widest(part)
	}
}
