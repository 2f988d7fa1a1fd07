// Package node is the composition root of one Meridian node: it reads the
// node config, loads the GeoIP database and zones into a zones.Store,
// starts the DNS server and the prober, folds probe verdicts into member
// health (a burst of flips makes one publish), and reloads on request or
// when files change, compiling outside every lock a health change needs.
// It joins the gossip cluster (cluster.go), serves the admin API through an
// adapter (admin.go: status, overrides with safety rails and previews;
// status.go; overrides.go keeps a lone node's overrides), reports what
// changed as events and audit lines (events.go), exports the snapshot's
// counters (collector.go), and builds the DNS protections from [dns]
// (hardening.go). In-process multi-node tests start nodes through it.
//
// Import level 4: node may import every other Meridian package.
package node
