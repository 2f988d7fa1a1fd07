package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/miekg/dns"
)

// The addresses of TestE2EDelegation, all on loopback. Port 53 throughout
// for the authoritative side: glue carries no port, and a resolver asks
// port 53. None is 127.0.0.1, where a packaged knot or unbound started by
// apt-get would listen, so the test runs beside them.
const (
	delegParent   = "127.0.0.40" // knot: the root and example.test
	delegResolver = "127.0.0.50" // unbound, on a free port
	delegZone     = "gslb.example.test."
	delegWWW      = "www.gslb.example.test."
)

// delegNodes are the Meridian nodes, in the order of ns1..ns3.
var delegNodes = []struct{ name, addr, region string }{
	{"node1", "127.0.0.41", "us-east"},
	{"node2", "127.0.0.42", "eu-west"},
	{"node3", "127.0.0.43", "ap-southeast"},
}

// The answers of the www pool, per region (deploy/e2e/gslb.example.test.toml.tmpl).
const (
	usEast      = "192.0.2.10"
	euWest      = "198.51.100.10"
	apSoutheast = "203.0.113.10"
)

// TestE2EDelegation runs Meridian as the real world meets it: three nodes
// from the built binary, a gossip cluster on 127.0.0.41-43:53, delegated
// to by a parent (knot serving the root and example.test on 127.0.0.40)
// and found by a recursive resolver (unbound, ECS on) that starts at that
// root. Through the resolver it checks the answers per client subnet,
// how long a failed region takes to leave clients' answers, resolution
// with one node killed, and that the resolver caches by the ECS scope the
// nodes return; then zonemaster-cli tests the zone. Each step logs one
// line, "step N: ... ok", which `make e2e` prints.
func TestE2EDelegation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three nodes, knot, unbound and zonemaster-cli")
	}
	knotd := sbinTool(t, "knotd")
	unbound := sbinTool(t, "unbound")
	unboundControl := sbinTool(t, "unbound-control")
	zonemaster := sbinTool(t, "zonemaster-cli")
	requirePort53(t, delegParent, delegNodes[0].addr, delegNodes[1].addr, delegNodes[2].addr)

	bin := t.TempDir()
	goBuild(t, filepath.Join(bin, "meridian"), ".")
	goBuild(t, filepath.Join(bin, "meridian-endpoints"), "../../deploy/cluster/endpoints")
	dir := t.TempDir()
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}

	// The stand-in endpoints, one per region, on free loopback ports.
	eps := map[string]string{"us-east": freeAddr(t), "eu-west": freeAddr(t), "ap-southeast": freeAddr(t)}
	startProc(t, "endpoints", filepath.Join(bin, "meridian-endpoints"), "-addr", eps["us-east"]+","+eps["eu-west"]+","+eps["ap-southeast"])
	for _, a := range eps {
		waitUntil(t, 10*time.Second, func() error { return post(a, "/healthz", http.MethodGet) })
	}

	// Step 1: the cluster.
	begin := time.Now()
	zonesDir := filepath.Join(dir, "zones")
	renderTemplate(t, "../../deploy/e2e/gslb.example.test.toml.tmpl", filepath.Join(zonesDir, "gslb.example.test.toml"),
		map[string]string{"USEast": eps["us-east"], "EUWest": eps["eu-west"], "APSoutheast": eps["ap-southeast"]})
	key := make([]byte, 32)
	rand.Read(key)
	keyFile := filepath.Join(dir, "gossip.key")
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	nodeCfg := make([]string, len(delegNodes))
	for i, n := range delegNodes {
		nodeCfg[i] = filepath.Join(dir, n.name+".toml")
		renderTemplate(t, "../../deploy/e2e/node.toml.tmpl", nodeCfg[i], map[string]string{
			"Zones": zonesDir, "GeoIP": abs("../../deploy/demo/demo-city.mmdb"), "Addr": n.addr,
			"Name": n.name, "Region": n.region, "KeyFile": keyFile, "StateDir": filepath.Join(dir, "state", n.name),
		})
		if out, err := exec.Command(filepath.Join(bin, "meridian"), "check", "-config", nodeCfg[i]).CombinedOutput(); err != nil {
			t.Fatalf("meridian check %s: %v\n%s", n.name, err, out)
		}
	}
	nodes := make([]*proc, len(delegNodes))
	startNode := func(i int) {
		nodes[i] = startProc(t, delegNodes[i].name, filepath.Join(bin, "meridian"), "serve", "-config", nodeCfg[i])
	}
	for i := range delegNodes {
		startNode(i)
	}
	for i := range delegNodes {
		waitClusterNode(t, i, len(delegNodes))
	}
	t.Logf("step 1: three Meridian nodes on %s-%s:53 joined one gossip cluster and answer for %s ... ok (%s)",
		delegNodes[0].addr, delegNodes[2].addr[len("127.0.0."):], delegZone, time.Since(begin).Round(time.Millisecond))

	// Step 2: the parent.
	parentDir := filepath.Join(dir, "knot")
	for _, f := range []string{"root.zone", "example.test.zone"} {
		copyFile(t, filepath.Join("../../deploy/e2e", f), filepath.Join(parentDir, f))
	}
	os.MkdirAll(filepath.Join(parentDir, "db"), 0o755)
	renderTemplate(t, "../../deploy/e2e/knot.conf.tmpl", filepath.Join(parentDir, "knot.conf"), map[string]string{"Dir": parentDir})
	startProc(t, "knotd", knotd, "-c", filepath.Join(parentDir, "knot.conf"))
	var referral *dns.Msg
	waitUntil(t, 15*time.Second, func() error {
		r, err := exchange(delegParent+":53", "127.0.0.1", false, nonRecursive(query(delegWWW, dns.TypeA)))
		if err != nil {
			return err
		}
		if len(r.Ns) != 3 || len(r.Extra) < 3 {
			return fmt.Errorf("knot's answer for %s is no referral with glue:\n%v", delegWWW, r)
		}
		referral = r
		return nil
	})
	var glue []string
	for _, rr := range referral.Extra {
		if a, ok := rr.(*dns.A); ok {
			glue = append(glue, a.Hdr.Name+" "+a.A.String())
		}
	}
	t.Logf("step 2: knot on %s:53 serves . and example.test. and refers %s to %s ... ok", delegParent, delegZone, strings.Join(glue, ", "))

	// Step 3: the resolver.
	resDir := filepath.Join(dir, "unbound")
	copyFile(t, "../../deploy/e2e/root.hints", filepath.Join(resDir, "root.hints"))
	resolver := freePort(t, delegResolver)
	_, port, _ := net.SplitHostPort(resolver)
	unboundConf := filepath.Join(resDir, "unbound.conf")
	renderTemplate(t, "../../deploy/e2e/unbound.conf.tmpl", unboundConf, map[string]string{"Dir": resDir, "Port": port})
	if out, err := exec.Command(sbinTool(t, "unbound-checkconf"), unboundConf).CombinedOutput(); err != nil {
		t.Fatalf("unbound-checkconf: %v\n%s", err, out)
	}
	// Run from a copy: Debian's AppArmor profile for /usr/sbin/unbound,
	// where AppArmor is on, allows reading configs under /etc/unbound only.
	unboundCopy := filepath.Join(bin, "unbound")
	copyFile(t, unbound, unboundCopy)
	os.Chmod(unboundCopy, 0o755)
	startProc(t, "unbound", unboundCopy, "-d", "-c", unboundConf)
	control := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(unboundControl, append([]string{"-c", unboundConf}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("unbound-control %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	stats := func() map[string]float64 {
		t.Helper()
		m := map[string]float64{}
		for _, line := range strings.Split(control("stats_noreset"), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				m[k], _ = strconv.ParseFloat(v, 64)
			}
		}
		return m
	}
	waitUntil(t, 15*time.Second, func() error {
		_, err := exec.Command(unboundControl, "-c", unboundConf, "status").CombinedOutput()
		return err
	})
	var first resolved
	waitUntil(t, 15*time.Second, func() error {
		var err error
		first, err = resolve(resolver, "192.0.2.0/24")
		return err
	})
	t.Logf("step 3: unbound on %s, starting at the root hint %s, resolves %s through the delegation: %s ... ok", resolver, delegParent, delegWWW, first)

	// Step 4: each region's clients get their region, through the resolver.
	step := 4
	for _, c := range []struct{ subnet, city, region, want string }{
		{"198.51.100.0/24", "Frankfurt", "eu-west", euWest},
		{"192.0.2.0/24", "Ashburn", "us-east", usEast},
		{"203.0.113.0/24", "Singapore", "ap-southeast", apSoutheast},
	} {
		r, err := resolve(resolver, c.subnet)
		if err != nil || r.addr != c.want {
			t.Fatalf("step %d: resolver's answer for ECS %s: %s %v, want %s (%s)", step, c.subnet, r, err, c.want, c.region)
		}
		t.Logf("step %d: resolver answers %s (%s) for ECS %s (%s): %s ... ok", step, c.region, c.want, c.subnet, c.city, r)
		step++
	}

	// Step 7: eu-west fails. The nodes notice within interval × fall (1 s
	// × 2) and answer us-east; the resolver keeps eu-west for at most the
	// answer's TTL (5 s) after the node it asks moved.
	failAt := time.Now()
	if err := post(eps["eu-west"], "/fail", http.MethodPost); err != nil {
		t.Fatal(err)
	}
	var nodeFirst, nodeAll, resAt time.Duration
	moved := make([]bool, len(delegNodes))
	deadline := failAt.Add(30 * time.Second)
	for (nodeAll == 0 || resAt == 0) && time.Now().Before(deadline) {
		for i, n := range delegNodes {
			if moved[i] {
				continue
			}
			if r, err := askNode(n.addr, "198.51.100.0/24"); err == nil && r.addr == usEast {
				moved[i] = true
				if nodeFirst == 0 {
					nodeFirst = time.Since(failAt)
				}
			}
		}
		if nodeAll == 0 && !slices.Contains(moved, false) {
			nodeAll = time.Since(failAt)
		}
		if resAt == 0 {
			if r, err := resolve(resolver, "198.51.100.0/24"); err == nil && r.addr == usEast {
				resAt = time.Since(failAt)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if nodeAll == 0 || resAt == 0 {
		t.Fatalf("step 7: 30 s after eu-west failed: nodes moved %v, resolver moved: %v", moved, resAt != 0)
	}
	ms := func(d time.Duration) string { return d.Round(10 * time.Millisecond).String() }
	t.Logf("step 7: eu-west's endpoint failed: the resolver answers Frankfurt (198.51.100.0/24) with us-east after %s; the nodes moved after %s (first) to %s (all three; detection: interval 1 s × fall 2), the resolver %s after the first node (its cached answer's TTL, 5 s) ... ok",
		ms(resAt), ms(nodeFirst), ms(nodeAll), ms(resAt-nodeFirst))
	if resAt > 15*time.Second {
		t.Errorf("step 7: the resolver took %s to move Frankfurt off the failed region, want under 15 s", ms(resAt))
	}
	recoverAt := time.Now()
	if err := post(eps["eu-west"], "/recover", http.MethodPost); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 20*time.Second, func() error {
		r, err := resolve(resolver, "198.51.100.0/24")
		if err == nil && r.addr != euWest {
			err = fmt.Errorf("resolver answers %s", r)
		}
		return err
	})
	t.Logf("step 8: eu-west's endpoint recovered: the resolver answers Frankfurt with eu-west again after %s (rise 2, then the TTL) ... ok", ms(time.Since(recoverAt)))

	// Step 9: node1 (ns1) killed. Before each query the resolver forgets
	// everything, so it must walk down from the root and ask a node again,
	// picking among ns1-3 afresh: "unbound-control reload", because flush,
	// flush_zone and flush_infra leave the subnetcache module's own cache
	// (where answers with an ECS scope live) untouched in unbound 1.17.
	nodes[0].kill(t)
	sumMetric := func(name string, labels []string, alive ...int) float64 {
		var sum float64
		for _, i := range alive {
			sum += (&hardenedNode{metrics: delegNodes[i].addr + ":9153"}).metric(t, name, labels...)
		}
		return sum
	}
	answers := func(alive ...int) float64 {
		return sumMetric("meridian_dns_answers_total", []string{`pool="` + delegWWW + `"`}, alive...)
	}
	located := func(alive ...int) float64 { return sumMetric("meridian_dns_ecs_queries_total", nil, alive...) }
	var took []string
	var slow int // queries that took longer than unbound's first timeout: it asked ns1 first
	before, beforeECS := answers(1, 2), located(1, 2)
	cases := []struct{ subnet, want string }{
		{"198.51.100.0/24", euWest}, {"192.0.2.0/24", usEast}, {"203.0.113.0/24", apSoutheast},
	}
	for round := range 2 {
		for _, c := range cases {
			control("reload")
			start := time.Now()
			var r resolved
			var err error
			// The reloaded resolver may refuse for a moment while it
			// starts; anything but an answer, or the wrong one, after 10 s
			// is a failure.
			waitUntil(t, 10*time.Second, func() error {
				r, err = resolve(resolver, c.subnet)
				return err
			})
			if r.addr != c.want {
				t.Fatalf("step 9: round %d, ECS %s with node1 down: %s, want %s", round+1, c.subnet, r, c.want)
			}
			d := time.Since(start)
			if d > 300*time.Millisecond {
				slow++
			}
			took = append(took, d.Round(time.Millisecond).String())
		}
	}
	// At least one answer per query: a query that timed out on ns1 is
	// sometimes asked twice of the next node.
	asked, withECS := answers(1, 2)-before, located(1, 2)-beforeECS
	t.Logf("step 9: node1 (ns1, %s) killed: 6 queries, each after unbound-control reload (an empty cache), resolve through ns2/ns3 in %s (%d waited for ns1 first); node2 and node3 made %.0f www answers, %.0f queries carried ECS ... ok",
		delegNodes[0].addr, strings.Join(took, ", "), slow, asked, withECS)
	if asked < 6 {
		t.Errorf("step 9: node2 and node3 made %.0f www answers for 6 queries to an emptied resolver, want at least 6", asked)
	}
	rejoin := time.Now()
	startNode(0)
	for i := range delegNodes {
		waitClusterNode(t, i, len(delegNodes))
	}
	t.Logf("step 10: node1 restarted: it answers again and all three see three members ... ok (%s)", ms(time.Since(rejoin)))

	// Step 11: the resolver caches by the scope the nodes return. The demo
	// database does not know 198.51.0.0/18, so the pool's order answers
	// us-east for all of it, and the nodes say so with scope /18 (the /17
	// would hold Frankfurt's 198.51.100.0/24). Two /24s inside it: the
	// second is answered from the resolver's subnet cache.
	control("flush_zone", delegZone)
	beforeAnswers, beforeStats := answers(0, 1, 2), stats()
	r1, err := resolve(resolver, "198.51.1.0/24")
	if err != nil || r1.addr != usEast || r1.scope != 18 {
		t.Fatalf("step 11: ECS 198.51.1.0/24: %s %v, want %s with scope /18", r1, err, usEast)
	}
	r2, err := resolve(resolver, "198.51.2.0/24")
	if err != nil || r2.addr != usEast {
		t.Fatalf("step 11: ECS 198.51.2.0/24: %s %v, want %s", r2, err, usEast)
	}
	afterAnswers, afterStats := answers(0, 1, 2), stats()
	delta := func(k string) float64 { return afterStats[k] - beforeStats[k] }
	t.Logf("step 11: ECS 198.51.1.0/24 then 198.51.2.0/24 (one scope, 198.51.0.0/18): %s, then %s; the nodes made %.0f www answer; unbound: queries %.0f, main-cache misses %.0f, answers from its subnet cache %.0f ... ok",
		r1, r2, afterAnswers-beforeAnswers, delta("total.num.queries"), delta("total.num.cachemiss"), delta("num.query.subnet_cache"))
	if afterAnswers-beforeAnswers != 1 {
		t.Errorf("step 11: the nodes made %.0f www answers for two client subnets in one scope, want 1", afterAnswers-beforeAnswers)
	}
	if delta("num.query.subnet_cache") != 1 {
		t.Errorf("step 11: unbound answered %.0f queries from its subnet cache, want 1", delta("num.query.subnet_cache"))
	}

	// Step 12: zonemaster-cli, an undelegated test against the three nodes.
	runZonemaster(t, zonemaster, filepath.Join(resDir, "root.hints"))
}

// zonemasterExpected are the zonemaster-cli messages at WARNING and above
// that come from the set-up, not from Meridian: loopback addresses on one
// machine, no IPv6, no DNSSEC, no internet. Each with why.
var zonemasterExpected = map[string]string{
	// WARNING and above: these must be here, or the step fails.
	"NAMESERVER_IP_PRIVATE_NETWORK": "ERROR: the nodes are on 127.0.0.41-43, loopback, as a test on one machine must be",
	"NAMESERVER_IP_WITHOUT_REVERSE": "WARNING: the test's root serves no in-addr.arpa, so 127.0.0.41-43 have no PTR records",
	// NOTICE: logged with the reason, never failing the step.
	"NEITHER_DNSKEY_NOR_DS":               "NOTICE: Meridian does not sign (its answers depend on the client), and the parent has no DS",
	"NOT_SIGNED":                          "NOTICE: as above, the zone is unsigned",
	"NO_IPV6_NS_CHILD":                    "NOTICE: the test runs IPv4 loopback only (--no-ipv6), so the name servers have no AAAA",
	"NO_IPV6_NS_DEL":                      "NOTICE: likewise for the parent's delegation",
	"RNAME_MAIL_DOMAIN_INVALID":           "NOTICE: the SOA's rname is at example.test, which has no mail server in this offline world",
	"REFRESH_MINIMUM_VALUE_LOWER":         "NOTICE: Meridian's SOA default refresh (3600); nodes load the zone from files, never by transfer, so refresh is unused",
	"RETRY_MINIMUM_VALUE_LOWER":           "NOTICE: Meridian's SOA default retry (600), unused likewise",
	"SOA_DEFAULT_TTL_MAXIMUM_VALUE_LOWER": "NOTICE: the zone's negative-caching TTL is 60 s, as in deploy/cluster, so a name added is seen within a minute",
	"Z09_MISSING_MAIL_TARGET":             "NOTICE: a traffic-steering subdomain receives no mail and declares no MX",
}

// zonemasterMessage is one entry of zonemaster-cli --json-stream.
type zonemasterMessage struct {
	Level    string         `json:"level"`
	Module   string         `json:"module"`
	Testcase string         `json:"testcase"`
	Tag      string         `json:"tag"`
	Args     map[string]any `json:"args"`
}

// runZonemaster runs zonemaster-cli on the zone with the test's root
// hints, bounded to 5 minutes, logs every message it printed and fails on
// any WARNING or above not in zonemasterExpected.
func runZonemaster(t *testing.T, zonemaster, hints string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	args := []string{"--json-stream", "--level", "NOTICE", "--no-ipv6", "--no-progress", "--hints", hints}
	for i, n := range delegNodes {
		args = append(args, "--ns", fmt.Sprintf("ns%d.%s/%s", i+1, strings.TrimSuffix(delegZone, "."), n.addr))
	}
	args = append(args, strings.TrimSuffix(delegZone, "."))
	begin := time.Now()
	cmd := exec.CommandContext(ctx, zonemaster, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if ctx.Err() != nil {
		t.Fatalf("step 12: zonemaster-cli did not finish in 5 minutes:\n%s\n%s", out, stderr.String())
	}
	var msgs []zonemasterMessage
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var m zonemasterMessage
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("step 12: zonemaster-cli printed %q: %v", line, err)
		}
		msgs = append(msgs, m)
	}
	if err != nil && len(msgs) == 0 {
		t.Fatalf("step 12: zonemaster-cli: %v\n%s", err, stderr.String())
	}
	count := map[string]int{}
	var unexpected []string
	for _, m := range msgs {
		count[m.Level]++
		args, _ := json.Marshal(m.Args)
		why, known := zonemasterExpected[m.Tag]
		serious := m.Level == "WARNING" || m.Level == "ERROR" || m.Level == "CRITICAL"
		switch {
		case serious && known:
			t.Logf("zonemaster: %-8s %s/%s %s %s (expected: %s)", m.Level, m.Module, m.Testcase, m.Tag, args, why)
		case serious:
			t.Logf("zonemaster: %-8s %s/%s %s %s (UNEXPECTED)", m.Level, m.Module, m.Testcase, m.Tag, args)
			unexpected = append(unexpected, m.Tag)
		default:
			t.Logf("zonemaster: %-8s %s/%s %s %s", m.Level, m.Module, m.Testcase, m.Tag, args)
		}
	}
	summary := fmt.Sprintf("%d messages (CRITICAL %d, ERROR %d, WARNING %d, NOTICE %d) in %s",
		len(msgs), count["CRITICAL"], count["ERROR"], count["WARNING"], count["NOTICE"], time.Since(begin).Round(time.Second))
	if len(unexpected) > 0 {
		t.Errorf("step 12: zonemaster-cli on %s: %s; unexpected: %s", delegZone, summary, strings.Join(unexpected, ", "))
		return
	}
	t.Logf("step 12: zonemaster-cli on %s against ns1-3 with the parent as root: %s, every WARNING and above expected ... ok", delegZone, summary)
}

// resolved is one answer for www: its address, TTL and ECS scope.
type resolved struct {
	addr  string
	ttl   uint32
	scope uint8
}

func (r resolved) String() string { return fmt.Sprintf("%s ttl %d scope /%d", r.addr, r.ttl, r.scope) }

// resolve asks the resolver for www's A record for a client in subnet (an
// ECS option). The timeout allows the resolver to give up on a dead node
// and ask another.
func resolve(server, subnet string) (resolved, error) {
	return askWWW(server, subnet, true, 6*time.Second)
}

// askNode asks a node directly, as a resolver would.
func askNode(addr, subnet string) (resolved, error) {
	return askWWW(addr+":53", subnet, false, time.Second)
}

func askWWW(server, subnet string, rd bool, timeout time.Duration) (resolved, error) {
	p, err := ecsOption(subnet)
	if err != nil {
		return resolved{}, err
	}
	m := query(delegWWW, dns.TypeA, p)
	m.RecursionDesired = rd
	c := &dns.Client{Timeout: timeout}
	r, _, err := c.Exchange(m, server)
	if err != nil {
		return resolved{}, err
	}
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		return resolved{}, fmt.Errorf("%s: rcode %s, %d answers", server, dns.RcodeToString[r.Rcode], len(r.Answer))
	}
	a, ok := r.Answer[0].(*dns.A)
	if !ok {
		return resolved{}, fmt.Errorf("%s: answer %v", server, r.Answer[0])
	}
	res := resolved{addr: a.A.String(), ttl: a.Hdr.Ttl}
	if o := r.IsEdns0(); o != nil {
		for _, opt := range o.Option {
			if e, ok := opt.(*dns.EDNS0_SUBNET); ok {
				res.scope = e.SourceScope
			}
		}
	}
	return res, nil
}

