package gossip

import (
	"cmp"
	"hash/fnv"
	"slices"
)

// Assign returns the names of the k members that probe target: rendezvous
// (highest random weight) hashing over the members, spread across regions
// when it can be. Every node computes the same answer from the same member
// list, with no coordination. When a member joins or leaves, only the
// targets it was (or becomes) chosen for move: the others keep their
// observers, so their rise/fall state is not thrown away.
//
// Spreading: each region's highest-scoring member is taken first, regions
// in the order of those scores, then the remaining members by score. A
// member that is not its region's best cannot change which regions win, so
// the minimal-movement property holds for it; the region's best leaving
// moves only targets whose observers it was among.
//
// k <= 0, or k at least the number of members, means every member.
func Assign(target string, k int, members []Member) []string {
	if k <= 0 || k >= len(members) {
		out := make([]string, len(members))
		for i, m := range members {
			out[i] = m.Name
		}
		slices.Sort(out)
		return out
	}
	type scored struct {
		name, region string
		score        uint64
	}
	all := make([]scored, len(members))
	for i, m := range members {
		all[i] = scored{m.Name, m.Region, rendezvousScore(target, m.Name)}
	}
	slices.SortFunc(all, func(a, b scored) int {
		return cmp.Or(cmp.Compare(b.score, a.score), cmp.Compare(a.name, b.name))
	})
	chosen := make([]string, 0, k)
	taken := make([]bool, len(all))
	seen := map[string]bool{}
	for i, s := range all { // each region's best, best regions first
		if len(chosen) == k {
			break
		}
		if !seen[s.region] {
			seen[s.region] = true
			taken[i] = true
			chosen = append(chosen, s.name)
		}
	}
	for i, s := range all { // then the rest by score
		if len(chosen) == k {
			break
		}
		if !taken[i] {
			chosen = append(chosen, s.name)
		}
	}
	slices.Sort(chosen)
	return chosen
}

// rendezvousScore is a member's weight for a target: a 64-bit FNV-1a hash
// of both, mixed so that similar names do not score alike.
func rendezvousScore(target, member string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(target))
	h.Write([]byte{0})
	h.Write([]byte(member))
	x := h.Sum64()
	// SplitMix64's finalizer: FNV's low bits are weak for short inputs.
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
