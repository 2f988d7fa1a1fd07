package node_test

// A differential test against gdnsd: both servers load one generated GeoIP
// City database and answer the same nearest-of-three policy; thousands of
// random EDNS Client Subnets must get the same answer from both. Every ECS
// scope Meridian returns is checked against the generated networks
// themselves (not Meridian's own map), and its scopes are compared with
// gdnsd's.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meridian-gtm/meridian/geo"
	"github.com/meridian-gtm/meridian/geo/mmdbgen"
	"github.com/meridian-gtm/meridian/node"
	"github.com/miekg/dns"
	"github.com/oschwald/maxminddb-golang/v2"
)

// diffRegion is one of the three regions both servers choose between: the
// names, coordinates and addresses of deploy/bench/run.sh.
type diffRegion struct {
	name     string
	lat, lon float64
	a, aaaa  netip.Addr
}

// diffRegions is in both servers' order: the first answers every client the
// database does not place.
var diffRegions = [...]diffRegion{
	{"us-east", 38.95, -77.45, netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8:1::10")},
	{"eu-west", 50.11, 8.68, netip.MustParseAddr("198.51.100.10"), netip.MustParseAddr("2001:db8:2::10")},
	{"ap-southeast", 1.35, 103.82, netip.MustParseAddr("203.0.113.10"), netip.MustParseAddr("2001:db8:3::10")},
}

// unplacedRegion answers clients the database does not place: the first of
// Meridian's order and of gdnsd's datacenters.
const unplacedRegion = 0

const (
	diffZone = "diff.example."
	// diffLocations distinct locations are shared out among the networks,
	// as real databases share records between networks.
	diffLocations = 400
	diffNetsV4    = 2500 // IPv4 networks, /8 to /30
	diffNetsV6    = 1500 // IPv6 networks, /32 to /64
	diffQueriesV4 = 1400 // IPv4 client subnets asked, /16 to /32
	diffQueriesV6 = 1000 // IPv6 client subnets asked, /32 to /64
	// diffDetails bounds the detailed failure messages of one kind; the
	// rest are only counted.
	diffDetails = 20
	// diffTimeout bounds the whole query phase.
	diffTimeout = 40 * time.Second
)

// requireGdnsd returns gdnsd's path. It skips the test when gdnsd is not
// installed, unless MERIDIAN_REQUIRE_TOOLS is set (CI): then that fails.
func requireGdnsd(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("gdnsd")
	if err != nil {
		// Debian installs it in /usr/sbin, which a user's PATH may lack.
		const sbin = "/usr/sbin/gdnsd"
		if _, serr := os.Stat(sbin); serr == nil {
			return sbin
		}
		if _, set := os.LookupEnv("MERIDIAN_REQUIRE_TOOLS"); set {
			t.Fatalf("gdnsd is required (MERIDIAN_REQUIRE_TOOLS is set): %v", err)
		}
		t.Skipf("gdnsd not installed (apt-get install gdnsd): %v", err)
	}
	return path
}

// TestGdnsdDifferential asks Meridian and gdnsd, both loaded with one
// generated City database, the same random client subnets, and requires the
// same answer from both and from a nearest-of-three computed here. Every
// scope Meridian returns must claim a prefix that holds only its answer and
// whose parent does not. Scopes are compared with gdnsd's, and the counts
// logged.
//
// MERIDIAN_DIFF_SEED=N replays one run (the seed is logged).
func TestGdnsdDifferential(t *testing.T) {
	gdnsdBin := requireGdnsd(t)
	t.Parallel()
	start := time.Now()

	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("MERIDIAN_DIFF_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("MERIDIAN_DIFF_SEED=%q: %v", s, err)
		}
	}
	t.Logf("seed %d (MERIDIAN_DIFF_SEED=%d replays this run)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0x6764_6e73_6400))

	w := newDiffWorld(rng)
	dir := t.TempDir()
	db := filepath.Join(dir, "diff-city.mmdb")
	w.writeDB(t, db)
	queries := w.queries(rng)
	w.checkModel(t, db, queries)
	t.Logf("database: %d IPv4 and %d IPv6 networks, %d locations; %d client subnets (%d IPv4, %d IPv6) generated in %v",
		diffNetsV4, diffNetsV6, len(w.locs), len(queries), diffQueriesV4, diffQueriesV6, time.Since(start).Round(time.Millisecond))

	meridian := startDiffNode(t, filepath.Join(dir, "meridian"), db)
	gdnsd := startGdnsd(t, gdnsdBin, filepath.Join(dir, "gdnsd"), db)
	t.Logf("meridian on %s, gdnsd on %s, ready after %v", meridian, gdnsd, time.Since(start).Round(time.Millisecond))

	results := askAll(t, queries, meridian, gdnsd)
	w.check(t, queries, results)
	t.Logf("run time %v", time.Since(start).Round(time.Millisecond))
}

// --------------------------------------------------------------- the world

// diffLoc is one generated location and the region nearest to it.
type diffLoc struct {
	continent, country string
	lat, lon           float64
	region             int                       // the nearest
	rank               int                       // rankCode of the regions by distance
	km                 [len(diffRegions)]float64 // distance to each region
}

// diffCountries are paired with random coordinates: neither server steers
// by country in this policy, they only have to be valid.
var diffCountries = [...][2]string{
	{"NA", "US"}, {"NA", "CA"}, {"SA", "BR"}, {"EU", "DE"}, {"EU", "FR"},
	{"AF", "ZA"}, {"AS", "IN"}, {"AS", "SG"}, {"AS", "JP"}, {"OC", "AU"},
}

// newDiffLoc draws a location uniformly over the sphere, rejecting those
// near-equidistant from two regions: different distance formulas (geo's
// haversine, gdnsd's) may rank those differently, and the test wants answers
// that must match exactly.
func newDiffLoc(rng *rand.Rand) diffLoc {
	for {
		lat := math.Round(math.Asin(2*rng.Float64()-1)*180/math.Pi*1e4) / 1e4
		lon := math.Round((rng.Float64()*360-180)*1e4) / 1e4
		l := diffLoc{lat: lat, lon: lon}
		for i, r := range diffRegions {
			l.km[i] = geo.Distance(lat, lon, r.lat, r.lon)
			if l.km[i] < l.km[l.region] {
				l.region = i
			}
		}
		if !clearOfTies(l.km) {
			continue
		}
		order := [len(diffRegions)]int{0, 1, 2}
		slices.SortFunc(order[:], func(a, b int) int { return cmp.Compare(l.km[a], l.km[b]) })
		l.rank = rankCode(order)
		c := diffCountries[rng.IntN(len(diffCountries))]
		l.continent, l.country = c[0], c[1]
		return l
	}
}

// clearOfTies reports whether every two distances differ by at least 50 km
// and 1% of the longer: far beyond any rounding, so the nearest region (and
// gdnsd's whole ranking) is the same whatever the formula.
func clearOfTies(km [len(diffRegions)]float64) bool {
	for i := range km {
		for j := i + 1; j < len(km); j++ {
			gap := math.Abs(km[i] - km[j])
			if gap < 50 || gap < 0.01*max(km[i], km[j]) {
				return false
			}
		}
	}
	return true
}

// diffNet is a generated network and its location (index into locs).
type diffNet struct {
	prefix netip.Prefix
	loc    int
}

// span is a range of addresses of one location, after overlapping networks
// have been resolved (later ones win, as mmdbgen.Write inserts them).
type span struct {
	lo, hi netip.Addr
	loc    int
}

// diffWorld is the generated database, kept in a form the test can answer
// from on its own: the networks in insertion order and, per family, the
// sorted, disjoint spans they paint. Addresses in no span are unplaced.
type diffWorld struct {
	locs                 []diffLoc
	nets                 []diffNet
	v4, v6               []span
	clusters4, clusters6 []netip.Prefix
}

// newDiffWorld generates networks in a few clusters (IPv4 /8s, IPv6 /24s
// between 2400:: and 2cff::, clear of the IPv6 space both servers alias to
// IPv4), so that networks neighbour, nest and leave gaps. Wider networks are
// inserted first, so narrower ones punch holes into them, as in real data.
func newDiffWorld(rng *rand.Rand) *diffWorld {
	w := &diffWorld{}
	for range diffLocations {
		w.locs = append(w.locs, newDiffLoc(rng))
	}
	for len(w.clusters4) < 16 {
		o := 1 + rng.IntN(223) // 1..223: unicast, not 0/8
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(o)}), 8)
		if o != 127 && !slices.Contains(w.clusters4, p) {
			w.clusters4 = append(w.clusters4, p)
		}
	}
	for len(w.clusters6) < 12 {
		var b [16]byte
		hi := 0x2400 + rng.IntN(0x2d00-0x2400)
		b[0], b[1], b[2] = byte(hi>>8), byte(hi), byte(rng.IntN(256))
		p := netip.PrefixFrom(netip.AddrFrom16(b), 24)
		if !slices.Contains(w.clusters6, p) {
			w.clusters6 = append(w.clusters6, p)
		}
	}
	add := func(c netip.Prefix, bits int) {
		p := netip.PrefixFrom(randomIn(rng, c), bits).Masked()
		w.nets = append(w.nets, diffNet{p, rng.IntN(len(w.locs))})
	}
	// Two whole /8s, then mostly /17../24 with a spread either side.
	add(w.clusters4[0], 8)
	add(w.clusters4[rng.IntN(len(w.clusters4))], 8)
	for len(w.nets) < diffNetsV4 {
		var bits int
		switch r := rng.IntN(100); {
		case r < 2:
			bits = 9 + rng.IntN(4)
		case r < 12:
			bits = 13 + rng.IntN(4)
		case r < 75:
			bits = 17 + rng.IntN(8)
		default:
			bits = 25 + rng.IntN(6)
		}
		add(w.clusters4[rng.IntN(len(w.clusters4))], bits)
	}
	for len(w.nets) < diffNetsV4+diffNetsV6 {
		var bits int
		switch r := rng.IntN(100); {
		case r < 8:
			bits = 32 + rng.IntN(4)
		case r < 35:
			bits = 36 + rng.IntN(12)
		case r < 65:
			bits = 48
		default:
			bits = 49 + rng.IntN(16)
		}
		add(w.clusters6[rng.IntN(len(w.clusters6))], bits)
	}
	slices.SortStableFunc(w.nets, func(a, b diffNet) int { return a.prefix.Bits() - b.prefix.Bits() })
	for _, n := range w.nets {
		if n.prefix.Addr().Is4() {
			w.v4 = paint(w.v4, n.prefix, n.loc)
		} else {
			w.v6 = paint(w.v6, n.prefix, n.loc)
		}
	}
	return w
}