// ecsOption makes the ECS option of an IPv4 prefix.
func ecsOption(subnet string) (*dns.EDNS0_SUBNET, error) {
	_, n, err := net.ParseCIDR(subnet)
	if err != nil {
		return nil, err
	}
	ones, _ := n.Mask.Size()
	return &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: uint8(ones), Address: n.IP.To4()}, nil
}

func nonRecursive(m *dns.Msg) *dns.Msg {
	m.RecursionDesired = false
	return m
}

// waitClusterNode waits until node i answers for the zone on port 53 and
// sees members alive members.
func waitClusterNode(t *testing.T, i, members int) {
	t.Helper()
	n := delegNodes[i]
	waitUntil(t, 30*time.Second, func() error {
		r, err := exchange(n.addr+":53", "127.0.0.1", false, nonRecursive(query(delegZone, dns.TypeSOA)))
		if err != nil {
			return err
		}
		if !r.Authoritative || len(r.Answer) != 1 {
			return fmt.Errorf("%s: no authoritative SOA: %v", n.name, r)
		}
		resp, err := http.Get("http://" + n.addr + ":9153/metrics")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		want := fmt.Sprintf(`meridian_gossip_members{state="alive"} %d`, members)
		if !strings.Contains(string(body), want+"\n") {
			return fmt.Errorf("%s: no %s in its metrics", n.name, want)
		}
		return nil
	})
}

