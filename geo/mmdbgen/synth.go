package mmdbgen

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"net/netip"
	"slices"
	"sort"
	"strings"
)

// SynthOptions sizes a synthetic database; see Synth.
type SynthOptions struct {
	// V4 and V6 are how many IPv4 and IPv6 networks to make, exactly: up
	// to about 5.5 million and 12 million, less with few Locations (which
	// leave few registries' space in play); ErrSynth says when they do not
	// fit. A full-size benchmark, like GeoLite2-City, has about 3 million
	// and 1 million.
	V4, V6 int
	// Locations is how many distinct records (places) the networks point
	// at: exactly this many when there are enough networks (roughly when
	// V4+V6 is a few times Locations), otherwise as many as they can use.
	// At least 2 when there are networks: neighbours of one country need
	// two places to differ.
	Locations int
	Seed      uint64 // the same options always give the same networks and bytes
}

// ErrSynth means SynthOptions ask for a database the model cannot make.
var ErrSynth = errors.New("cannot synthesize database")

// The most networks SynthOptions may ask for: about what the model's
// address space holds, with some room to spare.
const (
	maxSynthV4 = 5_500_000
	maxSynthV6 = 12_000_000
)

// A synthetic database is shaped like GeoLite2-City, because what Meridian
// compiles from a database (merged ranges, per-pool decision maps) depends
// less on how many networks there are than on how they cluster: real
// registries hand address space out in big blocks, so neighbouring networks
// are mostly in one country and often in one city. The model, coarse to
// fine, in address order:
//
//   - A registry (RIR) owns address space: IPv4 /8s roughly as IANA lists
//     them, and one IPv6 /12 each. Each registry gets a share of the
//     networks by the weight of the countries it serves, spread over its
//     /8s by their size; so RIPE space is denser than ARIN's, as it is.
//   - An allocation is a run of networks of one country (weighted by its
//     share of networks) inside its registry's space, aligned to a /19
//     (IPv6: a /31). Allocations are scattered over the space with random
//     gaps and never touch reserved networks; unused space between them
//     is where a real database has networks we did not ask for.
//   - An ISP block inside an allocation serves one subdivision and cuts its
//     space into subnets of one typical size (mostly /24; IPv6 mostly /48
//     and /64).
//   - A city run inside a block is 1 to 3 of those subnets at one place.
//     Its range is cut into the fewest CIDR networks, as MaxMind's ranges
//     are, so two /24s starting at an even /24 are one /23. Most runs keep
//     the place of the run before them, unless their first network is the
//     sibling of the last one: two sibling networks with one record would
//     merge into their parent in any MaxMind database, and the counts would
//     no longer be exact. Sometimes a run starts after a hole of unused
//     subnets.
//
// Locations are spread over countries by how many city runs they have:
// every country gets one country-level location (no city, the centroid, as
// GeoLite2 has for networks it cannot place more closely) and cities in
// subdivisions (coded 01, 02, ..., as ISO 3166-2 does for many countries),
// scattered around the centroid by the country's extent. The first runs of
// a country take its locations in turn, so that all of them are used;
// later runs pick a city of the block's subdivision, the big ones more
// often.
//
// All randomness comes from a fixed generator seeded by SynthOptions.Seed,
// with integer and basic float arithmetic only, so the output is the same
// on every platform. The address layout is computed twice (once to measure
// and plan, once to emit) rather than held in memory, which keeps a
// full-size database (millions of networks) lean.
const (
	// allocExp4 and allocExp6 bound allocation sizes: 1 to 2^exp-1
	// networks, each power of two equally likely, so most allocations are
	// small and a few large, as in registries. IPv4 averages 27 networks,
	// which leaves about 97% of neighbouring networks in one country; IPv6
	// allocations (an ISP's /32) list fewer networks in GeoLite2.
	allocExp4 = 7
	allocExp6 = 6
	// blockExp bounds ISP blocks: 1 to 31 networks (mean about 8).
	blockExp = 5
	// runExp4 and runExp6 bound city runs: 1 to 2^exp-1 subnets of the
	// block's size. Longer runs would make too few /24s (IPv6 /48s): a run
	// of k subnets is about log2(k) networks. A run never spans two
	// subnets of the shortest length (/20, IPv6 /32), which would merge
	// into a network shorter than the model allows.
	runExp4 = 2
	runExp6 = 2
	// holeP4 and holeP6 are the chances that a run starts after unused
	// subnets (1 to 2^exp-1 of them); IPv6 space is used sparsely.
	holeP4, holeExp4 = 0.15, 2
	holeP6, holeExp6 = 0.5, 6
	// keepCityP is the chance a run keeps the place of the run before it in
	// the block (unless its first network is the sibling of the last one).
	// GeoLite2 has many such neighbours, listed apart because their
	// records differ in what Meridian does not read (postal code, accuracy
	// radius), so they are one place to Meridian. This makes about half of
	// neighbouring networks share a city.
	keepCityP = 0.75
	// countryLevelP is the chance a run is placed only at country level.
	countryLevelP = 0.08
	// maxSubdivisions caps subdivisions per country (the United States
	// has 51 in GeoLite2); a country has about sqrt(cities/2).
	maxSubdivisions = 60
	// minLocsPerCountry limits countries when Locations is small: each
	// country needs a few places for its neighbouring runs to differ.
	minLocsPerCountry = 4
)

