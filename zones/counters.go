package zones

import "sync/atomic"

// Answer counters. Snapshot.Answer counts each query a zone answers and
// each answer a pool gives, per member, with one atomic add each: no
// lock, no lookup by name. The counters belong to the Base but outlive
// it: Store.SetBase hands the old Base's counters to the new one for the
// zones and members that remain, so a reload does not reset them.

func newCounters(n int) []*atomic.Uint64 {
	cs := make([]*atomic.Uint64, n)
	for i := range cs {
		cs[i] = new(atomic.Uint64)
	}
	return cs
}

// memberSlot is region's slot in its pool's hits: the member's index, or
// the last slot for the static fallback.
func memberSlot(p *Pool, region string) int {
	for i, m := range p.Members {
		if m.Region == region {
			return i
		}
	}
	return len(p.Members)
}

// adoptCounters takes old's counters for the zones, pools and members b
// shares with it. Call it before b serves: it writes b's counter slots.
func (b *Base) adoptCounters(old *Base) {
	if old == nil {
		return
	}
	zq := make(map[string]*atomic.Uint64, len(old.zones))
	for _, z := range old.zones {
		zq[z.origin] = z.queries
	}
	for _, z := range b.zones {
		if q, ok := zq[z.origin]; ok {
			z.queries = q
		}
	}
	pools := make(map[string]*poolBase, len(old.pools))
	for _, pb := range old.pools {
		pools[pb.cfg.Owner] = pb
	}
	for _, pb := range b.pools {
		opb, ok := pools[pb.cfg.Owner]
		if !ok {
			continue
		}
		for i, m := range pb.cfg.Members {
			if j := memberSlot(opb.cfg, m.Region); j < len(opb.cfg.Members) {
				pb.hits[i] = opb.hits[j]
			}
		}
		pb.hits[len(pb.cfg.Members)] = opb.hits[len(opb.cfg.Members)]
	}
}

// AnswerCounts calls answer for every member of every pool with how many
// answers it gave, and zone for every zone with how many queries it
// answered, since the counters were made (counts survive reloads).
// Members that never answered are included, with 0; the static fallback
// of a pool shows as region "static" once it has answered.
func (s *Snapshot) AnswerCounts(zone func(origin string, n uint64), answer func(pool, region string, n uint64)) {
	for _, z := range s.base.zones {
		zone(z.origin, z.queries.Load())
	}
	for _, pb := range s.base.pools {
		for i, m := range pb.cfg.Members {
			answer(pb.cfg.Owner, m.Region, pb.hits[i].Load())
		}
		if n := pb.hits[len(pb.cfg.Members)].Load(); n > 0 {
			answer(pb.cfg.Owner, "static", n)
		}
	}
}
