package geo

import (
	"net/netip"
	"testing"

	"github.com/meridian-gtm/meridian/geo/mmdbgen"
)

// byCountry is a Map value: 1 for DE, 2 for US, 3 for SG, else 0.
func byCountry(t *Table) func(int) uint16 {
	return func(i int) uint16 {
		switch t.Locations()[i].Country {
		case "DE":
			return 1
		case "US":
			return 2
		case "SG":
			return 3
		}
		return 0
	}
}

func TestMapLookup(t *testing.T) {
	tab := loadDB(t, mmdbgen.City, []mmdbgen.Network{
		at("0.0.0.0/32", sinRec),
		// Frankfurt and Berlin are different locations but one value:
		// the /25s merge into a /24.
		at("10.0.0.0/25", fraRec),
		at("10.0.0.128/25", berRec),
		at("10.0.1.0/24", ashRec),
		// A /17 of one answer made of many /24s of different cities: a
		// /24 client in it gets scope 17.
		at("10.128.0.0/17", fraRec),
		at("10.128.5.0/24", berRec),
		at("10.128.77.0/24", deRec),
		at("255.255.255.255/32", ashRec),
		at("2001:db8:1::/48", ashRec),
		at("2001:db8:2::/49", fraRec),
		at("2001:db8:2:8000::/49", berRec),
		at("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", fraRec),
	})
	m := tab.Map(byCountry(tab))
	for _, tc := range []struct {
		addr string
		v    uint16
		bits int
	}{
		{"10.0.0.1", 1, 24},
		{"10.0.0.127", 1, 24}, // the boundary between the merged /25s
		{"10.0.0.128", 1, 24},
		{"10.0.0.255", 1, 24},
		{"10.0.1.0", 2, 24},
		{"10.0.2.0", 0, 23},
		{"10.128.5.1", 1, 17},
		{"10.128.77.1", 1, 17},
		{"10.128.127.255", 1, 17},
		{"10.128.128.0", 0, 17},
		{"10.129.0.0", 0, 16},
		{"11.0.0.0", 0, 8},
		{"0.0.0.0", 3, 32},
		{"0.0.0.1", 0, 32},
		{"255.255.255.255", 2, 32},
		{"255.255.255.254", 0, 32},
		{"::ffff:10.0.0.1", 1, 24},
		{"2001:db8:1::1", 2, 48},
		{"2001:db8:2:ffff::1", 1, 48},
		{"2001:db8:3::", 0, 48},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1, 128},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 0, 128},
		{"::", 3, 128},                      // ::/96 is IPv4: 0.0.0.0
		{"2002:a80:501::", 1, 16 + 17},      // 6to4 of 10.128.5.1
		{"2001:0:a00:0:1234::", 1, 32 + 24}, // Teredo, server 10.0.0.0
	} {
		v, bits := m.Lookup(addr(tc.addr))
		if v != tc.v || bits != tc.bits {
			t.Errorf("Lookup(%s) = %d, /%d; want %d, /%d", tc.addr, v, bits, tc.v, tc.bits)
		}
	}
	if v, bits := m.Lookup(netip.Addr{}); v != 0 || bits != 0 {
		t.Errorf("Lookup(invalid) = %d, /%d; want the unknown value, /0", v, bits)
	}
}

func TestMapConstant(t *testing.T) {
	for _, tab := range []*Table{Empty(), loadDB(t, mmdbgen.City, fixture)} {
		m := tab.Map(func(int) uint16 { return 7 })
		for _, s := range []string{"0.0.0.0", "10.0.0.1", "255.255.255.255", "::", "::ffff:10.0.0.1",
			"2001:db8:1::1", "2002:a00:1::", "2001::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"} {
			if v, bits := m.Lookup(addr(s)); v != 7 || bits != 0 {
				t.Errorf("Lookup(%s) = %d, /%d; want 7, /0", s, v, bits)
			}
		}
		// One IPv4 range, one IPv6 range: aliases fold into the latter.
		if n := m.Ranges(); n != 2 {
			t.Errorf("Ranges() = %d, want 2", n)
		}
	}
}

func TestMapCallsValueOncePerLocation(t *testing.T) {
	tab := loadDB(t, mmdbgen.City, fixture)
	calls := make(map[int]int)
	tab.Map(func(i int) uint16 {
		calls[i]++
		return uint16(i)
	})
	if len(calls) != len(tab.Locations()) {
		t.Errorf("value called for %d locations, want %d", len(calls), len(tab.Locations()))
	}
	for i, n := range calls {
		if n != 1 {
			t.Errorf("value(%d) called %d times", i, n)
		}
	}
}

func TestMapMerges(t *testing.T) {
	tab := loadDB(t, mmdbgen.City, fixture)
	fine := tab.Map(func(i int) uint16 { return uint16(i) })
	coarse := tab.Map(byCountry(tab))
	if fine.Ranges() != tab.Info().Ranges {
		t.Errorf("a Map of location indexes has %d ranges, the Table %d", fine.Ranges(), tab.Info().Ranges)
	}
	if coarse.Ranges() >= fine.Ranges() {
		t.Errorf("a Map by country has %d ranges, by location %d: want fewer", coarse.Ranges(), fine.Ranges())
	}
}

var allocProbes = []netip.Addr{
	netip.MustParseAddr("10.0.0.1"),
	netip.MustParseAddr("::ffff:10.0.1.1"),
	netip.MustParseAddr("2001:db8:1::1"),
	netip.MustParseAddr("2002:a00:101::1"),
	netip.MustParseAddr("fe80::1%eth0"),
}

func TestMapLookupAllocs(t *testing.T) {
	tab := loadDB(t, mmdbgen.City, fixture)
	m := tab.Map(byCountry(tab))
	for _, a := range allocProbes {
		if n := testing.AllocsPerRun(100, func() { m.Lookup(a) }); n != 0 {
			t.Errorf("Lookup(%s) allocates %v times, want 0", a, n)
		}
	}
}
