package dnsserver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridian-gtm/meridian/zones"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeClock is an injected clock that moves only when told; safe for
// concurrent use.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func newTestRRL(t testing.TB, cfg RRLConfig, clk *fakeClock) *RRL {
	t.Helper()
	var now func() time.Time
	if clk != nil {
		now = clk.Now
	}
	r, err := NewRRL(cfg, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// outcome is what n responses to one key came to.
type outcome struct{ sent, dropped, slipped int }

func tally(r *RRL, n int, client string, class rrlClass, name uint64) outcome {
	a := netip.MustParseAddr(client)
	var o outcome
	for range n {
		switch r.decide(a, class, name) {
		case rrlSend:
			o.sent++
		case rrlDrop:
			o.dropped++
		case rrlSlip:
			o.slipped++
		}
	}
	return o
}

func TestRRLConfigValidate(t *testing.T) {
	rate := func(c RRLConfig) RRLConfig { c.ResponsesPerSecond = 5; return c }
	tests := []struct {
		name string
		cfg  RRLConfig
		want []string // substrings of the error; none: valid
	}{
		{name: "defaults", cfg: DefaultRRLConfig()},
		{name: "zero value", cfg: RRLConfig{}},
		{name: "a rate", cfg: rate(DefaultRRLConfig())},
		{name: "everything set", cfg: RRLConfig{ResponsesPerSecond: 5, NXDomainsPerSecond: 2, ReferralsPerSecond: 3, ErrorsPerSecond: 1, Slip: 10, Window: 15 * time.Second, IPv4PrefixLen: 32, IPv6PrefixLen: 128, TableSize: 1 << 24, Exempt: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}},
		{name: "negative rate", cfg: RRLConfig{ResponsesPerSecond: -1}, want: []string{"rrl.responses_per_second: -1"}},
		{name: "rate too high", cfg: RRLConfig{ResponsesPerSecond: 2_000_000}, want: []string{"rrl.responses_per_second: 2000000"}},
		{name: "class rate without a rate", cfg: RRLConfig{NXDomainsPerSecond: 3}, want: []string{"rrl.nxdomains_per_second: set while rrl.responses_per_second is 0"}},
		{name: "negative class rates", cfg: RRLConfig{ResponsesPerSecond: 5, ErrorsPerSecond: -2, ReferralsPerSecond: -3}, want: []string{"rrl.errors_per_second: -2", "rrl.referrals_per_second: -3"}},
		{name: "slip", cfg: RRLConfig{Slip: 11}, want: []string{"rrl.slip: 11"}},
		{name: "negative slip", cfg: RRLConfig{Slip: -1}, want: []string{"rrl.slip: -1"}},
		{name: "window", cfg: RRLConfig{Window: 2 * time.Hour}, want: []string{"rrl.window: 2h0m0s"}},
		{name: "ipv4 prefix", cfg: RRLConfig{IPv4PrefixLen: 33}, want: []string{"rrl.ipv4_prefix: 33"}},
		{name: "ipv4 prefix short", cfg: RRLConfig{IPv4PrefixLen: 7}, want: []string{"rrl.ipv4_prefix: 7"}},
		{name: "ipv6 prefix", cfg: RRLConfig{IPv6PrefixLen: 8}, want: []string{"rrl.ipv6_prefix: 8"}},
		{name: "table size not a power of two", cfg: RRLConfig{TableSize: 100000}, want: []string{"rrl.table_size: 100000: want a power of two"}},
		{name: "table size too large", cfg: RRLConfig{TableSize: 1 << 25}, want: []string{"rrl.table_size: 33554432"}},
		{name: "table size too small", cfg: RRLConfig{TableSize: 2}, want: []string{"rrl.table_size: 2"}},
		{name: "exempt", cfg: RRLConfig{Exempt: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), {}}}, want: []string{"rrl.exempt[1]: not a CIDR prefix"}},
		{name: "all at once", cfg: RRLConfig{ResponsesPerSecond: -1, Slip: 20, IPv4PrefixLen: 40, TableSize: 3}, want: []string{"rrl.responses_per_second", "rrl.slip", "rrl.ipv4_prefix", "rrl.table_size"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.want) == 0 && err != nil {
				t.Fatalf("Validate: %v, want nil", err)
			}
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("Validate: %v, want an error containing %q", err, w)
				}
			}
		})
	}
}

