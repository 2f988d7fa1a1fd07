package node_test

// End-to-end tests: a real node, in process, on loopback ports chosen by
// the kernel, queried by the real dig and kdig binaries. They check what a
// resolver operator would see, parsed from the tools' own output.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meridian-gtm/meridian/node"
	"github.com/miekg/dns"
)

const (
	demoConfig = "../deploy/demo/node.toml"
	demoZone   = "gslb.example.com.toml"
	// digTimeout bounds one dig or kdig run (each retries on its own).
	digTimeout = 15 * time.Second
	// readyTimeout bounds waiting for a started node to answer, and for a
	// reload to become visible.
	readyTimeout = 10 * time.Second
	// negSOA is the demo zone's SOA as the authority section of a negative
	// answer carries it: TTL min(ttl, minimum) = 60 (RFC 2308 §5).
	negSOA = "gslb.example.com. 60 IN SOA ns1.gslb.example.com. hostmaster.example.com. 2026112501 3600 600 1209600 60"
)

// requireTools skips the test when dig or kdig is missing, unless
// MERIDIAN_REQUIRE_TOOLS=1 (CI), where a missing tool is a failure.
func requireTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"dig", "kdig"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("MERIDIAN_REQUIRE_TOOLS") == "1" {
				t.Fatalf("%s is required (MERIDIAN_REQUIRE_TOOLS=1): %v", tool, err)
			}
			t.Skipf("%s not installed (apt-get install bind9-dnsutils knot-dnsutils): %v", tool, err)
		}
	}
}

// ipv6Loopback reports whether [::1] can be bound here.
func ipv6Loopback() bool {
	c, err := net.ListenPacket("udp", "[::1]:0")
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// logWriter sends the node's log lines to the test log.
type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// testNode is a node serving on loopback for one test.
type testNode struct {
	*node.Node
	v4, v6 netip.AddrPort // v6 is invalid when IPv6 loopback is unavailable
}

// servers are the node's listeners, IPv4 first.
func (n *testNode) servers() []netip.AddrPort {
	if n.v6.IsValid() {
		return []netip.AddrPort{n.v4, n.v6}
	}
	return []netip.AddrPort{n.v4}
}

// startNode starts a node on cfg with loopback listeners on free ports and
// waits until it answers. The node is stopped, and waited for, when the
// test ends.
func startNode(t *testing.T, cfg node.Config) *testNode {
	t.Helper()
	cfg.DNS.Listen = []string{"127.0.0.1:0"}
	if ipv6Loopback() {
		cfg.DNS.Listen = append(cfg.DNS.Listen, "[::1]:0")
	} else {
		t.Log("IPv6 loopback unavailable: serving on 127.0.0.1 only")
	}
	log := slog.New(slog.NewTextHandler(logWriter{t}, nil))
	n, err := node.New(log, cfg)
	if err != nil {
		t.Fatalf("node.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("node.Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("node did not stop within 10s of its context ending")
		}
	})
	tn := &testNode{Node: n}
	for _, a := range n.DNSAddrs() {
		if a.Addr().Is4() {
			tn.v4 = a
		} else {
			tn.v6 = a
		}
	}
	if !tn.v4.IsValid() || tn.v4.Port() == 0 {
		t.Fatalf("no IPv4 listener in %v", n.DNSAddrs())
	}
	if len(cfg.DNS.Listen) == 2 && !tn.v6.IsValid() {
		t.Fatalf("no IPv6 listener in %v", n.DNSAddrs())
	}
	for _, s := range tn.servers() {
		eventually(t, readyTimeout, func() error {
			r, err := run(t, "dig", s, "www.gslb.example.com", "A", "+time=1", "+tries=1")
			if err != nil {
				return err
			}
			if r.status != "NOERROR" {
				return fmt.Errorf("status %s", r.status)
			}
			return nil
		})
	}
	return tn
}

// demoConfigT loads the demo node config, failing the test on error.
func demoConfigT(t *testing.T, file string) node.Config {
	t.Helper()
	cfg, err := node.LoadConfig(file)
	if err != nil {
		t.Fatalf("LoadConfig(%s): %v", file, err)
	}
	cfg.WatchInterval = node.Duration{} // tests that want watching set it
	if cfg.Admin.Listen != "" {
		// The demo's admin port and audit file belong to `make run`.
		cfg.Admin.Listen = "127.0.0.1:0"
		cfg.Admin.AuditFile = filepath.Join(t.TempDir(), "audit.jsonl")
	}
	return cfg
}