// writeDB writes the networks, in order, as a GeoIP2 City database.
func (w *diffWorld) writeDB(t *testing.T, path string) {
	t.Helper()
	nets := make([]mmdbgen.Network, len(w.nets))
	for i, n := range w.nets {
		l := w.locs[n.loc]
		nets[i] = mmdbgen.Network{
			Prefix: n.prefix, Continent: l.continent, Country: l.country,
			Lat: l.lat, Lon: l.lon, HasCoords: true,
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := mmdbgen.Write(f, mmdbgen.City, nets); err != nil {
		f.Close()
		t.Fatalf("write database: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// checkModel holds the test's own model of the database (the painted
// spans) against the database file, read with maxminddb at every queried
// address and around every network's ends, so that the verdicts below rest
// on what the file really says.
func (w *diffWorld) checkModel(t *testing.T, path string, queries []diffQuery) {
	t.Helper()
	r, err := maxminddb.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var addrs []netip.Addr
	for _, q := range queries {
		addrs = append(addrs, q.subnet.Addr())
	}
	for _, n := range w.nets {
		lo, hi := n.prefix.Addr(), lastAddr(n.prefix)
		addrs = append(addrs, lo, hi, lo.Prev(), hi.Next())
	}
	var rec struct {
		Location struct {
			Latitude  float64 `maxminddb:"latitude"`
			Longitude float64 `maxminddb:"longitude"`
		} `maxminddb:"location"`
	}
	bad := 0
	for _, a := range addrs {
		if !a.IsValid() {
			continue
		}
		res := r.Lookup(a)
		if err := res.Err(); err != nil {
			t.Fatalf("look up %s: %v", a, err)
		}
		loc, placed := w.locAt(a)
		switch {
		case res.Found() != placed:
			bad++
			t.Errorf("test model: %s placed %v, the database says %v", a, placed, res.Found())
		case placed:
			if err := res.Decode(&rec); err != nil {
				t.Fatalf("decode %s: %v", a, err)
			}
			if l := w.locs[loc]; rec.Location.Latitude != l.lat || rec.Location.Longitude != l.lon {
				bad++
				t.Errorf("test model: %s at (%v,%v), the database says (%v,%v)",
					a, l.lat, l.lon, rec.Location.Latitude, rec.Location.Longitude)
			}
		}
		if bad >= diffDetails {
			t.Fatalf("the test's model of its database is wrong; not asking the servers")
		}
	}
}

// paint returns spans with p painted over as loc. spans is sorted and
// disjoint, and stays so.
func paint(spans []span, p netip.Prefix, loc int) []span {
	lo, hi := p.Masked().Addr(), lastAddr(p)
	i, _ := slices.BinarySearchFunc(spans, lo, func(s span, a netip.Addr) int { return s.hi.Compare(a) })
	j := i
	for j < len(spans) && spans[j].lo.Compare(hi) <= 0 {
		j++
	}
	var pieces []span
	if i < j && spans[i].lo.Less(lo) {
		pieces = append(pieces, span{spans[i].lo, lo.Prev(), spans[i].loc})
	}
	pieces = append(pieces, span{lo, hi, loc})
	if i < j && hi.Less(spans[j-1].hi) {
		pieces = append(pieces, span{hi.Next(), spans[j-1].hi, spans[j-1].loc})
	}
	return slices.Replace(spans, i, j, pieces...)
}

func (w *diffWorld) spans(a netip.Addr) []span {
	if a.Is4() {
		return w.v4
	}
	return w.v6
}

// locAt returns the location of a, and false when a is unplaced.
func (w *diffWorld) locAt(a netip.Addr) (int, bool) {
	s := w.spans(a)
	i, _ := slices.BinarySearchFunc(s, a, func(s span, a netip.Addr) int { return s.hi.Compare(a) })
	if i < len(s) && s[i].lo.Compare(a) <= 0 {
		return s[i].loc, true
	}
	return 0, false
}

// regionAt is the region that must answer a client at a.
func (w *diffWorld) regionAt(a netip.Addr) int {
	if loc, ok := w.locAt(a); ok {
		return w.locs[loc].region
	}
	return unplacedRegion
}

// ipv4Like is IPv6 space that Meridian and gdnsd answer from IPv4 (the
// IPv4-compatible, IPv4-mapped, Teredo and 6to4 ranges the database aliases,
// and gdnsd's SIIT and NAT64 ranges): all regions may answer there.
var ipv4Like = []netip.Prefix{
	netip.MustParsePrefix("::/96"),
	netip.MustParsePrefix("::ffff:0:0/96"),
	netip.MustParsePrefix("::ffff:0:0:0/96"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("2001::/32"),
	netip.MustParsePrefix("2002::/16"),
}

// A tree model says what value a server's map holds for an address: the
// answer's region for Meridian; for gdnsd, the list of datacenters its tree
// holds (the nearest auto_dc_limit ones, in distance order; all of them, in
// configured order, for an unplaced address). A server may merge neighbours
// only where the value is equal, so the widest scope it can give is the
// widest prefix of uniform value (see widest).
type treeModel func(l *diffLoc, placed bool) int

// Values of the models, all below 64 (they are bits of a set):
// the region index, or a ranking encoded by rankCode.
var (
	meridianModel treeModel = func(l *diffLoc, placed bool) int {
		if !placed {
			return unplacedRegion
		}
		return l.region
	}
	// gdnsd with auto_dc_limit 1: [nearest], or the whole default list,
	// which differs from [us-east].
	gdnsdLimit1Model treeModel = func(l *diffLoc, placed bool) int {
		if !placed {
			return len(diffRegions)
		}
		return l.region
	}
	// gdnsd with auto_dc_limit 3: the full ranking, or the default list
	// (us-east, eu-west, ap-southeast), equal to the ranking of a place
	// nearest us-east, then eu-west.
	gdnsdLimit3Model treeModel = func(l *diffLoc, placed bool) int {
		if !placed {
			return rankCode([len(diffRegions)]int{0, 1, 2})
		}
		return l.rank
	}
)

// rankCode encodes a ranking of the three regions as one small number.
func rankCode(order [len(diffRegions)]int) int {
	return (order[0]*len(diffRegions)+order[1])*len(diffRegions) + order[2]
}

// mixed is the value set of a prefix that reaches into IPv6 space both
// servers answer from IPv4: every value may occur there.
const mixed = ^uint64(0)

// valuesIn returns the set of values (bit v for value v) that model gives
// the addresses of p, from the spans alone: each span's value, and the
// unplaced value when p has a gap.
func (w *diffWorld) valuesIn(p netip.Prefix, model treeModel) uint64 {
	if p.Addr().Is6() {
		for _, x := range ipv4Like {
			if x.Overlaps(p) {
				return mixed
			}
		}
	}
	lo, hi := p.Masked().Addr(), lastAddr(p)
	s := w.spans(lo)
	i, _ := slices.BinarySearchFunc(s, lo, func(s span, a netip.Addr) int { return s.hi.Compare(a) })
	var set uint64
	cursor := lo // the first address of p not yet accounted for
	for ; i < len(s) && s[i].lo.Compare(hi) <= 0; i++ {
		if cursor.Less(s[i].lo) {
			set |= 1 << model(nil, false)
		}
		set |= 1 << model(&w.locs[s[i].loc], true)
		if s[i].hi.Compare(hi) >= 0 {
			return set // covered to the end of p
		}
		cursor = s[i].hi.Next()
	}
	return set | 1<<model(nil, false)
}

// widest returns the widest prefix length L such that addr/L holds one
// value of model: the scope a server whose tree is model gives addr.
func (w *diffWorld) widest(addr netip.Addr, model treeModel) int {
	for bits := addr.BitLen(); bits > 0; bits-- {
		if bitsSet(w.valuesIn(netip.PrefixFrom(addr, bits-1).Masked(), model)) > 1 {
			return bits
		}
	}
	return 0
}

func bitsSet(set uint64) int {
	n := 0
	for ; set != 0; set &= set - 1 {
		n++
	}
	return n
}

// netAt names the network that places a (the last inserted that holds it)
// and its location, for failure messages.
func (w *diffWorld) netAt(a netip.Addr) string {
	for i := len(w.nets) - 1; i >= 0; i-- {
		if n := w.nets[i]; n.prefix.Contains(a) {
			l := w.locs[n.loc]
			return fmt.Sprintf("network %s at (%v,%v), km to us-east/eu-west/ap-southeast %.0f/%.0f/%.0f",
				n.prefix, l.lat, l.lon, l.km[0], l.km[1], l.km[2])
		}
	}
	return "unplaced"
}

// randomIn returns a random address in p.
func randomIn(rng *rand.Rand, p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := range b {
		keep := min(max(p.Bits()-8*i, 0), 8) // bits of the prefix in this byte
		b[i] |= byte(rng.IntN(256)) & (0xff >> keep)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// lastAddr returns the last address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := range b {
		keep := min(max(p.Bits()-8*i, 0), 8)
		b[i] |= 0xff >> keep
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// --------------------------------------------------------------- queries

// diffQuery is one client subnet both servers are asked about.
type diffQuery struct {
	subnet netip.Prefix // masked: the address as sent
	kind   string       // how it was drawn, for failure messages
}

func (q diffQuery) qtype() uint16 {
	if q.subnet.Addr().Is4() {
		return dns.TypeA
	}
	return dns.TypeAAAA
}

// queries draws the client subnets: half of them /24 (IPv4) or /56 (IPv6),
// the rest anywhere in /16../32 or /32../64; most inside a generated
// network, some anywhere in a cluster or the whole range, and some whose
// address the database does not place.
func (w *diffWorld) queries(rng *rand.Rand) []diffQuery {
	var v4nets, v6nets []netip.Prefix
	for _, n := range w.nets {
		if n.prefix.Addr().Is4() {
			v4nets = append(v4nets, n.prefix)
		} else {
			v6nets = append(v6nets, n.prefix)
		}
	}
	anywhere4 := func() netip.Addr {
		for {
			a := randomIn(rng, netip.MustParsePrefix("0.0.0.0/0"))
			if o := a.As4()[0]; o != 0 && o != 127 && o < 224 {
				return a
			}
		}
	}
	anywhere6 := func() netip.Addr {
		var b [16]byte
		hi := 0x2400 + rng.IntN(0x2d00-0x2400)
		b[0], b[1] = byte(hi>>8), byte(hi)
		return randomIn(rng, netip.PrefixFrom(netip.AddrFrom16(b), 16))
	}
	draw := func(v6 bool) diffQuery {
		nets, clusters, anywhere, common, shortest, longest := v4nets, w.clusters4, anywhere4, 24, 16, 32
		if v6 {
			nets, clusters, anywhere, common, shortest, longest = v6nets, w.clusters6, anywhere6, 56, 32, 64
		}
		bits := common
		if rng.IntN(2) == 0 {
			bits = shortest + rng.IntN(longest-shortest+1)
		}
		mask := func(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, bits).Masked() }
		switch r := rng.IntN(100); {
		case r < 70:
			return diffQuery{mask(randomIn(rng, nets[rng.IntN(len(nets))])), "in a network"}
		case r < 85:
			return diffQuery{mask(randomIn(rng, clusters[rng.IntN(len(clusters))])), "in a cluster"}
		case r < 90:
			return diffQuery{mask(anywhere()), "anywhere"}
		}
		for range 1000 {
			a := anywhere()
			if rng.IntN(2) == 0 {
				a = randomIn(rng, clusters[rng.IntN(len(clusters))])
			}
			if _, placed := w.locAt(mask(a).Addr()); !placed {
				return diffQuery{mask(a), "unplaced"}
			}
		}
		return diffQuery{mask(anywhere()), "anywhere"}
	}
	var out []diffQuery
	for range diffQueriesV4 {
		out = append(out, draw(false))
	}
	for range diffQueriesV6 {
		out = append(out, draw(true))
	}
	return out
}

// diffReply is what one server answered: the region whose address it gave
// and the ECS scope; err when the reply was not one such address with the
// ECS option echoed.
type diffReply struct {
	region, scope int
	err           error
}

// diffResult is one query's replies: Meridian's, and gdnsd's from the map
// with auto_dc_limit 1 and from the map with its default, 3.
type diffResult struct {
	meridian, gdnsd1, gdnsd3 diffReply
}

// askAll asks every query of both servers, from a few goroutines, each
// filling its own results; it returns when all are answered or the phase's
// deadline has passed (then the test fails).
func askAll(t *testing.T, queries []diffQuery, meridian, gdnsd netip.AddrPort) []diffResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), diffTimeout)
	defer cancel()
	results := make([]diffResult, len(queries))
	const workers = 8
	var wg sync.WaitGroup
	for k := range workers {
		wg.Go(func() {
			for i := k; i < len(queries); i += workers {
				q := queries[i]
				results[i] = diffResult{
					meridian: ask(ctx, meridian, "www."+diffZone, q),
					gdnsd1:   ask(ctx, gdnsd, "www1."+diffZone, q),
					gdnsd3:   ask(ctx, gdnsd, "www."+diffZone, q),
				}
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		t.Fatalf("asking %d subnets of both servers took longer than %v", len(queries), diffTimeout)
	}
	return results
}

// ask sends one query with q's subnet, over UDP, retrying a lost datagram
// until ctx ends, and checks the reply's shape.
func ask(ctx context.Context, server netip.AddrPort, name string, q diffQuery) diffReply {
	m := new(dns.Msg)
	m.SetQuestion(name, q.qtype())
	m.RecursionDesired = false
	family := uint16(1)
	if q.subnet.Addr().Is6() {
		family = 2
	}
	o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
	o.SetUDPSize(1232)
	o.Option = append(o.Option, &dns.EDNS0_SUBNET{
		Code: dns.EDNS0SUBNET, Family: family,
		SourceNetmask: uint8(q.subnet.Bits()), Address: q.subnet.Addr().AsSlice(),
	})
	m.Extra = append(m.Extra, o)
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	var r *dns.Msg
	var err error
	for {
		r, _, err = c.ExchangeContext(ctx, m, server.String())
		var ne net.Error
		if err == nil || !errors.As(err, &ne) || !ne.Timeout() || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return diffReply{err: fmt.Errorf("query %s: %w", server, err)}
	}
	return parseDiffReply(r, q)
}

// parseDiffReply reads the region and scope of r, a reply to q.
func parseDiffReply(r *dns.Msg, q diffQuery) diffReply {
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		return diffReply{err: fmt.Errorf("rcode %s with %d answers, want NOERROR with one:\n%v", dns.RcodeToString[r.Rcode], len(r.Answer), r)}
	}
	var got netip.Addr
	switch rr := r.Answer[0].(type) {
	case *dns.A:
		got, _ = netip.AddrFromSlice(rr.A.To4())
	case *dns.AAAA:
		got, _ = netip.AddrFromSlice(rr.AAAA)
	}
	region := slices.IndexFunc(diffRegions[:], func(g diffRegion) bool { return got == g.a || got == g.aaaa })
	if region < 0 || (got.Is4() != q.subnet.Addr().Is4()) {
		return diffReply{err: fmt.Errorf("answer %v is no region's %s address", r.Answer[0], dns.TypeToString[q.qtype()])}
	}
	var ecs *dns.EDNS0_SUBNET
	if opt := r.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_SUBNET); ok {
				ecs = e
			}
		}
	}
	if ecs == nil {
		return diffReply{err: fmt.Errorf("no ECS option in the reply:\n%v", r)}
	}
	echo, ok := netip.AddrFromSlice(ecs.Address)
	if ok && q.subnet.Addr().Is4() {
		echo = echo.Unmap()
	}
	limit := q.subnet.Addr().BitLen()
	if int(ecs.SourceNetmask) != q.subnet.Bits() || echo != q.subnet.Addr() || int(ecs.SourceScope) > limit {
		return diffReply{err: fmt.Errorf("ECS echoed as %s/%d scope %d, want %s with a scope of at most %d",
			echo, ecs.SourceNetmask, ecs.SourceScope, q.subnet, limit)}
	}
	return diffReply{region: region, scope: int(ecs.SourceScope)}
}

// --------------------------------------------------------------- checks

// diffFailures counts failures by kind and reports the first few of each in
// detail; Summarize reports the rest as counts.
type diffFailures struct {
	t     *testing.T
	count map[string]int
}

func (f *diffFailures) add(kind, format string, args ...any) {
	f.t.Helper()
	f.count[kind]++
	if f.count[kind] <= diffDetails {
		f.t.Errorf(kind+": "+format, args...)
	}
}

func (f *diffFailures) summarize() {
	f.t.Helper()
	for kind, n := range f.count {
		if n > diffDetails {
			f.t.Errorf("%s: %d failures in all (%d shown above)", kind, n, diffDetails)
		}
	}
}

// scopeTally counts how Meridian's scopes compare with another's.
type scopeTally struct{ equal, longer, shorter int }

func (s *scopeTally) add(meridian, other int) {
	switch {
	case meridian == other:
		s.equal++
	case meridian > other:
		s.longer++
	default:
		s.shorter++
	}
}

// gdnsdView is one of gdnsd's two maps as the checks see it.
type gdnsdView struct {
	name  string // for messages
	reply func(diffResult) diffReply
	model treeModel
	value func(v int) string // names a value of model

	vs       scopeTally
	modelled int         // scopes that model predicts
	unsafe   int         // scopes claiming a prefix that holds another answer
	odd      []string    // scopes that model does not predict, the first few
	examples [2][]string // scopes unlike Meridian's (meridian longer, shorter), the first few
}

// check holds every reply against the others and against the world, and
// logs how the scopes compare.
func (w *diffWorld) check(t *testing.T, queries []diffQuery, results []diffResult) {
	f := &diffFailures{t: t, count: map[string]int{}}
	views := []*gdnsdView{
		{name: "auto_dc_limit 1: its tree keyed on the answer, as Meridian's", reply: func(r diffResult) diffReply { return r.gdnsd1 },
			model: gdnsdLimit1Model, value: limit1Name},
		{name: "auto_dc_limit 3, its default and deploy/bench's: keyed on the whole failover list", reply: func(r diffResult) diffReply { return r.gdnsd3 },
			model: gdnsdLimit3Model, value: rankName},
	}
	var vsSource [2]scopeTally // IPv4, IPv6
	var perFamily [2]int
	var perRegion [len(diffRegions)]int
	unplaced := 0
	for i, q := range queries {
		res := results[i]
		addr := q.subnet.Addr()
		want := w.regionAt(addr)
		where := func() string {
			return fmt.Sprintf("%s %s (%s; %s)", q.subnet, dns.TypeToString[q.qtype()], q.kind, w.netAt(addr))
		}
		bad := false
		for _, r := range []struct {
			name string
			r    diffReply
		}{{"meridian", res.meridian}, {"gdnsd (auto_dc_limit 1)", res.gdnsd1}, {"gdnsd (auto_dc_limit 3)", res.gdnsd3}} {
			if r.r.err != nil {
				f.add("bad reply", "%s for %s: %v", r.name, where(), r.r.err)
				bad = true
			}
		}
		if bad {
			continue
		}
		m, g1, g3 := res.meridian, res.gdnsd1, res.gdnsd3
		if _, placed := w.locAt(addr); !placed {
			unplaced++
		}
		perRegion[m.region]++
		if m.region != g1.region || m.region != g3.region {
			f.add("answers differ", "%s: meridian %s (scope %d), gdnsd %s (scope %d), and %s with auto_dc_limit 3 (scope %d)",
				where(), diffRegions[m.region].name, m.scope, diffRegions[g1.region].name, g1.scope,
				diffRegions[g3.region].name, g3.scope)
		}
		if m.region != want {
			f.add("wrong answer", "%s: meridian answers %s, the nearest is %s", where(), diffRegions[m.region].name, diffRegions[want].name)
		}

		// Meridian's scope: the prefix it claims holds only its answer
		// (scope 0 claims the whole address space), and is the widest
		// that does.
		claimed := netip.PrefixFrom(addr, m.scope).Masked()
		if set := w.valuesIn(claimed, meridianModel); set != 1<<m.region {
			kind := "scope too wide"
			if m.scope == 0 {
				kind = "scope 0 with several answers"
			}
			f.add(kind, "%s: meridian answers %s with scope %d, but %s holds %s",
				where(), diffRegions[m.region].name, m.scope, claimed, regionNames(set))
		} else if m.scope > 0 {
			parent := netip.PrefixFrom(addr, m.scope-1).Masked()
			if w.valuesIn(parent, meridianModel) == 1<<m.region {
				f.add("scope not the widest", "%s: meridian answers %s with scope %d, but all of %s gets that answer",
					where(), diffRegions[m.region].name, m.scope, parent)
			}
		}
		fam := 0
		if addr.Is6() {
			fam = 1
		}
		perFamily[fam]++
		vsSource[fam].add(m.scope, q.subnet.Bits())

		for _, v := range views {
			g := v.reply(res)
			v.vs.add(m.scope, g.scope)
			if w.valuesIn(netip.PrefixFrom(addr, g.scope).Masked(), meridianModel) != 1<<g.region {
				v.unsafe++
			}
			if p := w.widest(addr, v.model); p == g.scope {
				v.modelled++
			} else if len(v.odd) < 5 {
				v.odd = append(v.odd, fmt.Sprintf("%s: gdnsd scope %d, its tree's widest prefix of one value is /%d",
					where(), g.scope, p))
			}
			if m.scope == g.scope {
				continue
			}
			dir := 0 // meridian longer
			if m.scope < g.scope {
				dir = 1
			}
			if len(v.examples[dir]) < 3 {
				wide := netip.PrefixFrom(addr, min(m.scope, g.scope)).Masked()
				v.examples[dir] = append(v.examples[dir], fmt.Sprintf("%s: meridian %s scope %d, gdnsd %s scope %d; %s holds for meridian %s, for gdnsd %s",
					where(), diffRegions[m.region].name, m.scope, diffRegions[g.region].name, g.scope,
					wide, regionNames(w.valuesIn(wide, meridianModel)), valueNames(w.valuesIn(wide, v.model), v.value)))
			}
		}
	}
	f.summarize()

	n := len(queries)
	t.Logf("answers: %s %d, %s %d, %s %d; %d subnets unplaced (answered by %s)",
		diffRegions[0].name, perRegion[0], diffRegions[1].name, perRegion[1], diffRegions[2].name, perRegion[2],
		unplaced, diffRegions[unplacedRegion].name)
	for fam, name := range []string{"IPv4", "IPv6"} {
		t.Logf("meridian scope vs source prefix over %d %s subnets: equal %d, longer %d, shorter %d",
			perFamily[fam], name, vsSource[fam].equal, vsSource[fam].longer, vsSource[fam].shorter)
	}
	for _, v := range views {
		t.Logf("scopes vs gdnsd over %d subnets: equal %d, meridian longer %d, meridian shorter %d [gdnsd %s]",
			n, v.vs.equal, v.vs.longer, v.vs.shorter, v.name)
	}
	for _, v := range views {
		t.Logf("gdnsd [%s]: %d of %d scopes are the widest prefix of one value of its tree as modelled here; %d claim a prefix holding another answer",
			v.name, v.modelled, n, v.unsafe)
		for _, e := range v.examples[0] {
			t.Logf("  meridian longer: %s", e)
		}
		for _, e := range v.examples[1] {
			t.Logf("  meridian shorter: %s", e)
		}
		for _, e := range v.odd {
			t.Logf("  not as modelled: %s", e)
		}
	}
	if unplaced == 0 {
		t.Errorf("no unplaced subnet was asked: the generator should draw some")
	}
	if vsSource[0].longer == 0 || vsSource[1].longer == 0 {
		t.Errorf("no scope longer than its source prefix: the generator should draw subnets holding several answers")
	}
}

// regionNames names the regions of a set of meridianModel values.
func regionNames(set uint64) string {
	return valueNames(set, func(v int) string { return diffRegions[v].name })
}

// limit1Name names a value of gdnsdLimit1Model.
func limit1Name(v int) string {
	if v == len(diffRegions) {
		return "unplaced (the default list)"
	}
	return diffRegions[v].name
}

// rankName names a value of gdnsdLimit3Model: its ranking.
func rankName(v int) string {
	n := len(diffRegions)
	return diffRegions[v/(n*n)].name + ">" + diffRegions[v/n%n].name + ">" + diffRegions[v%n].name
}

func valueNames(set uint64, name func(int) string) string {
	if set == mixed {
		return "IPv4-like space (every value)"
	}
	var names []string
	for v := range 64 {
		if set&(1<<v) != 0 {
			names = append(names, name(v))
		}
	}
	return strings.Join(names, " + ")
}

// --------------------------------------------------------------- servers

// diffZoneTOML is the zone of deploy/bench/run.sh: www answers the nearest
// of three regions, in gdnsd's datacenter order.
const diffZoneTOML = `zone = "diff.example"
ttl = 300
ns = ["ns1", "ns2"]

[soa]
rname = "hostmaster@diff.example"
serial = 1
minimum = 60

[regions.us-east]
lat = 38.95
lon = -77.45
[regions.eu-west]
lat = 50.11
lon = 8.68
[regions.ap-southeast]
lat = 1.35
lon = 103.82

[records.ns1]
A = ["192.0.2.53"]
[records.ns2]
A = ["198.51.100.53"]

[pools.www]
policy = "nearest"
ttl = 30
order = ["us-east", "eu-west", "ap-southeast"]   # same as gdnsd's datacenters
[pools.www.members.us-east]
addresses = ["192.0.2.10", "2001:db8:1::10"]
[pools.www.members.eu-west]
addresses = ["198.51.100.10", "2001:db8:2::10"]
[pools.www.members.ap-southeast]
addresses = ["203.0.113.10", "2001:db8:3::10"]
`

// startDiffNode starts a Meridian node in process on 127.0.0.1:0, serving
// diffZoneTOML from db, and waits until it answers. It is stopped, and
// waited for, when the test ends.
func startDiffNode(t *testing.T, dir, db string) netip.AddrPort {
	t.Helper()
	writeFile(t, filepath.Join(dir, "zones", "diff.example.toml"), diffZoneTOML)
	writeFile(t, filepath.Join(dir, "node.toml"), fmt.Sprintf(`zones = "zones"
geoip = %q
log_level = "warn"
watch_interval = "0s"

[dns]
listen = ["127.0.0.1:0"]
`, db))
	cfg, err := node.LoadConfig(filepath.Join(dir, "node.toml"))
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	log := slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	n, err := node.New(log, cfg)
	if err != nil {
		t.Fatalf("node.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("node.Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("node did not stop within 10s of its context ending")
		}
	})
	addrs := n.DNSAddrs()
	if len(addrs) != 1 || addrs[0].Port() == 0 {
		t.Fatalf("node listens on %v, want one 127.0.0.1 port", addrs)
	}
	eventually(t, readyTimeout, func() error { return probe(addrs[0]) })
	return addrs[0]
}

// probe asks server for www's A record, without ECS, and wants one answer.
func probe(server netip.AddrPort) error {
	m := new(dns.Msg)
	m.SetQuestion("www."+diffZone, dns.TypeA)
	m.RecursionDesired = false
	c := &dns.Client{Net: "udp", Timeout: 500 * time.Millisecond}
	r, _, err := c.Exchange(m, server.String())
	switch {
	case err != nil:
		return err
	case r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1:
		return fmt.Errorf("rcode %s with %d answers", dns.RcodeToString[r.Rcode], len(r.Answer))
	}
	return nil
}

// gdnsdConfig is deploy/bench/run.sh's gdnsd config with a second map:
// www uses gdnsd's default auto_dc_limit (3), www1 the limit 1. gdnsd's
// tree holds, per network, the list of up to auto_dc_limit datacenters in
// distance order, and merges neighbours only when the whole list is equal;
// with the limit 1 the list is the answer alone, as in Meridian's map, so
// its scopes can be compared with Meridian's like for like. The answer (the
// list's first datacenter) is the same for both.
const gdnsdConfig = `options => {
  listen => [ 127.0.0.1:%d ]
  run_dir => %q
  state_dir => %q
  udp_threads => 1
  tcp_threads => 1
}
plugins => {
  geoip => {
    maps => {
      limit3 => {
        geoip2_db => %[4]q
        # The fallback order for clients the database does not place.
        datacenters => [ us-east, eu-west, ap-southeast ]
        auto_dc_coords => {
          us-east => [ 38.95, -77.45 ]
          eu-west => [ 50.11, 8.68 ]
          ap-southeast => [ 1.35, 103.82 ]
        }
      }
      limit1 => {
        geoip2_db => %[4]q
        datacenters => [ us-east, eu-west, ap-southeast ]
        auto_dc_coords => {
          us-east => [ 38.95, -77.45 ]
          eu-west => [ 50.11, 8.68 ]
          ap-southeast => [ 1.35, 103.82 ]
        }
        auto_dc_limit => 1
      }
    }
    resources => {
      www => {
        map => limit3
        service_types => up
        dcmap => {
          us-east => { addrs_v4 => 192.0.2.10, addrs_v6 => "2001:db8:1::10" }
          eu-west => { addrs_v4 => 198.51.100.10, addrs_v6 => "2001:db8:2::10" }
          ap-southeast => { addrs_v4 => 203.0.113.10, addrs_v6 => "2001:db8:3::10" }
        }
      }
      www1 => {
        map => limit1
        service_types => up
        dcmap => {
          us-east => { addrs_v4 => 192.0.2.10, addrs_v6 => "2001:db8:1::10" }
          eu-west => { addrs_v4 => 198.51.100.10, addrs_v6 => "2001:db8:2::10" }
          ap-southeast => { addrs_v4 => 203.0.113.10, addrs_v6 => "2001:db8:3::10" }
        }
      }
    }
  }
}
`

const gdnsdZone = `$TTL 300
@	60 SOA ns1 hostmaster ( 1 7200 1800 259200 60 )
@	NS ns1
@	NS ns2
ns1	A 192.0.2.53
ns2	A 198.51.100.53
www	30 DYNA geoip!www
www1	30 DYNA geoip!www1
`

// gdnsdAttempts bounds the restarts when gdnsd cannot bind the port chosen
// for it (another process took it between our check and gdnsd's bind).
const gdnsdAttempts = 5

// startGdnsd starts gdnsd in the foreground with a private config, run and
// state directory in dir, listening on a free 127.0.0.1 port, and waits
// until it answers. It is stopped (SIGTERM, then SIGKILL) when the test
// ends.
func startGdnsd(t *testing.T, bin, dir, db string) netip.AddrPort {
	t.Helper()
	writeFile(t, filepath.Join(dir, "zones", strings.TrimSuffix(diffZone, ".")), gdnsdZone)
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("find a free port: %v", err)
		}
		// A fresh run dir each time: a killed instance leaves its lock.
		run := filepath.Join(dir, fmt.Sprintf("run%d", attempt))
		writeFile(t, filepath.Join(dir, "config"),
			fmt.Sprintf(gdnsdConfig, port, run, filepath.Join(dir, "state"), db))
		logPath := filepath.Join(dir, fmt.Sprintf("gdnsd%d.log", attempt))
		server := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), port)
		err = runGdnsd(t, bin, dir, logPath, server)
		if err == nil {
			return server
		}
		out, _ := os.ReadFile(logPath)
		if attempt == gdnsdAttempts || !strings.Contains(string(out), "in use") {
			t.Fatalf("gdnsd (attempt %d): %v\n%s", attempt, err, out)
		}
		t.Logf("gdnsd (attempt %d): %v; trying another port", attempt, err)
	}
}