// weightedLen is a prefix length and how often a block uses it.
type weightedLen struct {
	bits   int
	weight float64
}

// Subnet sizes of ISP blocks. Runs of several subnets make some networks
// shorter, so the networks written are mostly /24 (IPv6 /48 and /64) with
// a spread of /20 to /29 (IPv6 /32 to /64), like GeoLite2-City's.
var (
	blockLens4 = []weightedLen{
		{20, 1}, {21, 1}, {22, 2}, {23, 1}, {24, 65}, {25, 6}, {26, 6}, {27, 6}, {28, 6}, {29, 6},
	}
	blockLens6 = []weightedLen{
		{32, 3}, {36, 2}, {40, 4}, {44, 5}, {46, 2}, {48, 40}, {52, 3}, {56, 12}, {60, 3}, {62, 2}, {64, 24},
	}
)

// family is one address family's part of the model. Addresses are uint64:
// an IPv4 address, or the top 64 bits of an IPv6 one (no network is longer
// than /64).
type family struct {
	v6      bool
	width   int // 32 or 64: bits of the uint64 addresses that count
	minBits int // the shortest prefix
	// unitBits aligns allocations: to twice the largest network, so that
	// two networks of an allocation are siblings (and must not share a
	// location) exactly when their offsets in it say so.
	unitBits  int
	lens      []weightedLen
	cumLens   []float64
	allocExp  int
	runExp    int
	holeP     float64
	holeExp   int
	budget    int // networks to make
	regionTag uint64
}

func (f *family) name() string {
	if f.v6 {
		return "IPv6"
	}
	return "IPv4"
}

// region is a registry's stretch of address space: an IPv4 /8 or an IPv6
// /12, measured in allocation units (/19, IPv6 /31).
type region struct {
	base    uint64      // first address
	units   uint64      // size in units
	blocked [][2]uint64 // unit ranges [from, to) no allocation may touch, ascending
	rir     rir
	budget  int // networks to place in it

	// Set by the planning pass.
	spans   []uint32 // units each allocation takes, in order
	total   uint64   // sum of spans
	maxSpan uint64
}

// free is how many units the region has outside blocked ranges.
func (r *region) free() uint64 {
	n := r.units
	for _, b := range r.blocked {
		n -= b[1] - b[0]
	}
	return n
}

// freeAfter is how many units at or after unit c are outside blocked
// ranges, and how many blocked ranges end after c.
func (r *region) freeAfter(c uint64) (free uint64, blocked int) {
	free = r.units - c
	for _, b := range r.blocked {
		if b[1] > c {
			free -= b[1] - max(b[0], c)
			blocked++
		}
	}
	return free, blocked
}

// synthLoc is one location (one record) of a synthetic database.
type synthLoc struct {
	country  int    // index into synthCountries
	sub      int    // index of its subdivision in its country; -1 at country level
	subCode  string // "" at country level
	city     string // "" at country level
	lat, lon float64
}

// countryLocs are one country's locations: locs[first : first+n], the
// country-level one (if any) first, then cities grouped by subdivision.
type countryLocs struct {
	first, n     int
	countryLevel bool
	subs         [][2]int // each subdivision's cities: locs[s[0] : s[0]+s[1]]
}

