package geo

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/oschwald/geoip2-golang/v2"
	"github.com/oschwald/maxminddb-golang/v2"
)

// Table is an immutable in-memory compilation of a whole database: every
// IPv4 and IPv6 address maps to an index into Locations(); index 0 is always
// the zero, unknown Location. It is safe for concurrent use.
type Table struct {
	locs    []Location
	set     rangeSet[uint32] // values are indexes into locs
	aliasAt []int            // indexes of set's IPv6 alias ranges, ascending
	info    Info
}

// Info describes the database a Table was compiled from.
type Info struct {
	DatabaseType string    // the metadata's database_type, e.g. "GeoLite2-City"; "" for Empty
	BuildTime    time.Time // the metadata's build_epoch, UTC; zero for Empty
	Networks     int       // networks with data that the database lists
	Ranges       int       // address ranges in the Table after merging neighbours of one location, gaps included
	Locations    int       // len(Locations()), the unknown location included
}

// ErrNotOrdered means the database listed its networks out of address order
// or overlapping, which a well-formed search tree cannot do.
var ErrNotOrdered = errors.New("networks out of order")

// Empty returns a Table in which every address is unknown, for a node that
// runs without a database.
func Empty() *Table {
	return &Table{
		locs: []Location{{}},
		set: rangeSet[uint32]{
			start4: []uint32{0},
			val4:   []uint32{0},
			start6: []u128{{}},
			val6:   []uint32{0},
		},
		info: Info{Ranges: 2, Locations: 1},
	}
}

// Open compiles the MaxMind-format database (City or Country; GeoIP2,
// GeoLite2 or DB-IP) at path into a Table. The file is only read while Open
// runs.
func Open(path string) (*Table, error) {
	r, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open geo database %s: %w", path, err)
	}
	t, err := compile(r)
	// The Table holds copies of everything it needs, so the mapping can go
	// whether or not compile succeeded.
	if cerr := r.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close: %w", cerr)
	}
	if err != nil {
		return nil, fmt.Errorf("load geo database %s: %w", path, err)
	}
	return t, nil
}

// Load compiles a MaxMind-format database held in memory into a Table. The
// Table does not retain mmdb.
func Load(mmdb []byte) (*Table, error) {
	r, err := maxminddb.OpenBytes(mmdb)
	if err != nil {
		return nil, fmt.Errorf("open geo database: %w", err)
	}
	t, err := compile(r)
	if err != nil {
		return nil, fmt.Errorf("load geo database: %w", err)
	}
	return t, nil
}

// Locations returns the table's distinct locations; range values index it.
// Callers must not modify it.
func (t *Table) Locations() []Location { return t.locs }

// Info describes the database the table was compiled from.
func (t *Table) Info() Info { return t.info }

// Locate returns the location of addr and the widest prefix around addr in
// which every address has that location (for an unknown address: the zero
// Location and the prefix of the gap). An IPv4-mapped IPv6 address is
// located as, and gets a prefix of, its IPv4 address. An invalid addr is
// unknown, with an invalid prefix.
func (t *Table) Locate(addr netip.Addr) (Location, netip.Prefix) {
	if !addr.IsValid() {
		return Location{}, netip.Prefix{}
	}
	i, n := t.set.lookup(addr)
	p, err := addr.Unmap().WithZone("").Prefix(n)
	if err != nil {
		// Unreachable: n is at most the address's bit length.
		return t.locs[i], netip.Prefix{}
	}
	return t.locs[i], p
}

// LocationIndex returns the index in Locations() of addr's location and
// the shortest prefix length L such that addr/L has that location
// throughout (for an IPv4-mapped address, in IPv4 bits). An invalid addr
// is unknown, index 0, with bits 0. It does not allocate: a caller that
// keeps a value per location gets a correct ECS scope for it from bits
// whatever the value, since one location gets one value.
func (t *Table) LocationIndex(addr netip.Addr) (loc int, bits int) {
	i, n := t.set.lookup(addr)
	return int(i), n
}

