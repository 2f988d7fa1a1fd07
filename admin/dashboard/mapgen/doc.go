// Command mapgen writes the admin dashboard's world map,
// admin/dashboard/assets/world.js: an ES module with the SVG path data of
// every continent and country, and the projection that places region
// markers on it. It runs once, by hand (make worldmap), from three pinned
// npm packages; its output is committed with its licenses, so neither the
// build nor the tests need npm.
//
//	mapgen -atlas world-atlas/countries-110m.json \
//	       -iso i18n-iso-countries/codes.json \
//	       -continents countries-list/countries.min.json \
//	       -out admin/dashboard/assets/world.js
//
// It decodes the TopoJSON itself (topojson.go), maps each country to its
// alpha-2 code and GeoIP2 continent (continents.go), cuts rings that cross
// the antimeridian (antimeridian.go), projects with Equal Earth fitted to a
// 1000-wide viewBox (equalearth.go) and writes the module (emit.go). The same inputs always give the same bytes.
//
// It imports only the standard library and nothing of Meridian.
package main
