// Package admin is Meridian's authenticated admin HTTP API: manual DR
// failover (pin) and drain, clearing them, reloading the config, the live
// decision trace (explain), the cluster's status, the audit log, and the
// node's /metrics, /healthz and /readyz.
//
// Import level 3: admin imports zones and miekg/dns (its level also
// allows geo and prometheus), and reaches the level-2 packages (gossip, probes, dnsserver) only
// through the Backend interface it declares here; node (level 4) adapts
// its cluster and store to Backend, and cmd/meridian uses the request and
// response types as a client.
//
// # Routes
//
// Every answer is JSON; every error has the one shape of Error,
// {"error": "...", "detail": "..."}.
//
//	GET    /healthz                  none     the process is alive
//	GET    /readyz                   none     200, or 503 with Backend.Ready's reason
//	GET    /metrics                  read     Backend.Metrics (Prometheus scrapers send bearer tokens)
//	GET    /api/v1/status            read     Status
//	GET    /api/v1/overrides         read     OverridesResponse
//	POST   /api/v1/overrides         operate  OverrideRequest → OverrideResponse, or Preview for dry_run
//	DELETE /api/v1/overrides/{id}    operate  ?reason= → OverrideResponse; 404 for an unknown ID
//	GET    /api/v1/explain           read     ?client=&name=&type= → ExplainResult
//	POST   /api/v1/reload            operate  ?reason= → ReloadResponse; 400 with file:line for a bad config
//	GET    /api/v1/audit             read     ?since=RFC3339&limit= → AuditResponse, newest last
//	GET    /api/v1/events            read     Server-Sent Events of Event (replay: Last-Event-ID, ?since_seq=, ?history=≤1h)
//
// A request is checked in this order, and a refusal changes nothing:
//
//  1. Host and Origin (403). The Host header, and the host of an Origin
//     header when one is sent, must be one of Config.AllowedHosts: a page
//     on another site, or a name rebound to a node's address (DNS
//     rebinding), cannot drive the API from a browser. There is no CORS.
//     /healthz and /readyz skip this check, so load balancers and kubelets
//     can probe a node by its IP; they reveal nothing else.
//  2. The method (405 with an Allow header; 404 for an unknown path).
//  3. The bearer token (401 with WWW-Authenticate, the same for a missing
//     and a wrong token) and its role (403 for the read role on a
//     mutating route).
//  4. The body: at most MaxBodyBytes (413), one JSON object with known
//     fields only and valid values (400).
//
// Backend errors wrapping ErrConflict (a safety rail), ErrNotFound and
// ErrInvalid are answered 409, 404 and 400 with their text; others 500.
//
// # Overrides
//
// An override's ID comes from the key the cluster replaces overrides
// under (see OverrideID): "pin:<pool>" (a pool has one pin) and
// "drain:<pool>:<region>", with "*" as the pool of a drain in every pool.
// Setting an override whose ID is in force replaces it. Who is the token's
// ID; expires_in becomes ExpiresAt (from the injected clock) and force is
// passed on: the backend enforces the safety rails and the expiry. A
// dry_run calls Backend.Preview and changes nothing.
//
// # Tokens
//
// Tokens are random strings ("mrd_" and 32 random bytes, base64url; see
// NewToken); the config holds only their hex SHA-256 (HashToken), an ID
// and a role, read or operate. A presented token is hashed and compared
// with every configured hash in constant time. Tokens never reach a log or
// the audit log: both name the token's ID. Config.Validate refuses a
// listener that is not loopback unless TLS is configured, and refuses the
// documented demo tokens (demo-read, demo-operate) on such a listener.
//
// # Audit
//
// Audit appends JSON lines (Entry) to Config.AuditFile, each synced to
// disk before Record returns. For a mutation the server writes an attempt
// line (with the overrides before) and syncs it before calling the
// backend; if it cannot, it answers 503 and calls nothing: a change that
// cannot be audited is not made. It then writes the result line (status,
// message, overrides after) and syncs it before answering; a change made
// whose outcome cannot be written is answered 500, never 2xx. Mutations
// refused for their token, role or body are audited as one result line,
// at most 20 a second (a flood of unauthenticated calls must not fill the
// disk); the next line written counts those left out.
// Mutations are serialized, so each before/after is exact. Node records
// overrides received by gossip and expiries with Audit.Record.
//
// # Events and notifications
//
// Node publishes what changes (verdict flips, overrides set, cleared and
// expired, membership, isolation, self-distrust, config loads) to the
// server's Events hub, which keeps the last hour (at most 4096) for
// replay and streams them at /api/v1/events. A Notifier posts the events
// its hooks ask for to webhook URLs, signed with HMAC-SHA256 over
// "<timestamp>.<body>" (see VerifySignature), retried with backoff from a
// bounded queue that never blocks the node.
package admin