// gdnsdReadyTimeout bounds gdnsd's start-up: loading the database and
// compiling both maps.
const gdnsdReadyTimeout = 20 * time.Second

// runGdnsd starts one gdnsd and waits until it answers on server. It
// returns an error if gdnsd exits first; any other failure fails the test.
func runGdnsd(t *testing.T, bin, dir, logPath string, server netip.AddrPort) error {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close() // gdnsd has its own copy
	cmd := exec.Command(bin, "-c", dir, "start")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start gdnsd: %v", err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		select {
		case <-exited:
			return
		default:
		}
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Logf("signal gdnsd: %v", err)
		}
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Errorf("gdnsd ignored SIGTERM for 10s; killing it")
			cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(gdnsdReadyTimeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-exited:
			return fmt.Errorf("gdnsd exited during start-up: %v", waitErr)
		case <-tick.C:
		}
		err := probe(server)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(logPath)
			t.Fatalf("gdnsd did not answer on %s within %v: %v\n%s", server, gdnsdReadyTimeout, err, out)
		}
	}
}

// freePort returns a port that 127.0.0.1 had free for both UDP and TCP a
// moment ago (gdnsd listens on both).
func freePort() (uint16, error) {
	for range 20 {
		u, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		u.Close()
		if err == nil {
			l.Close()
			return uint16(port), nil
		}
	}
	return 0, errors.New("no port free for both UDP and TCP in 20 tries")
}

func writeFile(t *testing.T, name, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
