// Package mmdbgen writes small MaxMind-format (GeoIP2 City or Country)
// databases from a list of networks, for tests and for the demo deployment,
// so that nothing in the repository depends on a downloaded database.
//
// It is tooling beside level 0 of Meridian's import order (see DESIGN.md):
// it imports only the standard library and mmdbwriter, and only tests,
// cmd/meridian-geodb and other tooling import it — never the server.
//
// Synth and WriteSynth make GeoLite2-City-shaped synthetic databases of any
// size (up to millions of networks, clustered by registry, country and
// city as real ones are), for tests at realistic scale and for
// `make bench-scale`; WriteSynth writes the format itself, because
// mmdbwriter needs minutes and gigabytes at full GeoLite2 size.
//
// Output is reproducible: the same networks always give the same bytes
// (the build epoch is fixed and mmdbwriter writes maps in key order), so a
// committed database can be checked against the CSV it came from.
package mmdbgen
