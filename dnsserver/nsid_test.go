package dnsserver

import (
	"io"
	"log/slog"
	"testing"

	"github.com/miekg/dns"
)

func withNSID(payload string) reqOpt {
	return func(m *dns.Msg) {
		o := ensureOPT(m)
		o.Option = append(o.Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID, Nsid: payload})
	}
}

// nsidOf returns the NSID option of a reply and whether there is one.
func nsidOf(m *dns.Msg) (string, bool) {
	if o := m.IsEdns0(); o != nil {
		for _, opt := range o.Option {
			if n, ok := opt.(*dns.EDNS0_NSID); ok {
				return n.Nsid, true
			}
		}
	}
	return "", false
}

// RFC 5001: NSID goes back to the queries that ask for it, from both
// packers, and never when none is configured.
func TestNSID(t *testing.T) {
	st := demoStore(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	on := NewHandlerWith(log, st, nil, Options{NSID: []byte("fra-1")})
	off := NewHandlerWith(log, st, nil, Options{})
	const www = "www.gslb.example.com."
	tests := []struct {
		name string
		h    *Handler
		req  []byte
		want string // hex of the NSID option, "" = none
	}{
		{"asked", on, mkQuery(t, www, dns.TypeA, withNSID("")), "6672612d31"},
		{"asked with ecs", on, mkQuery(t, www, dns.TypeA, withECS("198.51.100.0/24"), withNSID("")), "6672612d31"},
		{"asked with a payload, which a query's NSID must not have but is ignored", on, mkQuery(t, www, dns.TypeA, withNSID("abcd")), "6672612d31"},
		{"asked, error rcode", on, mkQuery(t, "example.org.", dns.TypeA, withNSID("")), "6672612d31"},
		{"asked, slow-path record type", on, mkQuery(t, "gslb.example.com.", dns.TypeTXT, withNSID("")), "6672612d31"},
		{"not asked", on, mkQuery(t, www, dns.TypeA, withEDNS(1232)), ""},
		{"not asked, no edns", on, mkQuery(t, www, dns.TypeA), ""},
		{"asked, none configured", off, mkQuery(t, www, dns.TypeA, withNSID("")), ""},
	}
	for _, tc := range tests {
		for _, slow := range []bool{false, true} {
			w := newWorker()
			w.slowOnly = slow
			m := unpackReply(t, tc.h.Serve(w, tc.req, testFrom, true))
			got, ok := nsidOf(m)
			if ok != (tc.want != "") || got != tc.want {
				t.Errorf("%s (slow=%v): NSID %q present=%v, want %q", tc.name, slow, got, ok, tc.want)
			}
		}
	}
}
