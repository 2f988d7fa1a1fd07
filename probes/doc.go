// Package probes runs Meridian's health checks: HTTP and HTTPS (method,
// headers, body, expected status, body substring or pattern, TLS
// verification against a CA file), TCP connect, and DNS (rcode and answer).
// Each target (one endpoint probed with one check, shared by every pool
// member that probes that endpoint with that check: zones.Target) is
// probed on its own schedule, once for all of its members: the first probe
// within a random spread of min(Interval, 1s) after the target appears,
// then every Interval with ±10% jitter, each attempt bounded by the
// check's Timeout, with at most Options.Concurrency probes in flight.
//
// Results go through a rise/fall state machine per target: a target starts
// Up (cold start serves every region rather than none), goes Down after
// Fall consecutive failures and comes back after Rise consecutive
// successes; a passing check slower than its LatencyBudget makes an up
// target Degraded. Verdicts reports the outcome by target ID for
// zones.FoldHealth; OnObservation hands every raw result (a
// zones.Observation) to whoever ships them to the cluster.
//
// Import level 2: probes may import zones, geo, miekg/dns and prometheus
// (it uses all but geo) and nothing else of Meridian; node wires it to the
// Store and to gossip.
package probes
