package zones

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/meridian-gtm/meridian/geo"
	"github.com/miekg/dns"
)

// Base is a config and a GeoIP table compiled once per load: every zone's
// names and records, and for every pool shape the ranking class of each
// GeoIP location (see shape). It does not depend on health or overrides:
// apply folds those in by deciding, per pool, which answer each ranking
// class gets, which costs microseconds per pool whatever the size of the
// GeoIP table. A Base is immutable but
// for its pools' answer memo (under poolBase.mu) and safe for concurrent
// use.
type Base struct {
	cfg    *Config
	geo    *geo.Table
	zones  map[string]*zoneData // origin → zone
	exact  map[string]*node     // every name, in the most specific zone that holds it
	pools  []*poolBase          // node.pool indexes it
	shapes []*shape

	// tested is the snapshot the policy tests ran on: every member
	// healthy, no overrides, widest scopes. A Store starts serving it.
	// Written once by Test, before the Base is shared; read-only after.
	tested       *Snapshot
	testedScopes *syncScopes
}

// Snapshot applies health and overrides to the Base with the widest ECS
// scopes built at once for the pools that answer names (for explain), or
// for every pool when no name is given. Serving nodes use a Store, which
// publishes first and widens scopes in the background.
func (b *Base) Snapshot(h HealthView, o []Override, names ...string) *Snapshot {
	var only map[*shape]bool
	if len(names) > 0 {
		only = b.shapesFor(names)
	}
	return b.apply(h, o, newSyncScopes(only))
}

// Config is the zone configuration the Base was compiled from.
func (b *Base) Config() *Config { return b.cfg }

// Geo is the GeoIP table the Base was compiled with.
func (b *Base) Geo() *geo.Table { return b.geo }

// Shapes is how many distinct pool shapes the Base compiled: the memory a
// node needs grows with it (one widest-scope map each).
func (b *Base) Shapes() int { return len(b.shapes) }

// shape is what every pool with the same members, coordinates, policy,
// order and geo rules shares: how the clients of each GeoIP location rank
// the members before health. The clients of one ranking class get the same
// answer under any health and overrides; so do the clients of one location,
// which is what makes the GeoIP table's own ranges a correct ECS scope for
// any answer. A map merged by the answer each class gets now gives the
// widest scope (see widest and Store).
type shape struct {
	sig      string
	g        *geo.Table
	classes  []class
	locClass []uint16 // GeoIP location index → index into classes

	placesOnce sync.Once // computes places on first use (Routing)
	places     *places
}

// widest compiles the map from address to answer for a partition of the
// shape's classes (part[class] = answer), with neighbours of one answer
// merged: its scopes are the widest. It walks the whole GeoIP table once.
func (sh *shape) widest(part []uint16) *geo.Map {
	return sh.g.Map(func(loc int) uint16 { return part[sh.locClass[loc]] })
}

// class is one ranking of a pool's members.
type class struct {
	order []string // members, most preferred first
	ruled bool     // a geo rule matched: a weighted pool then follows order
}

// poolBase is the part of a compiled pool that health does not change.
type poolBase struct {
	cfg   *Pool
	zone  *zoneData
	shape *shape

	mu   sync.Mutex
	memo map[choiceKey]*choice // materialized answers; under mu

	// hits counts answers per member (index in cfg.Members; the last slot
	// is the static fallback), for metrics. The counters outlive the Base:
	// a reload hands the same ones to the pool's members that remain (see
	// adoptCounters), so they only grow.
	hits []*atomic.Uint64
}

type choiceKey struct {
	verdict string
	ttl     uint32
}

// memoMax bounds a pool's answer memo; a weighted pool over many members
// could otherwise keep one entry per subset it ever saw.
const memoMax = 256

// Compile builds a Snapshot from in, with the widest ECS scopes computed
// at once. It never fails on a Config that ParseZone accepted; the error is
// for inconsistent inputs.
func Compile(in Inputs) (*Snapshot, error) {
	b, err := Build(in.Config, in.Geo)
	if err != nil {
		return nil, err
	}
	return b.apply(in.Health, in.Overrides, newSyncScopes(nil)), nil
}