// synthPlan is everything the emitting pass needs: regions with their
// allocation sizes, and the locations.
type synthPlan struct {
	opts     SynthOptions
	families [2]family // IPv4, IPv6
	regions  [2][]region
	byRIR    [numRIRs]countryPicker // the countries in play
	locs     []synthLoc
	byCC     [len(synthCountries)]countryLocs
}

// Random streams; each is seeded from SynthOptions.Seed and its tag, so
// changing one part of the model leaves the others' draws alone.
const (
	tagShape uint64 = iota + 1
	tagLocations
	tagGaps
	tagPicks
)

// planSynth checks opts, measures the address layout and makes the
// locations.
func planSynth(opts SynthOptions) (*synthPlan, error) {
	switch {
	case opts.V4 < 0 || opts.V6 < 0:
		return nil, fmt.Errorf("%w: negative network count (v4 %d, v6 %d)", ErrSynth, opts.V4, opts.V6)
	case opts.V4 > maxSynthV4 || opts.V6 > maxSynthV6:
		// Checked before anything sums the counts, and before laying out
		// millions of networks only to find they do not fit.
		return nil, fmt.Errorf("%w: too many networks (v4 %d, v6 %d; the model's address space holds at most about %d and %d)",
			ErrSynth, opts.V4, opts.V6, maxSynthV4, maxSynthV6)
	case opts.V4+opts.V6 > 0 && opts.Locations < 2:
		return nil, fmt.Errorf("%w: %d locations, want at least 2", ErrSynth, opts.Locations)
	}
	p := &synthPlan{opts: opts}
	p.families[0] = family{width: 32, minBits: 20, unitBits: 19, lens: blockLens4, allocExp: allocExp4, runExp: runExp4,
		holeP: holeP4, holeExp: holeExp4, budget: opts.V4, regionTag: 4}
	p.families[1] = family{v6: true, width: 64, minBits: 32, unitBits: 31, lens: blockLens6, allocExp: allocExp6, runExp: runExp6,
		holeP: holeP6, holeExp: holeExp6, budget: opts.V6, regionTag: 6}

	// The countries in play: all of them, unless there are too few
	// locations to go round; then the biggest.
	used := len(synthCountries)
	if opts.Locations > 0 {
		used = min(used, max(1, opts.Locations/minLocsPerCountry))
	}
	var inPlay [len(synthCountries)]bool
	order := make([]int, len(synthCountries))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmp.Compare(synthCountries[b].weight, synthCountries[a].weight)
	})
	for _, c := range order[:used] {
		inPlay[c] = true
	}
	for c := range synthCountries {
		if inPlay[c] {
			p.byRIR[synthCountries[c].rir].add(c, synthCountries[c].weight)
		}
	}

	var events [len(synthCountries)]int
	for fi := range p.families {
		f := &p.families[fi]
		for _, l := range f.lens {
			f.cumLens = append(f.cumLens, l.weight+lastOr0(f.cumLens))
		}
		p.regions[fi] = makeRegions(f, &p.byRIR)
		if err := p.fit(f, p.regions[fi], &events); err != nil {
			return nil, err
		}
	}
	p.makeLocations(&events)
	return p, nil
}

