package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "mapgen:", err)
		os.Exit(1)
	}
}

// run parses the flags, reads the three inputs and writes the module.
func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("mapgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	atlasPath := fs.String("atlas", "", "world-atlas countries-110m.json")
	isoPath := fs.String("iso", "", "i18n-iso-countries codes.json")
	contPath := fs.String("continents", "", "countries-list countries.min.json")
	out := fs.String("out", "", "the module to write, e.g. admin/dashboard/assets/world.js")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *atlasPath == "" || *isoPath == "" || *contPath == "" || *out == "" {
		return errors.New("flags: -atlas, -iso, -continents and -out are required")
	}

	var srcs [3]source
	var data [3][]byte
	for i, p := range []string{*atlasPath, *isoPath, *contPath} {
		var err error
		if data[i], err = os.ReadFile(p); err != nil {
			return fmt.Errorf("read input: %w", err)
		}
		if srcs[i], err = packageOf(p); err != nil {
			return err
		}
	}
	feats, err := features(data[0], "countries")
	if err != nil {
		return fmt.Errorf("atlas %s: %w", *atlasPath, err)
	}
	numeric, err := isoNumeric(data[1])
	if err != nil {
		return err
	}
	continent, err := continentsOf(data[2])
	if err != nil {
		return err
	}
	cs, err := assign(feats, numeric, continent)
	if err != nil {
		return err
	}
	js := module(newFit(), cs, srcs[0], srcs[1], srcs[2])
	if err := os.WriteFile(*out, []byte(js), 0o644); err != nil {
		return fmt.Errorf("write module: %w", err)
	}
	fmt.Fprintf(stderr, "mapgen: wrote %s (%d bytes, %d countries)\n", *out, len(js), len(cs))
	return nil
}

// packageOf names the npm package an input file sits at the root of, from
// the package.json beside it, so that the header of world.js names the
// exact versions it was made from.
func packageOf(path string) (source, error) {
	pj := filepath.Join(filepath.Dir(path), "package.json")
	data, err := os.ReadFile(pj)
	if err != nil {
		return source{}, fmt.Errorf("read package of %s: %w", path, err)
	}
	var p struct{ Name, Version string }
	if err := json.Unmarshal(data, &p); err != nil {
		return source{}, fmt.Errorf("decode %s: %w", pj, err)
	}
	if p.Name == "" || p.Version == "" {
		return source{}, fmt.Errorf("decode %s: no name or version", pj)
	}
	return source{p.Name, p.Version}, nil
}