// Prefixes of the IPv6 networks that map to IPv4.
var (
	// ::/96 holds IPv4 in an IPv6 database: IPv4-compatible addresses
	// (::192.0.2.1) are answered from it as IPv4, like an alias.
	ipv4Compatible = netip.PrefixFrom(netip.IPv6Unspecified(), 96)
	// ::ffff:0:0/96 is IPv4 whatever the database says, because lookups
	// unmap IPv4-mapped addresses first.
	ipv4Mapped = netip.PrefixFrom(netip.AddrFrom16([16]byte{10: 0xff, 11: 0xff}), 96)
	// These are aliases when the database makes them so; MaxMind's writers
	// (libmaxminddb's, mmdbwriter) alias these and no others.
	aliasCandidates = [...]netip.Prefix{
		netip.PrefixFrom(netip.AddrFrom16([16]byte{0: 0x20, 1: 0x01}), 32), // 2001::/32, Teredo
		netip.PrefixFrom(netip.AddrFrom16([16]byte{0: 0x20, 1: 0x02}), 16), // 2002::/16, 6to4
	}
)

// record is what we decode of each database record: geoip2-golang's City
// model (a superset of Country, and the shape DB-IP uses too) plus the ASN
// field some databases carry. Coordinates are pointers in the model, which
// tells "absent" from 0.
type record struct {
	City geoip2.City
	ASN  uint32
}

// decodeRecord decodes one database record.
func decodeRecord(res maxminddb.Result) (record, error) {
	var rec record
	if err := res.Decode(&rec.City); err != nil {
		return rec, err
	}
	// Not part of the City model; absent in most databases.
	err := res.DecodePath(&rec.ASN, "autonomous_system_number")
	return rec, err
}

func (r *record) location() Location {
	l := Location{
		Continent: r.City.Continent.Code,
		Country:   r.City.Country.ISOCode,
		City:      r.City.City.Names.English,
		ASN:       r.ASN,
	}
	if len(r.City.Subdivisions) > 0 {
		// GeoIP2 stores "HE"; tolerate writers that store "DE-HE".
		l.Subdivision = strings.TrimPrefix(r.City.Subdivisions[0].ISOCode, l.Country+"-")
	}
	if lat, lon := r.City.Location.Latitude, r.City.Location.Longitude; lat != nil && lon != nil &&
		math.Abs(*lat) <= 90 && math.Abs(*lon) <= 180 {
		l.Lat, l.Lon, l.HasCoords = *lat, *lon, true
	} else if lat, lon, ok := CountryCentroid(l.Country); ok {
		l.Lat, l.Lon, l.HasCoords = lat, lon, true
	} else if lat, lon, ok := ContinentCentroid(l.Continent); ok {
		l.Lat, l.Lon, l.HasCoords = lat, lon, true
	}
	return l
}

// compile reads every network of the database, in address order, into a
// Table. Each distinct record is decoded once (records are keyed by their
// offset in the data section), and equal Locations share one index.
func compile(r *maxminddb.Reader) (*Table, error) {
	// The reader's Networks tells an alias from data by comparing record
	// pointers with the IPv4 root. When the IPv4 root is itself a data
	// record (one network of at least ::/96 covers all of IPv4), other
	// networks with that record look like aliases and would be skipped; no
	// real alias can exist then, so list everything.
	var opts []maxminddb.NetworksOption
	oneRecord := false
	if r.Metadata.IPVersion == 6 {
		res := r.Lookup(netip.IPv4Unspecified())
		oneRecord = res.Found() && res.Prefix().Addr().Is6()
	}
	if oneRecord {
		opts = append(opts, maxminddb.IncludeAliasedNetworks())
	}
	var b builder
	if err := b.findAliases(r, !oneRecord); err != nil {
		return nil, err
	}

	locs := []Location{{}}
	byLoc := map[Location]uint32{{}: 0}
	byOffset := make(map[uintptr]uint32)
	var rec record
	networks := 0
	// Neighbouring networks often share a record; remembering the last one
	// saves a map lookup for each of them.
	lastOff, lastIdx := ^uintptr(0), uint32(0)
	for res := range r.Networks(opts...) {
		if err := res.Err(); err != nil {
			return nil, fmt.Errorf("read networks: %w", err)
		}
		networks++
		idx, ok := lastIdx, res.Offset() == lastOff
		if !ok {
			idx, ok = byOffset[res.Offset()]
		}
		if !ok {
			var err error
			if rec, err = decodeRecord(res); err != nil {
				return nil, fmt.Errorf("decode record of %s: %w", res.Prefix(), err)
			}
			loc := rec.location()
			if idx, ok = byLoc[loc]; !ok {
				if len(locs) >= aliasMark {
					return nil, errors.New("too many distinct locations")
				}
				idx = uint32(len(locs))
				locs = append(locs, loc)
				byLoc[loc] = idx
			}
			byOffset[res.Offset()] = idx
		}
		lastOff, lastIdx = res.Offset(), idx
		if err := b.add(res.Prefix(), idx); err != nil {
			return nil, err
		}
	}
	raw := b.finish()
	identity := make([]uint32, len(locs))
	for i := range identity {
		identity[i] = uint32(i)
	}
	var aliasAt []int
	for i, v := range raw.val6 {
		if v == aliasMark {
			aliasAt = append(aliasAt, i)
		}
	}
	t := &Table{
		locs: locs,
		set:  remap(&raw, identity, aliasAt, aliasMark),
	}
	t.aliasAt = t.set.aliasRanges()
	t.info = Info{
		DatabaseType: r.Metadata.DatabaseType,
		BuildTime:    r.Metadata.BuildTime().UTC(),
		Networks:     networks,
		Ranges:       t.set.ranges(),
		Locations:    len(locs),
	}
	return t, nil
}

