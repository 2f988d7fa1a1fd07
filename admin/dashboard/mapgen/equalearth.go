package main

import (
	"fmt"
	"math"
	"strconv"
)

// The Equal Earth projection (Šavrič, Patterson and Jenny, "The Equal
// Earth map projection", IJGIS 2018): equal-area, with closed formulas in
// both directions, so the dashboard's JavaScript computes the very same
// positions as this generator.
const (
	eeA1 = 1.340264
	eeA2 = -0.081106
	eeA3 = 0.000893
	eeA4 = 0.003796
)

// eeM is √3/2; θ = asin(M·sin φ).
var eeM = math.Sqrt(3) / 2

// equalEarth projects a longitude and latitude in radians onto the unit
// sphere's Equal Earth plane: x east, y north, (0, 0) at lon 0 lat 0.
// The expression is the one written into world.js, term for term.
func equalEarth(lambda, phi float64) (x, y float64) {
	t := math.Asin(eeM * math.Sin(phi))
	t2 := t * t
	t6 := t2 * t2 * t2
	x = lambda * math.Cos(t) / (eeM * (eeA1 + 3*eeA2*t2 + t6*(7*eeA3+9*eeA4*t2)))
	y = t * (eeA1 + eeA2*t2 + t6*(eeA3+eeA4*t2))
	return x, y
}

// mapWidth is the viewBox width; the height follows from the projection.
const mapWidth = 1000

// fit places the whole sphere's Equal Earth outline in the viewBox: k
// scales the unit plane so that lon ±180 spans the width, the height is
// the outline's height rounded up to a whole pixel, and (cx, cy), the
// image of lon 0 lat 0, is the centre.
type fit struct {
	k, cx, cy     float64
	width, height int
}

func newFit() fit {
	xMax, _ := equalEarth(math.Pi, 0)
	_, yMax := equalEarth(0, math.Pi/2)
	k := mapWidth / (2 * xMax)
	h := int(math.Ceil(2 * k * yMax))
	return fit{k: k, cx: mapWidth / 2, cy: float64(h) / 2, width: mapWidth, height: h}
}

// project returns the SVG position of a latitude and longitude in degrees
// (y grows downwards).
func (f fit) project(lat, lon float64) (x, y float64) {
	ex, ey := equalEarth(lon*math.Pi/180, lat*math.Pi/180)
	return f.cx + f.k*ex, f.cy - f.k*ey
}

// g formats a float64 so that JavaScript parses it back to the same value.
func g(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// js is the JavaScript of project: the same constants, the same fit and
// the same expression as equalEarth and fit.project.
func (f fit) js() string {
	return fmt.Sprintf(`const A1 = %s, A2 = %s, A3 = %s, A4 = %s, M = Math.sqrt(3) / 2;
const K = %s, CX = %s, CY = %s;

// project returns the SVG position [x, y] of a latitude and longitude in
// degrees: Equal Earth (Šavrič, Patterson, Jenny 2018), fitted to width
// and height as the paths are.
export function project(lat, lon) {
  const t = Math.asin(M * Math.sin(lat * Math.PI / 180)), t2 = t * t, t6 = t2 * t2 * t2;
  const x = lon * Math.PI / 180 * Math.cos(t) / (M * (A1 + 3 * A2 * t2 + t6 * (7 * A3 + 9 * A4 * t2)));
  const y = t * (A1 + A2 * t2 + t6 * (A3 + A4 * t2));
  return [CX + K * x, CY - K * y];
}
`, g(eeA1), g(eeA2), g(eeA3), g(eeA4), g(f.k), g(f.cx), g(f.cy))
}
