// Package node is the composition root of one Meridian node: it reads the
// node config, loads the GeoIP database and zones into a zones.Store,
// starts the DNS server, and reloads on request or when files change.
// In-process multi-node tests start nodes through it.
//
// Import level 4: node may import every other Meridian package.
package node