// builder appends networks, which arrive in ascending address order, to a
// raw rangeSet, filling the gaps between them with location 0 and carving
// alias networks out of those gaps.
type builder struct {
	set   rangeSet[uint32]
	next4 uint64 // first IPv4 address not yet covered; 1<<32 when all are
	next6 u128   // first IPv6 address not yet covered, unless full6
	full6 bool
	alias []alias // alias candidates not yet passed, ascending
	used  []alias // aliases carved out of gaps so far
}

// findAliases lists, in address order, the IPv6 networks whose addresses
// are answered as the IPv4 address in the 32 bits after the prefix. The
// reader's Networks skips the networks a database points at its IPv4
// subtree (so IPv4 data is not listed four times); they show up as gaps, and
// such a network is the only kind for which NetworksWithin lists nothing at
// all, not even an empty network.
//
// probe is false when the database cannot have aliases (see compile).
func (b *builder) findAliases(r *maxminddb.Reader, probe bool) error {
	if r.Metadata.IPVersion == 6 {
		// If the database has a network wider than ::/96, add drops this.
		b.addAlias(ipv4Compatible)
	}
	b.addAlias(ipv4Mapped)
	if r.Metadata.IPVersion != 6 || !probe {
		return nil
	}
	for _, p := range aliasCandidates {
		empty := true
		for res := range r.NetworksWithin(p, maxminddb.IncludeNetworksWithoutData()) {
			if err := res.Err(); err != nil {
				return fmt.Errorf("probe alias %s: %w", p, err)
			}
			empty = false
			break
		}
		if empty {
			b.addAlias(p)
		}
	}
	return nil
}

func (b *builder) addAlias(p netip.Prefix) {
	first := u128Of(p.Addr())
	b.alias = append(b.alias, alias{first: first, last: first.or(hostMask(p.Bits())), bits: p.Bits()})
}

func (b *builder) add(p netip.Prefix, loc uint32) error {
	if p.Addr().Is4() {
		a4 := p.Addr().As4()
		first := binary.BigEndian.Uint32(a4[:])
		last := first | uint32(math.MaxUint32>>p.Bits())
		if p.Bits() == 0 {
			last = math.MaxUint32
		}
		return b.add4(first, last, loc, p)
	}
	first := u128Of(p.Addr())
	last := first.or(hostMask(p.Bits()))
	if first == (u128{}) && p.Bits() <= 96 {
		// A network that contains all of ::/96 contains all of IPv4 too.
		if err := b.add4(0, math.MaxUint32, loc, p); err != nil {
			return err
		}
		if len(b.alias) > 0 && b.alias[0].first == (u128{}) {
			b.alias = b.alias[1:]
		}
	}
	return b.add6(first, last, loc, p)
}

