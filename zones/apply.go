package zones

import (
	"slices"
	"time"

	"github.com/meridian-gtm/meridian/geo"
	"github.com/miekg/dns"
)

// pool is a compiled Pool under one health and set of overrides: which
// answer each ranking class gets. Immutable once apply returns. A query
// finds its answer one of three ways:
//   - m set: the widest-scope map gives the choice and the widest scope;
//   - toChoice set: the GeoIP table gives the client's location, its class
//     gives the choice, and the location's range the scope (correct, but
//     maybe narrower), while the widest-scope map is being built;
//   - neither: every client gets choices[unplaced], with scope 0.
type pool struct {
	*poolBase
	m        *geo.Map // address → index into choices; nil until built
	toChoice []uint16 // class → index into choices; nil when m is set or there is one choice
	unplaced uint16   // the choice for a client we cannot place
	// byClass is class → index into choices whichever way queries find
	// their answer (nil when there is one choice): Routing reads it.
	byClass []uint16
	choices []*choice
	ttl     uint32 // TTL of its answers now: shorter while unstable
}

// choice is one answer a pool can give, ready to append.
type choice struct {
	region string // the region answering (the first, for weighted)
	closed bool   // fail closed: answer NODATA
	// One entry per weighted candidate; a single entry otherwise.
	regions []string
	slot    []int    // per candidate: its member's slot in poolBase.hits
	cum     []uint32 // cumulative weights, for weighted choices
	a       [][]dns.RR
	aaaa    [][]dns.RR
	cname   [][]dns.RR
}

// scopeMaps supplies, for a shape and a partition of its classes into
// answers, a Map from address to answer with neighbours of one answer
// merged, whose scopes are the widest. Get may return nil (not built yet):
// the pool then answers through the GeoIP table, whose scopes are correct
// but may be narrower. Get must not modify part.
type scopeMaps interface {
	get(sh *shape, part []uint16) *geo.Map
}

// syncScopes builds each map at once when asked, so the snapshot has the
// widest scopes from the start (what check, explain and the policy tests
// use), for the shapes in only (every shape when only is nil).
type syncScopes struct {
	maps map[scopeKey]scopeMap
	only map[*shape]bool
}

func newSyncScopes(only map[*shape]bool) *syncScopes {
	return &syncScopes{maps: map[scopeKey]scopeMap{}, only: only}
}

func (s *syncScopes) get(sh *shape, part []uint16) *geo.Map {
	if s.only != nil && !s.only[sh] {
		return nil
	}
	k := keyOf(sh, part)
	if m, ok := s.maps[k]; ok && slices.Equal(m.part, part) {
		return m.m
	}
	m := sh.widest(part)
	s.maps[k] = scopeMap{m: m, part: slices.Clone(part)}
	return m
}

// shapesFor returns the shapes of the pools that answer names, or nil
// (every shape) when a name may reach pools indirectly (a CNAME, a
// wildcard, a name that does not exist).
func (b *Base) shapesFor(names []string) map[*shape]bool {
	only := map[*shape]bool{}
	for _, name := range names {
		n, _ := b.find(dns.CanonicalName(name))
		switch {
		case n == nil || n.get(dns.TypeCNAME) != nil:
			return nil
		case n.pool >= 0:
			only[b.pools[n.pool].shape] = true
		}
	}
	return only
}

// scopeKey names a widest-scope map: the shape's classes merged by a
// partition into answers. The partition numbers answers in order of
// first appearance, so equal partitions are equal slices whatever the
// answers are: the map depends only on which classes share an answer. The
// key holds a hash of the partition, so a lookup does not allocate; the
// entry holds the partition itself, which a lookup compares.
type scopeKey struct {
	sh   *shape
	hash uint64
}

// scopeMap is a built widest-scope map and the partition it merges by.
type scopeMap struct {
	m    *geo.Map
	part []uint16
}

func keyOf(sh *shape, part []uint16) scopeKey {
	// FNV-1a over the partition.
	h := uint64(14695981039346656037)
	for _, v := range part {
		h = (h ^ uint64(v)) * 1099511628211
	}
	return scopeKey{sh, h}
}

// apply folds health and overrides into a Snapshot. It does not look at
// the GeoIP table: per pool it decides the answer of each ranking class,
// a table of a few entries, so it costs microseconds per pool. scopes
// supplies widest-scope maps (nil: the GeoIP table's scopes only).
func (b *Base) apply(h HealthView, o []Override, scopes scopeMaps) *Snapshot {
	in := Inputs{Config: b.cfg, Geo: b.geo, Health: h, Overrides: o}
	s := &Snapshot{Inputs: in, base: b, zones: b.zones, exact: b.exact, pools: make([]pool, len(b.pools))}
	var r ranker // reused: a change costs a few allocations per pool
	for i, pb := range b.pools {
		pb.apply(&s.pools[i], &r, in, scopes)
	}
	s.Built = time.Now()
	return s
}

// apply decides pool p's answers.
func (pb *poolBase) apply(p *pool, r *ranker, in Inputs, scopes scopeMaps) {
	r.reset(pb.cfg, in)
	*p = pool{poolBase: pb, ttl: pb.cfg.TTL}
	if r.unstable() {
		p.ttl = pb.cfg.UnstableTTL
	}
	sh := pb.shape
	pb.mu.Lock()
	defer pb.mu.Unlock()
	if r.pinned != "" {
		// Every client gets the pinned region: no map, scope 0.
		p.choices = []*choice{pb.choice(verdict{regions: []string{r.pinned}}, p.ttl)}
		return
	}
	toChoice := make([]uint16, len(sh.classes))
	p.choices = make([]*choice, 0, min(len(sh.classes), len(pb.cfg.Members)+1))
	for ci, c := range sh.classes {
		ch := pb.choice(r.decide(c.order, c.ruled), p.ttl)
		k := 0
		for k < len(p.choices) && p.choices[k] != ch {
			k++
		}
		if k == len(p.choices) {
			p.choices = append(p.choices, ch)
		}
		toChoice[ci] = uint16(k)
	}
	p.unplaced = toChoice[sh.locClass[0]]
	if len(p.choices) == 1 {
		return
	}
	p.toChoice, p.byClass = toChoice, toChoice
	if scopes != nil {
		if m := scopes.get(sh, toChoice); m != nil {
			p.m, p.toChoice = m, nil
		}
	}
}

// choice returns the materialized answer for v with TTL ttl, from the
// memo when it was built before. Called under pb.mu.
func (pb *poolBase) choice(v verdict, ttl uint32) *choice {
	k := choiceKey{v.key(), ttl}
	if c, ok := pb.memo[k]; ok {
		return c
	}
	if pb.memo == nil || len(pb.memo) >= memoMax {
		pb.memo = make(map[choiceKey]*choice)
	}
	c := materialize(pb.cfg, v, ttl)
	pb.memo[k] = c
	return c
}

// WidestScopes reports whether every pool answers through a map merged by
// its current answers, so every ECS scope is the widest: false while the
// Store is still building maps after a change or a load.
func (s *Snapshot) WidestScopes() bool {
	for i := range s.pools {
		if s.pools[i].toChoice != nil {
			return false
		}
	}
	return true
}