// fit measures the layout of each region and, where a registry's space is
// too full for its share of the networks, moves the excess to regions with
// room (which give them to their own countries: a very large database has
// more networks in ARIN's roomy space than the country weights say). It
// adds each country's city runs to events.
func (p *synthPlan) fit(f *family, regions []region, events *[len(synthCountries)]int) error {
	need := make([]uint64, len(regions))
	room := make([]int, len(regions))
	roomW := make([]float64, len(regions))
	for attempt := 0; ; attempt++ {
		var ev [len(synthCountries)]int
		full := -1
		var needAll, freeAll uint64 // in regions that can take networks
		for ri := range regions {
			r := &regions[ri]
			need[ri] = p.measure(f, r, uint64(ri), &ev)
			if need[ri] > r.free() {
				full = ri
			}
			if r.budget > 0 {
				needAll += need[ri]
				freeAll += r.free()
			}
		}
		if full < 0 {
			for c := range ev {
				events[c] += ev[c]
			}
			return nil
		}
		if needAll > freeAll-freeAll/8 {
			// Hopeless; no need to try moving networks around.
			return fmt.Errorf("%w: %d %s networks do not fit: they need about %d /%d units, the model's address space has %d",
				ErrSynth, f.budget, f.name(), needAll, f.unitBits, freeAll)
		}
		// Shrink full regions to about 90% of what they hold and spread
		// what they shed over the others by their room, at the same
		// density. Densities shift as budgets change, hence the margin
		// and the next round of measuring.
		excess, total := 0, 0
		for ri := range regions {
			r := &regions[ri]
			room[ri], roomW[ri] = 0, 0
			if r.budget == 0 {
				continue // its registry has no countries in play
			}
			fits := float64(r.budget) * 0.9 * float64(r.free()) / float64(need[ri])
			if need[ri] > r.free() {
				excess += r.budget - int(fits)
				r.budget = int(fits)
				continue
			}
			room[ri] = max(0, int(fits)-r.budget)
			roomW[ri] = float64(room[ri])
			total += room[ri]
		}
		if total < excess || attempt == 8 {
			r := &regions[full]
			return fmt.Errorf("%w: %d %s networks do not fit: %d of them in %s need %d /%d units, it has %d",
				ErrSynth, f.budget, f.name(), r.budget, r.prefix(f), need[full], f.unitBits, r.free())
		}
		for ri, n := range apportion(excess, roomW, nil, room) {
			regions[ri].budget += n
		}
	}
}

// measure lays out r's networks to find how many units its allocations
// take (adding the blocked ranges' possible waste), and counts each
// country's city runs into events.
func (p *synthPlan) measure(f *family, r *region, index uint64, events *[len(synthCountries)]int) uint64 {
	r.spans, r.total, r.maxSpan = r.spans[:0], 0, 0
	if r.budget == 0 {
		return 0
	}
	s := newShaper(f, r, &p.byRIR[r.rir], p.opts.Seed, index)
	var sh shape
	end := uint64(0) // end of the current allocation, from its start
	for s.next(&sh) {
		if sh.alloc && end > 0 {
			r.addSpan(f, end)
			end = 0
		}
		end = max(end, sh.off+sh.size(f))
		if sh.event {
			events[sh.country]++
		}
	}
	r.addSpan(f, end)
	// Each blocked range can waste up to one allocation's span, when an
	// allocation is moved past it.
	return r.total + uint64(len(r.blocked))*r.maxSpan
}

func lastOr0(s []float64) float64 {
	if len(s) == 0 {
		return 0
	}
	return s[len(s)-1]
}

func (r *region) addSpan(f *family, end uint64) {
	unit := uint64(1) << (f.width - f.unitBits)
	span := (end + unit - 1) / unit
	r.spans = append(r.spans, uint32(span))
	r.total += span
	r.maxSpan = max(r.maxSpan, span)
}

func (r *region) prefix(f *family) netip.Prefix {
	if f.v6 {
		var a [16]byte
		for i := range 8 {
			a[i] = byte(r.base >> (56 - 8*i))
		}
		return netip.PrefixFrom(netip.AddrFrom16(a), 12)
	}
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(r.base >> 24)}), 8)
}

// makeRegions lists f's regions in address order and gives each its share
// of f's networks: registries by the weight of their countries in play,
// a registry's regions by their free space.
func makeRegions(f *family, byRIR *[numRIRs]countryPicker) []region {
	var regions []region
	if f.v6 {
		for r := range numRIRs {
			regions = append(regions, region{base: uint64(ipv6RIRs[r]) << 48, units: 1 << (f.unitBits - 12), rir: r})
		}
		slices.SortFunc(regions, func(a, b region) int { return cmp.Compare(a.base, b.base) })
	} else {
		for _, span := range ipv4RIRs {
			for o := int(span.from); o <= int(span.to); o++ {
				r := region{base: uint64(o) << 24, units: 1 << (f.unitBits - 8), rir: span.rir}
				for _, res := range ipv4Reserved {
					if int(res.addr>>24) != o {
						continue
					}
					from := uint64(res.addr) - r.base
					to := from + 1<<(32-res.bits)
					// In units, rounded outwards.
					shift := f.width - f.unitBits
					b := [2]uint64{from >> shift, (to + 1<<shift - 1) >> shift}
					if n := len(r.blocked); n > 0 && r.blocked[n-1][1] >= b[0] {
						r.blocked[n-1][1] = max(r.blocked[n-1][1], b[1])
						continue
					}
					r.blocked = append(r.blocked, b)
				}
				regions = append(regions, r)
			}
		}
	}
	var rirWeight [numRIRs]float64
	for r := range numRIRs {
		rirWeight[r] = byRIR[r].total()
	}
	rirBudget := apportion(f.budget, rirWeight[:], nil, nil)
	for r := range numRIRs {
		var idx []int
		var space []float64
		for i := range regions {
			if regions[i].rir == r {
				idx = append(idx, i)
				space = append(space, float64(regions[i].free()))
			}
		}
		for k, n := range apportion(rirBudget[r], space, nil, nil) {
			regions[idx[k]].budget = n
		}
	}
	return regions
}

