package geo

import "net/netip"

// Map is an immutable address → uint16 map built from a Table, with
// neighbouring ranges of equal value merged, so that Lookup can report the
// widest prefix that gets the same value: the ECS scope of a DNS answer
// that depends only on that value. It is safe for concurrent use.
type Map struct {
	set rangeSet[uint16]
}

// Map compiles the table into a Map whose value at an address is value of
// the address's location index. value is called once per location index
// (including 0, the unknown location), not once per range, and not after Map
// returns.
func (t *Table) Map(value func(loc int) uint16) *Map {
	vals := make([]uint16, len(t.locs))
	for i := range vals {
		vals[i] = value(i)
	}
	// Alias ranges of the table get 0 when they stay separate ranges: Lookup
	// answers addresses in them from the IPv4 table, never from this value.
	return &Map{set: remap(&t.set, vals, t.aliasAt, 0)}
}

// Remap derives a Map whose value at every address is vals[v], v being
// this Map's value there, with neighbours that become equal merged: the
// coarser map's Lookup then reports the widest prefix of one new value.
// Every value of m must index vals. Remap costs one pass over m's ranges,
// not over the Table's, so a Map of classes can be coarsened into a Map of
// answers cheaply whenever the answer per class changes.
func (m *Map) Remap(vals []uint16) *Map {
	return &Map{set: remap(&m.set, vals, m.set.aliasRanges(), 0)}
}

// Values returns one more than the largest value m holds, so that a slice
// of that length can be indexed by any of m's values.
func (m *Map) Values() int {
	n := int(m.set.unknown)
	for _, v := range m.set.val4 {
		n = max(n, int(v))
	}
	for _, v := range m.set.val6 {
		n = max(n, int(v))
	}
	return n + 1
}

// Lookup returns the value at addr and bits, the shortest prefix length L
// (0..32 for an IPv4 address, 0..128 for IPv6) such that addr/L lies wholly
// in addresses of value v: a Map whose value is the same everywhere returns
// 0. An IPv4-mapped IPv6 address is looked up as its IPv4 address, and bits
// counts IPv4 bits. An invalid addr gets the value of the unknown location
// and bits 0.
//
// Lookup does not allocate: a binary search over a table of uint32 range
// starts for IPv4, of (hi, lo uint64) starts for IPv6.
func (m *Map) Lookup(addr netip.Addr) (v uint16, bits int) {
	return m.set.lookup(addr)
}

// Ranges returns how many ranges the map holds after merging, for metrics
// and tests.
func (m *Map) Ranges() int { return m.set.ranges() }
