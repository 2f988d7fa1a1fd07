package geo

import (
	"math"
	"strings"
	"testing"
)

// iso3166 lists every officially assigned ISO 3166-1 alpha-2 code (249).
const iso3166 = `AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ
BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ
DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP
GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI
KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP
MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX
SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU
WF WS YE YT ZA ZM ZW`

func TestCountryCentroids(t *testing.T) {
	codes := strings.Fields(iso3166)
	if len(codes) != 249 {
		t.Fatalf("the test's ISO list has %d codes, want 249", len(codes))
	}
	for _, cc := range append(codes, "XK") {
		if _, _, ok := CountryCentroid(cc); !ok {
			t.Errorf("CountryCentroid(%q) missing", cc)
		}
	}
	if n := len(countryCentroids); n < 240 {
		t.Errorf("%d country centroids, want at least 240", n)
	}
	checkTable(t, countryCentroids[:])
}

func TestCentroidLookup(t *testing.T) {
	for _, tc := range []struct {
		code     string
		lat, lon float64
		ok       bool
	}{
		{"US", 39.8, -98.6, true},
		{"DE", 51.2, 10.5, true},
		{"SG", 1.35, 103.8, true},
		{"de", 51.2, 10.5, true},
		{"ZZ", 0, 0, false},
		{"", 0, 0, false},
		{"DEU", 0, 0, false},
	} {
		lat, lon, ok := CountryCentroid(tc.code)
		if lat != tc.lat || lon != tc.lon || ok != tc.ok {
			t.Errorf("CountryCentroid(%q) = %v, %v, %v; want %v, %v, %v", tc.code, lat, lon, ok, tc.lat, tc.lon, tc.ok)
		}
	}
	for _, code := range strings.Fields("AF AN AS EU NA OC SA eu") {
		if _, _, ok := ContinentCentroid(code); !ok {
			t.Errorf("ContinentCentroid(%q) missing", code)
		}
	}
	if _, _, ok := ContinentCentroid("XX"); ok {
		t.Error("ContinentCentroid(XX) found")
	}
	checkTable(t, continentCentroids[:])
}

// checkTable checks a centroid table is sorted, unique and on the globe.
func checkTable(t *testing.T, table []centroid) {
	t.Helper()
	for i, c := range table {
		if i > 0 && table[i-1].code >= c.code {
			t.Errorf("%s after %s: table not sorted or not unique", c.code, table[i-1].code)
		}
		if math.Abs(c.lat) > 90 || math.Abs(c.lon) > 180 {
			t.Errorf("%s: (%v, %v) is off the globe", c.code, c.lat, c.lon)
		}
	}
}

func TestCentroidLookupAllocs(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { CountryCentroid("de") }); n != 0 {
		t.Errorf("CountryCentroid allocates %v times, want 0", n)
	}
}