// eventually polls f until it returns nil, failing the test with f's last
// error after timeout. It is the only way these tests wait.
func eventually(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %v", timeout, err)
		}
		<-tick.C
	}
}

// reply is what dig or kdig printed about the last response it got.
type reply struct {
	tool       string
	raw        string // the whole output, for failure messages
	status     string // NOERROR, NXDOMAIN, BADVERS...
	flags      []string
	edns       bool
	ednsVer    int
	ecs        string // CLIENT-SUBNET as printed, "198.51.100.0/24/24"; "" when absent
	question   string // the question line's fields joined by one space, case kept
	answer     []dns.RR
	authority  []dns.RR
	additional []dns.RR
	proto      string // UDP or TCP, as the tool reports it
	size       int    // bytes received
}

func (r reply) hasFlag(f string) bool { return slices.Contains(r.flags, f) }

// answers returns the answer section as lower-case presentation lines.
func (r reply) answers() []string { return rrStrings(r.answer) }

func rrStrings(rrs []dns.RR) []string {
	out := make([]string, len(rrs))
	for i, rr := range rrs {
		out[i] = strings.ToLower(rr.String())
	}
	return out
}

// ecsParts splits the printed CLIENT-SUBNET into source prefix and scope.
func (r reply) ecsParts(t *testing.T) (netip.Prefix, int) {
	t.Helper()
	i := strings.LastIndexByte(r.ecs, '/')
	if i < 0 {
		t.Fatalf("%s: CLIENT-SUBNET %q is not address/source/scope\n%s", r.tool, r.ecs, r.raw)
	}
	p, err := netip.ParsePrefix(r.ecs[:i])
	scope, err2 := strconv.Atoi(r.ecs[i+1:])
	if err != nil || err2 != nil {
		t.Fatalf("%s: CLIENT-SUBNET %q: %v %v\n%s", r.tool, r.ecs, err, err2, r.raw)
	}
	return p, scope
}

var (
	reStatus = regexp.MustCompile(`status: ([A-Z0-9]+)`)
	reFlags  = regexp.MustCompile(`^;; [Ff]lags: ([a-z ]*);`)
	reECS    = regexp.MustCompile(`^;+ CLIENT-SUBNET: (\S+)`)
	reEDNS   = regexp.MustCompile(`^(?:; EDNS: version: |;; Version: )(\d+)`)
	reProto  = regexp.MustCompile(`^;; (?:SERVER:|From) .*\((UDP|TCP)\)`)
	reSize   = regexp.MustCompile(`^;; (?:MSG SIZE  rcvd: (\d+)|Received (\d+) B)`)
)

// parse reads dig's or kdig's default output. When a tool prints several
// responses (dig retrying after BADVERS or TC), the last one wins.
func parse(tool, out string) (reply, error) {
	r := reply{tool: tool, raw: out}
	var section *[]dns.RR
	inQuestion := false
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.Contains(line, "->>HEADER<<-"):
			m := reStatus.FindStringSubmatch(line)
			if m == nil {
				return r, fmt.Errorf("%s: no status in %q", tool, line)
			}
			r = reply{tool: tool, raw: out, status: m[1]}
			section, inQuestion = nil, false
			continue
		case strings.TrimSpace(line) == "":
			section, inQuestion = nil, false
			continue
		case strings.HasSuffix(line, "QUESTION SECTION:"):
			inQuestion = true
			continue
		case strings.HasSuffix(line, "ANSWER SECTION:"):
			section = &r.answer
			continue
		case strings.HasSuffix(line, "AUTHORITY SECTION:"):
			section = &r.authority
			continue
		case strings.HasSuffix(line, "ADDITIONAL SECTION:"):
			section = &r.additional
			continue
		}
		if m := reFlags.FindStringSubmatch(line); m != nil {
			r.flags = strings.Fields(m[1])
		}
		if m := reECS.FindStringSubmatch(line); m != nil {
			r.ecs = m[1]
		}
		if m := reEDNS.FindStringSubmatch(line); m != nil {
			r.edns = true
			r.ednsVer, _ = strconv.Atoi(m[1])
		}
		if m := reProto.FindStringSubmatch(line); m != nil {
			r.proto = m[1]
		}
		if m := reSize.FindStringSubmatch(line); m != nil {
			r.size, _ = strconv.Atoi(m[1] + m[2])
		}
		switch {
		case inQuestion:
			r.question = strings.Join(strings.Fields(strings.TrimLeft(line, "; ")), " ")
			inQuestion = false
		case section != nil && !strings.HasPrefix(line, ";"):
			rr, err := dns.NewRR(line)
			if err != nil || rr == nil {
				return r, fmt.Errorf("%s: record line %q: %v", tool, line, err)
			}
			*section = append(*section, rr)
		}
	}
	if r.status == "" {
		return r, fmt.Errorf("%s printed no response header:\n%s", tool, out)
	}
	return r, nil
}

