package probes

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/meridian-gtm/meridian/zones"
	"github.com/miekg/dns"
)

// probeDNS asks the endpoint DNSName/DNSType over UDP and passes when the
// rcode is DNSRcode and, if DNSAnswer is set, some answer record's text
// contains it. A truncated reply is judged as it came: no retry over TCP,
// so a DNSAnswer check wants a name whose answer fits in UDP.
func probeDNS(ctx context.Context, t *zones.Target) outcome {
	c := t.Check
	qtype := c.DNSType
	if qtype == 0 {
		qtype = dns.TypeA
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(c.DNSName), qtype)
	client := &dns.Client{Net: "udp", Timeout: c.Timeout}
	start := time.Now()
	r, _, err := client.ExchangeContext(ctx, m, t.Endpoint.String())
	latency := time.Since(start)
	if err != nil {
		return fail(latency, errReason(ctx, err, c.Timeout))
	}
	if r.Rcode != c.DNSRcode {
		reason := "DNS rcode " + rcodeName(r.Rcode)
		if c.DNSRcode != dns.RcodeSuccess {
			reason += ", want " + rcodeName(c.DNSRcode)
		}
		return fail(latency, reason)
	}
	if c.DNSAnswer != "" && !answerHas(r.Answer, c.DNSAnswer) {
		return fail(latency, fmt.Sprintf("DNS answer lacks %q", c.DNSAnswer))
	}
	return pass(latency, fmt.Sprintf("DNS %s after %s", rcodeName(r.Rcode), fmtDur(latency)))
}

func answerHas(rrs []dns.RR, want string) bool {
	for _, rr := range rrs {
		if strings.Contains(rr.String(), want) {
			return true
		}
	}
	return false
}

func rcodeName(rc int) string {
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return fmt.Sprintf("RCODE%d", rc)
}
