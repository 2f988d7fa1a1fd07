// Command meridian-geodb is a small development tool: it reads a CSV of
// networks and writes a MaxMind-format database, so that tests and the demo
// need no downloaded GeoIP database.
//
//	meridian-geodb -type City|Country -in deploy/demo/geoip.csv -out deploy/demo/demo-city.mmdb
//
// The CSV header is prefix,continent,country,subdivision,city,lat,lon
// (optionally followed by asn); see package geo/mmdbgen. The same CSV always
// gives the same bytes.
//
// With -synth it instead writes a synthetic City database shaped like
// GeoLite2-City (see mmdbgen.Synth), for scale tests and benchmarks; the
// same flags always give the same bytes. At full GeoLite2 size:
//
//	meridian-geodb -synth -v4 3000000 -v6 1000000 -locations 120000 -seed 1 -out synth-city.mmdb
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

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
	in := fs.String("in", "", "CSV of networks to read (required unless -synth)")
	out := fs.String("out", "", "database file to write (required)")
	synth := fs.Bool("synth", false, "write a synthetic GeoLite2-City-shaped database instead of reading -in")
	v4 := fs.Int("v4", 225000, "with -synth: IPv4 networks")
	v6 := fs.Int("v6", 75000, "with -synth: IPv6 networks")
	locations := fs.Int("locations", 30000, "with -synth: distinct locations")
	seed := fs.Uint64("seed", 1, "with -synth: random seed")
	verbose := fs.Bool("v", false, "with -synth: log what was written and how long it took")
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *synth {
		if *out == "" || *in != "" || set["type"] || fs.NArg() > 0 {
			fs.Usage()
			return errors.New("-synth needs -out, and no -in, -type or other arguments")
		}
		opts := mmdbgen.SynthOptions{V4: *v4, V6: *v6, Locations: *locations, Seed: *seed}
		start := time.Now()
		if err := writeAtomic(*out, func(w io.Writer) error { return mmdbgen.WriteSynth(w, opts) }); err != nil {
			return err
		}
		if *verbose {
			size := int64(-1)
			if fi, err := os.Stat(*out); err == nil {
				size = fi.Size()
			}
			slog.New(slog.NewTextHandler(stderr, nil)).Info("wrote synthetic database",
				"path", *out, "v4", opts.V4, "v6", opts.V6, "locations", opts.Locations, "seed", opts.Seed,
				"bytes", size, "seconds", time.Since(start).Seconds())
		}
		return nil
	}
	for _, name := range []string{"v4", "v6", "locations", "seed", "v"} {
		if set[name] {
			return fmt.Errorf("-%s needs -synth", name)
		}
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
	// Built in memory first, so that a bad network leaves no file behind.
	var buf bytes.Buffer
	if err := mmdbgen.Write(&buf, dbType, nets); err != nil {
		return fmt.Errorf("build database: %w", err)
	}
	return writeAtomic(*out, func(w io.Writer) error {
		if _, err := w.Write(buf.Bytes()); err != nil {
			return fmt.Errorf("write database: %w", err)
		}
		return nil
	})
}

// writeAtomic replaces path in one rename, so a server reading the database
// never sees half a file. write fills the new file; its errors are returned
// as they are, and leave no file behind.
func writeAtomic(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write database: %w", err)
	}
	err = write(tmp)
	if cerr := tmp.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("write database: %w", cerr)
	}
	if err == nil {
		if err = os.Chmod(tmp.Name(), 0o644); err != nil {
			err = fmt.Errorf("write database: %w", err)
		}
	}
	if err == nil {
		if err = os.Rename(tmp.Name(), path); err != nil {
			err = fmt.Errorf("write database: %w", err)
		}
	}
	if err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}
