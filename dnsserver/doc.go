// Package dnsserver is Meridian's authoritative DNS front end: UDP and TCP
// listeners with bounded concurrency, strict parsing of queries (header,
// question, EDNS0 per RFC 6891, EDNS Client Subnet per RFC 7871),
// truncation, NSID (RFC 5001), DNS cookies (RFC 7873 with RFC 9018 server
// cookies, see cookie.go for their lifetime, secret rotation and why every
// node behind a name must share the secret file), response rate limiting
// (rrl.go), TCP fairness (tcp.go), wildcard listeners that reply from the
// address asked (pktinfo_linux.go), and query metrics. It
// answers from the zones.Snapshot it loads for each query and from nothing
// else.
//
// Import level 2: dnsserver imports zones, geo, miekg/dns, prometheus and
// dchest/siphash; node wires it to a zones.Store.
package dnsserver
