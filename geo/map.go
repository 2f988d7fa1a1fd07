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