// Build compiles cfg with the GeoIP table g (nil: no database) into a Base:
// the names of every zone, and the ranking class of every location for
// every distinct pool shape, ranked in parallel.
func Build(cfg *Config, g *geo.Table) (*Base, error) {
	if cfg == nil {
		return nil, errors.New("compile: no config")
	}
	if g == nil {
		g = geo.Empty()
	}
	b := &Base{cfg: cfg, geo: g, zones: make(map[string]*zoneData, len(cfg.Zones))}
	shapes := map[string]*shape{}
	for _, zc := range cfg.Zones {
		z := &zoneData{cfg: zc, origin: zc.Origin, names: make(map[string]*node), queries: new(atomic.Uint64)}
		z.soa = []dns.RR{zc.SOA}
		neg := dns.Copy(zc.SOA).(*dns.SOA)
		neg.Hdr.Ttl = min(zc.SOA.Hdr.Ttl, zc.SOA.Minttl) // RFC 2308 §5
		z.negSOA = []dns.RR{neg}
		for _, ns := range zc.NS {
			z.ns = append(z.ns, ns)
		}
		b.zones[z.origin] = z
		z.addNode(z.origin)
		for _, set := range zc.Records {
			n := z.addNode(set.Owner)
			n.rrsets = append(n.rrsets, rrset{typ: set.Type, rrs: set.RRs})
		}
		for _, pc := range zc.Pools {
			n := z.addNode(pc.Owner)
			sig := newRanking(pc, zc.Regions).signature()
			sh, ok := shapes[sig]
			if !ok {
				sh = &shape{sig: sig, g: g}
				shapes[sig] = sh
				b.shapes = append(b.shapes, sh)
			}
			n.pool = len(b.pools)
			b.pools = append(b.pools, &poolBase{cfg: pc, zone: z, shape: sh, hits: newCounters(len(pc.Members) + 1)})
		}
		for _, ns := range zc.NS {
			if n, ok := z.names[ns.Ns]; ok {
				z.nsGlue = append(z.nsGlue, n.get(dns.TypeA)...)
				z.nsGlue = append(z.nsGlue, n.get(dns.TypeAAAA)...)
			}
		}
	}
	b.exact = make(map[string]*node)
	for _, z := range b.zones {
		z.link()
		for name, n := range z.names {
			if _, owner := b.find(name); owner == z {
				b.exact[name] = n
			}
		}
	}
	if err := b.buildShapes(); err != nil {
		return nil, err
	}
	return b, nil
}

// buildShapes ranks every location for every shape, on all CPUs.
func (b *Base) buildShapes() error {
	first := map[*shape]*poolBase{}
	for _, p := range b.pools {
		if _, ok := first[p.shape]; !ok {
			first[p.shape] = p
		}
	}
	jobs := make(chan *shape)
	errs := make([]error, len(b.shapes))
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(b.shapes)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sh := range jobs {
				p := first[sh]
				if err := sh.build(newRanking(p.cfg, p.zone.cfg.Regions), b.geo); err != nil {
					errs[slices.Index(b.shapes, sh)] = fmt.Errorf("compile pool %s: %w", p.cfg.Owner, err)
				}
			}
		}()
	}
	for _, sh := range b.shapes {
		jobs <- sh
	}
	close(jobs)
	wg.Wait()
	return errors.Join(errs...)
}

// build ranks each location of the table once; locations that rank the
// members alike share a class.
func (sh *shape) build(r *ranking, g *geo.Table) error {
	index := map[string]uint16{}
	locs := g.Locations()
	sh.locClass = make([]uint16, len(locs))
	var key []byte
	scratch := make([]int, 0, len(r.p.Members))
	for loc := range locs {
		var rule int
		scratch, rule = r.rankInto(scratch[:0], &locs[loc])
		key = key[:0]
		key = append(key, byte(rule>>8), byte(rule))
		for _, m := range scratch {
			key = append(key, byte(m>>8), byte(m))
		}
		i, ok := index[string(key)]
		if !ok {
			if len(sh.classes) >= 1<<16-1 {
				return errors.New("too many distinct rankings of its members")
			}
			i = uint16(len(sh.classes))
			index[string(key)] = i
			c := class{ruled: rule >= 0, order: make([]string, len(scratch))}
			for k, m := range scratch {
				c.order[k] = r.p.Members[m].Region
			}
			sh.classes = append(sh.classes, c)
		}
		sh.locClass[loc] = i
	}
	return nil
}

