package mmdbgen

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/oschwald/maxminddb-golang/v2"
)

var frankfurt = Network{
	Prefix:    netip.MustParsePrefix("198.51.100.0/24"),
	Continent: "EU", Country: "DE", Subdivision: "HE", City: "Frankfurt",
	Lat: 50.11, Lon: 8.68, HasCoords: true, ASN: 64500,
}

// geoRecord is the GeoIP2 schema the server reads.
type geoRecord struct {
	Continent struct {
		Code string `maxminddb:"code"`
	} `maxminddb:"continent"`
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	Subdivisions []struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"subdivisions"`
	City struct {
		Names map[string]string `maxminddb:"names"`
	} `maxminddb:"city"`
	Location *struct {
		Latitude  float64 `maxminddb:"latitude"`
		Longitude float64 `maxminddb:"longitude"`
	} `maxminddb:"location"`
	ASN uint32 `maxminddb:"autonomous_system_number"`
}

func lookup(t *testing.T, db []byte, addr string) (geoRecord, netip.Prefix, maxminddb.Metadata) {
	t.Helper()
	r, err := maxminddb.OpenBytes(db)
	if err != nil {
		t.Fatal(err)
	}
	res := r.Lookup(netip.MustParseAddr(addr))
	var rec geoRecord
	if err := res.Decode(&rec); err != nil {
		t.Fatal(err)
	}
	return rec, res.Prefix(), r.Metadata
}

func TestWriteCity(t *testing.T) {
	v6 := frankfurt
	v6.Prefix = netip.MustParsePrefix("2001:db8:2::/48")
	mapped := frankfurt
	mapped.Prefix = netip.MustParsePrefix("::ffff:192.0.2.0/120") // written as 192.0.2.0/24
	var buf bytes.Buffer
	if err := Write(&buf, City, []Network{frankfurt, v6, mapped}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ addr, prefix string }{
		{"198.51.100.7", "198.51.100.0/24"},
		{"2001:db8:2::7", "2001:db8:2::/48"},
		{"192.0.2.7", "192.0.2.0/24"},
		{"::ffff:198.51.100.7", "::ffff:198.51.100.0/120"}, // the writer's alias
	} {
		rec, p, md := lookup(t, buf.Bytes(), tc.addr)
		if p != netip.MustParsePrefix(tc.prefix) {
			t.Errorf("%s: network %s, want %s", tc.addr, p, tc.prefix)
		}
		if rec.Continent.Code != "EU" || rec.Country.ISOCode != "DE" || len(rec.Subdivisions) != 1 ||
			rec.Subdivisions[0].ISOCode != "HE" || rec.City.Names["en"] != "Frankfurt" ||
			rec.Location == nil || rec.Location.Latitude != 50.11 || rec.Location.Longitude != 8.68 || rec.ASN != 64500 {
			t.Errorf("%s: record %+v", tc.addr, rec)
		}
		if md.DatabaseType != City || md.BuildEpoch != BuildEpoch || md.IPVersion != 6 {
			t.Errorf("metadata %+v", md)
		}
	}
	if rec, _, _ := lookup(t, buf.Bytes(), "127.0.0.1"); rec.Country.ISOCode != "" {
		t.Errorf("127.0.0.1 has data: %+v", rec)
	}
}

func TestWriteCountry(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, Country, []Network{frankfurt}); err != nil {
		t.Fatal(err)
	}
	rec, _, md := lookup(t, buf.Bytes(), "198.51.100.7")
	if rec.Country.ISOCode != "DE" || rec.Continent.Code != "EU" {
		t.Errorf("record %+v lacks continent or country", rec)
	}
	if len(rec.Subdivisions) != 0 || rec.City.Names != nil || rec.Location != nil {
		t.Errorf("Country record %+v has city-level data", rec)
	}
	if md.DatabaseType != Country {
		t.Errorf("database type %q, want %q", md.DatabaseType, Country)
	}
}

func TestWriteReproducible(t *testing.T) {
	var a, b bytes.Buffer
	if err := Write(&a, City, []Network{frankfurt}); err != nil {
		t.Fatal(err)
	}
	if err := Write(&b, City, []Network{frankfurt}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two writes of the same networks differ")
	}
}

func TestWriteErrors(t *testing.T) {
	hostBits := frankfurt
	hostBits.Prefix = netip.MustParsePrefix("198.51.100.7/24")
	for _, tc := range []struct {
		name   string
		dbType string
		nets   []Network
		want   string
	}{
		{"type", "GeoLite2-ASN", nil, "unsupported database type"},
		{"invalid prefix", City, []Network{{}}, "network 0: invalid prefix"},
		{"host bits", City, []Network{hostBits}, "host bits"},
	} {
		err := Write(&bytes.Buffer{}, tc.dbType, tc.nets)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Write error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	if err := Write(&bytes.Buffer{}, "x", nil); !errors.Is(err, ErrType) {
		t.Errorf("Write(type x) = %v, want ErrType", err)
	}
}

func TestReadCSV(t *testing.T) {
	in := `# a comment
prefix,continent,country,subdivision,city,lat,lon
198.51.100.0/24,EU,DE,HE,Frankfurt,50.11,8.68
# another comment
2001:db8:2::/48, EU, DE, HE, Frankfurt, 50.11, 8.68
203.0.113.0/24,AS,SG,,Singapore,,
"100.64.1.0/24",SA,BR,SP,"São Paulo, SP",-23.55,-46.63
`
	got, err := ReadCSV(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	fra6 := frankfurt
	fra6.Prefix, fra6.ASN = netip.MustParsePrefix("2001:db8:2::/48"), 0
	fra4 := frankfurt
	fra4.ASN = 0
	want := []Network{
		fra4,
		fra6,
		{Prefix: netip.MustParsePrefix("203.0.113.0/24"), Continent: "AS", Country: "SG", City: "Singapore"},
		{Prefix: netip.MustParsePrefix("100.64.1.0/24"), Continent: "SA", Country: "BR", Subdivision: "SP", City: "São Paulo, SP", Lat: -23.55, Lon: -46.63, HasCoords: true},
	}
	if len(got) != len(want) {
		t.Fatalf("ReadCSV read %d networks, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestReadCSVWithASN(t *testing.T) {
	got, err := ReadCSV(strings.NewReader("prefix,continent,country,subdivision,city,lat,lon,asn\n192.0.2.0/24,,,,,,,64500\n192.0.3.0/24,,,,,,,\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ASN != 64500 || got[1].ASN != 0 {
		t.Errorf("ReadCSV = %+v", got)
	}
}

func TestReadCSVErrors(t *testing.T) {
	const header = "prefix,continent,country,subdivision,city,lat,lon\n"
	for _, tc := range []struct {
		name, in, want string
	}{
		{"empty", "", "no header"},
		{"bad header", "prefix,country\n", "line 1: header"},
		{"header order", "prefix,country,continent,subdivision,city,lat,lon\n", "line 1: header"},
		{"bad prefix", header + "192.0.2.0/33,EU,DE,,,,\n", "line 2: prefix"},
		{"host bits", header + "# comment\n192.0.2.1/24,EU,DE,,,,\n", "line 3: prefix 192.0.2.1/24 has host bits set"},
		{"fields", header + "192.0.2.0/24,EU,DE\n", "line 2: 3 fields, want 7"},
		{"continent", header + "192.0.2.0/24,XX,DE,,,,\n", "line 2: continent"},
		{"country", header + "192.0.2.0/24,EU,de,,,,\n", "line 2: country"},
		{"half coords", header + "192.0.2.0/24,EU,DE,,,50,\n", "line 2: lat and lon"},
		{"lat range", header + "192.0.2.0/24,EU,DE,,,91,8\n", "line 2: lat"},
		{"lon range", header + "192.0.2.0/24,EU,DE,,,50,-181\n", "line 2: lon"},
		{"lat syntax", header + "192.0.2.0/24,EU,DE,,,fifty,8\n", "line 2: lat"},
		{"lat NaN", header + "192.0.2.0/24,EU,DE,,,NaN,8\n", "line 2: lat"},
		{"asn", "prefix,continent,country,subdivision,city,lat,lon,asn\n192.0.2.0/24,,,,,,,AS1\n", "line 2: asn"},
		{"quote", header + "192.0.2.0/24,EU,\"DE,,,,\n", "line 2"},
	} {
		_, err := ReadCSV(strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrCSV) {
			t.Errorf("%s: ReadCSV error %v, want ErrCSV containing %q", tc.name, err, tc.want)
		}
	}
}
