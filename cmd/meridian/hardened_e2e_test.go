package main

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// requireTool skips the test when a tool is missing, unless
// MERIDIAN_REQUIRE_TOOLS is set (CI): then it fails.
func requireTool(t *testing.T, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			if os.Getenv("MERIDIAN_REQUIRE_TOOLS") != "" {
				t.Fatalf("%s is not installed", name)
			}
			t.Skipf("%s is not installed", name)
		}
	}
}

// hardenedNode is the hardened example started from a built binary.
type hardenedNode struct {
	dns     string // address:port
	metrics string // address:port
}

// startHardened copies deploy/examples/hardened (and the demo zone and
// GeoIP database it uses) and starts it, with edit applied to its config
// and a metrics listener added.
func startHardened(t *testing.T, bin string, edit func(string) string) *hardenedNode {
	t.Helper()
	root := t.TempDir()
	copyDir(t, "../../deploy/examples/hardened", filepath.Join(root, "deploy/examples/hardened"))
	copyDir(t, "../../deploy/demo", filepath.Join(root, "deploy/demo"))
	os.Chmod(filepath.Join(root, "deploy/examples/hardened/cookie.secret"), 0o600)
	cfgFile := filepath.Join(root, "deploy/examples/hardened/node.toml")
	data, err := os.ReadFile(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	metrics := freeAddr(t)
	cfg := fmt.Sprintf("metrics_listen = %q\n", metrics) + string(data)
	if edit != nil {
		cfg = edit(cfg)
	}
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "check", "-config", cfgFile).CombinedOutput(); err != nil {
		t.Fatalf("meridian check: %v\n%s", err, out)
	}
	n := &hardenedNode{metrics: metrics}
	re := regexp.MustCompile(`listen = \["([0-9.]+:[0-9]+)"\]`)
	m := re.FindStringSubmatch(cfg)
	if m == nil {
		t.Fatal("no dns listen address in the config")
	}
	n.dns = m[1]
	startProc(t, "meridian", bin, "serve", "-config", cfgFile)
	waitUntil(t, 15*time.Second, func() error {
		_, err := exchange(n.dns, "127.0.0.1", false, query("www.gslb.example.com.", dns.TypeA))
		return err
	})
	return n
}

// freeAddr returns a loopback address:port nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func query(name string, qtype uint16, opts ...dns.EDNS0) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.SetEdns0(1232, false)
	m.IsEdns0().Option = append(m.IsEdns0().Option, opts...)
	return m
}

// exchange sends m from the local address from, over TCP or UDP.
func exchange(server, from string, tcp bool, m *dns.Msg) (*dns.Msg, error) {
	c := &dns.Client{Timeout: 2 * time.Second}
	if tcp {
		c.Net = "tcp"
		c.Dialer = &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 2 * time.Second}
	} else {
		c.Dialer = &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(from)}, Timeout: 2 * time.Second}
	}
	r, _, err := c.Exchange(m, server)
	return r, err
}

// metric sums the samples of a metric whose labels contain every one of
// labels (e.g. `class="answer"`).
func (n *hardenedNode) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + n.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if !ok {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

// dnsperfResult is what dnsperf reports.
type dnsperfResult struct {
	sent, completed, lost int
	rcodes                map[string]int
	out                   string
}

// dnsperf runs dnsperf from local address from against server, sending
// the queries of lines at qps for secs seconds.
func dnsperf(t *testing.T, server, from string, lines []string, qps, secs int) dnsperfResult {
	t.Helper()
	file := filepath.Join(t.TempDir(), "queries")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(server)
	cmd := exec.Command("dnsperf", "-s", host, "-p", port, "-a", from, "-d", file,
		// Dropped queries hold an outstanding slot until the 1 s timeout:
		// allow a second of the rate outstanding, or dnsperf slows down.
		"-Q", strconv.Itoa(qps), "-l", strconv.Itoa(secs), "-t", "1", "-q", strconv.Itoa(max(qps, 100)), "-c", "1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dnsperf: %v\n%s", err, out)
	}
	r := dnsperfResult{rcodes: map[string]int{}, out: string(out)}
	num := func(label string) int {
		m := regexp.MustCompile(label + `:\s+(\d+)`).FindStringSubmatch(r.out)
		if m == nil {
			t.Fatalf("dnsperf printed no %q:\n%s", label, r.out)
		}
		v, _ := strconv.Atoi(m[1])
		return v
	}
	r.sent, r.completed, r.lost = num("Queries sent"), num("Queries completed"), num("Queries lost")
	if m := regexp.MustCompile(`Response codes:\s+(.*)`).FindStringSubmatch(r.out); m != nil {
		for _, part := range strings.Split(m[1], ",") {
			f := strings.Fields(part)
			if len(f) >= 2 {
				r.rcodes[f[0]], _ = strconv.Atoi(f[1])
			}
		}
	}
	return r
}

