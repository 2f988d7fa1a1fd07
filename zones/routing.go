package zones

import (
	"slices"
	"strings"
)

// Routing is where one pool sends the clients of each place now: per
// continent and per country, the answer most of its GeoIP locations get.
// A place split between answers (a nearest pool whose regions sit on
// either side of a continent) shows its majority; explain shows any one
// client exactly.
type Routing struct {
	Pool string
	// Continents and Countries map a code ("EU", "DE") to the answer: a
	// region name, several joined by "+" for a weighted answer, or "" when
	// the pool answers nothing (it fails closed).
	Continents map[string]string
	Countries  map[string]string
	// Unplaced is the answer for clients the database cannot place.
	Unplaced string
}

// Routing says where the pool owned by owner (lower case, fully qualified)
// sends clients now; ok is false when no pool has that owner. It costs
// microseconds: the per-place location counts of the pool's shape are
// computed once per load.
func (s *Snapshot) Routing(owner string) (Routing, bool) {
	i := slices.IndexFunc(s.pools, func(p pool) bool { return p.cfg.Owner == owner })
	if i < 0 {
		return Routing{}, false
	}
	p := &s.pools[i]
	places := p.shape.placeCounts()
	rt := Routing{Pool: owner, Unplaced: p.choices[p.unplaced].label()}
	rt.Continents = p.majority(places.continents)
	rt.Countries = p.majority(places.countries)
	return rt, true
}

// With applies other health and overrides to the snapshot's config and
// GeoIP table, without building widest-scope maps: for previews (Routing,
// Explain), not for serving, since its ECS scopes may be narrower.
func (s *Snapshot) With(h HealthView, o []Override) *Snapshot {
	return s.base.apply(h, o, nil)
}

// majority gives each place the answer most of its locations get; a tie
// goes to the answer the pool decided first, so it is stable.
func (p *pool) majority(counts map[string][]int32) map[string]string {
	out := make(map[string]string, len(counts))
	votes := make([]int32, len(p.choices))
	for code, byClass := range counts {
		clear(votes)
		for class, n := range byClass {
			k := 0
			if p.byClass != nil {
				k = int(p.byClass[class])
			}
			votes[k] += n
		}
		best := 0
		for k, n := range votes {
			if n > votes[best] {
				best = k
			}
		}
		out[code] = p.choices[best].label()
	}
	return out
}

// label names a choice for people: its region, the weighted candidates
// joined by "+", or "" when it fails closed.
func (c *choice) label() string {
	switch {
	case c.closed:
		return ""
	case len(c.regions) > 1:
		return strings.Join(c.regions, "+")
	}
	return c.region
}

// places counts a shape's GeoIP locations per place and ranking class.
type places struct {
	continents map[string][]int32 // continent code → locations per class
	countries  map[string][]int32
}

// placeCounts computes the shape's counts once: one pass over the GeoIP
// locations.
func (sh *shape) placeCounts() *places {
	sh.placesOnce.Do(func() {
		pl := &places{continents: map[string][]int32{}, countries: map[string][]int32{}}
		add := func(m map[string][]int32, code string, class uint16) {
			if code == "" {
				return
			}
			c := m[code]
			if c == nil {
				c = make([]int32, len(sh.classes))
				m[code] = c
			}
			c[class]++
		}
		for loc, l := range sh.g.Locations() {
			if loc == 0 {
				continue // the unknown location
			}
			add(pl.continents, l.Continent, sh.locClass[loc])
			add(pl.countries, l.Country, sh.locClass[loc])
		}
		sh.places = pl
	})
	return sh.places
}
