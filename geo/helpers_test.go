package geo

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/meridian-gtm/meridian/geo/mmdbgen"
)

// Records the fixtures reuse. Prefixes are set per row with at.
var (
	fraRec = mmdbgen.Network{Continent: "EU", Country: "DE", Subdivision: "HE", City: "Frankfurt", Lat: 50.11, Lon: 8.68, HasCoords: true}
	berRec = mmdbgen.Network{Continent: "EU", Country: "DE", Subdivision: "BE", City: "Berlin", Lat: 52.52, Lon: 13.40, HasCoords: true}
	ashRec = mmdbgen.Network{Continent: "NA", Country: "US", Subdivision: "VA", City: "Ashburn", Lat: 39.04, Lon: -77.49, HasCoords: true}
	sinRec = mmdbgen.Network{Continent: "AS", Country: "SG", City: "Singapore", Lat: 1.29, Lon: 103.85, HasCoords: true}
	deRec  = mmdbgen.Network{Continent: "EU", Country: "DE"} // a City database row without coordinates
	ocRec  = mmdbgen.Network{Continent: "OC"}                // continent only
	asnRec = mmdbgen.Network{ASN: 64500}                     // nothing to steer by
	nzRec  = mmdbgen.Network{Continent: "OC", Country: "NZ"} // country only
)

// Locations the fixtures decode to.
var (
	fraLoc = Location{Continent: "EU", Country: "DE", Subdivision: "HE", City: "Frankfurt", Lat: 50.11, Lon: 8.68, HasCoords: true}
	berLoc = Location{Continent: "EU", Country: "DE", Subdivision: "BE", City: "Berlin", Lat: 52.52, Lon: 13.40, HasCoords: true}
	ashLoc = Location{Continent: "NA", Country: "US", Subdivision: "VA", City: "Ashburn", Lat: 39.04, Lon: -77.49, HasCoords: true}
	sinLoc = Location{Continent: "AS", Country: "SG", City: "Singapore", Lat: 1.29, Lon: 103.85, HasCoords: true}
	deLoc  = Location{Continent: "EU", Country: "DE", Lat: 51.2, Lon: 10.5, HasCoords: true}   // DE centroid
	usLoc  = Location{Continent: "NA", Country: "US", Lat: 39.8, Lon: -98.6, HasCoords: true}  // US centroid
	sgLoc  = Location{Continent: "AS", Country: "SG", Lat: 1.35, Lon: 103.8, HasCoords: true}  // SG centroid
	ocLoc  = Location{Continent: "OC", Lat: -18.31, Lon: 138.52, HasCoords: true}              // OC centroid
	asnLoc = Location{ASN: 64500}                                                              // not Known
	nzLoc  = Location{Continent: "OC", Country: "NZ", Lat: -40.9, Lon: 174.9, HasCoords: true} // NZ centroid
)

func at(prefix string, n mmdbgen.Network) mmdbgen.Network {
	n.Prefix = netip.MustParsePrefix(prefix)
	return n
}

// fixture is a small database with adjacent, mergeable, gapped and extreme
// networks in both families.
var fixture = []mmdbgen.Network{
	at("0.0.0.0/32", sinRec),
	at("10.0.0.0/25", fraRec),
	at("10.0.0.128/25", fraRec),
	at("10.0.1.0/24", ashRec),
	at("10.0.2.0/24", deRec),
	at("10.0.3.0/24", ocRec),
	at("10.0.4.0/24", asnRec),
	at("10.0.6.0/25", fraRec),
	at("10.0.6.128/25", berRec),
	at("255.255.255.255/32", ashRec),
	at("2001:db8:1::/48", ashRec),
	at("2001:db8:2::/48", fraRec),
	at("2001:db8:3::/48", nzRec),
	at("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", fraRec),
}

func writeDB(tb testing.TB, dbType string, nets []mmdbgen.Network) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := mmdbgen.Write(&buf, dbType, nets); err != nil {
		tb.Fatalf("write %s database: %v", dbType, err)
	}
	return buf.Bytes()
}

func loadDB(tb testing.TB, dbType string, nets []mmdbgen.Network) *Table {
	tb.Helper()
	t, err := Load(writeDB(tb, dbType, nets))
	if err != nil {
		tb.Fatalf("Load: %v", err)
	}
	return t
}

func addr(s string) netip.Addr     { return netip.MustParseAddr(s) }
func prefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