// countryPicker chooses a registry's countries by weight.
type countryPicker struct {
	countries []int
	cum       []float64
}

func (c *countryPicker) add(country int, weight float64) {
	c.countries = append(c.countries, country)
	c.cum = append(c.cum, lastOr0(c.cum)+weight)
}

func (c *countryPicker) total() float64 { return lastOr0(c.cum) }

func (c *countryPicker) pick(r *rng) int {
	return c.countries[pickCum(c.cum, r.float())]
}

// pickCum returns the index i that u (in [0, 1)) falls in, scaled to the
// cumulative weights cum.
func pickCum(cum []float64, u float64) int {
	x := u * cum[len(cum)-1]
	i := sort.Search(len(cum), func(i int) bool { return cum[i] > x })
	return min(i, len(cum)-1)
}

// shape is one network of the layout, before it has an address or a
// location.
type shape struct {
	off     uint64 // from the start of its allocation
	bits    int    // prefix length
	country int    // index into synthCountries
	alloc   bool   // first network of an allocation
	block   bool   // first network of an ISP block
	event   bool   // first network of a run that chooses its city
}

func (sh *shape) size(f *family) uint64 { return 1 << (f.width - sh.bits) }

// shaper lays out one region's networks: allocations, blocks, runs and the
// networks that cover each run. It is deterministic for its region, so the
// planning and the emitting pass see the same layout.
type shaper struct {
	f         *family
	rng       rng
	countries *countryPicker
	left      int    // networks still to make in the region
	allocLeft int    // networks still to make in the allocation, about
	blockLeft int    // and in the block
	off       uint64 // of the next network, from the allocation's start
	runEnd    uint64
	prevOff   uint64 // the previous network in the allocation
	prevSize  uint64
	base      int    // the block's subnet prefix length
	size      uint64 // the block's subnet size
	country   int
}

func newShaper(f *family, r *region, countries *countryPicker, seed, index uint64) *shaper {
	return &shaper{f: f, rng: newRNG(seed, tagShape, f.regionTag, index), countries: countries, left: r.budget}
}

// next fills sh with the region's next network, or returns false when the
// region has all of its networks.
func (s *shaper) next(sh *shape) bool {
	if s.left == 0 {
		return false
	}
	*sh = shape{}
	if s.off == s.runEnd {
		s.startRun(sh)
	}
	size := s.firstSize()
	sh.off = s.off
	sh.bits = s.f.width - bits.TrailingZeros64(size)
	sh.country = s.country
	s.prevOff, s.prevSize = s.off, size
	s.off += size
	s.left--
	s.allocLeft--
	s.blockLeft--
	return true
}

func (s *shaper) startRun(sh *shape) {
	f := s.f
	if s.allocLeft <= 0 {
		s.country = s.countries.pick(&s.rng)
		s.allocLeft = s.rng.logUniform(f.allocExp)
		s.off, s.blockLeft = 0, 0
		sh.alloc = true
	}
	sh.event = true
	keep := false
	if s.blockLeft <= 0 {
		s.base = f.lens[pickCum(f.cumLens, s.rng.float())].bits
		s.size = 1 << (f.width - s.base)
		s.blockLeft = s.rng.logUniform(blockExp)
		s.off = (s.off + s.size - 1) &^ (s.size - 1)
		sh.block = true
	} else {
		if s.rng.float() < f.holeP {
			s.off += uint64(s.rng.logUniform(f.holeExp)) * s.size
		}
		keep = s.rng.float() < keepCityP
	}
	k := min(s.rng.logUniform(f.runExp), 1<<(s.base-f.minBits+1)-1)
	s.runEnd = s.off + uint64(k)*s.size
	// Keeping the city is only safe if the run's first network is not the
	// upper sibling of the network before it.
	if keep {
		size := s.firstSize()
		sibling := s.prevOff+s.prevSize == s.off && s.prevSize == size && s.prevOff&size == 0
		sh.event = sibling
	}
}

