package geo

import (
	"math"
	"testing"
)

func TestLocationString(t *testing.T) {
	for _, tc := range []struct {
		loc  Location
		want string
	}{
		{fraLoc, "DE/HE Frankfurt (50.11,8.68)"},
		{sinLoc, "SG Singapore (1.29,103.85)"},
		{ashLoc, "US/VA Ashburn (39.04,-77.49)"},
		{ocLoc, "OC (-18.31,138.52)"},
		{Location{Country: "DE"}, "DE"},
		{Location{ASN: 64500}, "AS64500"},
		{Location{Continent: "EU", Country: "DE", ASN: 3320}, "DE AS3320"},
		{Location{}, "unknown"},
	} {
		if got := tc.loc.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.loc, got, tc.want)
		}
	}
}

func TestLocationKnown(t *testing.T) {
	for _, tc := range []struct {
		loc  Location
		want bool
	}{
		{fraLoc, true},
		{Location{Continent: "EU"}, true},
		{Location{Country: "DE"}, true},
		{Location{HasCoords: true}, true}, // Null Island is a place
		{Location{ASN: 64500, City: "Nowhere"}, false},
		{Location{}, false},
	} {
		if got := tc.loc.Known(); got != tc.want {
			t.Errorf("%v.Known() = %v, want %v", tc.loc, got, tc.want)
		}
	}
}

func TestDistance(t *testing.T) {
	const halfCircumference = math.Pi * earthRadiusKm
	for _, tc := range []struct {
		name                   string
		lat1, lon1, lat2, lon2 float64
		want, tolerance        float64
	}{
		{"Frankfurt-Singapore", 50.11, 8.68, 1.29, 103.85, 10260, 0.01 * 10260},
		{"Ashburn-Frankfurt", 39.04, -77.49, 50.11, 8.68, 6560, 0.01 * 6560},
		{"Sydney-Sao Paulo", -33.87, 151.21, -23.55, -46.63, 13380, 0.01 * 13380},
		{"same point", 50.11, 8.68, 50.11, 8.68, 0, 1e-9},
		{"antipodes on the equator", 0, 0, 0, 180, halfCircumference, 1e-6},
		{"pole to pole", 90, 0, -90, 0, halfCircumference, 1e-6},
		{"across the antimeridian", 0, 179.5, 0, -179.5, 111.2, 0.5},
	} {
		got := Distance(tc.lat1, tc.lon1, tc.lat2, tc.lon2)
		if math.Abs(got-tc.want) > tc.tolerance {
			t.Errorf("%s: Distance = %.1f km, want %.1f ± %.1f", tc.name, got, tc.want, tc.tolerance)
		}
		if back := Distance(tc.lat2, tc.lon2, tc.lat1, tc.lon1); math.Abs(back-got) > 1e-9 {
			t.Errorf("%s: Distance is not symmetric: %v and %v", tc.name, got, back)
		}
	}
}
