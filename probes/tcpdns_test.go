package probes

import (
	"net"
	"testing"
	"time"

	"github.com/meridian-gtm/meridian/zones"
	"github.com/miekg/dns"
)

// closedPort is a 127.0.0.1 address nothing listens on (just closed).
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestTCPCheck(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	c := &zones.Check{Kind: zones.CheckTCP, Interval: time.Second, Timeout: 500 * time.Millisecond, Rise: 5, Fall: 3}
	wantOutcome(t, attempt(t, l.Addr().String(), c), true, "TCP connect after "+ms)
	wantOutcome(t, attempt(t, closedPort(t), c), false, "connect: connection refused")
}

// dnsServer serves a tiny zone over UDP on 127.0.0.1:0: ok.example. A
// 192.0.2.1, fail.example. SERVFAIL, anything else NXDOMAIN.
func dnsServer(t *testing.T, addr string) (stop func(), bound string) {
	t.Helper()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	mux := dns.NewServeMux()
	mux.HandleFunc(".", func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		switch q.Question[0].Name {
		case "ok.example.":
			rr, _ := dns.NewRR("ok.example. 60 IN A 192.0.2.1")
			m.Answer = append(m.Answer, rr)
		case "fail.example.":
			m.Rcode = dns.RcodeServerFailure
		default:
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: mux, NotifyStartedFunc: func() { close(started) }}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.ActivateAndServe()
	}()
	<-started
	return func() {
		srv.Shutdown()
		<-done
	}, pc.LocalAddr().String()
}

func TestDNSCheck(t *testing.T) {
	stop, addr := dnsServer(t, "127.0.0.1:0")
	defer stop()
	// silent reads nothing and answers nothing.
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	base := &zones.Check{Kind: zones.CheckDNS, Interval: time.Second, Timeout: 500 * time.Millisecond, Rise: 5, Fall: 3, DNSName: "ok.example.", DNSType: dns.TypeA}
	for _, tc := range []struct {
		name   string
		addr   string
		check  *zones.Check
		ok     bool
		reason string
	}{
		{"noerror", addr, base, true, "DNS NOERROR after " + ms},
		{"answer matches", addr, with(base, func(c *zones.Check) { c.DNSAnswer = "192.0.2.1" }), true, "DNS NOERROR after " + ms},
		{"answer mismatch", addr, with(base, func(c *zones.Check) { c.DNSAnswer = "192.0.2.9" }), false, `DNS answer lacks "192.0.2.9"`},
		{"servfail", addr, with(base, func(c *zones.Check) { c.DNSName = "fail.example." }), false, "DNS rcode SERVFAIL"},
		{"nxdomain expected", addr, with(base, func(c *zones.Check) { c.DNSName = "gone.example."; c.DNSRcode = dns.RcodeNameError }), true, "DNS NXDOMAIN after " + ms},
		{"nxdomain expected, got noerror", addr, with(base, func(c *zones.Check) { c.DNSRcode = dns.RcodeNameError }), false, "DNS rcode NOERROR, want NXDOMAIN"},
		{"name without the final dot", addr, with(base, func(c *zones.Check) { c.DNSName = "ok.example"; c.DNSAnswer = "192.0.2.1" }), true, "DNS NOERROR after " + ms},
		{"no answer", silent.LocalAddr().String(), with(base, func(c *zones.Check) { c.Timeout = 100 * time.Millisecond }), false, "timeout after 100ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantOutcome(t, attempt(t, tc.addr, tc.check), tc.ok, tc.reason)
		})
	}
}
