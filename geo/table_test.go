package geo

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/meridian-gtm/meridian/geo/mmdbgen"
)

type locateCase struct {
	addr   string
	want   Location
	prefix string // "" for an invalid prefix
}

// cityCases holds for both database types, except where the Country
// database drops city, subdivision and coordinates (countryCases).
var cityCases = []locateCase{
	// Two adjacent /25s of one record merge into one /24.
	{"10.0.0.1", fraLoc, "10.0.0.0/24"},
	{"10.0.0.200", fraLoc, "10.0.0.0/24"},
	{"10.0.0.255", fraLoc, "10.0.0.0/24"},
	// Range boundaries.
	{"10.0.1.0", ashLoc, "10.0.1.0/24"},
	{"10.0.1.255", ashLoc, "10.0.1.0/24"},
	// Fallback coordinates: country centroid, then continent centroid.
	{"10.0.2.9", deLoc, "10.0.2.0/24"},
	{"10.0.3.9", ocLoc, "10.0.3.0/24"},
	{"10.0.4.9", asnLoc, "10.0.4.0/24"},
	// Neighbours with different records stay apart.
	{"10.0.6.127", fraLoc, "10.0.6.0/25"},
	{"10.0.6.128", berLoc, "10.0.6.128/25"},
	// Gaps get the widest prefix inside the gap.
	{"10.0.5.0", Location{}, "10.0.5.0/24"},
	{"10.0.7.0", Location{}, "10.0.7.0/24"},
	{"9.255.255.255", Location{}, "8.0.0.0/7"},
	{"127.0.0.1", Location{}, "64.0.0.0/2"},
	// The extremes of IPv4.
	{"0.0.0.0", sinLoc, "0.0.0.0/32"},
	{"0.0.0.1", Location{}, "0.0.0.1/32"},
	{"255.255.255.255", ashLoc, "255.255.255.255/32"},
	{"255.255.255.254", Location{}, "255.255.255.254/32"},
	// IPv6.
	{"2001:db8:1::", ashLoc, "2001:db8:1::/48"},
	{"2001:db8:1:ffff:ffff:ffff:ffff:ffff", ashLoc, "2001:db8:1::/48"},
	{"2001:db8:3::1", nzLoc, "2001:db8:3::/48"},
	{"2001:db8:4::1", Location{}, "2001:db8:4::/46"},
	{"fe80::1%eth0", Location{}, "fe00::/8"}, // fe00::/7 would reach ffff:…:ffff
	{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", fraLoc, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"},
	{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", Location{}, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/128"},
	// What the database aliases to IPv4 answers as IPv4: mapped addresses
	// as IPv4 outright; IPv4-compatible (::/96), 6to4 (2002::/16) and
	// Teredo (2001::/32, server address) with the IPv6 prefix.
	{"::ffff:10.0.0.1", fraLoc, "10.0.0.0/24"},
	{"::", sinLoc, "::/128"},
	{"::1", Location{}, "::1/128"},
	{"::10.0.1.1", ashLoc, "::a00:100/120"},
	{"2002:a00:101::1", ashLoc, "2002:a00:100::/40"},
	{"2002:a00:501::1", Location{}, "2002:a00:500::/40"},
	{"2001:0:a00:101::", ashLoc, "2001:0:a00:100::/56"},
	// Invalid.
	{"", Location{}, ""},
}

// countryCases are the cases whose answer differs in a Country database.
var countryCases = map[string]Location{
	"10.0.0.1":                            deLoc,
	"10.0.0.200":                          deLoc,
	"10.0.0.255":                          deLoc,
	"10.0.1.0":                            usLoc,
	"10.0.1.255":                          usLoc,
	"10.0.6.127":                          deLoc,
	"10.0.6.128":                          deLoc,
	"0.0.0.0":                             sgLoc,
	"::":                                  sgLoc,
	"::ffff:10.0.0.1":                     deLoc,
	"255.255.255.255":                     usLoc,
	"2001:db8:1::":                        usLoc,
	"::10.0.1.1":                          usLoc,
	"2002:a00:101::1":                     usLoc,
	"2001:0:a00:101::":                    usLoc,
	"2001:db8:1:ffff:ffff:ffff:ffff:ffff": usLoc,
	"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff": deLoc,
}

// countryPrefixes are the prefixes that differ in a Country database: the
// two Frankfurt /25s and the Berlin /25 become one DE location.
var countryPrefixes = map[string]string{
	"10.0.6.127": "10.0.6.0/24",
	"10.0.6.128": "10.0.6.0/24",
}

