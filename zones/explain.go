package zones

import (
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/meridian-gtm/meridian/geo"
	"github.com/miekg/dns"
)

// Explanation says why a client gets the answer it gets: where the client
// is, how every region of the pool ranks and whether it may answer, what was
// chosen, and the ECS scope with its reason.
type Explanation struct {
	Client   netip.Prefix
	Location geo.Location
	Network  netip.Prefix // the GeoIP network around the client
	Name     string
	Type     uint16
	Result   Result
	Scope    int // ECS scope prefix length we would return
	ScopeWhy string
	Pool     *PoolExplanation // nil when no pool steers the name
}

// PoolExplanation is the pool part of an Explanation.
type PoolExplanation struct {
	Owner      string
	Policy     Policy
	TTL        uint32
	Rule       string // the geo rule that matched, "" for none
	Regions    []RegionExplanation
	Chosen     string
	LastResort string // set when every member was down
}

// RegionExplanation is one region's line in an explanation.
type RegionExplanation struct {
	Name       string
	Rank       int     // 1-based place in the client's order
	DistanceKM float64 // -1 when the client has no coordinates
	State      string  // up, degraded, down, drained, pinned
	Reason     string  // the health verdict's last reason
	Weight     uint32
}

// Explain answers like Answer and says why. client may be a prefix (as an
// ECS source prefix) or a full-length address.
func (s *Snapshot) Explain(client netip.Prefix, qname string, qtype uint16) *Explanation {
	qname = dns.CanonicalName(qname)
	e := &Explanation{Client: client, Name: qname, Type: qtype}
	e.Location, e.Network = s.Inputs.Geo.Locate(client.Addr())
	e.Result.uncounted = true
	s.Answer(&e.Result, qname, qtype, client.Addr())
	e.Scope, e.ScopeWhy = scopeOf(client, e.Result.ScopeBits)
	n, _ := s.find(qname)
	if n == nil || n.pool < 0 {
		return e
	}
	p := &s.pools[n.pool]
	r := newRanker(p.cfg, s.Inputs)
	order, rule := newRanking(p.cfg, p.zone.cfg.Regions).rank(e.Location)
	pe := &PoolExplanation{Owner: p.cfg.Owner, Policy: p.cfg.Policy, TTL: p.ttl, Chosen: e.Result.Region}
	if rule != nil {
		pe.Rule = fmt.Sprintf("%s %s → %s", rule.Scope, rule.Code, strings.Join(rule.Regions, ", "))
	}
	for i, name := range order {
		reg := s.regionOf(p, name)
		re := RegionExplanation{Name: name, Rank: i + 1, DistanceKM: -1, Weight: p.cfg.member(name).Weight}
		if e.Location.HasCoords && reg != nil {
			re.DistanceKM = geo.Distance(e.Location.Lat, e.Location.Lon, reg.Lat, reg.Lon)
		}
		h := s.Inputs.Health[MemberKey{Pool: p.cfg.Owner, Region: name}]
		re.State, re.Reason = describe(h.State, r.drained(name)), h.Reason
		if r.pinned == name {
			re.State = "pinned"
		}
		pe.Regions = append(pe.Regions, re)
	}
	if r.eligible == 0 && r.pinned == "" {
		switch p.cfg.Fallback {
		case FailOpen:
			pe.LastResort = "every member is down: failing open to the client's first choice"
		case FailClosed:
			pe.LastResort = "every member is down: failing closed (NODATA), as configured"
		case FallbackMember:
			pe.LastResort = "every member is down: answering with the fallback " + p.cfg.FallTo
		case FallbackStatic:
			pe.LastResort = "every member is down: answering with the pool's static_addresses"
		}
	}
	e.Pool = pe
	return e
}

// scopeOf is the ECS scope a DNS answer to client carries, given the bits
// of the client's address the answer depended on, and why. It is the
// widest prefix around the address in which every address gets this
// answer, and may be longer than the source prefix (RFC 7871 §7.2.1).
func scopeOf(client netip.Prefix, bits int) (int, string) {
	if client.Addr().Is4In6() && bits > 0 {
		bits += 96 // the snapshot measures a mapped address in IPv4 bits
	}
	switch {
	case client.Bits() == 0:
		return 0, "source prefix 0: the client asked not to be located; answered for the resolver's own address"
	case bits == 0:
		return 0, "the answer does not depend on where the client is"
	case bits > client.Bits():
		return bits, fmt.Sprintf("the source %s holds other answers; this one holds for %s", client.Masked(), netip.PrefixFrom(client.Addr(), bits).Masked())
	}
	return bits, fmt.Sprintf("every client in %s gets this answer", netip.PrefixFrom(client.Addr(), bits).Masked())
}

func (s *Snapshot) regionOf(p *pool, name string) *Region {
	return p.zone.cfg.Regions[name]
}

// Format writes the explanation for a terminal.
func (e *Explanation) Format(w io.Writer) {
	fmt.Fprintf(w, "client:    %s\n", e.Client)
	loc := "unknown (not in the GeoIP database)"
	if e.Location.Known() {
		loc = e.Location.String()
	}
	fmt.Fprintf(w, "location:  %s, GeoIP network %s\n", loc, e.Network)
	fmt.Fprintf(w, "question:  %s %s\n", e.Name, dns.TypeToString[e.Type])
	if p := e.Pool; p != nil {
		fmt.Fprintf(w, "pool:      %s, policy %s, ttl %d\n", p.Owner, p.Policy, p.TTL)
		if p.Rule != "" {
			fmt.Fprintf(w, "geo rule:  %s\n", p.Rule)
		}
		fmt.Fprintf(w, "regions, in the client's order:\n")
		for _, r := range p.Regions {
			dist := "distance unknown"
			if r.DistanceKM >= 0 {
				dist = fmt.Sprintf("%8.0f km", r.DistanceKM)
			}
			why := r.State
			if r.Reason != "" {
				why += ": " + r.Reason
			}
			mark := " "
			if r.Name == p.Chosen {
				mark = "*"
			}
			fmt.Fprintf(w, "  %s %d. %-16s %s  weight %-4d %s\n", mark, r.Rank, r.Name, dist, r.Weight, why)
		}
		if p.LastResort != "" {
			fmt.Fprintf(w, "last resort: %s\n", p.LastResort)
		}
		fmt.Fprintf(w, "chosen:    %s\n", p.Chosen)
	}
	fmt.Fprintf(w, "rcode:     %s", dns.RcodeToString[e.Result.Rcode])
	if e.Result.Rcode == dns.RcodeRefused {
		fmt.Fprintf(w, " (not a zone this node serves)")
	}
	fmt.Fprintln(w)
	for _, rr := range e.Result.Answer {
		fmt.Fprintf(w, "answer:    %s\n", rr)
	}
	if len(e.Result.Answer) == 0 {
		for _, rr := range e.Result.Ns {
			fmt.Fprintf(w, "authority: %s\n", rr)
		}
	}
	fmt.Fprintf(w, "ecs scope: /%d (%s)\n", e.Scope, e.ScopeWhy)
}
