package main

import (
	"encoding/json"
	"errors"
	"fmt"
)

// topology is the part of a TopoJSON document mapgen reads
// (https://github.com/topojson/topojson-specification).
type topology struct {
	Type      string                `json:"type"`
	Transform *transform            `json:"transform"`
	Arcs      [][][2]float64        `json:"arcs"`
	Objects   map[string]collection `json:"objects"`
}

// transform is the quantization transform: a quantized arc's positions are
// delta-encoded integers, position = integer·scale + translate.
type transform struct {
	Scale     [2]float64 `json:"scale"`
	Translate [2]float64 `json:"translate"`
}

type collection struct {
	Type       string     `json:"type"`
	Geometries []geometry `json:"geometries"`
}

// geometry is a Polygon (Arcs is [][]int: rings of arc indices) or a
// MultiPolygon ([][][]int); other types carry no area and are skipped.
type geometry struct {
	Type       string          `json:"type"`
	ID         string          `json:"id"`
	Arcs       json.RawMessage `json:"arcs"`
	Properties struct {
		Name string `json:"name"`
	} `json:"properties"`
}

// point is a longitude and latitude in degrees.
type point struct{ lon, lat float64 }

// feature is one geometry decoded into polygons of rings of points; the
// first ring of a polygon is its exterior, the others its holes.
type feature struct {
	id, name string
	polygons [][][]point
}

var errTopology = errors.New("bad topojson")

// decodeArcs returns every arc as absolute positions: undoing the delta
// encoding and the quantization when the topology has a transform.
func decodeArcs(t *topology) [][]point {
	out := make([][]point, len(t.Arcs))
	for i, arc := range t.Arcs {
		pts := make([]point, len(arc))
		var x, y float64
		for j, p := range arc {
			if t.Transform == nil {
				pts[j] = point{p[0], p[1]}
				continue
			}
			x += p[0]
			y += p[1]
			pts[j] = point{
				x*t.Transform.Scale[0] + t.Transform.Translate[0],
				y*t.Transform.Scale[1] + t.Transform.Translate[1],
			}
		}
		out[i] = pts
	}
	return out
}

// ring joins arcs into one ring. A negative index ^i (−i−1) is arc i
// reversed; each arc after the first starts where the previous ended, so
// its first point is dropped.
func ring(arcs [][]point, idx []int) ([]point, error) {
	var out []point
	for _, a := range idx {
		rev := a < 0
		if rev {
			a = ^a
		}
		if a >= len(arcs) {
			return nil, fmt.Errorf("%w: arc %d of %d", errTopology, a, len(arcs))
		}
		arc := arcs[a]
		for k := range arc {
			p := arc[k]
			if rev {
				p = arc[len(arc)-1-k]
			}
			if k == 0 && len(out) > 0 {
				continue
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// features decodes the named GeometryCollection of a TopoJSON document.
func features(data []byte, object string) ([]feature, error) {
	var t topology
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, fmt.Errorf("decode topology: %w", err)
	}
	if t.Type != "Topology" {
		return nil, fmt.Errorf("%w: type %q, want Topology", errTopology, t.Type)
	}
	obj, ok := t.Objects[object]
	if !ok {
		return nil, fmt.Errorf("%w: no object %q", errTopology, object)
	}
	arcs := decodeArcs(&t)
	var out []feature
	for _, g := range obj.Geometries {
		var polys [][][]int
		switch g.Type {
		case "Polygon":
			var p [][]int
			if err := json.Unmarshal(g.Arcs, &p); err != nil {
				return nil, fmt.Errorf("decode %s %q: %w", g.Type, g.Properties.Name, err)
			}
			polys = [][][]int{p}
		case "MultiPolygon":
			if err := json.Unmarshal(g.Arcs, &polys); err != nil {
				return nil, fmt.Errorf("decode %s %q: %w", g.Type, g.Properties.Name, err)
			}
		default:
			continue
		}
		f := feature{id: g.ID, name: g.Properties.Name}
		for _, p := range polys {
			var rings [][]point
			for _, idx := range p {
				r, err := ring(arcs, idx)
				if err != nil {
					return nil, fmt.Errorf("feature %q: %w", g.Properties.Name, err)
				}
				rings = append(rings, r)
			}
			f.polygons = append(f.polygons, rings)
		}
		out = append(out, f)
	}
	return out, nil
}
