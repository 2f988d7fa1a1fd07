package mmdbgen

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Database types Write accepts: the names GeoIP2 readers recognise.
const (
	City    = "GeoIP2-City"
	Country = "GeoIP2-Country"
)

// BuildEpoch is the build_epoch written into every database
// (2025-01-01T00:00:00Z): fixed, so that output is reproducible.
const BuildEpoch = 1735689600

// ErrType means Write was asked for a database type it cannot write.
var ErrType = errors.New("unsupported database type")

// Network is one row of a database: the prefix and what a GeoIP2 record
// says about it. Empty fields are left out of the record.
type Network struct {
	Prefix                                netip.Prefix
	Continent, Country, Subdivision, City string
	Lat, Lon                              float64
	HasCoords                             bool // write Lat/Lon (City databases only)
	ASN                                   uint32
}

// Write writes a database of type City ("GeoIP2-City") or Country
// ("GeoIP2-Country": no city, location or subdivisions) holding nets. It
// has an IPv6 tree with IPv4 in the IPv4 subtree (::/96) and the usual IPv4
// aliases (::ffff:0:0/96, 2001::/32, 2002::/16). Reserved networks, such as
// the documentation prefixes, are allowed. Where networks overlap, later
// ones win.
func Write(w io.Writer, dbType string, nets []Network) error {
	var city bool
	switch dbType {
	case City:
		city = true
	case Country:
	default:
		return fmt.Errorf("%w %q (want %q or %q)", ErrType, dbType, City, Country)
	}
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType: dbType,
		Description:  map[string]string{"en": "Meridian generated " + dbType + " database"},
		Languages:    []string{"en"},
		BuildEpoch:   BuildEpoch,
		IPVersion:    6,
		RecordSize:   28,
		// The demo and the tests live in documentation and shared address
		// space (192.0.2.0/24, 2001:db8::/32, 100.64.0.0/10), which
		// mmdbwriter refuses by default.
		IncludeReservedNetworks: true,
		DisableIPv4Aliasing:     false,
	})
	if err != nil {
		return fmt.Errorf("new tree: %w", err)
	}
	for i, n := range nets {
		p := n.Prefix
		if !p.IsValid() {
			return fmt.Errorf("network %d: invalid prefix", i)
		}
		// An IPv4-mapped prefix means the IPv4 network; inserting it as
		// IPv6 would collide with the ::ffff:0:0/96 alias.
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		if p != p.Masked() {
			return fmt.Errorf("network %d: %s has host bits set (want %s)", i, p, p.Masked())
		}
		ipnet := &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
		if err := tree.Insert(ipnet, record(n, city)); err != nil {
			return fmt.Errorf("insert %s: %w", p, err)
		}
	}
	if _, err := tree.WriteTo(w); err != nil {
		return fmt.Errorf("write database: %w", err)
	}
	return nil
}

// record builds the GeoIP2 record for n, in the GeoIP2 City/Country schema.
func record(n Network, city bool) mmdbtype.Map {
	rec := mmdbtype.Map{}
	if n.Continent != "" {
		rec["continent"] = mmdbtype.Map{"code": mmdbtype.String(n.Continent)}
	}
	if n.Country != "" {
		rec["country"] = mmdbtype.Map{"iso_code": mmdbtype.String(n.Country)}
	}
	if n.ASN != 0 {
		rec["autonomous_system_number"] = mmdbtype.Uint32(n.ASN)
	}
	if !city {
		return rec
	}
	if n.Subdivision != "" {
		rec["subdivisions"] = mmdbtype.Slice{mmdbtype.Map{"iso_code": mmdbtype.String(n.Subdivision)}}
	}
	if n.City != "" {
		rec["city"] = mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(n.City)}}
	}
	if n.HasCoords {
		rec["location"] = mmdbtype.Map{
			"latitude":  mmdbtype.Float64(n.Lat),
			"longitude": mmdbtype.Float64(n.Lon),
		}
	}
	return rec
}
