// Package zones is Meridian's model of what to answer.
//
// It turns zone-policy TOML files into a validated Config (every error
// carries file:line:col), holds the health vocabulary (Observation,
// HealthView, Override), and compiles a Config plus the current health and
// overrides into an immutable Snapshot. A Snapshot answers a question for a
// client address with no locks, no I/O and no allocation on the common path.
//
// Compiling has two steps. Build, once per config or GeoIP load, ranks every
// GeoIP location for every pool shape into a ranking class (a Base). apply,
// on every health or override change, decides each class's answer per pool:
// microseconds per pool, whatever the size of the GeoIP table. A query is
// then one binary search, in a per-pool map merged by answer (the widest ECS
// scope) or, until the Store has built that map in the background, in the
// GeoIP table itself (a correct, narrower scope). Store is the single writer
// that applies changes and publishes snapshots through an atomic pointer.
//
// Import level 1: zones imports geo, miekg/dns and BurntSushi/toml, and is
// imported by dnsserver, probes, gossip, admin and node.
package zones