// run runs dig or kdig against server with args and parses the response.
// Recursion is not asked for (we are authoritative) and every run is
// bounded by digTimeout.
func run(t *testing.T, tool string, server netip.AddrPort, args ...string) (reply, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), digTimeout)
	defer cancel()
	base := []string{"@" + server.Addr().String(), "-p", strconv.Itoa(int(server.Port())), "+norec"}
	switch tool {
	case "dig":
		base = append(base, "+time=3", "+tries=2")
	case "kdig":
		base = append(base, "+time=3", "+retry=1")
	}
	cmd := exec.CommandContext(ctx, tool, append(base, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return reply{}, fmt.Errorf("%s %s: %w\n%s%s", tool, strings.Join(cmd.Args[1:], " "), err, out, stderr.String())
	}
	return parse(tool, string(out))
}

// query is run that fails the test when the tool gets no answer.
func query(t *testing.T, tool string, server netip.AddrPort, args ...string) reply {
	t.Helper()
	r, err := run(t, tool, server, args...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestE2EGeo: the answer and the ECS echo for clients in each region, over
// UDP and TCP, with dig and kdig, on every listener.
func TestE2EGeo(t *testing.T) {
	requireTools(t)
	t.Parallel()
	n := startNode(t, demoConfigT(t, demoConfig))
	tests := []struct {
		name   string
		args   []string // name, type and ECS
		answer []string
		// ecsSource is the source prefix echoed in CLIENT-SUBNET, "" for
		// no ECS option at all; the scope must be within scopeMin..scopeMax.
		// (us-east also gets every address GeoIP does not know, so its
		// scope is wider than the /24 asked about.)
		ecsSource          string
		scopeMin, scopeMax int
	}{
		{"eu-west", []string{"www.gslb.example.com", "A", "+subnet=198.51.100.0/24"},
			[]string{"www.gslb.example.com. 30 IN A 198.51.100.10"}, "198.51.100.0/24", 24, 24},
		{"ap-southeast", []string{"www.gslb.example.com", "A", "+subnet=203.0.113.0/24"},
			[]string{"www.gslb.example.com. 30 IN A 203.0.113.10"}, "203.0.113.0/24", 24, 24},
		{"us-east", []string{"www.gslb.example.com", "A", "+subnet=192.0.2.0/24"},
			[]string{"www.gslb.example.com. 30 IN A 192.0.2.10"}, "192.0.2.0/24", 1, 24},
		{"ap-southeast v6", []string{"www.gslb.example.com", "AAAA", "+subnet=2001:db8:3::/48"},
			[]string{"www.gslb.example.com. 30 IN AAAA 2001:db8:3::10"}, "2001:db8:3::/48", 48, 48},
		{"eu-west v6", []string{"www.gslb.example.com", "AAAA", "+subnet=2001:db8:2::/48"},
			[]string{"www.gslb.example.com. 30 IN AAAA 2001:db8:2::10"}, "2001:db8:2::/48", 48, 48},
		// The resolver's own address (loopback) is unknown to GeoIP: the
		// pool's order puts us-east first, and there is no ECS to echo.
		{"no ecs", []string{"www.gslb.example.com", "A"},
			[]string{"www.gslb.example.com. 30 IN A 192.0.2.10"}, "", 0, 0},
		// Source 0: "do not use client information"; the answer still comes,
		// valid for everyone (scope 0).
		{"ecs source 0", []string{"www.gslb.example.com", "A", "+subnet=0.0.0.0/0"},
			[]string{"www.gslb.example.com. 30 IN A 192.0.2.10"}, "0.0.0.0/0", 0, 0},
		// A /16 holding networks placed in different regions: the scope is
		// longer than the source (RFC 7871 7.2.1), claiming only the /18
		// that gets this answer; 198.51.100.0/24 gets eu-west.
		{"ecs /16", []string{"www.gslb.example.com", "A", "+subnet=198.51.0.0/16"},
			[]string{"www.gslb.example.com. 30 IN A 192.0.2.10"}, "198.51.0.0/16", 18, 18},
		// A static record does not depend on the client: scope 0.
		{"static with ecs", []string{"ns1.gslb.example.com", "A", "+subnet=198.51.100.0/24"},
			[]string{"ns1.gslb.example.com. 300 IN A 192.0.2.53"}, "198.51.100.0/24", 0, 0},
	}
	for _, server := range n.servers() {
		for _, tool := range []string{"dig", "kdig"} {
			for _, proto := range []string{"UDP", "TCP"} {
				// kdig sends no OPT record unless asked.
				opts := []string{"+notcp", "+edns=0"}
				if proto == "TCP" {
					opts[0] = "+tcp"
				}
				for _, tc := range tests {
					t.Run(fmt.Sprintf("%s/%s/%s/%s", server.Addr(), tool, proto, tc.name), func(t *testing.T) {
						r := query(t, tool, server, slices.Concat(tc.args, opts)...)
						if r.status != "NOERROR" || !r.hasFlag("qr") || !r.hasFlag("aa") || r.hasFlag("tc") {
							t.Errorf("status %s flags %v, want NOERROR with qr aa, no tc\n%s", r.status, r.flags, r.raw)
						}
						if got, want := r.answers(), lowerAll(tc.answer); !slices.Equal(got, want) {
							t.Errorf("answer %q, want %q\n%s", got, want, r.raw)
						}
						if r.proto != proto {
							t.Errorf("%s reports transport %q, want %s", tool, r.proto, proto)
						}
						if !r.edns || r.ednsVer != 0 {
							t.Errorf("reply EDNS %v version %d, want an OPT record of version 0\n%s", r.edns, r.ednsVer, r.raw)
						}
						if tc.ecsSource == "" {
							if r.ecs != "" {
								t.Errorf("CLIENT-SUBNET %q in the reply to a query without ECS", r.ecs)
							}
							return
						}
						src, scope := r.ecsParts(t)
						if src.String() != tc.ecsSource || scope < tc.scopeMin || scope > tc.scopeMax {
							t.Fatalf("CLIENT-SUBNET %s, want source %s and scope in %d..%d\n%s", r.ecs, tc.ecsSource, tc.scopeMin, tc.scopeMax, r.raw)
						}
						// The scope is a claim: every client in src/scope gets
						// this answer. Ask for the farthest subnet it covers.
						other := farthestSubnet(src, scope)
						args := slices.Concat(tc.args[:2], []string{"+subnet=" + other.String()}, opts)
						r2 := query(t, tool, server, args...)
						if got, want := r2.answers(), r.answers(); !slices.Equal(got, want) {
							t.Errorf("scope /%d claims %s gets the answer of %s, %q; it got %q\n%s", scope, other, src, want, got, r2.raw)
						}
					})
				}
			}
		}
	}
}

// farthestSubnet is the last prefix of src's length inside src/scope, or,
// when the scope is longer than the source, the last address it claims.
func farthestSubnet(src netip.Prefix, scope int) netip.Prefix {
	bits := src.Bits()
	if scope > bits {
		bits = src.Addr().BitLen()
	}
	a := src.Addr().As16()
	off := 0
	if src.Addr().Is4() {
		off = 96
	}
	for bit := scope; bit < src.Addr().BitLen(); bit++ {
		i := off + bit
		a[i/8] |= 0x80 >> (i % 8)
	}
	addr := netip.AddrFrom16(a)
	if src.Addr().Is4() {
		addr = addr.Unmap()
	}
	return netip.PrefixFrom(addr, bits).Masked()
}

// TestE2EResponses: rcodes, sections and header bits for the shapes of
// answer an authoritative server gives.
func TestE2EResponses(t *testing.T) {
	requireTools(t)
	t.Parallel()
	n := startNode(t, demoConfigT(t, demoConfig))
	tests := []struct {
		name      string
		args      []string
		status    string
		aa        bool
		question  string // exactly as printed, case kept; "" = not checked
		answer    []string
		authority []string
	}{
		{name: "nxdomain", args: []string{"nope.gslb.example.com", "A"}, status: "NXDOMAIN", aa: true,
			authority: []string{negSOA}},
		{name: "nxdomain below a pool", args: []string{"a.www.gslb.example.com", "AAAA"}, status: "NXDOMAIN", aa: true,
			authority: []string{negSOA}},
		{name: "nodata", args: []string{"www.gslb.example.com", "TXT"}, status: "NOERROR", aa: true,
			authority: []string{negSOA}},
		{name: "nodata static", args: []string{"ns1.gslb.example.com", "MX"}, status: "NOERROR", aa: true,
			authority: []string{negSOA}},
		{name: "refused outside our zones", args: []string{"example.org", "A"}, status: "REFUSED", aa: false},
		{name: "refused parent zone", args: []string{"example.com", "SOA"}, status: "REFUSED", aa: false},
		{name: "refused chaos class", args: []string{"-c", "CH", "version.bind", "TXT"}, status: "REFUSED", aa: false},
		{name: "case preserved", args: []string{"WwW.GsLb.Example.Com", "A"}, status: "NOERROR", aa: true,
			question: "WwW.GsLb.Example.Com. IN A",
			answer:   []string{"www.gslb.example.com. 30 IN A 192.0.2.10"}},
		{name: "case preserved nxdomain", args: []string{"NoPe.GSLB.example.COM", "A"}, status: "NXDOMAIN", aa: true,
			question: "NoPe.GSLB.example.COM. IN A", authority: []string{negSOA}},
		{name: "cname followed", args: []string{"status.gslb.example.com", "A"}, status: "NOERROR", aa: true,
			answer: []string{
				"status.gslb.example.com. 300 IN CNAME www.gslb.example.com.",
				"www.gslb.example.com. 30 IN A 192.0.2.10",
			}},
		{name: "cname followed with ecs", args: []string{"status.gslb.example.com", "AAAA", "+subnet=2001:db8:2::/48"}, status: "NOERROR", aa: true,
			answer: []string{
				"status.gslb.example.com. 300 IN CNAME www.gslb.example.com.",
				"www.gslb.example.com. 30 IN AAAA 2001:db8:2::10",
			}},
		{name: "cname asked for", args: []string{"status.gslb.example.com", "CNAME"}, status: "NOERROR", aa: true,
			answer: []string{"status.gslb.example.com. 300 IN CNAME www.gslb.example.com."}},
		{name: "wildcard", args: []string{"foo.static.gslb.example.com", "A"}, status: "NOERROR", aa: true,
			question: "foo.static.gslb.example.com. IN A",
			answer:   []string{"foo.static.gslb.example.com. 600 IN A 192.0.2.80"}},
		{name: "wildcard deeper", args: []string{"a.b.static.gslb.example.com", "A"}, status: "NOERROR", aa: true,
			answer: []string{"a.b.static.gslb.example.com. 600 IN A 192.0.2.80"}},
		{name: "wildcard nodata", args: []string{"foo.static.gslb.example.com", "AAAA"}, status: "NOERROR", aa: true,
			authority: []string{negSOA}},
		{name: "empty non-terminal", args: []string{"static.gslb.example.com", "A"}, status: "NOERROR", aa: true,
			authority: []string{negSOA}},
		{name: "apex soa", args: []string{"gslb.example.com", "SOA"}, status: "NOERROR", aa: true,
			answer: []string{"gslb.example.com. 300 IN SOA ns1.gslb.example.com. hostmaster.example.com. 2026112501 3600 600 1209600 60"}},
		{name: "apex ns", args: []string{"gslb.example.com", "NS"}, status: "NOERROR", aa: true,
			answer: []string{
				"gslb.example.com. 300 IN NS ns1.gslb.example.com.",
				"gslb.example.com. 300 IN NS ns2.gslb.example.com.",
			}},
		{name: "apex mx", args: []string{"gslb.example.com", "MX"}, status: "NOERROR", aa: true,
			answer: []string{"gslb.example.com. 300 IN MX 10 mail.example.com."}},
		{name: "failover pool", args: []string{"db.gslb.example.com", "A", "+subnet=198.51.100.0/24"}, status: "NOERROR", aa: true,
			answer: []string{"db.gslb.example.com. 15 IN A 192.0.2.30"}},
		{name: "badvers", args: []string{"www.gslb.example.com", "A", "+edns=1", "+noednsneg"}, status: "BADVERS", aa: false},
		// Without +noednsneg dig sees BADVERS and asks again with version 0.
		{name: "badvers then retry", args: []string{"www.gslb.example.com", "A", "+edns=1"}, status: "NOERROR", aa: true,
			answer: []string{"www.gslb.example.com. 30 IN A 192.0.2.10"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := query(t, "dig", n.v4, tc.args...)
			if r.status != tc.status || r.hasFlag("aa") != tc.aa || !r.hasFlag("qr") {
				t.Errorf("status %s flags %v, want %s with aa=%v\n%s", r.status, r.flags, tc.status, tc.aa, r.raw)
			}
			if tc.question != "" && r.question != tc.question {
				t.Errorf("question %q, want %q (case preserved)\n%s", r.question, tc.question, r.raw)
			}
			if got, want := r.answers(), lowerAll(tc.answer); !slices.Equal(got, want) {
				t.Errorf("answer %q, want %q\n%s", got, want, r.raw)
			}
			if got, want := rrStrings(r.authority), lowerAll(tc.authority); !slices.Equal(got, want) {
				t.Errorf("authority %q, want %q\n%s", got, want, r.raw)
			}
			// dig sent EDNS, so every reply has our OPT record, version 0;
			// with BADVERS it is how the client learns the version we speak.
			if !r.edns || r.ednsVer != 0 {
				t.Errorf("reply EDNS %v version %d, want an OPT record of version 0\n%s", r.edns, r.ednsVer, r.raw)
			}
		})
	}
	t.Run("badvers is reported", func(t *testing.T) {
		r := query(t, "dig", n.v4, "www.gslb.example.com", "A", "+edns=1")
		if !strings.Contains(r.raw, "BADVERS") {
			t.Errorf("dig did not see BADVERS before retrying with version 0:\n%s", r.raw)
		}
	})
	// RFC 8482: ANY gets one RRset, over either transport.
	for _, transport := range []string{"+notcp", "+tcp"} {
		for _, name := range []string{"www.gslb.example.com", "gslb.example.com", "ns1.gslb.example.com"} {
			t.Run("any/"+name+transport, func(t *testing.T) {
				r := query(t, "dig", n.v4, name, "ANY", transport)
				if r.status != "NOERROR" || !r.hasFlag("aa") || len(r.answer) == 0 {
					t.Fatalf("status %s flags %v with %d answers, want NOERROR aa and one RRset\n%s", r.status, r.flags, len(r.answer), r.raw)
				}
				h := r.answer[0].Header()
				for _, rr := range r.answer[1:] {
					if !strings.EqualFold(rr.Header().Name, h.Name) || rr.Header().Rrtype != h.Rrtype {
						t.Errorf("ANY answer holds more than one RRset: %q\n%s", r.answers(), r.raw)
					}
				}
			})
		}
	}
	// Glue for in-zone name servers comes with the apex NS set.
	t.Run("apex ns glue", func(t *testing.T) {
		r := query(t, "dig", n.v4, "gslb.example.com", "NS")
		got := rrStrings(r.additional)
		want := lowerAll([]string{
			"ns1.gslb.example.com. 300 IN A 192.0.2.53",
			"ns2.gslb.example.com. 300 IN A 198.51.100.53",
			"ns1.gslb.example.com. 300 IN AAAA 2001:db8:1::53",
			"ns2.gslb.example.com. 300 IN AAAA 2001:db8:2::53",
		})
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("additional %q, want glue %q\n%s", got, want, r.raw)
		}
	})
}

func lowerAll(s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		rr, err := dns.NewRR(x)
		if err != nil {
			panic(fmt.Sprintf("bad RR in test table %q: %v", x, err))
		}
		out[i] = strings.ToLower(rr.String())
	}
	return out
}