// post calls a stand-in endpoint.
func post(addr, path, method string) error {
	req, err := http.NewRequest(method, "http://"+addr+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	return nil
}

// sbinTool finds a tool in PATH or /usr/sbin (knotd and unbound live
// there, outside a non-root PATH); missing, it skips the test, or fails
// it when MERIDIAN_REQUIRE_TOOLS is set, as requireTool does.
func sbinTool(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if p := filepath.Join("/usr/sbin", name); fileExists(p) {
		return p
	}
	requireTool(t, name)
	return name
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// requirePort53 checks that port 53 (UDP and TCP) can be bound on each
// address: it needs root (or CAP_NET_BIND_SERVICE) and nobody listening
// on the address or on the wildcard. Otherwise it skips the test, or
// fails it when MERIDIAN_REQUIRE_TOOLS is set.
func requirePort53(t *testing.T, addrs ...string) {
	t.Helper()
	for _, a := range addrs {
		hp := net.JoinHostPort(a, "53")
		var err error
		if l, e := net.ListenPacket("udp", hp); e != nil {
			err = e
		} else {
			l.Close()
		}
		if err == nil {
			if l, e := net.Listen("tcp", hp); e != nil {
				err = e
			} else {
				l.Close()
			}
		}
		if err == nil {
			continue
		}
		msg := fmt.Sprintf("cannot bind %s: %v", hp, err)
		switch {
		case errors.Is(err, syscall.EACCES):
			msg += " (port 53 needs root or CAP_NET_BIND_SERVICE)"
		case errors.Is(err, syscall.EADDRINUSE):
			msg += " (something listens there, or on the wildcard address: a resolver service?)"
		}
		if os.Getenv("MERIDIAN_REQUIRE_TOOLS") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// freePort returns host:port with a port free for UDP and TCP on host.
func freePort(t *testing.T, host string) string {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", host+":0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		if u, err := net.ListenPacket("udp", addr); err == nil {
			u.Close()
			return addr
		}
	}
	t.Fatalf("no port free for UDP and TCP on %s", host)
	return ""
}

// renderTemplate fills the template file from with data into to;
// a missing key is an error.
func renderTemplate(t *testing.T, from, to string, data map[string]string) {
	t.Helper()
	tmpl, err := template.New(filepath.Base(from)).Option("missingkey=error").ParseFiles(from)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, data); err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, b.String())
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, string(data))
}

func writeFile(t *testing.T, to, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// proc is a process started for the test: its output goes to the test
// log line by line, prefixed with its label. It is stopped (SIGINT, then
// SIGKILL after 5 s) when the test ends, unless killed before.
type proc struct {
	label  string
	cmd    *exec.Cmd
	done   chan struct{} // closed when the process has exited and its output is logged
	once   sync.Once
	cancel context.CancelFunc
}

func startProc(t *testing.T, label, name string, args ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 5 * time.Second
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", label, err)
	}
	p := &proc{label: label, cmd: cmd, done: make(chan struct{}), cancel: cancel}
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			t.Logf("%s: %s", label, sc.Text())
		}
		io.Copy(io.Discard, pr)
	}()
	go func() {
		cmd.Wait()
		pw.Close()
		<-logged
		close(p.done)
	}()
	t.Cleanup(func() { p.stop() })
	return p
}

// stop interrupts the process and waits for it.
func (p *proc) stop() {
	p.once.Do(p.cancel)
	<-p.done
}

// kill ends the process at once (SIGKILL), as a crash would.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill %s: %v", p.label, err)
	}
	<-p.done
	p.once.Do(p.cancel)
}
