package zones

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/meridian-gtm/meridian/geo"
	"github.com/miekg/dns"
)

// pool is a compiled Pool: its decision map and the answers it can give.
type pool struct {
	cfg      *Pool
	zone     *zoneData
	m        *geo.Map // address → index into choices
	unplaced uint16   // the choice for a client we cannot place
	choices  []choice
	ttl      uint32 // TTL of its answers now: shorter while unstable
}

// choice is one answer a pool can give, ready to append.
type choice struct {
	region string // the region answering (the first, for weighted)
	closed bool   // fail closed: answer NODATA
	// One entry per weighted candidate; a single entry otherwise.
	regions []string
	cum     []uint32 // cumulative weights, for weighted choices
	a       [][]dns.RR
	aaaa    [][]dns.RR
	cname   [][]dns.RR
}

// decision is the part of a compiled pool that does not depend on its
// addresses: the map from client address to a choice key. Pools with the
// same regions, policy, rules and health share one.
type decision struct {
	m        *geo.Map
	keys     []string
	unplaced uint16
}

// Compile builds a Snapshot from in. It never fails on a Config that
// ParseZone accepted; the error is for inconsistent inputs.
func Compile(in Inputs) (*Snapshot, error) {
	if in.Config == nil {
		return nil, fmt.Errorf("compile: no config")
	}
	if in.Geo == nil {
		in.Geo = geo.Empty()
	}
	s := &Snapshot{
		Inputs: in,
		zones:  make(map[string]*zoneData, len(in.Config.Zones)),
	}
	decisions := map[string]*decision{}
	for _, zc := range in.Config.Zones {
		z := &zoneData{cfg: zc, origin: zc.Origin, names: make(map[string]*node)}
		z.soa = []dns.RR{zc.SOA}
		neg := dns.Copy(zc.SOA).(*dns.SOA)
		neg.Hdr.Ttl = min(zc.SOA.Hdr.Ttl, zc.SOA.Minttl) // RFC 2308 §5
		z.negSOA = []dns.RR{neg}
		for _, ns := range zc.NS {
			z.ns = append(z.ns, ns)
		}
		s.zones[z.origin] = z
		s.addNode(z, z.origin)
		for _, set := range zc.Records {
			n := s.addNode(z, set.Owner)
			n.rrsets = append(n.rrsets, rrset{typ: set.Type, rrs: set.RRs})
		}
		for _, pc := range zc.Pools {
			n := s.addNode(z, pc.Owner)
			p, err := compilePool(pc, z, in, decisions)
			if err != nil {
				return nil, err
			}
			n.pool = p
		}
		for _, ns := range zc.NS {
			if n, ok := z.names[ns.Ns]; ok {
				z.nsGlue = append(z.nsGlue, n.get(dns.TypeA)...)
				z.nsGlue = append(z.nsGlue, n.get(dns.TypeAAAA)...)
			}
		}
	}
	s.exact = make(map[string]*node)
	for _, z := range s.zones {
		z.link()
		for name, n := range z.names {
			if _, owner := s.find(name); owner == z {
				s.exact[name] = n
			}
		}
	}
	s.Built = time.Now()
	return s, nil
}

