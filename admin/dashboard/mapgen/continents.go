package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// continentCodes are GeoIP2's continent codes, which countries-list uses too.
var continentCodes = []string{"AF", "AN", "AS", "EU", "NA", "OC", "SA"}

// unnamedFeatures gives the alpha-2 code of the Natural Earth features
// that have no ISO 3166 numeric id in world-atlas. Kosovo has no ISO code;
// XK is the user-assigned code GeoIP2 and countries-list use for it.
// Northern Cyprus and Somaliland are not recognised states: GeoIP
// databases place them in Cyprus and Somalia, and so does the map.
var unnamedFeatures = map[string]string{
	"Kosovo":     "XK",
	"N. Cyprus":  "CY",
	"Somaliland": "SO",
}

// continentOverrides are the countries whose GeoIP2 continent (MaxMind's,
// from GeoNames) differs from countries-list's: the dashboard shades a
// country by the region that answers the continent GeoIP reports for its
// clients. countries-list 3.4.1 puts Russia in AS; GeoIP2 says EU, as
// does geo/mmdbgen's table. That table's 130 countries agree with
// countries-list otherwise.
var continentOverrides = map[string]string{
	"RU": "EU",
}

// split moves the polygons of one country that lie west of a longitude to
// another code: Natural Earth draws French Guiana (GF, in SA for GeoIP) as
// part of France's MultiPolygon.
type split struct {
	from, to string
	westOf   float64 // longitude of the polygon's first point
}

var splits = []split{{from: "FR", to: "GF", westOf: -30}}

// isoNumeric maps ISO 3166 numeric codes ("004") to alpha-2 ("AF") from
// i18n-iso-countries' codes.json: rows of [alpha-2, alpha-3, numeric, ...].
func isoNumeric(data []byte) (map[string]string, error) {
	var rows [][]string
	if err := json.Unmarshal(data, &rows); err != nil {
		return nil, fmt.Errorf("decode iso codes: %w", err)
	}
	m := make(map[string]string, len(rows))
	for i, r := range rows {
		if len(r) < 3 {
			return nil, fmt.Errorf("decode iso codes: row %d has %d fields, want ≥3", i, len(r))
		}
		m[r[2]] = r[0]
	}
	return m, nil
}

// continentsOf maps alpha-2 codes to continent codes from countries-list's
// countries.min.json, with continentOverrides applied.
func continentsOf(data []byte) (map[string]string, error) {
	var countries map[string]struct {
		Continent string `json:"continent"`
	}
	if err := json.Unmarshal(data, &countries); err != nil {
		return nil, fmt.Errorf("decode continents: %w", err)
	}
	m := make(map[string]string, len(countries))
	for code, c := range countries {
		m[code] = c.Continent
	}
	for code, c := range continentOverrides {
		m[code] = c
	}
	return m, nil
}

// country is the geometry of one alpha-2 code and its continent.
type country struct {
	code, continent string
	polygons        [][][]point
}

// assign gives every feature its alpha-2 code and continent, merges
// features with the same code, applies splits, and returns the countries
// sorted by code. A feature it cannot place is an error: the tables above
// must name it.
func assign(fs []feature, numeric, continent map[string]string) ([]country, error) {
	byCode := map[string]*country{}
	add := func(code string, polys [][][]point) error {
		c, ok := byCode[code]
		if !ok {
			cont := continent[code]
			if !validContinent(cont) {
				return fmt.Errorf("assign: country %s has continent %q", code, cont)
			}
			c = &country{code: code, continent: cont}
			byCode[code] = c
		}
		c.polygons = append(c.polygons, polys...)
		return nil
	}
	for _, f := range fs {
		code, ok := numeric[f.id]
		if f.id == "" {
			code, ok = unnamedFeatures[f.name]
		}
		if !ok {
			return nil, fmt.Errorf("assign: feature %q (id %q) has no alpha-2 code", f.name, f.id)
		}
		var rest [][][]point
		moved := map[string][][][]point{}
		for _, p := range f.polygons {
			to := code
			for _, s := range splits {
				if s.from == code && len(p) > 0 && len(p[0]) > 0 && p[0][0].lon < s.westOf {
					to = s.to
				}
			}
			if to == code {
				rest = append(rest, p)
			} else {
				moved[to] = append(moved[to], p)
			}
		}
		if err := add(code, rest); err != nil {
			return nil, err
		}
		for _, s := range splits { // in table order: the same bytes every run
			if polys, ok := moved[s.to]; ok {
				if err := add(s.to, polys); err != nil {
					return nil, err
				}
				delete(moved, s.to)
			}
		}
	}
	out := make([]country, 0, len(byCode))
	for _, c := range byCode {
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b country) int { return strings.Compare(a.code, b.code) })
	return out, nil
}

func validContinent(c string) bool { return slices.Contains(continentCodes, c) }