// firstSize is the size of the largest aligned network that starts the
// rest of the run.
func (s *shaper) firstSize() uint64 {
	size := uint64(1) << (bits.Len64(s.runEnd-s.off) - 1)
	if s.off != 0 {
		size = min(size, s.off&-s.off)
	}
	return size
}

// makeLocations spreads opts.Locations over the countries by their number
// of city runs (events) and makes each country's places.
func (p *synthPlan) makeLocations(events *[len(synthCountries)]int) {
	weights := make([]float64, len(events))
	lo := make([]int, len(events))
	for c, e := range events {
		weights[c] = float64(e)
		// Two places at least, so that neighbouring runs can differ.
		lo[c] = min(2, e)
	}
	quota := apportion(p.opts.Locations, weights, lo, events[:])
	rng := newRNG(p.opts.Seed, tagLocations)
	names := make(map[string]bool)
	for c, n := range quota {
		if n == 0 {
			continue
		}
		p.byCC[c] = p.makeCountry(c, n, &rng, names)
		clear(names)
	}
}

func (p *synthPlan) makeCountry(c, n int, rng *rng, names map[string]bool) countryLocs {
	sc := &synthCountries[c]
	cl := countryLocs{first: len(p.locs), n: n, countryLevel: n >= 3}
	cities := n
	if cl.countryLevel {
		p.locs = append(p.locs, synthLoc{country: c, sub: -1, lat: sc.lat, lon: sc.lon})
		cities--
	}
	nsub := min(maxSubdivisions, int(math.Ceil(math.Sqrt(float64(cities)/2))))
	// Subdivision sizes fall off like a Zipf law: a country has a few big
	// regions and many small ones.
	w := make([]float64, nsub)
	lo := make([]int, nsub)
	for s := range w {
		w[s], lo[s] = 1/float64(s+1), 1
	}
	for s, size := range apportion(cities, w, lo, nil) {
		code := fmt.Sprintf("%02d", s+1)
		clat := clampLat(sc.lat + 0.6*sc.radius*rng.norm())
		clon := sc.lon + 0.6*sc.radius*rng.norm()
		cl.subs = append(cl.subs, [2]int{len(p.locs), size})
		for range size {
			p.locs = append(p.locs, synthLoc{
				country: c, sub: s, subCode: code, city: cityName(rng, names),
				lat: round4(clampLat(clat + 0.15*sc.radius*rng.norm())),
				lon: round4(wrapLon(clon + 0.15*sc.radius*rng.norm())),
			})
		}
	}
	return cl
}

func clampLat(lat float64) float64 { return max(-85, min(85, lat)) }

func wrapLon(lon float64) float64 {
	for lon > 180 {
		lon -= 360
	}
	for lon <= -180 {
		lon += 360
	}
	return lon
}

// round4 rounds to four decimals, as GeoLite2 gives coordinates.
func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }

var syllables = [...]string{
	"ba", "be", "bo", "ca", "da", "de", "di", "do", "el", "en", "fa", "ga", "go", "ha", "ka", "ki",
	"la", "le", "li", "lo", "ma", "me", "mi", "mo", "na", "ne", "ni", "no", "ol", "or", "pa", "pe",
	"ra", "re", "ri", "ro", "sa", "se", "si", "so", "ta", "te", "ti", "to", "va", "ve", "vi", "za",
}

var citySuffixes = [...]string{"", "", "", "", "", "burg", "ville", "ton", "stad", "pur", "grad", " City"}

// cityName makes a pronounceable name not yet in names, and adds it.
func cityName(rng *rng, names map[string]bool) string {
	var b strings.Builder
	for syl := 2; ; syl++ {
		b.Reset()
		for i := range syl + int(rng.intN(2)) {
			s := syllables[rng.intN(len(syllables))]
			if i == 0 {
				b.WriteByte(s[0] - 'a' + 'A')
				b.WriteString(s[1:])
				continue
			}
			b.WriteString(s)
		}
		b.WriteString(citySuffixes[rng.intN(len(citySuffixes))])
		if name := b.String(); !names[name] {
			names[name] = true
			return name
		}
	}
}

