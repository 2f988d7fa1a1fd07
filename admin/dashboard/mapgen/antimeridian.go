package main

import "math"

// cutAntimeridian splits a ring that crosses the antimeridian into the
// part east of −180 and the part west of +180, joined by a edge along the
// map's border, so no line is drawn across the map. world-atlas keeps
// Natural Earth's rings whole where they cross (Chukotka, Wrangel Island,
// Fiji): d3 clips them on the sphere. A ring around a pole (Antarctica) is
// returned as it is: its longitudes wind once around, and its data already
// runs along ±180.
func cutAntimeridian(r []point) [][]point {
	crosses := false
	for i := 1; i < len(r); i++ {
		if math.Abs(r[i].lon-r[i-1].lon) > 180 {
			crosses = true
			break
		}
	}
	if !crosses {
		return [][]point{r}
	}
	// Unwrap: make longitudes continuous, so the ring is a plain polygon
	// around ±180 instead of one spanning the globe.
	u := make([]point, len(r))
	u[0] = r[0]
	for i := 1; i < len(r); i++ {
		lon := r[i].lon
		for lon-u[i-1].lon > 180 {
			lon -= 360
		}
		for lon-u[i-1].lon < -180 {
			lon += 360
		}
		u[i] = point{lon, r[i].lat}
	}
	if math.Abs(u[len(u)-1].lon-u[0].lon) > 180 {
		return [][]point{r} // winds around a pole
	}
	minLon, maxLon := u[0].lon, u[0].lon
	for _, p := range u {
		minLon, maxLon = min(minLon, p.lon), max(maxLon, p.lon)
	}
	cut := 180.0
	if maxLon <= 180 {
		cut = -180
	}
	var out [][]point
	for _, side := range []float64{-1, 1} { // west of cut, east of cut
		part := clipMeridian(u, cut, side)
		if len(part) < 3 {
			continue
		}
		// Bring the part beyond ±180 back onto the map.
		shift := 0.0
		if cut == 180 && side > 0 {
			shift = -360
		} else if cut == -180 && side < 0 {
			shift = 360
		}
		for i := range part {
			part[i].lon += shift
		}
		out = append(out, part)
	}
	return out
}

// clipMeridian keeps the part of a closed ring on one side of lon = cut
// (side −1: lon ≤ cut, +1: lon ≥ cut), Sutherland–Hodgman against one
// line: where the ring leaves the side and comes back, the result runs
// along the line, which for a filled shape is the map's edge. The result
// is closed (its last point is its first).
func clipMeridian(r []point, cut, side float64) []point {
	in := func(p point) bool { return (p.lon-cut)*side >= 0 }
	cross := func(a, b point) point {
		t := (cut - a.lon) / (b.lon - a.lon)
		return point{cut, a.lat + t*(b.lat-a.lat)}
	}
	n := len(r)
	if n > 1 && r[0] == r[n-1] {
		n-- // the closing point repeats the first
	}
	var out []point
	for i := range n {
		cur, next := r[i], r[(i+1)%n]
		switch {
		case in(cur) && in(next):
			out = append(out, next)
		case in(cur):
			out = append(out, cross(cur, next))
		case in(next):
			out = append(out, cross(cur, next), next)
		}
	}
	if len(out) > 0 {
		out = append(out, out[0])
	}
	return out
}
