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

func TestRunSynth(t *testing.T) {
	dir := t.TempDir()
	args := func(out string, extra ...string) []string {
		return append([]string{"-synth", "-v4", "2000", "-v6", "500", "-locations", "200", "-seed", "3", "-out", out}, extra...)
	}
	a, b := filepath.Join(dir, "a.mmdb"), filepath.Join(dir, "b.mmdb")
	var log bytes.Buffer
	if err := run(args(a, "-v"), &log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "wrote synthetic database") || !strings.Contains(log.String(), "v4=2000") {
		t.Errorf("-v logged %q", log.String())
	}
	if err := run(args(b), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	da, errA := os.ReadFile(a)
	db, errB := os.ReadFile(b)
	if errA != nil || errB != nil || !bytes.Equal(da, db) || !bytes.Contains(da, []byte("GeoIP2-City")) {
		t.Errorf("two runs with the same flags: %v, %v, equal %v", errA, errB, bytes.Equal(da, db))
	}
}

func TestRunSynthErrors(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.mmdb")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no out", []string{"-synth"}, "-synth needs -out"},
		{"with in", []string{"-synth", "-in", "x.csv", "-out", out}, "no -in"},
		{"with type", []string{"-synth", "-type", "Country", "-out", out}, "-type"},
		{"v4 without synth", []string{"-v4", "10", "-in", "x.csv", "-out", out}, "-v4 needs -synth"},
		{"one location", []string{"-synth", "-locations", "1", "-out", out}, "cannot synthesize"},
		{"bad output dir", []string{"-synth", "-v4", "10", "-v6", "0", "-out", filepath.Join(dir, "nope", "x.mmdb")}, "write database"},
	} {
		err := run(tc.args, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: run error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("failed runs left %v behind", entries)
	}
}