func TestNewRRLRefuses(t *testing.T) {
	if _, err := NewRRL(DefaultRRLConfig(), nil, nil); !errors.Is(err, ErrRRLOff) {
		t.Errorf("rate 0: err %v, want ErrRRLOff", err)
	}
	if _, err := NewRRL(RRLConfig{ResponsesPerSecond: 5, Slip: 11}, nil, nil); err == nil || !strings.Contains(err.Error(), "rrl.slip") {
		t.Errorf("slip 11: err %v, want the Validate error", err)
	}
}

// A client network gets exactly the rate at once, then every Slip-th
// limited response truncated and the rest dropped; the bucket refills at
// the rate.
func TestRRLRatePerSecond(t *testing.T) {
	clk := newFakeClock()
	r := newTestRRL(t, RRLConfig{ResponsesPerSecond: 5, Slip: 2}, clk)
	const client = "192.0.2.1"
	want := []rrlAction{rrlSend, rrlSend, rrlSend, rrlSend, rrlSend, rrlDrop, rrlSlip, rrlDrop, rrlSlip, rrlDrop}
	for i, w := range want {
		if got := r.decide(netip.MustParseAddr(client), rrlAnswer, 1); got != w {
			t.Fatalf("response %d: %d, want %d", i, got, w)
		}
	}
	clk.Advance(time.Second)
	if got, want := tally(r, 10, client, rrlAnswer, 1), (outcome{5, 2, 3}); got != want {
		// The slip counter carries on: the 5th limited response above was
		// a drop, so this second's first is a slip.
		t.Errorf("a second later: %+v, want %+v", got, want)
	}
	clk.Advance(200 * time.Millisecond) // one interval at 5/s
	if got, want := tally(r, 4, client, rrlAnswer, 1), (outcome{1, 2, 1}); got != want {
		t.Errorf("200ms later: %+v, want %+v", got, want)
	}
	clk.Advance(10 * time.Second) // the bucket holds one second, not ten
	if got, want := tally(r, 20, client, rrlAnswer, 1), (outcome{5, 7, 8}); got != want {
		t.Errorf("10s idle: %+v, want a burst of 5, no more: %+v", got, want)
	}
	if got := testutil.ToFloat64(r.m.responses[rrlAnswer][0]); got != 3+2+2+7 {
		t.Errorf("dropped counter %v, want 14", got)
	}
	if got := testutil.ToFloat64(r.m.responses[rrlAnswer][1]); got != 2+3+1+8 {
		t.Errorf("slipped counter %v, want 14", got)
	}
}

func TestRRLSlip(t *testing.T) {
	for _, tc := range []struct {
		slip int
		want outcome
	}{
		{0, outcome{3, 12, 0}},
		{1, outcome{3, 0, 12}},
		{3, outcome{3, 8, 4}},
		{10, outcome{3, 11, 1}},
	} {
		r := newTestRRL(t, RRLConfig{ResponsesPerSecond: 3, Slip: tc.slip}, newFakeClock())
		if got := tally(r, 15, "192.0.2.1", rrlAnswer, 7); got != tc.want {
			t.Errorf("slip %d: %+v, want %+v", tc.slip, got, tc.want)
		}
	}
}