// addNode returns the node for name, creating it and any empty
// non-terminals between it and the apex.
func (z *zoneData) addNode(name string) *node {
	if n, ok := z.names[name]; ok {
		return n
	}
	n := &node{zone: z, name: name, pool: -1}
	z.names[name] = n
	if name != z.origin {
		off, _ := dns.NextLabel(name, 0)
		z.addNode(name[off:])
	}
	return n
}

// link sets each node's delegation cut, wildcard child and cut glue.
func (z *zoneData) link() {
	for name, n := range z.names {
		if strings.HasPrefix(name, "*.") {
			if parent, ok := z.names[name[2:]]; ok {
				parent.wildcard = n
			}
		}
		// The nearest NS owner at or above, below the apex.
		for off, end := 0, false; !end; off, end = dns.NextLabel(name, off) {
			a := name[off:]
			if a == n.zone.origin {
				break
			}
			if p, ok := z.names[a]; ok && p.get(dns.TypeNS) != nil {
				n.cut = p
			}
		}
	}
	for _, n := range z.names {
		if n.cut != n {
			continue
		}
		for _, rr := range n.get(dns.TypeNS) {
			if g, ok := z.names[rr.(*dns.NS).Ns]; ok {
				n.glue = append(n.glue, g.get(dns.TypeA)...)
				n.glue = append(n.glue, g.get(dns.TypeAAAA)...)
			}
		}
	}
}

// staticRegion names the static last-resort answer among a pool's regions.
// It cannot clash with a region: region names have no spaces.
const staticRegion = "static answer"

// verdict is what a pool decided for one ranking class: one region, a
// weighted set of regions, or NODATA.
type verdict struct {
	closed  bool
	regions []string // one, or the weighted candidates
}

func (v verdict) key() string {
	if v.closed {
		return "!"
	}
	if len(v.regions) == 1 {
		return v.regions[0]
	}
	return strings.Join(v.regions, ",")
}

// materialize turns a verdict into ready-to-append records with TTL ttl.
func materialize(p *Pool, v verdict, ttl uint32) *choice {
	c := &choice{closed: v.closed}
	if v.closed {
		c.region = "none (fail closed)"
		c.a, c.aaaa, c.cname = [][]dns.RR{nil}, [][]dns.RR{nil}, [][]dns.RR{nil}
		return c
	}
	c.region = v.regions[0]
	n := len(v.regions)
	if p.Policy == Weighted && n > 1 {
		var total uint32
		for i := range v.regions {
			total += p.member(v.regions[i]).Weight
			c.cum = append(c.cum, total)
		}
		if total == 0 { // only zero-weight members are left: spread evenly
			for i := range c.cum {
				c.cum[i] = uint32(i + 1)
			}
		}
	}
	// Candidate i answers with members i, i+1, ... (cyclically), up to the
	// pool's answer count, so a weighted pick still gives several addresses.
	k := 1
	if p.Policy == Weighted {
		k = min(p.Answers, n)
	}
	cands := 1
	if c.cum != nil {
		cands = n
	}
	hdr := func(t uint16) dns.RR_Header {
		return dns.RR_Header{Name: p.Owner, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
	}
	for i := 0; i < cands; i++ {
		var a, aaaa, cname []dns.RR
		for j := 0; j < k; j++ {
			m := p.member(v.regions[(i+j)%n])
			if m.CNAME != "" {
				cname = []dns.RR{&dns.CNAME{Hdr: hdr(dns.TypeCNAME), Target: m.CNAME}}
				break
			}
			for _, ip := range m.A {
				a = append(a, &dns.A{Hdr: hdr(dns.TypeA), A: ip.AsSlice()})
			}
			for _, ip := range m.AAAA {
				aaaa = append(aaaa, &dns.AAAA{Hdr: hdr(dns.TypeAAAA), AAAA: ip.AsSlice()})
			}
		}
		c.regions = append(c.regions, v.regions[i])
		c.slot = append(c.slot, memberSlot(p, v.regions[i]))
		c.a, c.aaaa, c.cname = append(c.a, a), append(c.aaaa, aaaa), append(c.cname, cname)
	}
	return c
}

// ranking orders a pool's members for a location, before health: the
// most specific matching geo rule first, then the policy's own order. It
// depends only on the pool's shape.
type ranking struct {
	p       *Pool
	regions map[string]*Region
	index   map[string]int // member region → index in p.Members
	order   []int          // p.Order as member indexes
	rules   [][]int        // p.Geo[i].Regions as member indexes
	coords  [][2]float64   // member i's region's lat, lon
	seen    []bool         // scratch for rankInto; one goroutine at a time
	dist    []float64      // scratch
}

func newRanking(p *Pool, regions map[string]*Region) *ranking {
	r := &ranking{p: p, regions: regions, index: make(map[string]int, len(p.Members))}
	for i, m := range p.Members {
		r.index[m.Region] = i
		reg := regions[m.Region]
		r.coords = append(r.coords, [2]float64{reg.Lat, reg.Lon})
	}
	idx := func(names []string) []int {
		out := make([]int, 0, len(names))
		for _, x := range names {
			if i, ok := r.index[x]; ok {
				out = append(out, i)
			}
		}
		return out
	}
	r.order = idx(p.Order)
	for _, g := range p.Geo {
		r.rules = append(r.rules, idx(g.Regions))
	}
	r.seen = make([]bool, len(p.Members))
	r.dist = make([]float64, len(p.Members))
	return r
}

// signature identifies everything rankInto depends on, so pools that would
// rank every location alike share one shape.
func (r *ranking) signature() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d|%s|", r.p.Policy, strings.Join(r.p.Order, ","))
	for _, m := range r.p.Members {
		reg := r.regions[m.Region]
		fmt.Fprintf(&b, "%s@%v,%v;", m.Region, reg.Lat, reg.Lon)
	}
	for _, g := range r.p.Geo {
		fmt.Fprintf(&b, "%d:%s=%s;", g.Scope, g.Code, strings.Join(g.Regions, ","))
	}
	return b.String()
}

