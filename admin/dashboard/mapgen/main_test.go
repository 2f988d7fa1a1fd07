package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// committed is the generated module the dashboard serves.
const committed = "../assets/world.js"

func approx(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// TestDecodeArcsDelta: quantized arcs are delta-encoded integers, scaled
// and translated; without a transform positions are absolute.
func TestDecodeArcsDelta(t *testing.T) {
	q := &topology{
		Transform: &transform{Scale: [2]float64{0.5, 2}, Translate: [2]float64{10, -20}},
		Arcs:      [][][2]float64{{{0, 0}, {2, 0}, {0, 3}, {-4, -1}}},
	}
	want := []point{{10, -20}, {11, -20}, {11, -14}, {9, -16}}
	if got := decodeArcs(q)[0]; !equalPoints(got, want) {
		t.Errorf("quantized: got %v, want %v", got, want)
	}
	abs := &topology{Arcs: [][][2]float64{{{1, 2}, {3, 4}}}}
	if got := decodeArcs(abs)[0]; !equalPoints(got, []point{{1, 2}, {3, 4}}) {
		t.Errorf("absolute: got %v", got)
	}
}

// TestRingReversedArcs: a negative index ~i is arc i backwards; each later
// arc's first point, shared with the previous arc's last, appears once.
func TestRingReversedArcs(t *testing.T) {
	arcs := [][]point{
		{{0, 0}, {2, 0}, {2, 2}},
		{{2, 2}, {0, 2}, {0, 0}},
	}
	tests := []struct {
		name string
		idx  []int
		want []point
	}{
		{"forward", []int{0, 1}, []point{{0, 0}, {2, 0}, {2, 2}, {0, 2}, {0, 0}}},
		{"reversed", []int{^1, ^0}, []point{{0, 0}, {0, 2}, {2, 2}, {2, 0}, {0, 0}}},
		{"one reversed arc", []int{-1}, []point{{2, 2}, {2, 0}, {0, 0}}},
	}
	for _, tt := range tests {
		got, err := ring(arcs, tt.idx)
		if err != nil || !equalPoints(got, tt.want) {
			t.Errorf("%s: got %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}
	if _, err := ring(arcs, []int{2}); err == nil {
		t.Error("arc 2 of 2: no error")
	}
	if _, err := ring(arcs, []int{^2}); err == nil {
		t.Error("arc ~2 of 2: no error")
	}
}

// tinyTopology has a Polygon with a hole, a MultiPolygon of two squares
// (one sharing an arc reversed), a feature without id and a LineString.
const tinyTopology = `{
  "type": "Topology",
  "transform": {"scale": [1, 1], "translate": [0, 0]},
  "arcs": [
    [[0, 0], [4, 0], [0, 4], [-4, 0], [0, -4]],
    [[1, 1], [0, 1], [1, 0], [0, -1], [-1, 0]],
    [[10, 0], [0, 2]],
    [[10, 2], [2, 0], [0, -2], [-2, 0]],
    [[20, 0], [1, 1]]
  ],
  "objects": {"countries": {"type": "GeometryCollection", "geometries": [
    {"type": "Polygon", "id": "001", "arcs": [[0], [1]], "properties": {"name": "Holed"}},
    {"type": "MultiPolygon", "id": "002", "arcs": [[[0]], [[2, 3]]], "properties": {"name": "Two"}},
    {"type": "Polygon", "arcs": [[-2]], "properties": {"name": "Nameless"}},
    {"type": "LineString", "id": "003", "arcs": [4], "properties": {"name": "Line"}}
  ]}}
}`

func TestFeaturesPolygonMultiPolygon(t *testing.T) {
	fs, err := features([]byte(tinyTopology), "countries")
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 3 {
		t.Fatalf("got %d features, want 3 (the LineString skipped)", len(fs))
	}
	square := []point{{0, 0}, {4, 0}, {4, 4}, {0, 4}, {0, 0}}
	hole := []point{{1, 1}, {1, 2}, {2, 2}, {2, 1}, {1, 1}}
	tests := []struct {
		f        feature
		id, name string
		want     [][][]point
	}{
		{fs[0], "001", "Holed", [][][]point{{square, hole}}},
		{fs[1], "002", "Two", [][][]point{{square}, {{{10, 0}, {10, 2}, {12, 2}, {12, 0}, {10, 0}}}}},
		{fs[2], "", "Nameless", [][][]point{{{{1, 1}, {2, 1}, {2, 2}, {1, 2}, {1, 1}}}}},
	}
	for _, tt := range tests {
		if tt.f.id != tt.id || tt.f.name != tt.name {
			t.Errorf("got %q %q, want %q %q", tt.f.id, tt.f.name, tt.id, tt.name)
		}
		if len(tt.f.polygons) != len(tt.want) {
			t.Errorf("%s: %d polygons, want %d", tt.name, len(tt.f.polygons), len(tt.want))
			continue
		}
		for i, p := range tt.want {
			for j, r := range p {
				if !equalPoints(tt.f.polygons[i][j], r) {
					t.Errorf("%s polygon %d ring %d: got %v, want %v", tt.name, i, j, tt.f.polygons[i][j], r)
				}
			}
		}
	}
}

func TestFeaturesErrors(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"not json", `{`, "decode topology"},
		{"not a topology", `{"type": "FeatureCollection"}`, "want Topology"},
		{"no object", `{"type": "Topology", "objects": {}}`, `no object "countries"`},
		{"arc out of range", `{"type": "Topology", "arcs": [], "objects": {"countries": {"type": "GeometryCollection",
			"geometries": [{"type": "Polygon", "arcs": [[0]], "properties": {"name": "X"}}]}}}`, "arc 0 of 0"},
	}
	for _, tt := range tests {
		if _, err := features([]byte(tt.doc), "countries"); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
}

// TestEqualEarthKnownValues checks the factored formulas against values
// from the paper's: x(180°, 0) = 2√3·π/(3·A1) and y(0, 90°) at θ = π/3.
func TestEqualEarthKnownValues(t *testing.T) {
	if x, y := equalEarth(0, 0); x != 0 || y != 0 {
		t.Errorf("(0, 0) → (%v, %v), want (0, 0)", x, y)
	}
	if x, _ := equalEarth(math.Pi, 0); !approx(x, 2.7066, 1e-4) || !approx(x, 2.7066299836960743, 1e-12) {
		t.Errorf("x(180°, 0) = %v, want 2.7066", x)
	}
	if _, y := equalEarth(0, math.Pi/2); !approx(y, 1.317362759157413, 1e-12) {
		t.Errorf("y(0, 90°) = %v, want 1.31736", y)
	}
	// The paper's unfactored form, over a grid.
	for lat := -90.0; lat <= 90; lat += 7.5 {
		for lon := -180.0; lon <= 180; lon += 15 {
			l, p := lon*math.Pi/180, lat*math.Pi/180
			th := math.Asin(math.Sqrt(3) / 2 * math.Sin(p))
			wx := 2 * math.Sqrt(3) * l * math.Cos(th) /
				(3 * (9*eeA4*math.Pow(th, 8) + 7*eeA3*math.Pow(th, 6) + 3*eeA2*th*th + eeA1))
			wy := eeA4*math.Pow(th, 9) + eeA3*math.Pow(th, 7) + eeA2*math.Pow(th, 3) + eeA1*th
			if x, y := equalEarth(l, p); !approx(x, wx, 1e-12) || !approx(y, wy, 1e-12) {
				t.Errorf("(%v, %v): got (%v, %v), want (%v, %v)", lon, lat, x, y, wx, wy)
			}
		}
	}
}

// TestFit: lon 0 lat 0 is the centre, ±180 the left and right edges, the
// poles the top and bottom within the rounding of the height up.
func TestFit(t *testing.T) {
	f := newFit()
	if f.width != 1000 || f.height != 487 {
		t.Fatalf("viewBox %d×%d, want 1000×487", f.width, f.height)
	}
	tests := []struct{ lat, lon, x, y, tol float64 }{
		{0, 0, 500, 243.5, 1e-9},
		{0, -180, 0, 243.5, 1e-9},
		{0, 180, 1000, 243.5, 1e-9},
		{90, 0, 500, 0, 0.5},
		{-90, 0, 500, 487, 0.5},
	}
	for _, tt := range tests {
		if x, y := f.project(tt.lat, tt.lon); !approx(x, tt.x, tt.tol) || !approx(y, tt.y, tt.tol) {
			t.Errorf("project(%v, %v) = (%v, %v), want (%v, %v)", tt.lat, tt.lon, x, y, tt.x, tt.y)
		}
	}
}

// TestProjectMonotonic: y falls as latitude rises at every longitude, x
// rises with longitude at every latitude short of the poles.
func TestProjectMonotonic(t *testing.T) {
	f := newFit()
	for lon := -180.0; lon <= 180; lon += 30 {
		_, prev := f.project(-90, lon)
		for lat := -89.0; lat <= 90; lat++ {
			if _, y := f.project(lat, lon); y >= prev {
				t.Fatalf("lon %v: y(%v) = %v, not below y(%v) = %v", lon, lat, y, lat-1, prev)
			} else {
				prev = y
			}
		}
	}
	for lat := -89.0; lat <= 89; lat += 15 {
		prev, _ := f.project(lat, -180)
		for lon := -179.0; lon <= 180; lon++ {
			if x, _ := f.project(lat, lon); x <= prev {
				t.Fatalf("lat %v: x(%v) = %v, not right of x(%v) = %v", lat, lon, x, lon-1, prev)
			} else {
				prev = x
			}
		}
	}
}

func TestCutAntimeridian(t *testing.T) {
	// A box from 170°E to 170°W, as Natural Earth stores Chukotka's rings.
	box := []point{{170, 0}, {-170, 0}, {-170, 10}, {170, 10}, {170, 0}}
	parts := cutAntimeridian(box)
	if len(parts) != 2 {
		t.Fatalf("got %d parts, want 2: %v", len(parts), parts)
	}
	for _, p := range parts {
		if p[0] != p[len(p)-1] {
			t.Errorf("part %v is not closed", p)
		}
		east, west := false, false
		for _, q := range p {
			east, west = east || q.lon > 0, west || q.lon < 0
			if q.lon < -180 || q.lon > 180 {
				t.Errorf("part %v leaves the map", p)
			}
		}
		if east && west {
			t.Errorf("part %v spans the map", p)
		}
	}
	// Not crossing, or winding once around a pole: unchanged.
	for _, r := range [][]point{
		{{0, 0}, {10, 0}, {10, 10}, {0, 0}},
		{{-180, -80}, {-60, -70}, {60, -70}, {180, -80}, {180, -85}, {-180, -85}, {-180, -80}},
		{{-170, -70}, {-50, -75}, {70, -75}, {170, -70}, {-170, -70}},
	} {
		if got := cutAntimeridian(r); len(got) != 1 || !equalPoints(got[0], r) {
			t.Errorf("cut(%v) = %v, want it unchanged", r, got)
		}
	}
}

func TestFmtTenths(t *testing.T) {
	for n, want := range map[int]string{0: "0", 5: "0.5", -5: "-0.5", 1234: "123.4", 1230: "123", -10: "-1", 10000: "1000"} {
		if got := fmtTenths(n); got != want {
			t.Errorf("fmtTenths(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestPathData decodes the relative path data back and compares it with
// the rounded projected rings; a ring below half a square pixel is dropped.
func TestPathData(t *testing.T) {
	f := newFit()
	big := []point{{0, 0}, {0, 10}, {-10, 10}, {-10, 0}, {0, 0}}
	tiny := []point{{50, 50}, {50.01, 50}, {50.01, 50.01}, {50, 50}}
	d := pathData(f, [][][]point{{big, tiny}})
	subpaths := parsePath(t, d)
	if len(subpaths) != 1 {
		t.Fatalf("%q: %d subpaths, want 1 (the tiny ring dropped)", d, len(subpaths))
	}
	want := make([][2]float64, 0, 4)
	for _, p := range big[:4] {
		x, y := f.project(p.lat, p.lon)
		want = append(want, [2]float64{math.Round(x*10) / 10, math.Round(y*10) / 10})
	}
	got := subpaths[0]
	if len(got) != len(want) {
		t.Fatalf("%q: %d points, want %d", d, len(got), len(want))
	}
	for i := range want {
		if !approx(got[i][0], want[i][0], 1e-9) || !approx(got[i][1], want[i][1], 1e-9) {
			t.Errorf("point %d: got %v, want %v (path %q)", i, got[i], want[i], d)
		}
	}
	if !strings.HasPrefix(d, "M") || !strings.HasSuffix(d, "Z") || !strings.Contains(d, "l") {
		t.Errorf("%q: want M…l…Z", d)
	}
}

func TestAssign(t *testing.T) {
	sq := func(lon float64) [][]point {
		return [][]point{{{lon, 0}, {lon + 1, 0}, {lon + 1, 1}, {lon, 0}}}
	}
	fs := []feature{
		{id: "250", name: "France", polygons: [][][]point{sq(2), sq(-53)}},
		{id: "196", name: "Cyprus", polygons: [][][]point{sq(33)}},
		{name: "N. Cyprus", polygons: [][][]point{sq(34)}},
		{name: "Kosovo", polygons: [][][]point{sq(21)}},
		{id: "643", name: "Russia", polygons: [][][]point{sq(90)}},
		{id: "010", name: "Antarctica", polygons: [][][]point{sq(0)}},
	}
	numeric := map[string]string{"250": "FR", "196": "CY", "643": "RU", "010": "AQ"}
	continent := map[string]string{"FR": "EU", "GF": "SA", "CY": "EU", "XK": "EU", "RU": "AS", "AQ": "AN"}
	cs, err := assign(fs, numeric, continent)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		code, continent string
		polygons        int
	}{{"AQ", "AN", 1}, {"CY", "EU", 2}, {"FR", "EU", 1}, {"GF", "SA", 1}, {"RU", "AS", 1}, {"XK", "EU", 1}}
	if len(cs) != len(want) {
		t.Fatalf("got %d countries, want %d: %v", len(cs), len(want), cs)
	}
	for i, w := range want {
		if cs[i].code != w.code || cs[i].continent != w.continent || len(cs[i].polygons) != w.polygons {
			t.Errorf("country %d: got %s %s with %d polygons, want %s %s with %d",
				i, cs[i].code, cs[i].continent, len(cs[i].polygons), w.code, w.continent, w.polygons)
		}
	}
	// continentsOf applies the GeoIP2 override.
	m, err := continentsOf([]byte(`{"RU": {"continent": "AS"}, "DE": {"continent": "EU"}}`))
	if err != nil || m["RU"] != "EU" || m["DE"] != "EU" {
		t.Errorf("continentsOf: got %v, %v; want RU and DE in EU", m, err)
	}

	if _, err := assign([]feature{{id: "999", name: "Atlantis"}}, numeric, continent); err == nil {
		t.Error("a feature without an alpha-2 code: no error")
	}
	if _, err := assign([]feature{{id: "250"}}, numeric, map[string]string{"FR": "XX"}); err == nil {
		t.Error("a country in continent XX: no error")
	}
}

// TestRun generates a module from tiny inputs laid out as npm packages.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	write := func(pkg, file, body string) string {
		t.Helper()
		d := filepath.Join(dir, pkg)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "package.json"), []byte(`{"name": "`+pkg+`", "version": "1.2.3"}`), 0o644); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(d, file)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	atlas := write("world-atlas", "countries-110m.json", `{"type": "Topology",
	  "transform": {"scale": [1, 1], "translate": [-180, -90]},
	  "arcs": [[[180, 90], [20, 0], [0, 20], [-20, 0], [0, -20]], [[127, 90], [-20, 0], [0, 10], [20, 0], [0, -10]]],
	  "objects": {"countries": {"type": "GeometryCollection", "geometries": [
	    {"type": "MultiPolygon", "id": "250", "arcs": [[[0]], [[1]]], "properties": {"name": "France"}}]}}}`)
	iso := write("i18n-iso-countries", "codes.json", `[["FR", "FRA", "250", "ISO 3166-2:FR"]]`)
	cont := write("countries-list", "countries.min.json", `{"FR": {"continent": "EU"}, "GF": {"continent": "SA"}}`)
	out := filepath.Join(dir, "world.js")
	var stderr bytes.Buffer
	if err := run([]string{"-atlas", atlas, "-iso", iso, "-continents", cont, "-out", out}, &stderr); err != nil {
		t.Fatal(err, stderr.String())
	}
	js, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	paths := exportedPaths(t, string(js), "continents")
	if paths["EU"] == "" || paths["SA"] == "" || paths["AF"] != "" {
		t.Errorf("continents: got %v, want EU and SA drawn, AF empty", paths)
	}
	if c := exportedPaths(t, string(js), "countries"); len(c) != 2 || c["FR"] == "" || c["GF"] == "" {
		t.Errorf("countries: got %v, want FR and GF", c)
	}
	if !strings.Contains(string(js), "from world-atlas 1.2.3 (Natural Earth 110m") {
		t.Errorf("header does not name world-atlas 1.2.3:\n%.300s", js)
	}

	if err := run([]string{"-atlas", atlas}, &stderr); err == nil {
		t.Error("missing flags: no error")
	}
	if err := os.Remove(filepath.Join(dir, "countries-list", "package.json")); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"-atlas", atlas, "-iso", iso, "-continents", cont, "-out", out}, &stderr); err == nil {
		t.Error("an input without package.json: no error")
	}
}

// TestCommittedWorldJS checks the module the dashboard serves: its header
// names its sources, all seven continents have paths that stay inside the
// viewBox, project is exported, and it stays small.
func TestCommittedWorldJS(t *testing.T) {
	data, err := os.ReadFile(committed)
	if err != nil {
		t.Fatal(err)
	}
	js := string(data)
	if len(data) > 250_000 {
		t.Errorf("world.js is %d bytes, want < 250 KB", len(data))
	}
	header, _, _ := strings.Cut(js, "\n\n")
	for _, s := range []string{"Generated by admin/dashboard/mapgen", "world-atlas 2.0.2", "Natural Earth 110m, public domain",
		"i18n-iso-countries 7.14.0", "countries-list 3.4.1", "world.LICENSE.txt", "make worldmap", "DO NOT EDIT"} {
		if !strings.Contains(header, s) {
			t.Errorf("header does not say %q:\n%s", s, header)
		}
	}
	for _, s := range []string{"export const width = 1000, height = 487;\n", "export function project(lat, lon) {",
		"export const continents = {", "export const countries = {", "export const continentOf = {"} {
		if !strings.Contains(js, s) {
			t.Errorf("world.js lacks %q", s)
		}
	}
	paths := exportedPaths(t, js, "continents")
	for _, c := range continentCodes {
		if !strings.HasPrefix(paths[c], "M") {
			t.Errorf("continent %s has no path", c)
		}
	}
	if len(paths) != len(continentCodes) {
		t.Errorf("continents has %d keys, want %d", len(paths), len(continentCodes))
	}
	countries := exportedPaths(t, js, "countries")
	for _, c := range []string{"US", "DE", "RU", "BR", "AU", "ZA", "JP", "AQ", "GF", "XK", "FJ"} {
		if countries[c] == "" {
			t.Errorf("country %s has no path", c)
		}
	}
	for code, d := range countries {
		for _, sp := range parsePath(t, d) {
			for _, p := range sp {
				if p[0] < 0 || p[0] > 1000 || p[1] < 0 || p[1] > 487 {
					t.Fatalf("country %s: point %v outside the viewBox", code, p)
				}
			}
		}
		if strings.Count(d, "M") != strings.Count(d, "Z") {
			t.Errorf("country %s has an unclosed subpath (a ring cut by a jump across the map)", code)
		}
	}
}

// TestCommittedProjectMatchesGo: world.js's project is the text this
// generator writes for its fit, so it holds the same constants as the
// projection the paths were made with.
func TestCommittedProjectMatchesGo(t *testing.T) {
	data, err := os.ReadFile(committed)
	if err != nil {
		t.Fatal(err)
	}
	f := newFit()
	if !strings.Contains(string(data), f.js()) {
		t.Errorf("world.js's project differs from the generator's:\n%s", f.js())
	}
	for _, s := range []string{"K = " + g(f.k), "CX = " + g(f.cx), "CY = " + g(f.cy), "A1 = 1.340264", "A4 = 0.003796"} {
		if !strings.Contains(string(data), s) {
			t.Errorf("world.js lacks %q", s)
		}
	}
	// The constants as written, applied to the Go projection, give the
	// positions the paths were made with.
	m := regexp.MustCompile(`const K = (\S+), CX = (\S+), CY = (\S+);`).FindStringSubmatch(string(data))
	if m == nil {
		t.Fatal("world.js has no K, CX, CY")
	}
	var k [3]float64
	for i := range k {
		if k[i], err = strconv.ParseFloat(m[i+1], 64); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range [][2]float64{{0, 0}, {51.5, -0.1}, {-33.9, 151.2}, {64.7, 177.5}, {-85, -180}} {
		ex, ey := equalEarth(p[1]*math.Pi/180, p[0]*math.Pi/180)
		x, y := f.project(p[0], p[1])
		if !approx(k[1]+k[0]*ex, x, 1e-9) || !approx(k[2]-k[0]*ey, y, 1e-9) {
			t.Errorf("project(%v): world.js's constants give (%v, %v), the generator (%v, %v)",
				p, k[1]+k[0]*ex, k[2]-k[0]*ey, x, y)
		}
	}
}

// TestCommittedProjectNode runs world.js's project in Node, when Node is
// installed, and compares it with the Go projection.
func TestCommittedProjectNode(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	abs, err := filepath.Abs(committed)
	if err != nil {
		t.Fatal(err)
	}
	pts := [][2]float64{{0, 0}, {51.5, -0.1}, {40.7, -74}, {-33.9, 151.2}, {64.7, 177.5}, {-90, -180}, {90, 180}}
	in, err := json.Marshal(pts)
	if err != nil {
		t.Fatal(err)
	}
	script := `import { project } from ` + strconv.Quote("file://"+filepath.ToSlash(abs)) + `;
console.log(JSON.stringify(` + string(in) + `.map(([lat, lon]) => project(lat, lon))));`
	out, err := exec.Command(node, "--input-type=module", "-e", script).CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	var got [][2]float64
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("node output %q: %v", out, err)
	}
	f := newFit()
	for i, p := range pts {
		x, y := f.project(p[0], p[1])
		if !approx(got[i][0], x, 1e-9) || !approx(got[i][1], y, 1e-9) {
			t.Errorf("project(%v): JavaScript (%v, %v), Go (%v, %v)", p, got[i][0], got[i][1], x, y)
		}
	}
}

// exportedPaths reads `export const <name> = { KEY: "…", … };`.
func exportedPaths(t *testing.T, js, name string) map[string]string {
	t.Helper()
	_, rest, ok := strings.Cut(js, "export const "+name+" = {\n")
	if !ok {
		t.Fatalf("no export %s", name)
	}
	body, _, _ := strings.Cut(rest, "\n};")
	m := map[string]string{}
	for _, line := range strings.Split(body, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ": ")
		if !ok {
			t.Fatalf("%s: bad line %.80q", name, line)
		}
		s, err := strconv.Unquote(strings.TrimSuffix(v, ","))
		if err != nil {
			t.Fatalf("%s.%s: %v", name, k, err)
		}
		m[k] = s
	}
	return m
}

