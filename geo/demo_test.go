package geo

import (
	"os"
	"testing"

	"github.com/meridian-gtm/meridian/geo/mmdbgen"
)

const (
	demoCSV = "../deploy/demo/geoip.csv"
	demoDB  = "../deploy/demo/demo-city.mmdb"
)

// TestDemoContract pins what the README, the zone examples and other
// packages' tests rely on in the demo database.
func TestDemoContract(t *testing.T) {
	tab, err := Open(demoDB)
	if err != nil {
		t.Fatal(err)
	}
	ashburn := Location{Continent: "NA", Country: "US", Subdivision: "VA", City: "Ashburn", Lat: 39.04, Lon: -77.49, HasCoords: true}
	frankfurt := Location{Continent: "EU", Country: "DE", Subdivision: "HE", City: "Frankfurt", Lat: 50.11, Lon: 8.68, HasCoords: true}
	singapore := Location{Continent: "AS", Country: "SG", City: "Singapore", Lat: 1.29, Lon: 103.85, HasCoords: true}
	for _, tc := range []struct {
		addr   string
		want   Location
		prefix string
	}{
		{"192.0.2.1", ashburn, "192.0.2.0/24"},
		{"2001:db8:1::1", ashburn, "2001:db8:1::/48"},
		{"198.51.100.1", frankfurt, "198.51.100.0/24"},
		{"2001:db8:2::1", frankfurt, "2001:db8:2::/48"},
		{"203.0.113.1", singapore, "203.0.113.0/24"},
		{"2001:db8:3::1", singapore, "2001:db8:3::/48"},
		{"100.64.0.1", Location{Continent: "AS", Country: "JP", Subdivision: "13", City: "Tokyo", Lat: 35.68, Lon: 139.69, HasCoords: true}, "100.64.0.0/24"},
		{"100.64.1.1", Location{Continent: "SA", Country: "BR", Subdivision: "SP", City: "São Paulo", Lat: -23.55, Lon: -46.63, HasCoords: true}, "100.64.1.0/24"},
		{"100.64.2.1", Location{Continent: "OC", Country: "AU", Subdivision: "NSW", City: "Sydney", Lat: -33.87, Lon: 151.21, HasCoords: true}, "100.64.2.0/24"},
		{"100.64.3.1", Location{Continent: "EU", Country: "FR", Subdivision: "IDF", City: "Paris", Lat: 48.86, Lon: 2.35, HasCoords: true}, "100.64.3.0/24"},
		{"127.0.0.1", Location{}, "112.0.0.0/4"},
		{"10.0.0.1", Location{}, "0.0.0.0/2"},
		{"100.64.4.1", Location{}, "100.64.4.0/22"},
		{"::1", Location{}, "::/98"},
		{"2001:db8:4::1", Location{}, "2001:db8:4::/46"},
	} {
		got, p := tab.Locate(addr(tc.addr))
		if got != tc.want || p != prefix(tc.prefix) {
			t.Errorf("Locate(%s) = %v, %s; want %v, %s", tc.addr, got, p, tc.want, tc.prefix)
		}
	}
}

// TestDemoMatchesCSV checks the committed database answers what every row
// of its CSV says, first address to last.
func TestDemoMatchesCSV(t *testing.T) {
	tab, err := Open(demoDB)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(demoCSV)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	nets, err := mmdbgen.ReadCSV(f)
	if err != nil {
		t.Fatal(err)
	}
	if got := tab.Info().Networks; got != len(nets) {
		t.Errorf("database has %d networks, CSV %d", got, len(nets))
	}
	for _, n := range nets {
		want := Location{Continent: n.Continent, Country: n.Country, Subdivision: n.Subdivision, City: n.City, Lat: n.Lat, Lon: n.Lon, HasCoords: n.HasCoords}
		for _, a := range []string{n.Prefix.Addr().String(), lastAddr(n.Prefix).String()} {
			got, p := tab.Locate(addr(a))
			if got != want || p != n.Prefix {
				t.Errorf("Locate(%s) = %v, %s; CSV says %v, %s", a, got, p, want, n.Prefix)
			}
		}
	}
}
