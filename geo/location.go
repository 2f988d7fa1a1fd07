package geo

import "strconv"

// Location is what the database says about an address.
//
// It is a comparable value: the Table deduplicates by it, and callers may use
// it as a map key.
type Location struct {
	Continent   string // two-letter continent code, "EU"; "" when unknown
	Country     string // ISO 3166-1 alpha-2, "DE"; "" when unknown
	Subdivision string // first ISO 3166-2 subdivision code, without the country part: "HE"
	City        string // English city name, informational
	Lat, Lon    float64
	// HasCoords says Lat/Lon are meaningful: from the database, else the
	// country's centroid (Country-only databases), else the continent's
	// centroid.
	HasCoords bool
	ASN       uint32 // 0 unless the database has autonomous_system_number
}

// Known reports whether the location says anything a policy can steer by:
// a continent, a country or coordinates.
func (l Location) Known() bool {
	return l.Continent != "" || l.Country != "" || l.HasCoords
}

// String formats the location for explain output and logs, e.g.
// "DE/HE Frankfurt (50.11,8.68)", "EU (48.69,9.14)" or "unknown".
func (l Location) String() string {
	b := make([]byte, 0, 48)
	switch {
	case l.Country != "":
		b = append(b, l.Country...)
		if l.Subdivision != "" {
			b = append(b, '/')
			b = append(b, l.Subdivision...)
		}
	case l.Continent != "":
		b = append(b, l.Continent...)
	}
	if l.City != "" {
		b = appendSep(b)
		b = append(b, l.City...)
	}
	if l.HasCoords {
		b = appendSep(b)
		b = append(b, '(')
		b = strconv.AppendFloat(b, l.Lat, 'f', 2, 64)
		b = append(b, ',')
		b = strconv.AppendFloat(b, l.Lon, 'f', 2, 64)
		b = append(b, ')')
	}
	if l.ASN != 0 {
		b = appendSep(b)
		b = append(b, "AS"...)
		b = strconv.AppendUint(b, uint64(l.ASN), 10)
	}
	if len(b) == 0 {
		return "unknown"
	}
	return string(b)
}

func appendSep(b []byte) []byte {
	if len(b) > 0 {
		b = append(b, ' ')
	}
	return b
}