// Accounts are per network: addresses in one /24 (or /56) share one,
// networks do not.
func TestRRLPrefixes(t *testing.T) {
	tests := []struct {
		name   string
		cfg    RRLConfig
		a, b   string
		shared bool
	}{
		{"one /24", RRLConfig{}, "192.0.2.1", "192.0.2.254", true},
		{"two /24s", RRLConfig{}, "192.0.2.1", "192.0.3.1", false},
		{"one /56", RRLConfig{}, "2001:db8:0:100::1", "2001:db8:0:1ff:ffff::2", true},
		{"two /56s", RRLConfig{}, "2001:db8:0:100::1", "2001:db8:0:200::1", false},
		{"IPv4-mapped is IPv4", RRLConfig{}, "::ffff:192.0.2.1", "192.0.2.9", true},
		{"IPv4 and IPv6 zeros differ", RRLConfig{}, "0.0.0.1", "::1", false},
		{"/32", RRLConfig{IPv4PrefixLen: 32}, "192.0.2.1", "192.0.2.2", false},
		{"/16", RRLConfig{IPv4PrefixLen: 16}, "192.0.2.1", "192.0.200.2", true},
		{"/128", RRLConfig{IPv6PrefixLen: 128}, "2001:db8::1", "2001:db8::2", false},
		{"/64", RRLConfig{IPv6PrefixLen: 64}, "2001:db8::1", "2001:db8::ffff:2", true},
		{"/20 v6", RRLConfig{IPv6PrefixLen: 20}, "2001:db8::1", "2001:dbf::1", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.ResponsesPerSecond = 4
			r := newTestRRL(t, tc.cfg, newFakeClock())
			if got := tally(r, 4, tc.a, rrlAnswer, 1); got.sent != 4 {
				t.Fatalf("%s: %+v, want 4 sent", tc.a, got)
			}
			got := tally(r, 1, tc.b, rrlAnswer, 1)
			if shared := got.sent == 0; shared != tc.shared {
				t.Errorf("%s after %s: %+v, want shared=%v", tc.b, tc.a, got, tc.shared)
			}
		})
	}
}

// Classes and names are accounts of their own, each at its class's rate.
func TestRRLClassesAndRates(t *testing.T) {
	r := newTestRRL(t, RRLConfig{ResponsesPerSecond: 4, NXDomainsPerSecond: 2, ReferralsPerSecond: 3, ErrorsPerSecond: 1}, newFakeClock())
	const c = "198.51.100.1"
	for _, tc := range []struct {
		class rrlClass
		name  uint64
		sent  int
	}{
		{rrlAnswer, 1, 4}, {rrlAnswer, 2, 4}, {rrlNXDomain, 1, 2}, {rrlReferral, 1, 3}, {rrlError, 0, 1},
	} {
		if got := tally(r, 10, c, tc.class, tc.name); got.sent != tc.sent {
			t.Errorf("%s %d: %+v, want %d sent", rrlClassLabels[tc.class], tc.name, got, tc.sent)
		}
	}
}

// With a window, every response counts and the debt outlasts the flood.
func TestRRLWindow(t *testing.T) {
	clk := newFakeClock()
	r := newTestRRL(t, RRLConfig{ResponsesPerSecond: 10, Window: 5 * time.Second}, clk)
	const c = "192.0.2.1"
	if got := tally(r, 1000, c, rrlAnswer, 1); got.sent != 10 {
		t.Fatalf("flood: %+v, want 10 sent", got)
	}
	// The flood spent the second of credit and ran up the 5s window of
	// debt: the account is full again 6s on, and sends once it is within
	// 0.9s (the burst) of full. 5s on it is 1s from full: limited, and
	// that response adds an interval (0.1s).
	clk.Advance(5 * time.Second)
	if got := tally(r, 1, c, rrlAnswer, 1); got.sent != 0 {
		t.Fatalf("5s after a flood with a 5s window: %+v, want still limited", got)
	}
	clk.Advance(300 * time.Millisecond)
	if got := tally(r, 1, c, rrlAnswer, 1); got.sent != 1 {
		t.Fatalf("once the debt is paid: %+v, want 1 sent", got)
	}
	// Without a window the same flood costs nothing once it stops.
	r = newTestRRL(t, RRLConfig{ResponsesPerSecond: 10}, clk)
	tally(r, 1000, c, rrlAnswer, 1)
	clk.Advance(time.Second)
	if got := tally(r, 20, c, rrlAnswer, 1); got.sent != 10 {
		t.Fatalf("no window, a second after a flood: %+v, want 10 sent", got)
	}
}

