// Package zones is Meridian's model of what to answer.
//
// It turns zone-policy TOML files into a validated Config (every error
// carries file:line:col), holds the health vocabulary (Observation,
// HealthView, Override), and compiles a Config plus the current health and
// overrides into an immutable Snapshot. A Snapshot answers a question for a
// client address with no locks, no I/O and no allocation on the common path:
// each pool's decision (which region answers which part of the address
// space) is compiled ahead of time into a geo.Map, so a query is one binary
// search. Store is the single writer that recompiles and publishes snapshots
// through an atomic pointer.
//
// Import level 1: zones imports geo, miekg/dns and BurntSushi/toml, and is
// imported by dnsserver, probes, gossip, admin and node.
package zones
