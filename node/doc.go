// Package node is the composition root of one Meridian node: it reads the
// node config, loads the GeoIP database and zones into a zones.Store,
// starts the DNS server and the prober, folds probe verdicts into member
// health (a burst of flips makes one publish), and reloads on request or
// when files change, compiling outside every lock a health change needs.
// In-process multi-node tests start nodes through it.
//
// Import level 4: node may import every other Meridian package.
package node
