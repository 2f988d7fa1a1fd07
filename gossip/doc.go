// Package gossip makes Meridian nodes one cluster: membership over
// hashicorp/memberlist, and a replicated state that every node holds a copy
// of — each observer's verdicts on the targets it probes, and the operators'
// overrides — from which each node folds the same health view.
//
// # Membership
//
// New starts memberlist (the LAN or WAN profile) listening on Config.Bind;
// Join contacts the seeds; Run re-joins them every RejoinInterval while any
// seed, or any member known dead, is not a live member, because memberlist
// forgets a dead node after its dead-node gossip time and two sides of a
// longer partition would otherwise never meet again. Each node announces
// its region, build version and zone config hash as memberlist metadata;
// Status.ConfigAgreement says whether every live member announces ours,
// and a disagreement that outlasts AgreementGrace is logged once and shown
// by meridian_gossip_config_agreement.
//
// # What is replicated
//
// Verdict entries, keyed by (origin node, target ID): the origin's
// rise/fall verdict (state, pending, reason, since, checked) and a version.
// Only the origin writes its entries (SetLocalVerdicts), only when a verdict
// changes — never per probe — and a newer version replaces an older one.
// Between changes, the origin vouches for all of its entries with one
// heartbeat every MaxAge/4 (a hash of its entries' versions): that keeps
// them fresh at a cost per node, not per target (see table).
//
// Override entries, keyed by OverrideKey, last-writer-wins by (version,
// writer name). Clearing writes a tombstone, kept for TombstoneTTL, so that
// a late or replayed copy of the cleared override loses to it. An override
// may expire (zones.Override.Expires): each node then leaves it out of
// Overrides by its own clock, with no message, and Run calls OnChange at
// that moment (a timer set for the earliest expiry); the entry stays like
// a tombstone, beating older copies, and is collected TombstoneTTL after
// it expired.
//
// Versions are hybrid logical clock readings (hlc.go): wall-clock
// milliseconds and a counter, advanced past every version a node receives,
// so a write is newer than everything its writer had seen, and "newer"
// still means later in real time across nodes.
//
// Entries spread by broadcast (memberlist's TransmitLimitedQueue; a newer
// message for a key replaces the queued older one, and each node that
// learns something passes it on) and, because broadcasts are lossy, the
// whole state travels in memberlist's periodic push/pull. Every message is
// in a versioned binary codec (codec.go), bounded in size and count, and
// fuzzed.
//
// # The health view
//
// Verdicts is Quorum over the live members' fresh verdicts: a target is down
// when a share (by default a majority) of its fresh observers say so. A
// node that sees every target down while its peers do not distrusts itself
// and its votes are left out; a node that reaches fewer than half of the
// members it knows is isolated and serves the last view it agreed on,
// frozen, until it is reconnected. Both are in Status, the metrics and the
// log. Observations shows the verdicts behind the view, each observer's
// with whether it votes (Quorum's own choice, not a copy of its rules).
//
// # Persistence
//
// With a StateDir, the state (overrides and tombstones, verdict entries,
// members, clock) is written to StateDir/state.json atomically (temporary
// file, fsync, rename, fsync of the directory): at once and before
// SetOverride returns for an override, debounced for the rest. New reads it
// back, so overrides apply before the first probe, persisted verdicts vote
// while still fresh, and a node that restarts alone knows its members and
// freezes instead of acting on its own evidence.
//
// # Security
//
// Gossip is encrypted and authenticated with AES-GCM from a keyring
// (Config.Keys; Keys[0] encrypts, every key decrypts), and every packet
// carries Config.Label; memberlist drops anything that does not decrypt or
// has another label, unencrypted packets included, so a node without the
// key can neither join nor change anything. New refuses to start without
// keys unless Config.Insecure is set (development only).
//
// Rotating the key without downtime, on every node in turn at each step
// (the keyring is per node; nothing here spreads keys):
//
//  1. InstallKey(new): every node can now decrypt both keys;
//  2. when all nodes have it, UseKey(new): nodes encrypt with the new key,
//     which all of them can already read;
//  3. when all nodes use it, RemoveKey(old).
//
// Then put the new key first in every node's configuration, so a restart
// keeps it. A node that is down during a rotation rejoins once it has the
// new key in its configuration.
//
// # Import level
//
// Level 2 of DESIGN.md: gossip imports zones, memberlist and prometheus, and
// nothing of Meridian on its level or above; node wires the prober's
// verdicts in (SetLocalVerdicts) and the cluster's view out (Verdicts,
// Overrides into zones.FoldHealth and the Store) with plain functions.
package gossip