var pathToken = regexp.MustCompile(`[MlZ]|-?[0-9]+(?:\.[0-9])?`)

// parsePath resolves the path data mapgen writes (M x,y l dx,dy … Z) into
// absolute positions, one slice per subpath.
func parsePath(t *testing.T, d string) [][][2]float64 {
	t.Helper()
	var out [][][2]float64
	var cmd string
	var nums []float64
	var cur [2]float64
	for _, tok := range pathToken.FindAllString(d, -1) {
		switch tok {
		case "M", "l", "Z":
			cmd = tok
			if tok == "M" {
				out = append(out, nil)
			}
			continue
		}
		v, err := strconv.ParseFloat(tok, 64)
		if err != nil {
			t.Fatalf("path %.60q: %v", d, err)
		}
		if nums = append(nums, v); len(nums) < 2 {
			continue
		}
		switch cmd {
		case "M":
			cur = [2]float64{nums[0], nums[1]}
		case "l":
			cur = [2]float64{math.Round((cur[0]+nums[0])*10) / 10, math.Round((cur[1]+nums[1])*10) / 10}
		default:
			t.Fatalf("path %.60q: numbers after %q", d, cmd)
		}
		out[len(out)-1] = append(out[len(out)-1], cur)
		nums = nums[:0]
	}
	return out
}

func equalPoints(a, b []point) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !approx(a[i].lon, b[i].lon, 1e-9) || !approx(a[i].lat, b[i].lat, 1e-9) {
			return false
		}
	}
	return true
}