// writeZoneDir copies the demo zone into a new directory with extra TOML
// appended, and returns a config serving it with the demo GeoIP database.
func writeZoneDir(t *testing.T, extra string) node.Config {
	t.Helper()
	cfg := demoConfigT(t, demoConfig)
	data, err := os.ReadFile(filepath.Join(cfg.Zones, demoZone))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, demoZone), append(data, extra...), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Zones = dir
	return cfg
}

// addressList is a TOML array of n addresses prefix.1 ... prefix.n.
func addressList(prefix string, n int) string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprintf("%q", fmt.Sprintf("%s.%d", prefix, i+1))
	}
	return "[" + strings.Join(s, ", ") + "]"
}

// TestE2ETruncation: a UDP answer larger than the client's buffer (512
// without EDNS, min(bufsize, 1232) with) comes with TC and fits; the same
// question over TCP gets everything.
func TestE2ETruncation(t *testing.T) {
	requireTools(t)
	t.Parallel()
	// 60 A records: ~1 KB, over 512 but under 1232; 100: over 1232.
	cfg := writeZoneDir(t, fmt.Sprintf("\n[records.big]\nA = %s\n\n[records.huge]\nA = %s\n",
		addressList("192.0.2", 60), addressList("198.51.100", 100)))
	n := startNode(t, cfg)
	tests := []struct {
		name  string
		tool  string
		args  []string
		tc    bool   // truncated: some but not all records; else all
		max   int    // the reply must not exceed this many bytes
		all   int    // records the name has
		proto string // the transport the final answer came over
	}{
		{"edns 512", "dig", []string{"big.gslb.example.com", "A", "+bufsize=512", "+notcp", "+ignore"}, true, 512, 60, "UDP"},
		{"no edns", "dig", []string{"big.gslb.example.com", "A", "+noedns", "+notcp", "+ignore"}, true, 512, 60, "UDP"},
		{"edns buffer below 512", "dig", []string{"big.gslb.example.com", "A", "+bufsize=100", "+notcp", "+ignore"}, true, 512, 60, "UDP"},
		{"fits default edns", "dig", []string{"big.gslb.example.com", "A", "+notcp", "+ignore"}, false, 1232, 60, "UDP"},
		{"capped at 1232", "dig", []string{"huge.gslb.example.com", "A", "+bufsize=4096", "+notcp", "+ignore"}, true, 1232, 100, "UDP"},
		{"tcp", "dig", []string{"big.gslb.example.com", "A", "+tcp", "+noedns"}, false, 65535, 60, "TCP"},
		{"tcp huge", "dig", []string{"huge.gslb.example.com", "A", "+tcp"}, false, 65535, 100, "TCP"},
		{"dig retries over tcp", "dig", []string{"big.gslb.example.com", "A", "+noedns", "+notcp"}, false, 65535, 60, "TCP"},
		{"kdig truncated", "kdig", []string{"big.gslb.example.com", "A", "+bufsize=512", "+ignore"}, true, 512, 60, "UDP"},
		{"kdig no edns truncated", "kdig", []string{"big.gslb.example.com", "A", "+noedns", "+ignore"}, true, 512, 60, "UDP"},
		{"kdig retries over tcp", "kdig", []string{"huge.gslb.example.com", "A"}, false, 65535, 100, "TCP"},
		{"kdig tcp", "kdig", []string{"huge.gslb.example.com", "A", "+tcp"}, false, 65535, 100, "TCP"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := query(t, tc.tool, n.v4, tc.args...)
			if r.status != "NOERROR" || !r.hasFlag("aa") || r.hasFlag("tc") != tc.tc {
				t.Errorf("status %s flags %v, want NOERROR aa, tc=%v\n%s", r.status, r.flags, tc.tc, r.raw)
			}
			if r.size == 0 || r.size > tc.max {
				t.Errorf("reply of %d bytes, want 1..%d\n%s", r.size, tc.max, r.raw)
			}
			if r.proto != tc.proto {
				t.Errorf("answer came over %q, want %s\n%s", r.proto, tc.proto, r.raw)
			}
			if n := len(r.answer); (tc.tc && (n == 0 || n >= tc.all)) || (!tc.tc && n != tc.all) {
				t.Errorf("%d answer records of %d, truncated=%v\n%s", n, tc.all, tc.tc, r.raw)
			}
			for _, rr := range r.answer {
				if !strings.HasPrefix(rr.Header().Name, strings.Split(tc.args[0], ".")[0]+".") {
					t.Errorf("record %s is not for %s", rr, tc.args[0])
				}
			}
		})
	}
}