// TestE2EHardened starts deploy/examples/hardened from the built binary
// and checks each protection with real clients: NSID and cookies with dig
// and kdig, rate limiting under a dnsperf flood, TCP fairness under 1,500
// idle connections, and two nodes sharing a cookie secret.
func TestE2EHardened(t *testing.T) {
	if testing.Short() {
		t.Skip("floods a node for seconds")
	}
	requireTool(t, "dig", "kdig", "dnsperf")
	bin := filepath.Join(t.TempDir(), "meridian")
	goBuild(t, bin, ".")
	n := startHardened(t, bin, nil)
	dig := func(tool string, args ...string) string {
		t.Helper()
		host, port, _ := net.SplitHostPort(n.dns)
		out, err := exec.Command(tool, append([]string{"@" + host, "-p", port, "www.gslb.example.com", "A"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", tool, args, err, out)
		}
		return string(out)
	}

	t.Run("NSID", func(t *testing.T) {
		if out := dig("dig", "+nsid"); !strings.Contains(out, `NSID: 68 61 72 64 65 6e 65 64 2d 31 ("hardened-1")`) {
			t.Errorf("dig +nsid:\n%s", out)
		}
		if out := dig("kdig", "+nsid"); !strings.Contains(out, `NSID: 68617264656E65642D31 "hardened-1"`) {
			t.Errorf("kdig +nsid:\n%s", out)
		}
		if out := dig("dig"); strings.Contains(out, "NSID") {
			t.Errorf("NSID sent unasked:\n%s", out)
		}
	})

	cookieRE := regexp.MustCompile(`COOKIE: ([0-9a-fA-F]+)( \(good\))?`)
	var serverCookie string // client and server cookie, as dig prints it
	t.Run("cookies", func(t *testing.T) {
		m := cookieRE.FindStringSubmatch(dig("dig", "+cookie"))
		if m == nil || m[2] == "" || len(m[1]) != 48 {
			t.Fatalf("dig +cookie: %v", m)
		}
		serverCookie = m[1]
		// Sent back, the cookie is good again (the node echoes it while
		// it is younger than half an hour).
		if m := cookieRE.FindStringSubmatch(dig("dig", "+cookie="+serverCookie)); m == nil || m[2] == "" || m[1] != serverCookie {
			t.Errorf("dig +cookie=%s: %v", serverCookie, m)
		}
		// kdig agrees: the same client cookie comes back with a server
		// cookie, and kdig warns of nothing.
		out := dig("kdig", "+cookie="+serverCookie)
		if m := cookieRE.FindStringSubmatch(out); m == nil || !strings.EqualFold(m[1], serverCookie) || strings.Contains(strings.ToLower(out), "warning") {
			t.Errorf("kdig +cookie=%s:\n%s", serverCookie, out)
		}
		// A malformed cookie (7 bytes) gets FORMERR.
		bad := &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "01020304050607"}
		r, err := exchange(n.dns, "127.0.0.1", false, query("www.gslb.example.com.", dns.TypeA, bad))
		if err != nil || r.Rcode != dns.RcodeFormatError {
			t.Errorf("7-byte cookie: %v %v, want FORMERR", r, err)
		}
	})

	t.Run("rate limiting", func(t *testing.T) {
		// The flooding address's own cookie: a server cookie is good only
		// for the address it was given to.
		r, err := exchange(n.dns, "127.0.0.2", false, query("www.gslb.example.com.", dns.TypeA, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0123456789abcdef"}))
		if err != nil {
			t.Fatal(err)
		}
		var floodCookie string
		for _, o := range r.IsEdns0().Option {
			if c, ok := o.(*dns.EDNS0_COOKIE); ok {
				floodCookie = c.Cookie
			}
		}
		if len(floodCookie) != 48 {
			t.Fatalf("no server cookie for 127.0.0.2: %q", floodCookie)
		}
		madeBefore := n.metric(t, "meridian_dns_answers_total", `pool="www.gslb.example.com."`)
		droppedBefore := n.metric(t, "meridian_dns_rrl_responses_total", `class="answer"`, `action="dropped"`)
		slippedBefore := n.metric(t, "meridian_dns_rrl_responses_total", `class="answer"`, `action="slipped"`)
		var wg sync.WaitGroup
		var flood dnsperfResult
		wg.Add(1)
		go func() {
			defer wg.Done()
			flood = dnsperf(t, n.dns, "127.0.0.2", []string{"www.gslb.example.com A"}, 20000, 10)
		}()
		// A second client in the same /24, as a resolver would: 100 q/s for
		// 10 s over 100 names (each asked once a second, under the rate).
		// And the flooding address itself, asking the flooded name with
		// the cookie the node gave it, 10 q/s.
		type tally struct{ sent, answered, truncated, failed int }
		steady := func(from string, qps, secs int, name func(i int) string, opts ...dns.EDNS0) tally {
			var tl tally
			tick := time.NewTicker(time.Second / time.Duration(qps))
			defer tick.Stop()
			for i := range qps * secs {
				<-tick.C
				tl.sent++
				r, err := exchange(n.dns, from, false, query(name(i), dns.TypeA, opts...))
				switch {
				case err != nil:
					tl.failed++
				case r.Truncated:
					tl.truncated++
				case r.Rcode == dns.RcodeSuccess && len(r.Answer) == 1:
					tl.answered++
				default:
					tl.failed++
				}
			}
			return tl
		}
		var other, cookied tally
		wg.Add(2)
		go func() {
			defer wg.Done()
			other = steady("127.0.0.3", 100, 10, func(i int) string { return fmt.Sprintf("n%d.static.gslb.example.com.", i%100) })
		}()
		go func() {
			defer wg.Done()
			www := func(int) string { return "www.gslb.example.com." }
			cookied = steady("127.0.0.2", 10, 9, www, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: floodCookie})
		}()
		wg.Wait()
		dropped := n.metric(t, "meridian_dns_rrl_responses_total", `class="answer"`, `action="dropped"`) - droppedBefore
		slipped := n.metric(t, "meridian_dns_rrl_responses_total", `class="answer"`, `action="slipped"`) - slippedBefore
		limited := dropped + slipped
		// Full answers sent to the flood: the www answers made, less those
		// withheld, less the cookie client's.
		made := n.metric(t, "meridian_dns_answers_total", `pool="www.gslb.example.com."`) - madeBefore
		answered := made - limited - float64(cookied.answered)
		t.Logf("flood from 127.0.0.2, 20,000 q/s for 10 s: dnsperf sent %d, completed %d, lost %d; the node withheld %.0f (dropped %.0f, slipped as TC %.0f) and sent %.0f full answers, %.1f/s",
			flood.sent, flood.completed, flood.lost, limited, dropped, slipped, answered, answered/10)
		t.Logf("127.0.0.3 at 100 q/s over 100 names: %+v; 127.0.0.2 asking the flooded name with its cookie at 10 q/s: %+v", other, cookied)
		if other.answered != other.sent {
			t.Errorf("the second client lost queries: %+v", other)
		}
		if cookied.answered != cookied.sent {
			t.Errorf("queries with a valid server cookie were limited: %+v", cookied)
		}
		if answered < 150 || answered > 400 {
			t.Errorf("the flooding address got %.0f full answers in 10 s, want about 200 (20/s)", answered)
		}
		if slipped < 0.45*(dropped+slipped) || slipped > 0.55*(dropped+slipped) {
			t.Errorf("slip 2: %.0f of %.0f limited responses slipped, want half", slipped, dropped+slipped)
		}
	})

	t.Run("NXDOMAIN flood", func(t *testing.T) {
		var names []string
		for range 5000 {
			names = append(names, fmt.Sprintf("r%08x.gslb.example.com A", rand.Uint32()))
		}
		before := n.metric(t, "meridian_dns_rrl_responses_total", `class="nxdomain"`)
		slippedBefore := n.metric(t, "meridian_dns_rrl_responses_total", `class="nxdomain"`, `action="slipped"`)
		r := dnsperf(t, n.dns, "127.0.0.4", names, 5000, 3)
		limited := n.metric(t, "meridian_dns_rrl_responses_total", `class="nxdomain"`) - before
		slipped := n.metric(t, "meridian_dns_rrl_responses_total", `class="nxdomain"`, `action="slipped"`) - slippedBefore
		full := float64(r.completed) - slipped
		t.Logf("random names from 127.0.0.4, 5,000 q/s for 3 s: sent %d, completed %d, rcodes %v; limited %.0f; %.0f answered in full", r.sent, r.completed, r.rcodes, limited, full)
		if full > 150 || limited < float64(r.sent)/2 {
			t.Errorf("random-name NXDOMAINs are not limited per zone: %.0f answered in full, %.0f limited of %d", full, limited, r.sent)
		}
	})

	t.Run("TCP fairness", func(t *testing.T) {
		// 1,500 idle connections from 127.0.0.2: the node keeps 8.
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 2 * time.Second}
		for range 1500 {
			c, err := d.Dial("tcp", n.dns)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			conns = append(conns, c)
		}
		// Then enough idle clients, 8 connections each, to fill the table
		// of 64.
		for i := 10; i < 20; i++ {
			d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(fmt.Sprintf("127.0.0.%d", i))}, Timeout: 2 * time.Second}
			for range 8 {
				c, err := d.Dial("tcp", n.dns)
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				conns = append(conns, c)
			}
		}
		var took []time.Duration
		for range 5 {
			start := time.Now()
			r, err := exchange(n.dns, "127.0.0.3", true, query("www.gslb.example.com.", dns.TypeA))
			if err != nil || r.Rcode != dns.RcodeSuccess {
				t.Fatalf("TCP query from 127.0.0.3 with the table full: %v %v", r, err)
			}
			took = append(took, time.Since(start))
		}
		sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
		perClient := n.metric(t, "meridian_dns_tcp_evicted_connections_total", `reason="per_client_limit"`)
		evicted := n.metric(t, "meridian_dns_tcp_evicted_connections_total", `reason="evicted_for_new"`)
		t.Logf("TCP query from 127.0.0.3 after 1,500 idle connections from 127.0.0.2 and 80 from 127.0.0.10-19: median %s, max %s over 5; closed for the per-client limit %.0f, evicted for new %.0f",
			took[2], took[4], perClient, evicted)
		if took[2] > 100*time.Millisecond {
			t.Errorf("median TCP answer %s, want under 100 ms", took[2])
		}
		if perClient < 1492 || evicted < 1 {
			t.Errorf("metrics: per-client closes %.0f (want ≥ 1,492), evictions %.0f (want ≥ 1)", perClient, evicted)
		}
	})

	t.Run("two nodes share a secret", func(t *testing.T) {
		if serverCookie == "" {
			t.Skip("needs the cookie of the cookies test")
		}
		// A second node with the same secret file, requiring cookies.
		addr := freeAddr(t)
		n2 := startHardened(t, bin, func(cfg string) string {
			cfg = strings.Replace(cfg, `listen = ["127.0.0.1:5355"]`, fmt.Sprintf("listen = [%q]", addr), 1)
			return strings.Replace(cfg, "# require = false", "require = true", 1)
		})
		good := &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: serverCookie}
		r, err := exchange(n2.dns, "127.0.0.1", false, query("www.gslb.example.com.", dns.TypeA, good))
		if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Errorf("node 1's cookie at node 2, which requires one: %v %v", r, err)
		}
		clientOnly := &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: serverCookie[:16]}
		r, err = exchange(n2.dns, "127.0.0.1", false, query("www.gslb.example.com.", dns.TypeA, clientOnly))
		if err != nil || r.Rcode != dns.RcodeBadCookie {
			t.Errorf("a client cookie alone at node 2: %v %v, want BADCOOKIE", r, err)
		}
	})
}