// rankInto appends the members' ranking for loc to dst, as indexes into
// p.Members, and returns the index of the geo rule that matched (-1 for
// none). It does not allocate once dst has grown.
func (r *ranking) rankInto(dst []int, loc *geo.Location) ([]int, int) {
	clear(r.seen)
	add := func(i int) {
		if !r.seen[i] {
			r.seen[i] = true
			dst = append(dst, i)
		}
	}
	rule := r.matchRule(loc)
	if rule >= 0 {
		for _, i := range r.rules[rule] {
			add(i)
		}
	}
	switch {
	case r.p.Policy == Nearest && loc.HasCoords:
		// By distance; ties keep member order (a stable insertion sort).
		start := len(dst)
		for i := range r.p.Members {
			r.dist[i] = geo.Distance(loc.Lat, loc.Lon, r.coords[i][0], r.coords[i][1])
		}
		for i := range r.p.Members {
			add(i)
		}
		for i := start + 1; i < len(dst); i++ {
			for j := i; j > start && r.dist[dst[j]] < r.dist[dst[j-1]]; j-- {
				dst[j], dst[j-1] = dst[j-1], dst[j]
			}
		}
	case r.p.Policy == Weighted:
		for i := range r.p.Members {
			add(i)
		}
	default: // failover, and nearest for a client without coordinates
		for _, i := range r.order {
			add(i)
		}
	}
	return dst, rule
}

func (r *ranking) matchRule(loc *geo.Location) int {
	for i := range r.p.Geo {
		g := &r.p.Geo[i]
		switch g.Scope {
		case Subdivision:
			if loc.Subdivision != "" && len(g.Code) == len(loc.Country)+1+len(loc.Subdivision) &&
				strings.HasPrefix(g.Code, loc.Country) && g.Code[len(loc.Country)+1:] == loc.Subdivision {
				return i
			}
		case Country:
			if g.Code == loc.Country {
				return i
			}
		case Continent:
			if g.Code == loc.Continent {
				return i
			}
		}
	}
	return -1
}

// rank is rankInto with region names, for explain.
func (r *ranking) rank(loc geo.Location) (order []string, rule *GeoRule) {
	idx, ri := r.rankInto(nil, &loc)
	for _, i := range idx {
		order = append(order, r.p.Members[i].Region)
	}
	if ri >= 0 {
		rule = &r.p.Geo[ri]
	}
	return order, rule
}

