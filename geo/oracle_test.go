package geo

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
	"github.com/oschwald/maxminddb-golang/v2"
)

// The tests in this file hold a Table and its Maps against the database
// itself, read by maxminddb's Reader: same location at every address, and a
// prefix within which the database says the same thing and whose parent it
// does not.

// oracleVariant is a way of writing a random database.
type oracleVariant struct {
	name       string
	ipVersion  int
	noAliasing bool
	wide       string // a network inserted first, wider than ::/96
	onlyWide   bool   // and nothing else
	v6Only     bool   // no IPv4 networks
}

var oracleVariants = []oracleVariant{
	{name: "v6"},
	{name: "v6-no-aliasing", noAliasing: true},
	{name: "v6-wide-first", noAliasing: true, wide: "::/64"},
	{name: "v6-all", noAliasing: true, wide: "::/0"},
	{name: "v6-one-network", noAliasing: true, wide: "::/0", onlyWide: true},
	{name: "v6-one-wide-network", noAliasing: true, wide: "::/32", onlyWide: true},
	{name: "v6-only-wide-first", noAliasing: true, wide: "::/32", v6Only: true},
	{name: "v6-only", v6Only: true},
	{name: "v4-only", ipVersion: 4},
}

var oracleRecords = []mmdbtype.Map{
	nil, // an empty map: a record that says nothing
	{"continent": mmdbtype.Map{"code": mmdbtype.String("EU")}, "country": mmdbtype.Map{"iso_code": mmdbtype.String("DE")},
		"location": mmdbtype.Map{"latitude": mmdbtype.Float64(50.11), "longitude": mmdbtype.Float64(8.68)}},
	{"continent": mmdbtype.Map{"code": mmdbtype.String("EU")}, "country": mmdbtype.Map{"iso_code": mmdbtype.String("DE")},
		"subdivisions": mmdbtype.Slice{mmdbtype.Map{"iso_code": mmdbtype.String("DE-BE")}}},
	{"continent": mmdbtype.Map{"code": mmdbtype.String("NA")}, "country": mmdbtype.Map{"iso_code": mmdbtype.String("US")},
		"city": mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String("Ashburn")}}},
	{"continent": mmdbtype.Map{"code": mmdbtype.String("AS")}},
	{"autonomous_system_number": mmdbtype.Uint32(64500)},
	// Same Location as the first DE record, different record: the Table
	// merges them.
	{"continent": mmdbtype.Map{"code": mmdbtype.String("EU")}, "country": mmdbtype.Map{"iso_code": mmdbtype.String("DE")},
		"location": mmdbtype.Map{"latitude": mmdbtype.Float64(50.11), "longitude": mmdbtype.Float64(8.68)},
		"postal":   mmdbtype.Map{"code": mmdbtype.String("60311")}},
}

// randomDB writes a database of random, overlapping networks clustered so
// that neighbours and merges are common, and returns it with the prefixes
// it inserted.
func randomDB(t testing.TB, rng *rand.Rand, v oracleVariant, n int) ([]byte, []netip.Prefix) {
	t.Helper()
	w, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            "Test-City",
		IPVersion:               v.ipVersion,
		RecordSize:              24,
		IncludeReservedNetworks: true,
		DisableIPv4Aliasing:     v.noAliasing,
	})
	if err != nil {
		t.Fatal(err)
	}
	var prefixes []netip.Prefix
	insert := func(p netip.Prefix) {
		rec := oracleRecords[rng.IntN(len(oracleRecords))]
		var data mmdbtype.DataType = rec
		if rec == nil {
			data = mmdbtype.Map{}
		}
		ipnet := &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
		if err := w.Insert(ipnet, data); err != nil {
			t.Fatalf("insert %s: %v", p, err)
		}
		prefixes = append(prefixes, p)
	}
	if v.wide != "" {
		insert(netip.MustParsePrefix(v.wide))
	}
	v4Bases := []uint32{0x0a000000, 0x0a010000, 0xc0000200, 0x00000000, 0xffffff00}
	v6Bases := []string{"2001:db8::", "2400:cb00::", "fc00::", "ffff:ffff:ffff:ffff::"}
	if v.noAliasing {
		v6Bases = append(v6Bases, "2002:a00::", "2001::", "::ffff:a00:0")
	}
	if v.onlyWide {
		n = 0
	}
	for range n {
		if v.ipVersion == 4 || !v.v6Only && rng.IntN(2) == 0 {
			base := v4Bases[rng.IntN(len(v4Bases))]
			bits := 20 + rng.IntN(13)
			a := base ^ uint32(rng.IntN(1<<12))<<(32-bits)>>12
			var b [4]byte
			binary.BigEndian.PutUint32(b[:], a)
			insert(netip.PrefixFrom(netip.AddrFrom4(b), bits).Masked())
			continue
		}
		base := u128Of(netip.MustParseAddr(v6Bases[rng.IntN(len(v6Bases))]))
		bits := 40 + rng.IntN(89)
		u := base
		// Flip a few random bits below bit 32 to spread networks out.
		for range 3 {
			k := 32 + rng.IntN(96)
			if k < 64 {
				u.hi ^= 1 << (63 - k)
			} else {
				u.lo ^= 1 << (127 - k)
			}
		}
		insert(netip.PrefixFrom(u.addr(), bits).Masked())
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), prefixes
}

