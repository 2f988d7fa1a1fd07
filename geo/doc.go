// Package geo turns a client address (or an ECS subnet) into a Location and
// answers how far apart two places are.
//
// It is level 0 of Meridian's import order (see DESIGN.md): it imports only
// the standard library and the MaxMind reader, and every other package may
// import it.
//
// A MaxMind-format database (GeoIP2/GeoLite2/DB-IP, City or Country) is
// compiled once, when it is loaded, into a Table: two sorted arrays of range
// starts, one for IPv4 and one for IPv6, each range pointing at a
// deduplicated Location. The query path never touches the database file.
// From a Table, callers derive Maps — address → uint16, typically "which
// answer does a client here get" — in which neighbouring ranges with the same
// value are merged. Map.Lookup is a binary search (narrowed by a bucket index
// on large tables) that allocates nothing and reports the widest prefix
// around the address that gets the same value, which is the ECS scope a DNS
// answer may carry (RFC 7871): a /24 client inside a /17 of one answer gets
// scope 17, so resolvers cache fewer entries.
//
// A Table gives the answer the database itself gives for every address,
// including the IPv6 networks a database aliases to its IPv4 data (6to4
// 2002::/16 and Teredo 2001::/32 when the database aliases them, and the
// IPv4-compatible ::/96), with one deliberate exception: an IPv4-mapped
// address (::ffff:192.0.2.1) is always the IPv4 address, as dual-stack
// sockets report IPv4 clients that way.
//
// Tables and Maps are immutable once built and safe for concurrent use.
package geo
