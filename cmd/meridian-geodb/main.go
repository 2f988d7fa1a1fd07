// Command meridian-geodb is a small development tool: it reads a CSV of
// networks and writes a MaxMind-format database, so that tests and the demo
// need no downloaded GeoIP database.
//
//	meridian-geodb -type City|Country -in deploy/demo/geoip.csv -out deploy/demo/demo-city.mmdb
//
// The CSV header is prefix,continent,country,subdivision,city,lat,lon
// (optionally followed by asn); see package geo/mmdbgen. The same CSV always
// gives the same bytes.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/meridian-gtm/meridian/geo/mmdbgen"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "meridian-geodb:", err)
		}
		os.Exit(2)
	}
}

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("meridian-geodb", flag.ContinueOnError)
	fs.SetOutput(stderr)
	typ := fs.String("type", "City", "database type: City or Country")
	in := fs.String("in", "", "CSV of networks to read (required)")
	out := fs.String("out", "", "database file to write (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *in == "" || *out == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("need -in and -out, and no other arguments")
	}
	var dbType string
	switch *typ {
	case "City", mmdbgen.City:
		dbType = mmdbgen.City
	case "Country", mmdbgen.Country:
		dbType = mmdbgen.Country
	default:
		return fmt.Errorf("-type %q: want City or Country", *typ)
	}

	f, err := os.Open(*in)
	if err != nil {
		return fmt.Errorf("read networks: %w", err)
	}
	nets, err := mmdbgen.ReadCSV(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("read %s: %w", *in, err)
	}
	var buf bytes.Buffer
	if err := mmdbgen.Write(&buf, dbType, nets); err != nil {
		return fmt.Errorf("build database: %w", err)
	}
	return writeAtomic(*out, buf.Bytes())
}

// writeAtomic replaces path in one rename, so a server reading the database
// never sees half a file.
func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write database: %w", err)
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write database: %w", err)
	}
	return nil
}