// ranker decides which region(s) of one pool answer a ranking class,
// given health and overrides. It allocates once, however many classes it
// decides: a change applies to every pool at once.
type ranker struct {
	p        *Pool
	in       Inputs
	members  []memberState // by index in p.Members
	pinned   string
	eligible int // members that may take traffic
}

type memberState struct {
	region  string
	health  MemberHealth
	drained bool
}

func newRanker(p *Pool, in Inputs) *ranker {
	r := &ranker{}
	r.reset(p, in)
	return r
}

// reset makes r the ranker of p under in, reusing its storage.
func (r *ranker) reset(p *Pool, in Inputs) {
	*r = ranker{p: p, in: in, members: slices.Grow(r.members[:0], len(p.Members))[:len(p.Members)]}
	for i, m := range p.Members {
		r.members[i] = memberState{region: m.Region, health: in.Health[MemberKey{Pool: p.Owner, Region: m.Region}]}
	}
	for _, o := range in.Overrides {
		if o.Pool != "" && o.Pool != p.Owner {
			continue
		}
		m := r.member(o.Region)
		if m == nil {
			continue
		}
		switch o.Action {
		case Drain:
			m.drained = true
		case Pin:
			if o.Pool == p.Owner {
				r.pinned = o.Region
			}
		}
	}
	for i := range r.members {
		if r.usable(r.members[i].region) {
			r.eligible++
		}
	}
}

// member returns the state of a member by region name; pools are small,
// so a scan beats a map that every change would have to build.
func (r *ranker) member(region string) *memberState {
	for i := range r.members {
		if r.members[i].region == region {
			return &r.members[i]
		}
	}
	return nil
}

func (r *ranker) drained(region string) bool {
	m := r.member(region)
	return m != nil && m.drained
}

func (r *ranker) usable(region string) bool {
	m := r.member(region)
	if m == nil {
		return true
	}
	st := m.health.State
	return st != Down && !(st == Degraded && r.p.AvoidDegraded) && !m.drained
}

// unstable reports whether the pool's answers may change soon: a member is
// degraded or has a pending verdict, or every member is down. Its answers
// then carry the shorter UnstableTTL so clients come back sooner.
func (r *ranker) unstable() bool {
	if r.eligible == 0 {
		return true
	}
	for _, m := range r.members {
		if m.health.State == Degraded || m.health.Pending {
			return true
		}
	}
	return false
}

// decide applies health, overrides and the last resort to a ranking. The
// verdict may share order's storage.
func (r *ranker) decide(order []string, ruled bool) verdict {
	if r.pinned != "" {
		return verdict{regions: []string{r.pinned}}
	}
	if r.p.Policy == Weighted && !ruled {
		if r.eligible > 0 {
			var eligible []string
			for _, m := range r.members {
				if r.usable(m.region) {
					eligible = append(eligible, m.region)
				}
			}
			return verdict{regions: weightedSet(r.p, eligible)}
		}
	} else {
		for i, x := range order {
			if r.usable(x) {
				return verdict{regions: order[i : i+1]}
			}
		}
	}
	// Every member is down: the pool's last resort.
	switch r.p.Fallback {
	case FailClosed:
		return verdict{closed: true}
	case FallbackMember:
		return verdict{regions: []string{r.p.FallTo}}
	case FallbackStatic:
		return verdict{regions: []string{staticRegion}}
	}
	// Fail open within the client's own order, skipping drained regions
	// (an operator took them out on purpose) unless all are drained.
	var open []string
	for _, x := range order {
		if !r.drained(x) {
			open = append(open, x)
		}
	}
	if len(open) == 0 {
		open = order
	}
	if r.p.Policy == Weighted && !ruled {
		return verdict{regions: weightedSet(r.p, open)}
	}
	return verdict{regions: open[:1]}
}

// weightedSet keeps the members with a weight, in name order.
func weightedSet(p *Pool, regions []string) []string {
	var out []string
	for _, x := range regions {
		if p.member(x).Weight > 0 {
			out = append(out, x)
		}
	}
	if len(out) == 0 {
		return regions
	}
	sort.Strings(out)
	return out
}

// describe is a short human form of a state for logs and explain.
func describe(s State, drained bool) string {
	if drained {
		return "drained"
	}
	return s.String()
}