// reloadErrors reads meridian_config_reloads_total{result="error"}.
func reloadErrors(t *testing.T, n *node.Node) float64 {
	t.Helper()
	mfs, err := n.Registry().Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "meridian_config_reloads_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == "error" {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// copyDir copies the regular files of src (one level of subdirectories,
// as deploy/demo has) into dst.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(target)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
}

// replaceFile writes data to a new file beside name and renames it over
// name, so the watcher never reads half a file.
func replaceFile(t *testing.T, name, data string) {
	t.Helper()
	tmp := name + ".new" // not *.toml: the watcher ignores it
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, name); err != nil {
		t.Fatal(err)
	}
}

// TestE2EReload: an edited zone file is picked up by the watcher; a broken
// one is refused with file:line while the last good config keeps serving;
// a fixed one is picked up again.
func TestE2EReload(t *testing.T) {
	requireTools(t)
	t.Parallel()
	dir := t.TempDir()
	copyDir(t, filepath.Dir(demoConfig), dir)
	cfg := demoConfigT(t, filepath.Join(dir, "node.toml"))
	cfg.WatchInterval = node.Duration{Duration: 100 * time.Millisecond}
	zoneFile := filepath.Join(dir, "zones", demoZone)
	n := startNode(t, cfg)

	euWest := func() (string, error) {
		r, err := run(t, "dig", n.v4, "www.gslb.example.com", "A", "+subnet=198.51.100.0/24", "+time=1", "+tries=1")
		if err != nil {
			return "", err
		}
		if r.status != "NOERROR" || len(r.answer) != 1 {
			return "", fmt.Errorf("status %s, %d answers\n%s", r.status, len(r.answer), r.raw)
		}
		a, ok := r.answer[0].(*dns.A)
		if !ok {
			return "", fmt.Errorf("answer %s is not an A record", r.answer[0])
		}
		return a.A.String(), nil
	}
	waitFor := func(want string) {
		t.Helper()
		eventually(t, readyTimeout, func() error {
			got, err := euWest()
			if err != nil {
				return err
			}
			if got != want {
				return fmt.Errorf("eu-west answers %s, want %s", got, want)
			}
			return nil
		})
	}
	waitFor("198.51.100.10")

	good, err := os.ReadFile(zoneFile)
	if err != nil {
		t.Fatal(err)
	}
	const member = `addresses = ["198.51.100.10", "2001:db8:2::10"]`
	if !strings.Contains(string(good), member) {
		t.Fatalf("%s no longer has the line %s", zoneFile, member)
	}
	// Edited in place. A longer address also changes the file's size, so
	// the edit is seen even where modification times are coarse.
	edited := strings.Replace(string(good), member, `addresses = ["198.51.100.111", "2001:db8:2::10"]`, 1)
	if err := os.WriteFile(zoneFile, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor("198.51.100.111")

	// A syntax error in the middle of the file, on a line of its own,
	// written as editors do: a new file renamed over the old one.
	lines := strings.SplitAfter(edited, "\n")
	const badLine = 12
	broken := strings.Join(lines[:badLine-1], "") + "oops = = 1\n" + strings.Join(lines[badLine-1:], "")
	errorsBefore := reloadErrors(t, n.Node)
	replaceFile(t, zoneFile, broken)
	eventually(t, readyTimeout, func() error {
		if reloadErrors(t, n.Node) <= errorsBefore {
			return errors.New("the watcher has not tried the broken file yet")
		}
		return nil
	})
	for i := range 5 {
		got, err := euWest()
		if err != nil {
			t.Fatalf("query %d after the broken edit: %v", i, err)
		}
		if got != "198.51.100.111" {
			t.Fatalf("query %d after the broken edit: eu-west answers %s, want the last good 198.51.100.111", i, got)
		}
	}
	err = n.Reload()
	if err == nil {
		t.Fatal("Reload of a file with a syntax error succeeded")
	}
	if want := fmt.Sprintf("%s:%d:", zoneFile, badLine); !strings.Contains(err.Error(), want) {
		t.Errorf("Reload error %q does not name %s", err, want)
	}
	if got, err := euWest(); err != nil || got != "198.51.100.111" {
		t.Errorf("after the refused Reload: eu-west answers %s (%v), want 198.51.100.111", got, err)
	}

	// The watcher is still alive: a fixed file is loaded.
	fixed := strings.Replace(string(good), member, `addresses = ["198.51.100.122", "2001:db8:2::10"]`, 1)
	replaceFile(t, zoneFile, fixed)
	waitFor("198.51.100.122")
}
