// Package dnsserver is Meridian's authoritative DNS front end: UDP and TCP
// listeners with bounded concurrency, strict parsing of queries (header,
// question, EDNS0 per RFC 6891, EDNS Client Subnet per RFC 7871),
// truncation, and query metrics. It answers from the zones.Snapshot it
// loads for each query and from nothing else.
//
// Import level 2: dnsserver imports zones, geo, miekg/dns and prometheus;
// node wires it to a zones.Store.
package dnsserver
