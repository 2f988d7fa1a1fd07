package zones

import (
	"math/rand/v2"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/meridian-gtm/meridian/geo"
	"github.com/miekg/dns"
)

// Snapshot is one immutable, compiled view of every zone, with health and
// overrides folded in. Any number of goroutines may call its methods at
// once; nothing in it changes after Compile returns it.
type Snapshot struct {
	Inputs Inputs    // what it was compiled from; read-only
	Built  time.Time // when it was compiled

	base  *Base
	zones map[string]*zoneData // origin → zone; shared with base
	// exact holds every name of every zone, each in the most specific zone
	// that holds it: one lookup answers most queries. Shared with base.
	exact map[string]*node
	pools []pool // node.pool indexes it
}

// Inputs is everything a Snapshot is compiled from.
type Inputs struct {
	Config    *Config
	Geo       *geo.Table
	Health    HealthView
	Overrides []Override
}

type zoneData struct {
	cfg    *Zone
	origin string
	names  map[string]*node // every owner name and empty non-terminal; zones nest, so each has its own
	soa    []dns.RR         // apex SOA, for SOA queries
	negSOA []dns.RR         // SOA with the negative-caching TTL, for the authority section
	ns     []dns.RR         // apex NS set
	nsGlue []dns.RR         // addresses of in-zone name servers
	// queries counts the queries answered from the zone, for metrics;
	// kept across reloads like poolBase.hits.
	queries *atomic.Uint64
}

// node is one owner name of a zone.
type node struct {
	zone     *zoneData
	name     string
	rrsets   []rrset // static data, by type
	pool     int     // index into Snapshot.pools; -1 when no pool steers the name
	cut      *node   // nearest delegation at or above this name, below the apex
	wildcard *node   // the "*." child, if there is one
	glue     []dns.RR
}

type rrset struct {
	typ uint16
	rrs []dns.RR
}

func (n *node) get(t uint16) []dns.RR {
	for i := range n.rrsets {
		if n.rrsets[i].typ == t {
			return n.rrsets[i].rrs
		}
	}
	return nil
}

// Result is the outcome of Answer. The RR slices hold records shared with
// the Snapshot: callers must not modify the records, only the slices.
type Result struct {
	Rcode         int
	Authoritative bool
	Answer        []dns.RR
	Ns            []dns.RR
	Extra         []dns.RR
	// ScopeBits is how many leading bits of the client address the answer
	// depended on: 0 when it did not depend on the client at all.
	ScopeBits int
	// Zone is the origin of the zone that answered, "" when refused.
	Zone string
	// Pool and Region name the pool that steered the answer and the
	// region it chose ("" when no pool was involved).
	Pool   string
	Region string

	// uncounted marks an answer that is not served (explain, the policy
	// tests): it leaves the answer counters alone. Reset clears it.
	uncounted bool
}

// Reset empties r, keeping its slices' storage for the next query.
func (r *Result) Reset() {
	*r = Result{Answer: r.Answer[:0], Ns: r.Ns[:0], Extra: r.Extra[:0]}
}

// maxChain bounds CNAME chains inside our zones (loops are rejected at load,
// but a long chain must not make one query expensive).
const maxChain = 8

// Answer answers qname/qtype for a client into r (after r.Reset()). qname
// must be a lower-case FQDN; Answer does not keep it. client is the address
// to locate (the ECS address or the source address); an invalid client is
// one the database cannot place.
//
// Answer takes no locks, does no I/O and, but for wildcard synthesis, does
// not allocate once r's slices have grown.
func (s *Snapshot) Answer(r *Result, qname string, qtype uint16, client netip.Addr) {
	n, z := s.find(qname)
	if z == nil {
		r.Rcode = dns.RcodeRefused
		return
	}
	r.Zone = z.origin
	r.Authoritative = true
	if !r.uncounted {
		z.queries.Add(1)
	}
	s.resolve(r, n, z, qname, qtype, client, 0)
}

// find returns the most specific zone holding qname, and qname's node in
// it if the name exists.
func (s *Snapshot) find(qname string) (*node, *zoneData) {
	return find(s.zones, s.exact, qname)
}

func (b *Base) find(qname string) (*node, *zoneData) {
	return find(b.zones, b.exact, qname)
}

func find(zones map[string]*zoneData, exact map[string]*node, qname string) (*node, *zoneData) {
	if n, ok := exact[qname]; ok {
		return n, n.zone
	}
	for off, end := 0, false; !end; off, end = dns.NextLabel(qname, off) {
		if z, ok := zones[qname[off:]]; ok {
			return z.names[qname], z
		}
	}
	return nil, nil
}

// encloser returns the closest existing ancestor of qname in z.
func (s *Snapshot) encloser(z *zoneData, qname string) *node {
	for off, end := dns.NextLabel(qname, 0); !end; off, end = dns.NextLabel(qname, off) {
		if n, ok := z.names[qname[off:]]; ok {
			return n
		}
		if len(qname[off:]) <= len(z.origin) {
			break
		}
	}
	return z.names[z.origin]
}