func TestLocate(t *testing.T) {
	for _, dbType := range []string{mmdbgen.City, mmdbgen.Country} {
		tab := loadDB(t, dbType, fixture)
		for _, tc := range cityCases {
			want, wantPrefix := tc.want, tc.prefix
			if dbType == mmdbgen.Country {
				if w, ok := countryCases[tc.addr]; ok {
					want = w
				}
				if p, ok := countryPrefixes[tc.addr]; ok {
					wantPrefix = p
				}
			}
			var a netip.Addr
			if tc.addr != "" {
				a = addr(tc.addr)
			}
			got, gotPrefix := tab.Locate(a)
			if got != want {
				t.Errorf("%s: Locate(%s) = %v, want %v", dbType, tc.addr, got, want)
			}
			if gotPrefix.String() != wantPrefixString(wantPrefix) {
				t.Errorf("%s: Locate(%s) prefix = %s, want %s", dbType, tc.addr, gotPrefix, wantPrefixString(wantPrefix))
			}
		}
	}
}

func wantPrefixString(s string) string {
	if s == "" {
		return netip.Prefix{}.String()
	}
	return prefix(s).String()
}

func TestLocationsDeduplicated(t *testing.T) {
	tab := loadDB(t, mmdbgen.City, fixture)
	locs := tab.Locations()
	if locs[0] != (Location{}) {
		t.Errorf("Locations()[0] = %v, want the zero Location", locs[0])
	}
	seen := make(map[Location]bool)
	for _, l := range locs {
		if seen[l] {
			t.Errorf("location %v listed twice", l)
		}
		seen[l] = true
	}
	// sin, fra, ash, de, oc, asn, ber, nz, and the unknown location.
	if len(locs) != 9 {
		t.Errorf("len(Locations()) = %d, want 9: %v", len(locs), locs)
	}
}

func TestInfo(t *testing.T) {
	tab := loadDB(t, mmdbgen.City, fixture)
	got := tab.Info()
	want := Info{
		DatabaseType: mmdbgen.City,
		BuildTime:    time.Unix(mmdbgen.BuildEpoch, 0).UTC(),
		// mmdbwriter writes the two Frankfurt /25s as one /24.
		Networks:  len(fixture) - 1,
		Ranges:    got.Ranges,
		Locations: 9,
	}
	if got != want {
		t.Errorf("Info() = %+v, want %+v", got, want)
	}
	if got.Ranges < len(fixture) {
		t.Errorf("Info().Ranges = %d, want at least %d", got.Ranges, len(fixture))
	}
}

func TestEmpty(t *testing.T) {
	tab := Empty()
	for _, tc := range []struct{ addr, prefix string }{
		{"192.0.2.1", "0.0.0.0/0"},
		{"::ffff:192.0.2.1", "0.0.0.0/0"},
		{"2001:db8::1", "::/0"},
		{"2002:c000:201::", "::/0"},
	} {
		got, p := tab.Locate(addr(tc.addr))
		if got != (Location{}) || p != prefix(tc.prefix) {
			t.Errorf("Empty().Locate(%s) = %v, %s; want unknown, %s", tc.addr, got, p, tc.prefix)
		}
	}
	if n := len(tab.Locations()); n != 1 {
		t.Errorf("len(Empty().Locations()) = %d, want 1", n)
	}
	if info := tab.Info(); info.Locations != 1 || info.Networks != 0 || info.DatabaseType != "" {
		t.Errorf("Empty().Info() = %+v", info)
	}
}

func TestLoadErrors(t *testing.T) {
	good := writeDB(t, mmdbgen.City, fixture)
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"garbage", []byte("not a database")},
		{"truncated", good[:len(good)/3]},
	} {
		if _, err := Load(tc.data); err == nil {
			t.Errorf("Load(%s) succeeded, want an error", tc.name)
		}
	}
	_, err := Open(filepath.Join(t.TempDir(), "missing.mmdb"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(missing) = %v, want an error wrapping fs.ErrNotExist", err)
	}
}

func TestOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "city.mmdb")
	if err := os.WriteFile(path, writeDB(t, mmdbgen.City, fixture), 0o600); err != nil {
		t.Fatal(err)
	}
	tab, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if got, _ := tab.Locate(addr("10.0.0.1")); got != fraLoc {
		t.Errorf("Locate(10.0.0.1) = %v, want %v", got, fraLoc)
	}
}