func (b *builder) add4(first, last, loc uint32, p netip.Prefix) error {
	if uint64(first) < b.next4 {
		return fmt.Errorf("%s: %w", p, ErrNotOrdered)
	}
	if uint64(first) > b.next4 {
		b.push4(uint32(b.next4), 0)
	}
	b.push4(first, loc)
	b.next4 = uint64(last) + 1
	return nil
}

func (b *builder) push4(start, loc uint32) {
	s := &b.set
	if n := len(s.val4); n > 0 && s.val4[n-1] == loc {
		return
	}
	s.start4 = append(s.start4, start)
	s.val4 = append(s.val4, loc)
}

func (b *builder) add6(first, last u128, loc uint32, p netip.Prefix) error {
	if b.full6 || first.less(b.next6) {
		return fmt.Errorf("%s: %w", p, ErrNotOrdered)
	}
	if b.next6.less(first) {
		b.gap6(first.prev())
	}
	b.push6(first, loc)
	if last == maxU128 {
		b.full6 = true
	} else {
		b.next6 = last.next()
	}
	return nil
}

// gap6 fills [next6, last] with location 0, except for the aliases in it.
func (b *builder) gap6(last u128) {
	for len(b.alias) > 0 && !last.less(b.alias[0].first) {
		a := b.alias[0]
		b.alias = b.alias[1:]
		if a.first.less(b.next6) || last.less(a.last) {
			// Not wholly inside this gap: the database has data in the
			// candidate after all, so it is no alias.
			continue
		}
		if b.next6.less(a.first) {
			b.push6(b.next6, 0)
		}
		b.push6(a.first, aliasMark)
		b.used = append(b.used, a)
		if a.last == maxU128 {
			b.full6 = true
			return
		}
		b.next6 = a.last.next()
	}
	if !last.less(b.next6) {
		b.push6(b.next6, 0)
		if last == maxU128 {
			b.full6 = true
		} else {
			b.next6 = last.next()
		}
	}
}

func (b *builder) push6(start u128, loc uint32) {
	s := &b.set
	// Alias ranges never merge: each stands for its own copy of IPv4.
	if n := len(s.val6); n > 0 && s.val6[n-1] == loc && loc != aliasMark {
		return
	}
	s.start6 = append(s.start6, start)
	s.val6 = append(s.val6, loc)
}

// finish fills the gaps up to the top of both address spaces and returns
// the raw set: merged by location, alias ranges marked with aliasMark.
func (b *builder) finish() rangeSet[uint32] {
	if b.next4 <= math.MaxUint32 {
		b.push4(uint32(b.next4), 0)
	}
	if !b.full6 {
		b.gap6(maxU128)
	}
	mapped := alias{first: u128Of(ipv4Mapped.Addr()), last: u128Of(ipv4Mapped.Addr()).or(hostMask(96)), bits: 96}
	if !slices.Contains(b.used, mapped) {
		// The database has data of its own in ::ffff:0:0/96 (it does not
		// alias it). Lookups never see that data, since they unmap first,
		// so the range must not pretend otherwise to its neighbours.
		b.overlay6(mapped)
	}
	b.set.aliases = b.used
	return b.set
}

// overlay6 replaces whatever the IPv6 table says in a with an alias range.
func (b *builder) overlay6(a alias) {
	s := &b.set
	// i and j are the ranges holding a's first and last address.
	find := func(u u128) int {
		return sort.Search(len(s.start6), func(k int) bool { return u.less(s.start6[k]) }) - 1
	}
	i, j := find(a.first), find(a.last)
	starts := slices.Clone(s.start6[:i])
	vals := slices.Clone(s.val6[:i])
	if s.start6[i].less(a.first) {
		starts, vals = append(starts, s.start6[i]), append(vals, s.val6[i])
	}
	starts, vals = append(starts, a.first), append(vals, aliasMark)
	if a.last != maxU128 && (j+1 == len(s.start6) || a.last.next().less(s.start6[j+1])) {
		starts, vals = append(starts, a.last.next()), append(vals, s.val6[j])
	}
	s.start6 = append(starts, s.start6[j+1:]...)
	s.val6 = append(vals, s.val6[j+1:]...)

	k := sort.Search(len(b.used), func(k int) bool { return a.first.less(b.used[k].first) })
	b.used = slices.Insert(b.used, k, a)
}