// probes returns addresses worth checking: around every inserted network,
// the extremes, their aliases, and random ones.
func probes(rng *rand.Rand, prefixes []netip.Prefix) []netip.Addr {
	var out []netip.Addr
	add := func(a netip.Addr) {
		if a.IsValid() {
			out = append(out, a)
		}
	}
	for _, p := range prefixes {
		first := p.Masked().Addr()
		last := lastAddr(p)
		add(first)
		add(first.Prev())
		add(last)
		add(last.Next())
	}
	for _, s := range []string{"0.0.0.0", "255.255.255.255", "::", "::1", "::ffff:0:0", "::ffff:ffff:ffff", "::fffe:ffff:ffff", "::1:0:0:0",
		"2001::", "2001:0:ffff:ffff:ffff:ffff:ffff:ffff", "2002::", "2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
		"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"} {
		add(netip.MustParseAddr(s))
	}
	// The IPv4 probes again through every alias.
	for _, a := range append([]netip.Addr(nil), out...) {
		if !a.Is4() {
			continue
		}
		b := a.As4()
		add(netip.AddrFrom16([16]byte{10: 0xff, 11: 0xff, 12: b[0], 13: b[1], 14: b[2], 15: b[3]}))
		add(netip.AddrFrom16([16]byte{12: b[0], 13: b[1], 14: b[2], 15: b[3]}))
		add(netip.AddrFrom16([16]byte{0: 0x20, 1: 0x02, 2: b[0], 3: b[1], 4: b[2], 5: b[3], 15: 1}))
		add(netip.AddrFrom16([16]byte{0: 0x20, 1: 0x01, 4: b[0], 5: b[1], 6: b[2], 7: b[3], 9: 7}))
	}
	for range 200 {
		var b [16]byte
		binary.BigEndian.PutUint64(b[:8], rng.Uint64())
		binary.BigEndian.PutUint64(b[8:], rng.Uint64())
		add(netip.AddrFrom16(b))
		add(netip.AddrFrom4([4]byte(b[:4])))
	}
	return out
}

func lastAddr(p netip.Prefix) netip.Addr {
	if p.Addr().Is4() {
		a := p.Masked().Addr().As4()
		x := binary.BigEndian.Uint32(a[:]) | uint32(0xffffffff)>>p.Bits()
		if p.Bits() == 0 {
			x = 0xffffffff
		}
		return netip.AddrFrom4([4]byte(binary.BigEndian.AppendUint32(nil, x)))
	}
	return u128Of(p.Masked().Addr()).or(hostMask(p.Bits())).addr()
}

// oracle answers from the database itself.
type oracle struct {
	r        *maxminddb.Reader
	byOffset map[uintptr]Location
	memo     map[memoKey]map[int]bool // values, by prefix and key function
}

type memoKey struct {
	p   netip.Prefix
	key int
}

// oracleKey is a key function with a number for memoising values.
type oracleKey struct {
	id int
	f  func(Location) int
}

func (o *oracle) decode(t testing.TB, res maxminddb.Result) Location {
	t.Helper()
	if err := res.Err(); err != nil {
		t.Fatalf("database: %v", err)
	}
	if !res.Found() {
		return Location{}
	}
	if l, ok := o.byOffset[res.Offset()]; ok {
		return l
	}
	rec, err := decodeRecord(res)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	l := rec.location()
	o.byOffset[res.Offset()] = l
	return l
}

// at returns the database's location for a, as the Reader looks it up,
// except that an IPv4-mapped address is the IPv4 address, by design, even
// in a database that does not alias ::ffff:0:0/96.
func (o *oracle) at(t testing.TB, a netip.Addr) Location {
	a = a.Unmap()
	if o.r.Metadata.IPVersion == 4 && !a.Is4() {
		return Location{} // the Reader refuses; the Table says unknown
	}
	return o.decode(t, o.r.Lookup(a))
}