func TestRRLExempt(t *testing.T) {
	r := newTestRRL(t, RRLConfig{ResponsesPerSecond: 1, Exempt: []netip.Prefix{
		netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("::ffff:198.51.100.0/120"), netip.MustParsePrefix("2001:db8::/32"),
	}}, newFakeClock())
	for _, c := range []string{"192.0.2.7", "::ffff:192.0.2.8", "198.51.100.9", "2001:db8:1::1"} {
		if got := tally(r, 50, c, rrlAnswer, 1); got.sent != 50 {
			t.Errorf("exempt %s: %+v, want all sent", c, got)
		}
	}
	if got := tally(r, 50, "203.0.113.1", rrlAnswer, 1); got.sent != 1 {
		t.Errorf("not exempt: %+v, want 1 sent", got)
	}
}

// A full table stays its size and allocates nothing; distinct keys recycle
// the entries of keys answered once, never one that is being limited while
// its set has others; evictions of accounts in debt are counted.
func TestRRLTableFull(t *testing.T) {
	clk := newFakeClock()
	r := newTestRRL(t, RRLConfig{ResponsesPerSecond: 2, Slip: 0, TableSize: 8}, clk)
	const victim = "192.0.2.1"
	if got := tally(r, 5, victim, rrlAnswer, 42); got.sent != 2 {
		t.Fatalf("victim: %+v, want 2 sent", got)
	}
	addrs := make([]netip.Addr, 1000)
	for i := range addrs {
		addrs[i] = netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1})
	}
	allocs := testing.AllocsPerRun(10, func() {
		for i, a := range addrs {
			if got := r.decide(a, rrlAnswer, uint64(i)); got != rrlSend {
				t.Fatalf("new key %d: %d, want sent", i, got)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per flood of new keys, want 0", allocs)
	}
	if len(r.table) != 2 || cap(r.table) != 2 {
		t.Fatalf("table has %d sets, want the 2 it was built with", len(r.table))
	}
	if got := testutil.ToFloat64(r.m.evictions); got < 1000 {
		t.Errorf("evictions %v, want one per new key in a full table", got)
	}
	if got := tally(r, 1, victim, rrlAnswer, 42); got.sent != 0 {
		t.Errorf("the limited account was evicted by one-shot keys: %+v", got)
	}
}

// When all four accounts of a set are in debt, a new key evicts the
// least indebted, whose key then starts afresh.
func TestRRLEvictsLeastIndebted(t *testing.T) {
	clk := newFakeClock()
	r := newTestRRL(t, RRLConfig{ResponsesPerSecond: 3, TableSize: 8}, clk)
	a := netip.MustParseAddr("192.0.2.1")
	var names []uint64 // five keys of set 0
	for n := uint64(1); len(names) < rrlWays+1; n++ {
		if r.hash(a, rrlAnswer, n)&r.mask == 0 {
			names = append(names, n)
		}
	}
	for _, n := range names[:rrlWays] {
		for range 3 {
			r.decide(a, rrlAnswer, n)
		}
		clk.Advance(100 * time.Millisecond) // the earlier keys' debts shrink
	}
	if got := r.decide(a, rrlAnswer, names[rrlWays]); got != rrlSend {
		t.Fatalf("new key: %d, want sent", got)
	}
	if got := testutil.ToFloat64(r.m.evictions); got != 1 {
		t.Fatalf("evictions %v, want 1", got)
	}
	if got := tally(r, 5, a.String(), rrlAnswer, names[1]); got.sent != 0 {
		t.Errorf("second key: %+v, want still limited", got)
	}
	if got := tally(r, 5, a.String(), rrlAnswer, names[0]); got.sent != 3 {
		t.Errorf("first (least indebted) key: %+v, want a fresh burst of 3", got)
	}
}

// Workers share accounts without losing an update: a key already in the
// table gets exactly its rate, and exactly every Slip-th of the rest slips.
func TestRRLConcurrent(t *testing.T) {
	const workers, each, rate = 8, 500, 1000
	clk := newFakeClock()
	a := netip.MustParseAddr("192.0.2.1")
	r := newTestRRL(t, RRLConfig{ResponsesPerSecond: rate, Slip: 2}, clk)
	r.decide(a, rrlAnswer, 1) // in the table before the race
	var sent, slipped atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				switch r.decide(a, rrlAnswer, 1) {
				case rrlSend:
					sent.Add(1)
				case rrlSlip:
					slipped.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := sent.Load() + 1; got != rate {
		t.Errorf("sent %d, want exactly %d", got, rate)
	}
	if got, want := slipped.Load(), int64(workers*each-(rate-1))/2; got != want {
		t.Errorf("slipped %d, want %d", got, want)
	}

	// A key first seen by several workers at once may be inserted twice:
	// at most one extra response per worker.
	r = newTestRRL(t, RRLConfig{ResponsesPerSecond: 10, Slip: 0}, clk)
	sent.Store(0)
	start := make(chan struct{})
	for range workers {
		wg.Go(func() {
			<-start
			for range 100 {
				if r.decide(a, rrlError, 0) == rrlSend {
					sent.Add(1)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if got := sent.Load(); got < 10 || got > 10+workers-1 {
		t.Errorf("fresh key raced by %d workers: %d sent, want 10 to %d", workers, got, 10+workers-1)
	}

	// A small table churned by many keys while the clock moves: the table
	// keeps its size, and a limited key never gets less than its rate
	// (an eviction can only give it more).
	r = newTestRRL(t, RRLConfig{ResponsesPerSecond: rate, Slip: 2, TableSize: 16}, clk)
	sent.Store(0)
	for g := range workers {
		wg.Go(func() {
			for i := range each {
				if r.decide(a, rrlAnswer, 1) == rrlSend {
					sent.Add(1)
				}
				r.decide(netip.AddrFrom4([4]byte{10, byte(g), byte(i >> 8), byte(i)}), rrlNXDomain, uint64(i))
				if g == 0 && i%100 == 0 {
					clk.Advance(time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	if got := sent.Load(); got < rate {
		t.Errorf("churned table: %d sent, want at least %d", got, rate)
	}
	if len(r.table) != 4 {
		t.Errorf("table has %d sets, want 4", len(r.table))
	}
}

// rrlHandler serves src with rate limiting.
func rrlHandler(t testing.TB, src Source, cfg RRLConfig, clk *fakeClock) (*Handler, *RRL) {
	t.Helper()
	h := newTestHandler(t, src)
	h.opts.RRL = newTestRRL(t, cfg, clk)
	return h, h.opts.RRL
}

// flood sends req n times over UDP from one address and sorts the replies.
func flood(t *testing.T, h *Handler, req []byte, from string, n int) (answers, truncated []*dns.Msg, none int) {
	t.Helper()
	w := newWorker()
	for range n {
		out := h.Serve(w, req, netip.MustParseAddr(from), true)
		if out == nil {
			none++
			continue
		}
		m := new(dns.Msg)
		if err := m.Unpack(out); err != nil {
			t.Fatalf("reply does not unpack: %v", err)
		}
		if m.Truncated {
			truncated = append(truncated, m)
		} else {
			answers = append(answers, m)
		}
	}
	return answers, truncated, none
}

// A flood of one question from one network through the handler: the rate
// answered, every other limited one truncated (TC, no records but OPT),
// the rest unanswered; TCP unaffected.
func TestRRLServeFlood(t *testing.T) {
	clk := newFakeClock()
	h, r := rrlHandler(t, demoStore(t), RRLConfig{ResponsesPerSecond: 10, Slip: 2}, clk)
	req := mkQuery(t, "WwW.gslb.example.com.", dns.TypeA, withECS("198.51.100.0/24"))
	answers, truncated, none := flood(t, h, req, "203.0.113.7", 100)
	if len(answers) != 10 || len(truncated) != 45 || none != 45 {
		t.Fatalf("%d answered, %d truncated, %d unanswered; want 10, 45, 45", len(answers), len(truncated), none)
	}
	for _, m := range answers {
		if len(m.Answer) != 1 || m.Rcode != dns.RcodeSuccess {
			t.Fatalf("answer %v", m)
		}
	}
	tc := truncated[0]
	if !tc.Response || tc.Id != binary.BigEndian.Uint16(req) || tc.Rcode != dns.RcodeSuccess || !tc.Authoritative ||
		len(tc.Question) != 1 || tc.Question[0].Name != "WwW.gslb.example.com." || tc.Question[0].Qtype != dns.TypeA ||
		len(tc.Answer) != 0 || len(tc.Ns) != 0 || len(tc.Extra) != 1 || tc.IsEdns0() == nil {
		t.Fatalf("slipped reply:\n%v\nwant TC, the question as asked, and only an OPT", tc)
	}
	if e := ecsOf(tc); e == nil || e.SourceNetmask != 24 || e.SourceScope != 0 {
		t.Errorf("slipped reply's ECS %v, want the option echoed with scope 0", e)
	}
	if got := testutil.ToFloat64(r.m.responses[rrlAnswer][1]); got != 45 {
		t.Errorf("slipped counter %v, want 45", got)
	}
	// Another network is its own account; 0x20 case changes are not.
	if a, _, _ := flood(t, h, req, "203.0.114.7", 20); len(a) != 10 {
		t.Errorf("another /24: %d answered, want 10", len(a))
	}
	if a, _, _ := flood(t, h, mkQuery(t, "www.GSLB.example.com.", dns.TypeA), "203.0.113.8", 5); len(a) != 0 {
		t.Errorf("same name in other case from the limited /24: %d answered, want 0", len(a))
	}
	// Without EDNS the slipped reply has no OPT.
	_, truncated, _ = flood(t, h, mkQuery(t, "www.gslb.example.com.", dns.TypeAAAA), "203.0.113.7", 12)
	if len(truncated) != 1 || len(truncated[0].Extra) != 0 || len(truncated[0].Question) != 1 {
		t.Errorf("slipped reply without EDNS: %v", truncated)
	}
	// TCP is never limited.
	w := newWorker()
	for i := range 50 {
		if h.Serve(w, req, netip.MustParseAddr("203.0.113.7"), false) == nil {
			t.Fatalf("TCP query %d unanswered", i)
		}
	}
	// Nor is a query with a valid server cookie (which wire.go marks).
	for i := range 50 {
		out := h.serve(w, req, netip.MustParseAddr("203.0.113.7"), true)
		w.q.serverCookie = true
		if r.limit(w, out, netip.MustParseAddr("203.0.113.7")) == nil {
			t.Fatalf("cookie query %d unanswered", i)
		}
	}
	// A second later the network gets its rate again.
	clk.Advance(time.Second)
	if a, _, _ := flood(t, h, req, "203.0.113.7", 20); len(a) != 10 {
		t.Errorf("a second later: %d answered, want 10", len(a))
	}
}

// NXDOMAIN is counted per zone: random names share one account.
func TestRRLServeNXDomainPerZone(t *testing.T) {
	h, r := rrlHandler(t, demoStore(t), RRLConfig{ResponsesPerSecond: 5, Slip: 0}, newFakeClock())
	w := newWorker()
	from := netip.MustParseAddr("203.0.113.7")
	answered := 0
	for i := range 50 {
		if out := h.Serve(w, mkQuery(t, fmt.Sprintf("r%d.gslb.example.com.", i), dns.TypeA), from, true); out != nil {
			answered++
		}
	}
	if answered != 5 {
		t.Errorf("random names: %d NXDOMAINs answered, want 5", answered)
	}
	if got := testutil.ToFloat64(r.m.responses[rrlNXDomain][0]); got != 45 {
		t.Errorf("nxdomain dropped counter %v, want 45", got)
	}
	if a, _, _ := flood(t, h, mkQuery(t, "db.gslb.example.com.", dns.TypeA), from.String(), 5); len(a) != 5 {
		t.Errorf("an existing name from the same network: %d answered, want 5", len(a))
	}
}

// Errors are counted per network only: REFUSED, FORMERR and BADVERS for
// any name share one account. Their slipped replies keep the rcode.
func TestRRLServeErrorsPerPrefix(t *testing.T) {
	h, _ := rrlHandler(t, demoStore(t), RRLConfig{ResponsesPerSecond: 100, ErrorsPerSecond: 3, Slip: 1}, newFakeClock())
	reqs := [][]byte{
		mkQuery(t, "example.org.", dns.TypeA),
		mkQuery(t, "other.example.net.", dns.TypeAAAA),
		append(mkQuery(t, "www.gslb.example.com.", dns.TypeA), 0), // trailing byte: FORMERR
		mkQuery(t, "www.gslb.example.com.", dns.TypeA, func(m *dns.Msg) { ensureOPT(m).SetVersion(1) }),
		mkQuery(t, "x.example.org.", dns.TypeA, withEDNS(1232)),
	}
	w := newWorker()
	var rcodes []string
	for _, req := range reqs {
		out := h.Serve(w, req, netip.MustParseAddr("192.0.2.1"), true)
		m := new(dns.Msg)
		if err := m.Unpack(out); err != nil {
			t.Fatal(err)
		}
		tag := ""
		if m.Truncated {
			tag = "+tc"
			if len(m.Answer)+len(m.Ns) != 0 {
				t.Errorf("slipped error reply has records: %v", m)
			}
		}
		rcodes = append(rcodes, dns.RcodeToString[m.Rcode]+tag)
	}
	// miekg/dns names rcode 16 BADSIG, which shares it with BADVERS.
	if got, want := strings.Join(rcodes, " "), "REFUSED REFUSED FORMERR "+dns.RcodeToString[dns.RcodeBadVers]+"+tc REFUSED+tc"; got != want {
		t.Errorf("rcodes %q, want %q", got, want)
	}
	if out := h.Serve(w, reqs[0], netip.MustParseAddr("192.0.3.1"), true); out == nil || out[3]&0xF != dns.RcodeRefused || out[2]&0x2 != 0 {
		t.Errorf("another network: %v, want a plain REFUSED", out)
	}
}

// Referrals are counted per zone cut.
func TestRRLServeReferralPerCut(t *testing.T) {
	z, err := zones.ParseZone("d.toml", []byte(`zone = "d.test"
ns = ["ns.example.net."]
[records.sub]
NS = ["ns.example.net."]
[records.other]
NS = ["ns.example.net."]
`))
	if err != nil {
		t.Fatal(err)
	}
	st, err := zones.NewStore(&zones.Config{Zones: []*zones.Zone{z}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, r := rrlHandler(t, st, RRLConfig{ResponsesPerSecond: 100, ReferralsPerSecond: 4, Slip: 0}, newFakeClock())
	w := newWorker()
	from := netip.MustParseAddr("192.0.2.1")
	count := func(names ...string) (n int) {
		for _, name := range names {
			if out := h.Serve(w, mkQuery(t, name, dns.TypeA), from, true); out != nil {
				n++
			}
		}
		return n
	}
	if n := count("a.sub.d.test.", "b.sub.d.test.", "sub.d.test.", "c.b.sub.d.test.", "d.sub.d.test.", "e.sub.d.test."); n != 4 {
		t.Errorf("names under one cut: %d referrals answered, want 4", n)
	}
	if n := count("a.other.d.test.", "b.other.d.test."); n != 2 {
		t.Errorf("another cut: %d answered, want 2", n)
	}
	if got := testutil.ToFloat64(r.m.responses[rrlReferral][0]); got != 2 {
		t.Errorf("referral dropped counter %v, want 2", got)
	}
}

func TestRRLMetricsLint(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	NewMetrics(reg)
	r1, err := NewRRL(RRLConfig{ResponsesPerSecond: 1}, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	// A limiter rebuilt (on reload) counts on in the same series.
	r2, err := NewRRL(RRLConfig{ResponsesPerSecond: 1}, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	r1.m.evictions.Inc()
	if got := testutil.ToFloat64(r2.m.evictions); got != 1 {
		t.Errorf("rebuilt limiter's evictions %v, want the shared 1", got)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	if n, err := testutil.GatherAndCount(reg, "meridian_dns_rrl_responses_total"); err != nil || n != 8 {
		t.Errorf("rrl response series %d (%v), want 8: 4 classes by 2 actions", n, err)
	}
}

// BenchmarkServeRRL is BenchmarkServe with rate limiting on, on the real
// clock. "sent": 1024 client networks, none over its rate, so every
// response is accounted and sent. "limited": one network far over its
// rate, so responses are dropped or slipped.
func BenchmarkServeRRL(b *testing.B) {
	reqs := [][]byte{
		mkQuery(b, "www.gslb.example.com.", dns.TypeA, withECS("198.51.100.0/24")),
		mkQuery(b, "www.gslb.example.com.", dns.TypeAAAA, withECS("2001:db8:3::/48")),
		mkQuery(b, "www.gslb.example.com.", dns.TypeA, withECS("192.0.2.0/24")),
		mkQuery(b, "www.gslb.example.com.", dns.TypeA),
	}
	froms := make([]netip.Addr, 1024)
	for i := range froms {
		froms[i] = netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 53})
	}
	for _, bc := range []struct {
		name  string
		rate  int
		froms []netip.Addr
	}{
		{"sent", 100_000, froms},
		{"limited", 1, froms[:1]},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := newTestHandler(b, demoStore(b))
			r, err := NewRRL(RRLConfig{ResponsesPerSecond: bc.rate, Slip: 2}, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			h.opts.RRL = r
			w := newWorker()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				h.Serve(w, reqs[i&3], bc.froms[i&(len(bc.froms)-1)], true)
				i++
			}
		})
	}
}

// BenchmarkServeParallel runs the answer path on every P at once, with
// rate limiting off and on (every response accounted and sent; the
// workers share the table).
func BenchmarkServeParallel(b *testing.B) {
	req := mkQuery(b, "www.gslb.example.com.", dns.TypeA, withECS("198.51.100.0/24"))
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("rrl=%v", on), func(b *testing.B) {
			h := newTestHandler(b, demoStore(b))
			if on {
				r, err := NewRRL(RRLConfig{ResponsesPerSecond: 100_000, Slip: 2}, nil, nil)
				if err != nil {
					b.Fatal(err)
				}
				h.opts.RRL = r
			}
			var next atomic.Uint32
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				w := newWorker()
				g := next.Add(1)
				i := 0
				for pb.Next() {
					from := netip.AddrFrom4([4]byte{10, byte(g), byte(i), 53}) // 256 networks each
					if h.Serve(w, req, from, true) == nil {
						b.Error("no reply")
						return
					}
					i++
				}
			})
		})
	}
}

// BenchmarkRRLDecide is the limiter alone, on the real clock: 1024
// networks under their rate, so each decision updates its account.
func BenchmarkRRLDecide(b *testing.B) {
	r, err := NewRRL(RRLConfig{ResponsesPerSecond: 100_000, Slip: 2}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	froms := make([]netip.Addr, 1024)
	for i := range froms {
		froms[i] = netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 53})
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r.decide(froms[i&1023], rrlAnswer, 12345)
		i++
	}
}