// synthNet is one emitted network: addr is an IPv4 address or the top 64
// bits of an IPv6 one.
type synthNet struct {
	v6   bool
	addr uint64
	bits int
	loc  int // index into synthPlan.locs
}

// walk emits the networks in address order, IPv4 first.
func (p *synthPlan) walk(yield func(synthNet)) {
	w := walker{
		p:     p,
		gaps:  newRNG(p.opts.Seed, tagGaps),
		picks: newRNG(p.opts.Seed, tagPicks),
	}
	for fi := range p.families {
		f := &p.families[fi]
		w.prevLoc, w.prevEnd = -1, 0
		for ri := range p.regions[fi] {
			r := &p.regions[fi][ri]
			if r.budget > 0 {
				w.region(f, r, uint64(ri), yield)
			}
		}
	}
}

// walker is the state of the emitting pass.
type walker struct {
	p        *synthPlan
	gaps     rng                      // gaps between allocations
	picks    rng                      // cities and subdivisions
	next     [len(synthCountries)]int // each country's next unused location
	prevLoc  int
	prevEnd  uint64 // address after the previous network
	blockSub int    // the current block's subdivision
}

// region emits r's networks. The shaper repeats the layout the plan
// measured; this pass places the allocations and chooses locations.
func (w *walker) region(f *family, r *region, index uint64, yield func(synthNet)) {
	s := newShaper(f, r, &w.p.byRIR[r.rir], w.p.opts.Seed, index)
	// Spread the unused space evenly, on average, over the gaps before and
	// between allocations, keeping back what moving an allocation past a
	// reserved range may waste.
	slack := r.free() - r.total - uint64(len(r.blocked))*r.maxSpan
	meanGap := slack / uint64(len(r.spans)+1)
	cursor, rem := uint64(0), r.total // next free unit; units the rest need
	alloc := -1
	var base uint64
	var sh shape
	for s.next(&sh) {
		if sh.alloc {
			alloc++
			span := uint64(r.spans[alloc])
			free, blocked := r.freeAfter(cursor)
			// Never so wide a gap that the rest no longer fit (the plan
			// checked that they fit with no gaps at all).
			gap := min(uint64(w.gaps.intN(int(2*meanGap+1))), free-rem-uint64(blocked)*r.maxSpan)
			start := cursor + gap
			for _, b := range r.blocked {
				if start < b[1] && start+span > b[0] {
					start = b[1]
				}
			}
			cursor, rem = start+span, rem-span
			base = r.base + start<<(f.width-f.unitBits)
		}
		addr := base + sh.off
		if sh.block {
			w.blockSub = w.pickSub(sh.country)
		}
		loc := w.prevLoc
		if sh.event {
			avoid := -1
			if addr == w.prevEnd {
				avoid = w.prevLoc
			}
			loc = w.pickLoc(sh.country, avoid)
		}
		yield(synthNet{v6: f.v6, addr: addr, bits: sh.bits, loc: loc})
		w.prevLoc, w.prevEnd = loc, addr+sh.size(f)
	}
}

// pickSub chooses the subdivision of a new ISP block in country c: that
// of the country's next unused location while there are any, so that
// blocks take them in turn, else that of a random city.
func (w *walker) pickSub(c int) int {
	cl := &w.p.byCC[c]
	first := cl.first
	if cl.countryLevel {
		first++
	}
	k := max(w.next[c]+cl.first, first)
	if k >= cl.first+cl.n {
		k = first + w.picks.intN(cl.first+cl.n-first)
	}
	return w.p.locs[k].sub
}

// pickLoc chooses the location of a run in country c, in the current
// block's subdivision, other than avoid: the location of the network just
// before, when the two are adjacent and would otherwise merge.
func (w *walker) pickLoc(c, avoid int) int {
	cl := &w.p.byCC[c]
	if k := w.next[c]; k < cl.n {
		w.next[c]++
		return cl.first + k
	}
	var loc int
	if cl.countryLevel && w.picks.float() < countryLevelP {
		loc = cl.first
	} else {
		// Squaring a uniform draw favours the first cities of the
		// subdivision: some cities are big.
		s := cl.subs[w.blockSub]
		u := w.picks.float()
		loc = s[0] + int(float64(s[1])*u*u)
	}
	if loc == avoid {
		// The plan gave every country with two runs two locations.
		loc = cl.first + (loc-cl.first+1)%cl.n
	}
	return loc
}

