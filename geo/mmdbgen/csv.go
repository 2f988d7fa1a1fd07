package mmdbgen

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"strconv"
	"strings"
)

// csvHeader is the header ReadCSV expects; an "asn" column may follow.
var csvHeader = []string{"prefix", "continent", "country", "subdivision", "city", "lat", "lon"}

// ErrCSV means a CSV row (or the header) is malformed; the error names the
// line.
var ErrCSV = errors.New("bad network CSV")

// ReadCSV reads networks from CSV with the header
//
//	prefix,continent,country,subdivision,city,lat,lon
//
// optionally followed by an asn column. lat and lon are both set or both
// empty; lines starting with '#' are comments. Errors name the line.
func ReadCSV(r io.Reader) ([]Network, error) {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.FieldsPerRecord = -1 // checked here, so the error can say what is wrong
	cr.TrimLeadingSpace = true

	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: no header", ErrCSV)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCSV, err)
	}
	line, _ := cr.FieldPos(0)
	if !headerMatches(header) {
		return nil, fmt.Errorf("%w: line %d: header %q, want %q (optionally followed by asn)",
			ErrCSV, line, strings.Join(header, ","), strings.Join(csvHeader, ","))
	}

	var nets []Network
	for {
		row, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nets, nil
		}
		if err != nil {
			// csv.ParseError already names the line.
			return nil, fmt.Errorf("%w: %w", ErrCSV, err)
		}
		line, _ := cr.FieldPos(0)
		if len(row) != len(header) {
			return nil, fmt.Errorf("%w: line %d: %d fields, want %d", ErrCSV, line, len(row), len(header))
		}
		n, err := parseRow(row)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", ErrCSV, line, err)
		}
		nets = append(nets, n)
	}
}

func headerMatches(header []string) bool {
	switch {
	case len(header) == len(csvHeader):
	case len(header) == len(csvHeader)+1 && strings.TrimSpace(header[len(csvHeader)]) == "asn":
	default:
		return false
	}
	for i, want := range csvHeader {
		if strings.TrimSpace(header[i]) != want {
			return false
		}
	}
	return true
}

func isContinent(s string) bool {
	switch s {
	case "AF", "AN", "AS", "EU", "NA", "OC", "SA":
		return true
	}
	return false
}

func parseRow(row []string) (Network, error) {
	for i := range row {
		row[i] = strings.TrimSpace(row[i])
	}
	p, err := netip.ParsePrefix(row[0])
	if err != nil {
		return Network{}, fmt.Errorf("prefix: %w", err)
	}
	if p != p.Masked() {
		return Network{}, fmt.Errorf("prefix %s has host bits set (want %s)", p, p.Masked())
	}
	n := Network{Prefix: p, Continent: row[1], Country: row[2], Subdivision: row[3], City: row[4]}
	if n.Continent != "" && !isContinent(n.Continent) {
		return Network{}, fmt.Errorf("continent %q is not one of AF AN AS EU NA OC SA", n.Continent)
	}
	if n.Country != "" && !isAlpha2(n.Country) {
		return Network{}, fmt.Errorf("country %q is not an upper-case ISO 3166-1 alpha-2 code", n.Country)
	}
	switch lat, lon := row[5], row[6]; {
	case lat == "" && lon == "":
	case lat == "" || lon == "":
		return Network{}, errors.New("lat and lon must both be set or both be empty")
	default:
		if n.Lat, err = parseCoord(lat, 90); err != nil {
			return Network{}, fmt.Errorf("lat: %w", err)
		}
		if n.Lon, err = parseCoord(lon, 180); err != nil {
			return Network{}, fmt.Errorf("lon: %w", err)
		}
		n.HasCoords = true
	}
	if len(row) > len(csvHeader) && row[len(csvHeader)] != "" {
		asn, err := strconv.ParseUint(row[len(csvHeader)], 10, 32)
		if err != nil {
			return Network{}, fmt.Errorf("asn: %w", err)
		}
		n.ASN = uint32(asn)
	}
	return n, nil
}

func parseCoord(s string, limit float64) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, err
	}
	if math.IsNaN(v) || math.Abs(v) > limit {
		return 0, fmt.Errorf("%s is outside [-%g, %g]", s, limit, limit)
	}
	return v, nil
}

func isAlpha2(s string) bool {
	return len(s) == 2 && 'A' <= s[0] && s[0] <= 'Z' && 'A' <= s[1] && s[1] <= 'Z'
}