// addNode returns the node for name, creating it and any empty
// non-terminals between it and the apex.
func (s *Snapshot) addNode(z *zoneData, name string) *node {
	if n, ok := z.names[name]; ok {
		return n
	}
	n := &node{zone: z, name: name}
	z.names[name] = n
	if name != z.origin {
		off, _ := dns.NextLabel(name, 0)
		s.addNode(z, name[off:])
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

func compilePool(pc *Pool, z *zoneData, in Inputs, decisions map[string]*decision) (*pool, error) {
	rules := newRanker(pc, z.cfg.Regions, in)
	sig := rules.signature()
	d, ok := decisions[sig]
	if !ok {
		d = &decision{}
		index := map[string]uint16{}
		locs := in.Geo.Locations()
		var overflow error
		keyOf := func(loc int) uint16 {
			k := rules.decide(locs[loc]).key()
			i, ok := index[k]
			if !ok {
				if len(d.keys) >= 1<<16-1 {
					overflow = fmt.Errorf("compile pool %s: too many distinct answers", pc.Owner)
					return 0
				}
				i = uint16(len(d.keys))
				index[k] = i
				d.keys = append(d.keys, k)
			}
			return i
		}
		d.m = in.Geo.Map(keyOf)
		if overflow != nil {
			return nil, overflow
		}
		d.unplaced = keyOf(0)
		decisions[sig] = d
	}
	p := &pool{cfg: pc, zone: z, m: d.m, unplaced: d.unplaced, ttl: pc.TTL}
	if rules.unstable() {
		p.ttl = pc.UnstableTTL
	}
	for _, k := range d.keys {
		p.choices = append(p.choices, p.materialize(parseKey(k)))
	}
	return p, nil
}

// staticRegion names the static last-resort answer among a pool's regions.
// It cannot clash with a region: region names have no spaces.
const staticRegion = "static answer"

// verdict is what a pool decided for one location: one region, a weighted
// set of regions, or NODATA.
type verdict struct {
	closed  bool
	regions []string // one, or the weighted candidates
}

func (v verdict) key() string {
	if v.closed {
		return "!"
	}
	return strings.Join(v.regions, ",")
}

func parseKey(k string) verdict {
	if k == "!" {
		return verdict{closed: true}
	}
	return verdict{regions: strings.Split(k, ",")}
}

// materialize turns a verdict into ready-to-append records.
func (p *pool) materialize(v verdict) choice {
	c := choice{closed: v.closed}
	if v.closed {
		c.region = "none (fail closed)"
		c.a, c.aaaa, c.cname = [][]dns.RR{nil}, [][]dns.RR{nil}, [][]dns.RR{nil}
		return c
	}
	c.region = v.regions[0]
	n := len(v.regions)
	if p.cfg.Policy == Weighted && n > 1 {
		var total uint32
		for i := range v.regions {
			total += p.cfg.member(v.regions[i]).Weight
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
	if p.cfg.Policy == Weighted {
		k = min(p.cfg.Answers, n)
	}
	cands := 1
	if c.cum != nil {
		cands = n
	}
	for i := 0; i < cands; i++ {
		var a, aaaa, cname []dns.RR
		for j := 0; j < k; j++ {
			m := p.cfg.member(v.regions[(i+j)%n])
			hdr := func(t uint16) dns.RR_Header {
				return dns.RR_Header{Name: p.cfg.Owner, Rrtype: t, Class: dns.ClassINET, Ttl: p.ttl}
			}
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
		c.a, c.aaaa, c.cname = append(c.a, a), append(c.aaaa, aaaa), append(c.cname, cname)
	}
	return c
}

// ranker decides, for a location, which region(s) of one pool answer,
// given health and overrides.
type ranker struct {
	p        *Pool
	in       Inputs
	regions  map[string]*Region
	state    map[string]State // by member region
	drained  map[string]bool
	pinned   string
	eligible []string // members that may take traffic, by name
}

func newRanker(p *Pool, regions map[string]*Region, in Inputs) *ranker {
	r := &ranker{p: p, in: in, regions: regions, state: map[string]State{}, drained: map[string]bool{}}
	for _, m := range p.Members {
		r.state[m.Region] = in.Health[MemberKey{Pool: p.Owner, Region: m.Region}].State
	}
	for _, o := range in.Overrides {
		if o.Pool != "" && o.Pool != p.Owner || p.member(o.Region) == nil {
			continue
		}
		switch o.Action {
		case Drain:
			r.drained[o.Region] = true
		case Pin:
			if o.Pool == p.Owner {
				r.pinned = o.Region
			}
		}
	}
	for _, m := range p.Members {
		if r.usable(m.Region) {
			r.eligible = append(r.eligible, m.Region)
		}
	}
	return r
}

func (r *ranker) usable(region string) bool {
	st := r.state[region]
	return st != Down && !(st == Degraded && r.p.AvoidDegraded) && !r.drained[region]
}

// unstable reports whether the pool's answers may change soon: a member is
// degraded or has a pending verdict, or every member is down. Its answers
// then carry the shorter UnstableTTL so clients come back sooner.
func (r *ranker) unstable() bool {
	if len(r.eligible) == 0 {
		return true
	}
	for _, m := range r.p.Members {
		h := r.in.Health[MemberKey{Pool: r.p.Owner, Region: m.Region}]
		if h.State == Degraded || h.Pending {
			return true
		}
	}
	return false
}

// signature identifies everything decide depends on except the location,
// so pools that would compile the same map share it.
func (r *ranker) signature() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d|%d|%d|%s|%s|%s|%t|", r.p.Policy, r.p.Answers, r.p.Fallback, r.p.FallTo, strings.Join(r.p.Order, ","), r.pinned, r.p.AvoidDegraded)
	for _, m := range r.p.Members {
		reg := r.regions[m.Region]
		fmt.Fprintf(&b, "%s@%v,%v;%d;%t;%d;", m.Region, reg.Lat, reg.Lon, r.state[m.Region], r.drained[m.Region], m.Weight)
	}
	for _, g := range r.p.Geo {
		fmt.Fprintf(&b, "%d:%s=%s;", g.Scope, g.Code, strings.Join(g.Regions, ","))
	}
	return b.String()
}

// rank orders the pool's members for a client at loc, before health: the
// most specific matching geo rule first, then the policy's own order.
func (r *ranker) rank(loc geo.Location) (order []string, rule *GeoRule) {
	rule = r.matchRule(loc)
	if rule != nil {
		order = append(order, rule.Regions...)
	}
	var rest []string
	switch r.p.Policy {
	case Nearest:
		if loc.HasCoords {
			rest = r.byDistance(loc)
		} else {
			rest = r.p.Order
		}
	case Failover:
		rest = r.p.Order
	case Weighted:
		for _, m := range r.p.Members {
			rest = append(rest, m.Region)
		}
	}
	for _, x := range rest {
		if !contains(order, x) {
			order = append(order, x)
		}
	}
	return order, rule
}

func (r *ranker) matchRule(loc geo.Location) *GeoRule {
	for i := range r.p.Geo {
		g := &r.p.Geo[i]
		switch g.Scope {
		case Subdivision:
			if loc.Subdivision != "" && len(g.Code) == len(loc.Country)+1+len(loc.Subdivision) &&
				strings.HasPrefix(g.Code, loc.Country) && g.Code[len(loc.Country)+1:] == loc.Subdivision {
				return g
			}
		case Country:
			if g.Code == loc.Country {
				return g
			}
		case Continent:
			if g.Code == loc.Continent {
				return g
			}
		}
	}
	return nil
}

func (r *ranker) byDistance(loc geo.Location) []string {
	type rd struct {
		name string
		km   float64
	}
	list := make([]rd, 0, len(r.p.Members))
	for _, m := range r.p.Members {
		reg := r.regions[m.Region]
		list = append(list, rd{m.Region, geo.Distance(loc.Lat, loc.Lon, reg.Lat, reg.Lon)})
	}
	sort.SliceStable(list, func(i, j int) bool { return list[i].km < list[j].km })
	out := make([]string, len(list))
	for i, x := range list {
		out[i] = x.name
	}
	return out
}

// decide applies health, overrides and the last resort to the ranking.
func (r *ranker) decide(loc geo.Location) verdict {
	if r.pinned != "" {
		return verdict{regions: []string{r.pinned}}
	}
	order, rule := r.rank(loc)
	if r.p.Policy == Weighted && rule == nil {
		if len(r.eligible) > 0 {
			return verdict{regions: weightedSet(r.p, r.eligible)}
		}
	} else {
		for _, x := range order {
			if r.usable(x) {
				return verdict{regions: []string{x}}
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
		if !r.drained[x] {
			open = append(open, x)
		}
	}
	if len(open) == 0 {
		open = order
	}
	if r.p.Policy == Weighted && rule == nil {
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