// apportion splits total into integer shares proportional to weights by
// largest remainder, each share at least lo[i] and at most hi[i] (nil: no
// bound); sum(lo) must not exceed total. Items of weight 0 get lo only.
func apportion(total int, weights []float64, lo, hi []int) []int {
	q := make([]int, len(weights))
	left := total
	if lo != nil {
		copy(q, lo)
		for _, v := range lo {
			left -= v
		}
	}
	room := func(i int) int {
		if hi == nil {
			return math.MaxInt
		}
		return hi[i] - q[i]
	}
	frac := make([]float64, len(weights))
	var order []int
	for left > 0 {
		sum := 0.0
		for i, w := range weights {
			if w > 0 && room(i) > 0 {
				sum += w
			}
		}
		if sum == 0 {
			break
		}
		share, given := float64(left), 0
		order = order[:0]
		for i, w := range weights {
			if w <= 0 || room(i) <= 0 {
				continue
			}
			x := share * w / sum
			n := min(int(x), room(i), left-given)
			q[i] += n
			given += n
			if room(i) > 0 {
				frac[i] = x - float64(n)
				order = append(order, i)
			}
		}
		left -= given
		slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(frac[b], frac[a]) })
		for _, i := range order {
			if left == 0 {
				break
			}
			q[i]++
			left--
		}
	}
	return q
}

// rng is SplitMix64: tiny, fast, and the same on every platform and Go
// release, unlike math/rand's distributions.
type rng struct{ s uint64 }

func newRNG(parts ...uint64) rng {
	r := rng{s: 0x6a09e667f3bcc909}
	for _, p := range parts {
		r.s ^= p
		r.s = r.next()
	}
	return r
}

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// float returns a uniform float64 in [0, 1).
func (r *rng) float() float64 { return float64(r.next()>>11) / (1 << 53) }

// intN returns a uniform int in [0, n).
func (r *rng) intN(n int) int {
	hi, _ := bits.Mul64(r.next(), uint64(n))
	return int(hi)
}

// logUniform returns an int in [1, 2^exp-1] whose bit length is uniform:
// as many values of 1, 2-3, 4-7, ... .
func (r *rng) logUniform(exp int) int {
	lo := 1 << r.intN(exp)
	return lo + r.intN(lo)
}

// norm returns an approximately standard normal value (Irwin-Hall: four
// uniforms), with plain arithmetic so that it is the same everywhere.
func (r *rng) norm() float64 {
	return (r.float() + r.float() + r.float() + r.float() - 2) * 1.7320508075688772
}

// Synth returns the networks of a synthetic GeoLite2-City-shaped database
// sized by opts, in address order, IPv4 first: exactly opts.V4 IPv4 and
// opts.V6 IPv6 networks over (at most, and usually exactly)
// opts.Locations distinct locations. The same opts always give the same
// networks. No two of them overlap or could merge: sibling networks never
// share a location. For a file, WriteSynth is much faster than
// Write(w, City, Synth(opts)).
func Synth(opts SynthOptions) ([]Network, error) {
	p, err := planSynth(opts)
	if err != nil {
		return nil, err
	}
	nets := make([]Network, 0, opts.V4+opts.V6)
	p.walk(func(n synthNet) { nets = append(nets, p.network(n)) })
	return nets, nil
}

// network turns an emitted network into a Network.
func (p *synthPlan) network(n synthNet) Network {
	var pfx netip.Prefix
	if n.v6 {
		var a [16]byte
		for i := range 8 {
			a[i] = byte(n.addr >> (56 - 8*i))
		}
		pfx = netip.PrefixFrom(netip.AddrFrom16(a), n.bits)
	} else {
		pfx = netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(n.addr >> 24), byte(n.addr >> 16), byte(n.addr >> 8), byte(n.addr)}), n.bits)
	}
	l := &p.locs[n.loc]
	c := &synthCountries[l.country]
	return Network{
		Prefix:    pfx,
		Continent: c.continent, Country: c.code, Subdivision: l.subCode, City: l.city,
		Lat: l.lat, Lon: l.lon, HasCoords: true,
	}
}
