package geo

import "math"

// earthRadiusKm is the IUGG mean earth radius. A sphere is within about 0.5%
// of the ellipsoid everywhere, far finer than GeoIP coordinates are.
const earthRadiusKm = 6371.0088

// Distance returns the great-circle distance in kilometres between two points
// given in degrees, by the haversine formula (well conditioned for the short
// distances where the spherical law of cosines loses precision).
func Distance(lat1, lon1, lat2, lon2 float64) float64 {
	const rad = math.Pi / 180
	φ1, φ2 := lat1*rad, lat2*rad
	sinDφ := math.Sin((lat2 - lat1) * rad / 2)
	sinDλ := math.Sin((lon2 - lon1) * rad / 2)
	h := sinDφ*sinDφ + math.Cos(φ1)*math.Cos(φ2)*sinDλ*sinDλ
	// Rounding can push h a hair above 1 for antipodal points; Asin would
	// then return NaN.
	return 2 * earthRadiusKm * math.Asin(math.Sqrt(min(h, 1)))
}