// values returns key(location) of every address in p, walking the tree
// through aliases too. ::ffff:0:0/96 is IPv4 whatever the database says.
func (o *oracle) values(t testing.TB, p netip.Prefix, key oracleKey) map[int]bool {
	t.Helper()
	if seen, ok := o.memo[memoKey{p, key.id}]; ok {
		return seen
	}
	seen := make(map[int]bool)
	defer func() { o.memo[memoKey{p, key.id}] = seen }()
	if p.Addr().Is6() && p.Overlaps(ipv4Mapped) {
		v4 := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		if p.Bits() > 96 {
			v4 = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		maps.Copy(seen, o.values(t, v4, key))
		if p.Bits() >= 96 {
			return seen
		}
	}
	if o.r.Metadata.IPVersion == 4 && p.Addr().Is6() {
		seen[key.f(Location{})] = true // the Reader refuses IPv6; the Table says unknown
		return seen
	}
	for res := range o.r.NetworksWithin(p, maxminddb.IncludeAliasedNetworks(), maxminddb.IncludeNetworksWithoutData()) {
		if rp := res.Prefix(); rp.Addr().Is6() && rp.Bits() >= 96 && ipv4Mapped.Contains(rp.Addr()) {
			continue // counted above
		}
		seen[key.f(o.decode(t, res))] = true
	}
	return seen
}

// checkPrefix checks that p (around a) is uniformly of value want and
// that its parent is not.
func (o *oracle) checkPrefix(t testing.TB, a netip.Addr, p netip.Prefix, want int, key oracleKey) {
	t.Helper()
	if !p.Contains(a.Unmap().WithZone("")) {
		t.Errorf("prefix %s does not contain %s", p, a)
		return
	}
	if got := o.values(t, p, key); len(got) != 1 || !got[want] {
		t.Errorf("%s: prefix %s holds values %v, want only %d", a, p, got, want)
	}
	if p.Bits() == 0 {
		return
	}
	parent := netip.PrefixFrom(p.Addr(), p.Bits()-1).Masked()
	if got := o.values(t, parent, key); len(got) == 1 {
		t.Errorf("%s: prefix %s is not the widest: parent %s holds only %v", a, p, parent, got)
	}
}

func TestTableMatchesDatabase(t *testing.T) {
	for _, v := range oracleVariants {
		t.Run(v.name, func(t *testing.T) {
			seeds := uint64(3)
			if testing.Short() {
				seeds = 1
			}
			for seed := range seeds {
				rng := rand.New(rand.NewPCG(seed, 42))
				db, prefixes := randomDB(t, rng, v, 60)
				tab, err := Load(db)
				if err != nil {
					t.Fatalf("seed %d: Load: %v", seed, err)
				}
				r, err := maxminddb.OpenBytes(db)
				if err != nil {
					t.Fatal(err)
				}
				o := &oracle{r: r, byOffset: make(map[uintptr]Location), memo: make(map[memoKey]map[int]bool)}
				index := make(map[Location]int)
				for i, l := range tab.Locations() {
					index[l] = i
				}
				// A coarse map, so that merging across records happens.
				byContinent := func(l Location) int {
					switch l.Continent {
					case "EU":
						return 1
					case "NA":
						return 2
					}
					return 0
				}
				m := tab.Map(func(i int) uint16 { return uint16(byContinent(tab.Locations()[i])) })
				identity := oracleKey{0, func(l Location) int { return index[l] }}
				continents := oracleKey{1, byContinent}

				for _, a := range probes(rng, prefixes) {
					want := o.at(t, a)
					got, p := tab.Locate(a)
					if got != want {
						t.Errorf("seed %d: Locate(%s) = %v, database says %v", seed, a, got, want)
						continue
					}
					o.checkPrefix(t, a, p, index[got], identity)

					mv, bits := m.Lookup(a)
					if int(mv) != byContinent(want) {
						t.Errorf("seed %d: Map.Lookup(%s) = %d, want %d", seed, a, mv, byContinent(want))
						continue
					}
					mp, _ := a.Unmap().WithZone("").Prefix(bits)
					o.checkPrefix(t, a, mp, int(mv), continents)
				}
				if t.Failed() {
					t.Fatalf("seed %d failed; networks: %v", seed, fmt.Sprint(prefixes))
				}
			}
		})
	}
}
