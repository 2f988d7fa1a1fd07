package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemoDatabaseUpToDate regenerates the committed demo database from its
// CSV and requires the same bytes: edit the CSV, rerun the tool.
func TestDemoDatabaseUpToDate(t *testing.T) {
	out := filepath.Join(t.TempDir(), "demo-city.mmdb")
	if err := run([]string{"-type", "City", "-in", "../../deploy/demo/geoip.csv", "-out", out}, os.Stderr); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../../deploy/demo/demo-city.mmdb")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("deploy/demo/demo-city.mmdb is stale; regenerate it:\n" +
			"go run ./cmd/meridian-geodb -type City -in deploy/demo/geoip.csv -out deploy/demo/demo-city.mmdb")
	}
}

func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	csv := filepath.Join(dir, "in.csv")
	if err := os.WriteFile(csv, []byte("prefix,continent,country,subdivision,city,lat,lon\nnot-a-prefix,,,,,,\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.mmdb")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no flags", nil, "need -in and -out"},
		{"bad type", []string{"-type", "ASN", "-in", csv, "-out", out}, `-type "ASN"`},
		{"missing input", []string{"-in", filepath.Join(dir, "missing.csv"), "-out", out}, "no such file"},
		{"bad row", []string{"-in", csv, "-out", out}, "line 2"},
		{"bad output dir", []string{"-in", "../../deploy/demo/geoip.csv", "-out", filepath.Join(dir, "nope", "x.mmdb")}, "write database"},
	} {
		err := run(tc.args, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: run error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a failed run left %s behind", out)
	}
}

func TestRunCountry(t *testing.T) {
	out := filepath.Join(t.TempDir(), "country.mmdb")
	if err := run([]string{"-type", "Country", "-in", "../../deploy/demo/geoip.csv", "-out", out}, os.Stderr); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(out); err != nil || !bytes.Contains(data, []byte("GeoIP2-Country")) {
		t.Errorf("country database: %v", err)
	}
}