func (s *Snapshot) resolve(r *Result, n *node, z *zoneData, qname string, qtype uint16, client netip.Addr, depth int) {
	synth := false
	if n == nil {
		ce := s.encloser(z, qname)
		if ce.cut != nil {
			s.referral(r, ce.cut)
			return
		}
		if ce.wildcard == nil {
			r.Rcode = dns.RcodeNameError
			r.Ns = append(r.Ns, z.negSOA...)
			return
		}
		n, synth = ce.wildcard, true
	}
	if n.cut != nil {
		s.referral(r, n.cut)
		return
	}
	start := len(r.Answer)
	switch cn := n.get(dns.TypeCNAME); {
	case n.pool >= 0:
		s.poolAnswer(r, &s.pools[n.pool], qtype, client, depth)
	case cn != nil && qtype != dns.TypeCNAME:
		r.Answer = append(r.Answer, cn...)
		s.follow(r, cn[0].(*dns.CNAME).Target, qtype, client, depth)
	default:
		s.staticAnswer(r, n, z, qtype)
	}
	if synth {
		rename(r.Answer[start:], n.name, qname)
	}
	if len(r.Answer) == start && r.Rcode == dns.RcodeSuccess {
		// NODATA, also at the end of a CNAME chain: the SOA of the zone that has no data.
		r.Ns = append(r.Ns, z.negSOA...)
	}
}

// follow continues a CNAME chain when its target is in a zone we serve.
func (s *Snapshot) follow(r *Result, target string, qtype uint16, client netip.Addr, depth int) {
	if depth+1 >= maxChain {
		return
	}
	n, z := s.find(target)
	if z == nil {
		return // the resolver follows targets outside our zones
	}
	s.resolve(r, n, z, target, qtype, client, depth+1)
}

// rename copies the records a wildcard synthesized (those owned by the
// wildcard name; not those a followed CNAME added) so they carry the query
// name.
func rename(rrs []dns.RR, wildcard, qname string) {
	owner := ""
	for i, rr := range rrs {
		if rr.Header().Name != wildcard {
			continue
		}
		c := dns.Copy(rr)
		if owner == "" {
			owner = string([]byte(qname)) // qname may alias a caller's buffer
		}
		c.Header().Name = owner
		rrs[i] = c
	}
}

func (s *Snapshot) referral(r *Result, cut *node) {
	r.Authoritative = false
	r.Ns = append(r.Ns, cut.get(dns.TypeNS)...)
	r.Extra = append(r.Extra, cut.glue...)
}

func (s *Snapshot) staticAnswer(r *Result, n *node, z *zoneData, qtype uint16) {
	switch qtype {
	case dns.TypeANY:
		// RFC 8482: answer with one RRset rather than all of them.
		if len(n.rrsets) > 0 {
			r.Answer = append(r.Answer, n.rrsets[0].rrs...)
		}
	case dns.TypeNS:
		if n.name == z.origin {
			r.Answer = append(r.Answer, z.ns...)
			r.Extra = append(r.Extra, z.nsGlue...)
		}
	case dns.TypeSOA:
		if n.name == z.origin {
			r.Answer = append(r.Answer, z.soa...)
		}
	default:
		r.Answer = append(r.Answer, n.get(qtype)...)
	}
}

func (s *Snapshot) poolAnswer(r *Result, p *pool, qtype uint16, client netip.Addr, depth int) {
	idx, bits := p.unplaced, 0
	if client.IsValid() {
		switch {
		case p.m != nil:
			idx, bits = p.m.Lookup(client)
		case p.toChoice != nil:
			var loc int
			loc, bits = p.shape.g.LocationIndex(client)
			idx = p.toChoice[p.shape.locClass[loc]]
		}
	}
	if bits > r.ScopeBits {
		r.ScopeBits = bits
	}
	c := p.choices[idx]
	r.Pool = p.cfg.Owner
	r.Region = c.region
	if c.closed {
		return
	}
	k := 0
	if len(c.cum) > 1 {
		x := rand.Uint32N(c.cum[len(c.cum)-1])
		for x >= c.cum[k] {
			k++
		}
		r.Region = c.regions[k]
	}
	if !r.uncounted {
		p.hits[c.slot[k]].Add(1)
	}
	if c.cname[k] != nil {
		r.Answer = append(r.Answer, c.cname[k]...)
		if qtype != dns.TypeCNAME {
			s.follow(r, c.cname[k][0].(*dns.CNAME).Target, qtype, client, depth)
		}
		return
	}
	switch qtype {
	case dns.TypeA:
		r.Answer = append(r.Answer, c.a[k]...)
	case dns.TypeAAAA:
		r.Answer = append(r.Answer, c.aaaa[k]...)
	case dns.TypeANY:
		if len(c.a[k]) > 0 {
			r.Answer = append(r.Answer, c.a[k]...)
		} else {
			r.Answer = append(r.Answer, c.aaaa[k]...)
		}
	}
}
