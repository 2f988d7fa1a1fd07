// Command scale measures Meridian at the scale users run: a GeoLite2-City
// sized database and dozens of pools in many shapes (`make bench-scale`,
// run by hand; a few minutes at full size).
//
// It generates (once, cached) a synthetic GeoLite2-shaped database with
// meridian-geodb -synth, starts one HTTP endpoint per region on loopback,
// and runs the real meridian binary against them, measuring from outside:
//
//   - startup: from exec to the first DNS answer, and RSS once serving, for
//     50 pools in 1 shape and in 50 shapes (the memory cost of a shape is
//     the difference over 49);
//   - failover: an endpoint is stopped and every affected pool's answer is
//     polled over DNS until it moves, for 16 and for 50 affected pools;
//     then recovery, the same way;
//   - the cost of a change, from the node's own metrics: time from a
//     verdict flip to the publish, time to apply, time to rebuild the
//     widest-scope maps in the background, and when the widest scopes are
//     served again;
//   - a GeoIP reload (the file is touched): peak RSS with old and new side
//     by side, its duration, and the slowest DNS answer while it ran;
//   - `meridian check` and `meridian explain` times.
//
// Every figure is the median and max over -runs runs. Everything listens on
// 127.0.0.1 only; every wait has a deadline.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
}

type options struct {
	v4, v6, locations int
	runs              int
	out               string
	bin, geodb        string
	pools, many       int
	cycles            int
}

func run() error {
	var o options
	flag.IntVar(&o.v4, "v4", 3_000_000, "IPv4 networks in the synthetic database")
	flag.IntVar(&o.v6, "v6", 1_000_000, "IPv6 networks in the synthetic database")
	flag.IntVar(&o.locations, "locations", 120_000, "distinct locations in the synthetic database")
	flag.IntVar(&o.runs, "runs", 3, "runs of each measurement (figures are median and max)")
	flag.IntVar(&o.cycles, "cycles", 3, "endpoint stops and restarts per failover run")
	flag.IntVar(&o.pools, "pools", 50, "pools in the zone, in as many shapes")
	flag.IntVar(&o.many, "many", 1000, "pools in the large failover run, in -pools shapes")
	flag.StringVar(&o.out, "out", "deploy/scale/out", "work directory (the database is cached here)")
	flag.StringVar(&o.bin, "meridian", "bin/meridian", "meridian binary")
	flag.StringVar(&o.geodb, "geodb", "bin/meridian-geodb", "meridian-geodb binary")
	flag.Parse()

	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	db, err := ensureDB(o)
	if err != nil {
		return err
	}
	eps, err := startEndpoints()
	if err != nil {
		return err
	}
	defer eps.close()

	var report []row
	add := func(name, unit string, vals []float64) {
		report = append(report, row{name, unit, vals})
		fmt.Printf("  %-66s %s\n", name, summary(vals, unit))
	}

	// Startup and memory, 1 shape and 50 shapes.
	rss := map[int][]float64{}
	for _, shapes := range []int{1, o.pools} {
		var startup []float64
		for r := range o.runs {
			n, err := startNode(o, db, eps, fmt.Sprintf("startup-%d-%d", shapes, r), zoneSpec{pools: o.pools, shapes: shapes})
			if err != nil {
				return err
			}
			startup = append(startup, n.startup.Seconds())
			// RSS once the widest-scope maps are built too.
			if err := n.waitMetric("meridian_snapshot_widest_scopes", 1, 60*time.Second); err != nil {
				n.stop()
				return err
			}
			rss[shapes] = append(rss[shapes], float64(n.rss())/(1<<20))
			n.stop()
		}
		add(fmt.Sprintf("startup to first answer, %d pools in %d shape(s)", o.pools, shapes), "s", startup)
		add(fmt.Sprintf("RSS serving, %d pools in %d shape(s)", o.pools, shapes), "MiB", rss[shapes])
	}
	var perShape []float64
	for r := range o.runs {
		perShape = append(perShape, (rss[o.pools][r]-rss[1][r])/float64(o.pools-1))
	}
	add("RSS per additional shape", "MiB", perShape)

	// Failover and recovery: 16 affected pools (3 regions of 10 per pool)
	// and 50 (4 regions per pool, all with the stopped one).
	for _, sc := range []struct {
		name string
		spec zoneSpec
	}{
		{fmt.Sprintf("%d pools, %d shapes", o.pools, o.pools), zoneSpec{pools: o.pools, shapes: o.pools}},
		{fmt.Sprintf("%d pools, %d shapes, all with the region", o.pools, o.pools), zoneSpec{pools: o.pools, shapes: o.pools, all: true}},
		{fmt.Sprintf("%d pools, %d shapes", o.many, o.pools), zoneSpec{pools: o.many, shapes: o.pools}},
	} {
		var down, up, widest, applyMax, delayMax, delayP99, widenMax, applyMean, widenMean []float64
		affected := 0
		for r := range o.runs {
			n, err := startNode(o, db, eps, fmt.Sprintf("failover-%d-%d", sc.spec.pools, r), sc.spec)
			if err != nil {
				return err
			}
			res, err := n.failover(eps, sc.spec, o.cycles)
			n.stop()
			if err != nil {
				return err
			}
			affected = res.affected
			for _, c := range res.cycles {
				down = append(down, c.down.Seconds())
				up = append(up, c.up.Seconds())
				widest = append(widest, c.widest.Seconds())
			}
			delayP99 = append(delayP99, res.delayP99*1000)
			applyMax = append(applyMax, res.applyMax*1000)
			delayMax = append(delayMax, res.delayMax*1000)
			widenMax = append(widenMax, res.widenMax*1000)
			applyMean = append(applyMean, res.applyMean*1000)
			widenMean = append(widenMean, res.widenMean*1000)
		}
		add(fmt.Sprintf("%s, %d affected: endpoint stop → last pool moved", sc.name, affected), "s", down)
		add(fmt.Sprintf("%s, %d affected: endpoint back → last pool back", sc.name, affected), "s", up)
		add(fmt.Sprintf("%s: verdict flip → publish, p99 (bucket bound)", sc.name), "ms", delayP99)
		add(fmt.Sprintf("%s: verdict flip → publish, slowest (bucket bound)", sc.name), "ms", delayMax)
		add(fmt.Sprintf("%s: apply a change, mean", sc.name), "ms", applyMean)
		add(fmt.Sprintf("%s: apply a change, slowest (bucket bound)", sc.name), "ms", applyMax)
		add(fmt.Sprintf("%s: widest-scope maps, mean batch", sc.name), "ms", widenMean)
		add(fmt.Sprintf("%s: widest-scope maps, slowest batch (bucket bound)", sc.name), "ms", widenMax)
		add(fmt.Sprintf("%s: last pool moved → widest scopes served", sc.name), "s", widest)
	}

	// GeoIP reload with 50 shapes: peak RSS, time, slowest answer.
	{
		var startPeak, peak, took, slowest, failed []float64
		for r := range o.runs {
			n, err := startNode(o, db, eps, fmt.Sprintf("reload-%d", r), zoneSpec{pools: o.pools, shapes: o.pools})
			if err != nil {
				return err
			}
			res, err := n.reloadGeo(db)
			n.stop()
			if err != nil {
				return err
			}
			startPeak = append(startPeak, res.startPeak)
			peak = append(peak, res.peak)
			took = append(took, res.took.Seconds())
			slowest = append(slowest, res.slowest.Seconds()*1000)
			failed = append(failed, float64(res.failed))
		}
		add(fmt.Sprintf("%d shapes: peak RSS from start to serving", o.pools), "MiB", startPeak)
		add(fmt.Sprintf("GeoIP reload, %d shapes: peak RSS (old and new side by side)", o.pools), "MiB", peak)
		add(fmt.Sprintf("GeoIP reload, %d shapes: file touched → new config served", o.pools), "s", took)
		add("GeoIP reload: slowest DNS answer while it ran", "ms", slowest)
		add("GeoIP reload: DNS queries unanswered while it ran", "", failed)
	}

	// check and explain.
	{
		dir := filepath.Join(o.out, "cli")
		if err := writeConfig(dir, db, eps, zoneSpec{pools: o.pools, shapes: o.pools}, 0, 0); err != nil {
			return err
		}
		var check, explain []float64
		for range o.runs {
			t0 := time.Now()
			if out, err := exec.Command(o.bin, "check", "-config", filepath.Join(dir, "node.toml")).CombinedOutput(); err != nil {
				return fmt.Errorf("check: %v\n%s", err, out)
			}
			check = append(check, time.Since(t0).Seconds())
			t0 = time.Now()
			if out, err := exec.Command(o.bin, "explain", "-config", filepath.Join(dir, "node.toml"), "-client", "10.1.0.0/24", "app0.scale.test").CombinedOutput(); err != nil {
				return fmt.Errorf("explain: %v\n%s", err, out)
			}
			explain = append(explain, time.Since(t0).Seconds())
		}
		add(fmt.Sprintf("meridian check, %d shapes", o.pools), "s", check)
		add(fmt.Sprintf("meridian explain, %d shapes", o.pools), "s", explain)
	}

	f, err := os.Create(filepath.Join(o.out, "results.txt"))
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintf(f, "database: %s (%d IPv4 + %d IPv6 networks, %d locations); %d runs; median (max)\n", db, o.v4, o.v6, o.locations, o.runs)
	for _, r := range report {
		fmt.Fprintf(f, "%-72s %s\n", r.name, summary(r.vals, r.unit))
	}
	fmt.Printf("results in %s\n", f.Name())
	return nil
}

type row struct {
	name, unit string
	vals       []float64
}

func summary(vals []float64, unit string) string {
	s := slices.Sorted(slices.Values(vals))
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return fmt.Sprintf("%8.3f %s (max %.3f)", med, unit, s[len(s)-1])
}

// ensureDB generates the synthetic database unless a file of these
// parameters exists.
func ensureDB(o options) (string, error) {
	db := filepath.Join(o.out, fmt.Sprintf("synth-%d-%d-%d.mmdb", o.v4, o.v6, o.locations))
	if _, err := os.Stat(db); err == nil {
		return db, nil
	}
	fmt.Printf("generating %s\n", db)
	t0 := time.Now()
	cmd := exec.Command(o.geodb, "-synth", "-v4", strconv.Itoa(o.v4), "-v6", strconv.Itoa(o.v6),
		"-locations", strconv.Itoa(o.locations), "-seed", "1", "-out", db+".tmp")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("generate database: %w", err)
	}
	fmt.Printf("generated in %s\n", time.Since(t0).Round(time.Second))
	return db, os.Rename(db+".tmp", db)
}

// regions are ten regions around the world; region 0 is the one stopped.
var regions = []struct {
	name     string
	lat, lon float64
}{
	{"us-east", 38.95, -77.45}, {"us-west", 45.6, -121.2}, {"ca-central", 45.5, -73.6},
	{"sa-east", -23.5, -46.6}, {"eu-west", 50.11, 8.68}, {"eu-north", 59.3, 18.1},
	{"me-central", 25.2, 55.3}, {"ap-south", 19.1, 72.9}, {"ap-southeast", 1.35, 103.82},
	{"ap-northeast", 35.7, 139.7},
}

// endpoints are one HTTP server per region, on loopback, each stoppable
// and restartable on the same address.
type endpoints struct {
	addrs []netip.AddrPort
	srv   []*endpoint
}

type endpoint struct {
	addr netip.AddrPort
	mu   sync.Mutex
	ln   net.Listener
	srv  *http.Server
}

func startEndpoints() (*endpoints, error) {
	e := &endpoints{}
	for range regions {
		ep := &endpoint{}
		if err := ep.start("127.0.0.1:0"); err != nil {
			e.close()
			return nil, err
		}
		e.addrs = append(e.addrs, ep.addr)
		e.srv = append(e.srv, ep)
	}
	return e, nil
}

func (e *endpoint) start(addr string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	e.ln = ln
	e.addr = netip.MustParseAddrPort(ln.Addr().String())
	e.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	}), ReadHeaderTimeout: 5 * time.Second}
	go e.srv.Serve(ln)
	return nil
}

func (e *endpoint) stop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.srv != nil {
		e.srv.Close()
		e.srv = nil
	}
}

func (e *endpoints) close() {
	for _, s := range e.srv {
		s.stop()
	}
}

// zoneSpec describes the zone: pools nearest pools in shapes shapes over
// the ten regions. Each pool has three regions, or four including region 0
// when all is set, and region 0 first in its order when it has it.
type zoneSpec struct {
	pools, shapes int
	all           bool
}

// memberSets returns the region indexes of each shape: three regions of
// ten, the first 16 shapes with region 0 (so 16 pools are affected when it
// stops), or with all, four regions always including region 0.
func (z zoneSpec) memberSets() [][]int {
	var with0, without0 [][]int
	n := len(regions)
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			for k := j + 1; k < n; k++ {
				if i == 0 {
					with0 = append(with0, []int{i, j, k})
				} else {
					without0 = append(without0, []int{i, j, k})
				}
			}
		}
	}
	if z.all {
		with0 = with0[:0]
		for i := 1; i < n; i++ {
			for j := i + 1; j < n; j++ {
				for k := j + 1; k < n; k++ {
					with0 = append(with0, []int{0, i, j, k})
				}
			}
		}
	}
	pick := func(sets [][]int, k, of int) []int { return sets[k*len(sets)/of] }
	out := make([][]int, z.shapes)
	affected := min(16, z.shapes)
	if z.all {
		affected = z.shapes
	}
	for s := range out {
		if s < affected {
			out[s] = pick(with0, s, affected)
		} else {
			out[s] = pick(without0, s-affected, z.shapes-affected)
		}
	}
	return out
}

// poolRegions returns the region indexes of pool i, in its order.
func (z zoneSpec) poolRegions(i int) []int {
	return z.memberSets()[i%z.shapes]
}

func writeConfig(dir, db string, eps *endpoints, z zoneSpec, dnsPort, metricsPort int) error {
	if err := os.MkdirAll(filepath.Join(dir, "zones"), 0o755); err != nil {
		return err
	}
	abs, err := filepath.Abs(db)
	if err != nil {
		return err
	}
	node := fmt.Sprintf(`zones = "zones"
geoip = %q
log_level = "warn"
watch_interval = "500ms"
metrics_listen = "127.0.0.1:%d"
[dns]
listen = ["127.0.0.1:%d"]
`, abs, metricsPort, dnsPort)
	var b strings.Builder
	b.WriteString("zone = \"scale.test\"\nns = [\"ns.example.net.\"]\n")
	for _, r := range regions {
		fmt.Fprintf(&b, "[regions.%s]\nlat = %v\nlon = %v\n", r.name, r.lat, r.lon)
	}
	for i := range z.pools {
		rs := z.poolRegions(i)
		var order []string
		for _, r := range rs {
			order = append(order, strconv.Quote(regions[r].name))
		}
		fmt.Fprintf(&b, "[pools.app%d]\norder = [%s]\n", i, strings.Join(order, ", "))
		fmt.Fprintf(&b, "[pools.app%d.check]\ntype = \"http\"\npath = \"/health\"\ninterval = \"1s\"\nfall = 1\nrise = 1\n", i)
		for _, r := range rs {
			fmt.Fprintf(&b, "[pools.app%d.members.%s]\naddresses = [\"10.%d.%d.%d\"]\nendpoints = [%q]\n",
				i, regions[r].name, r, i/256, i%256, eps.addrs[r].String())
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "node.toml"), []byte(node), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "zones", "scale.test.toml"), []byte(b.String()), 0o644)
}

// runningNode is a meridian serve process.
type runningNode struct {
	cmd     *exec.Cmd
	dns     string
	metrics string
	startup time.Duration
	log     *bytes.Buffer
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	// The same port must be free for UDP too; a bound UDP socket on it
	// would make serve fail, which startNode reports.
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startNode(o options, db string, eps *endpoints, name string, z zoneSpec) (*runningNode, error) {
	dnsPort, err := freePort()
	if err != nil {
		return nil, err
	}
	mPort, err := freePort()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(o.out, name)
	if err := writeConfig(dir, db, eps, z, dnsPort, mPort); err != nil {
		return nil, err
	}
	n := &runningNode{dns: fmt.Sprintf("127.0.0.1:%d", dnsPort), metrics: fmt.Sprintf("http://127.0.0.1:%d/metrics", mPort), log: &bytes.Buffer{}}
	n.cmd = exec.Command(o.bin, "serve", "-config", filepath.Join(dir, "node.toml"))
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	t0 := time.Now()
	if err := n.cmd.Start(); err != nil {
		return nil, err
	}
	deadline := t0.Add(120 * time.Second)
	for {
		if _, err := n.ask("app0.scale.test.", netip.MustParsePrefix("10.1.0.0/24")); err == nil {
			n.startup = time.Since(t0)
			return n, nil
		}
		if time.Now().After(deadline) || n.exited() {
			n.stop()
			return nil, fmt.Errorf("%s: no answer within 120s\n%s", name, n.log)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (n *runningNode) exited() bool {
	return n.cmd.ProcessState != nil || n.cmd.Process.Signal(syscall.Signal(0)) != nil
}

func (n *runningNode) stop() {
	n.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { n.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		n.cmd.Process.Kill()
		<-done
	}
}

// ask queries name A with an ECS option and returns the first address.
func (n *runningNode) ask(name string, subnet netip.Prefix) (netip.Addr, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
	o.SetUDPSize(1232)
	o.Option = append(o.Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: uint8(subnet.Bits()), Address: subnet.Addr().AsSlice()})
	m.Extra = append(m.Extra, o)
	c := &dns.Client{Timeout: 500 * time.Millisecond}
	r, _, err := c.Exchange(m, n.dns)
	if err != nil {
		return netip.Addr{}, err
	}
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
		return netip.Addr{}, fmt.Errorf("rcode %s, %d answers", dns.RcodeToString[r.Rcode], len(r.Answer))
	}
	a, ok := r.Answer[0].(*dns.A)
	if !ok {
		return netip.Addr{}, errors.New("not an A record")
	}
	addr, _ := netip.AddrFromSlice(a.A)
	return addr.Unmap(), nil
}

// rss returns the process's resident set size in bytes.
func (n *runningNode) rss() int64 { return n.status("VmRSS:") }

// peakRSS returns the process's peak resident set size in bytes.
func (n *runningNode) peakRSS() int64 { return n.status("VmHWM:") }

func (n *runningNode) status(key string) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", n.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(rest)
			kb, _ := strconv.ParseInt(f[0], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// metric returns the value of a metric line (name with labels, exactly).
func (n *runningNode) metric(name string) (float64, error) {
	resp, err := http.Get(n.metrics)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(rest), 64)
		}
	}
	return 0, fmt.Errorf("metric %s not found", name)
}

func (n *runningNode) waitMetric(name string, want float64, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		if v, err := n.metric(name); err == nil && v == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not reach %v within %s\n%s", name, want, limit, n.log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// histMax returns the upper bound of the lowest bucket of a histogram
// that holds all its observations: the slowest observation, rounded up to
// a bucket.
func (n *runningNode) histMax(name string) (float64, error) { return n.histQuantile(name, 1) }

// histQuantile returns the upper bound of the lowest bucket of a histogram
// that holds a share q of its observations.
func (n *runningNode) histQuantile(name string, q float64) (float64, error) {
	resp, err := http.Get(n.metrics)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var count float64
	type bucket struct{ le, n float64 }
	var buckets []bucket
	for line := range strings.Lines(string(body)) {
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, name+"_count "); ok {
			count, _ = strconv.ParseFloat(rest, 64)
		}
		if rest, ok := strings.CutPrefix(line, name+`_bucket{le="`); ok {
			le, after, _ := strings.Cut(rest, `"} `)
			v, _ := strconv.ParseFloat(after, 64)
			l, err := strconv.ParseFloat(le, 64)
			if err != nil {
				continue // +Inf
			}
			buckets = append(buckets, bucket{l, v})
		}
	}
	if count == 0 {
		return 0, nil
	}
	for _, b := range buckets {
		if b.n >= q*count {
			return b.le, nil
		}
	}
	return -1, fmt.Errorf("%s: observations above the last bucket", name)
}

type failoverResult struct {
	affected                     int
	cycles                       []failoverCycle
	applyMax, delayMax, widenMax float64 // seconds
	applyMean, widenMean         float64 // seconds
	delayP99                     float64 // seconds
}

type failoverCycle struct {
	down, up, widest time.Duration
}

// failover stops region 0's endpoint and polls every pool that has it
// until its answer moves, then starts it again and polls until every pool
// is back.
func (n *runningNode) failover(eps *endpoints, z zoneSpec, cycles int) (failoverResult, error) {
	var res failoverResult
	// Clients the database cannot place get each pool's order, which puts
	// region 0 first where the pool has it.
	client := netip.MustParsePrefix("10.1.0.0/24")
	var pools []string
	var primary []netip.Addr
	for i := range z.pools {
		if rs := z.poolRegions(i); rs[0] == 0 {
			pools = append(pools, fmt.Sprintf("app%d.scale.test.", i))
			primary = append(primary, netip.AddrFrom4([4]byte{10, 0, byte(i / 256), byte(i % 256)}))
		}
	}
	res.affected = len(pools)
	// Let the first probe round pass, so the stop is seen by a running
	// schedule, as in production.
	if err := n.waitMetric("meridian_snapshot_widest_scopes", 1, 60*time.Second); err != nil {
		return res, err
	}
	for i, p := range pools {
		if a, err := n.ask(p, client); err != nil || a != primary[i] {
			return res, fmt.Errorf("%s answers %s (%v) before the failover, want %s", p, a, err, primary[i])
		}
	}
	ep := eps.srv[0]
	poll := func(moved func(i int, a netip.Addr) bool) (time.Duration, error) {
		t0 := time.Now()
		done := make([]bool, len(pools))
		left := len(pools)
		for left > 0 {
			if time.Since(t0) > 30*time.Second {
				return 0, fmt.Errorf("%d of %d pools still unchanged after 30s", left, len(pools))
			}
			for i, p := range pools {
				if done[i] {
					continue
				}
				if a, err := n.ask(p, client); err == nil && moved(i, a) {
					done[i] = true
					left--
				}
			}
		}
		return time.Since(t0), nil
	}
	for range cycles {
		var c failoverCycle
		ep.stop()
		var err error
		if c.down, err = poll(func(i int, a netip.Addr) bool { return a != primary[i] }); err != nil {
			return res, fmt.Errorf("failover: %w", err)
		}
		t1 := time.Now()
		if err := n.waitMetric("meridian_snapshot_widest_scopes", 1, 60*time.Second); err != nil {
			return res, err
		}
		c.widest = time.Since(t1)
		if err := ep.start(ep.addr.String()); err != nil {
			return res, fmt.Errorf("restart endpoint: %w", err)
		}
		if c.up, err = poll(func(i int, a netip.Addr) bool { return a == primary[i] }); err != nil {
			return res, fmt.Errorf("recovery: %w", err)
		}
		if err := n.waitMetric("meridian_snapshot_widest_scopes", 1, 60*time.Second); err != nil {
			return res, err
		}
		res.cycles = append(res.cycles, c)
	}
	var err error
	if res.delayP99, err = n.histQuantile("meridian_health_publish_delay_seconds", 0.99); err != nil {
		return res, err
	}
	for _, m := range []struct {
		name string
		dst  *float64
	}{
		{"meridian_snapshot_apply_seconds", &res.applyMax},
		{"meridian_health_publish_delay_seconds", &res.delayMax},
		{"meridian_scope_maps_build_seconds", &res.widenMax},
	} {
		v, err := n.histMax(m.name)
		if err != nil {
			return res, err
		}
		*m.dst = v
	}
	for _, m := range []struct {
		name string
		dst  *float64
	}{
		{"meridian_snapshot_apply_seconds", &res.applyMean},
		{"meridian_scope_maps_build_seconds", &res.widenMean},
	} {
		sum, err1 := n.metric(m.name + "_sum")
		count, err2 := n.metric(m.name + "_count")
		if err := errors.Join(err1, err2); err != nil {
			return res, err
		}
		if count > 0 {
			*m.dst = sum / count
		}
	}
	return res, nil
}

type reloadResult struct {
	startPeak float64 // MiB, before the reload
	peak      float64 // MiB
	took      time.Duration
	slowest   time.Duration
	failed    int
}

// reloadGeo touches the database so the watcher reloads it, and queries
// throughout until the reload is counted.
func (n *runningNode) reloadGeo(db string) (reloadResult, error) {
	var res reloadResult
	if err := n.waitMetric("meridian_snapshot_widest_scopes", 1, 60*time.Second); err != nil {
		return res, err
	}
	res.startPeak = float64(n.peakRSS()) / (1 << 20)
	before, _ := n.metric(`meridian_config_reloads_total{result="ok"}`)
	ctx, cancel := context.WithCancel(context.Background())
	var slowest atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		client := netip.MustParsePrefix("10.1.0.0/24")
		for ctx.Err() == nil {
			t0 := time.Now()
			if _, err := n.ask("app0.scale.test.", client); err != nil {
				failed.Add(1)
			}
			if d := int64(time.Since(t0)); d > slowest.Load() {
				slowest.Store(d)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	now := time.Now()
	if err := os.Chtimes(db, now, now); err != nil {
		cancel()
		wg.Wait()
		return res, err
	}
	t0 := time.Now()
	for {
		v, _ := n.metric(`meridian_config_reloads_total{result="ok"}`)
		if v > before {
			break
		}
		if time.Since(t0) > 120*time.Second {
			cancel()
			wg.Wait()
			return res, fmt.Errorf("no reload within 120s\n%s", n.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	res.took = time.Since(t0)
	if err := n.waitMetric("meridian_snapshot_widest_scopes", 1, 60*time.Second); err != nil {
		cancel()
		wg.Wait()
		return res, err
	}
	cancel()
	wg.Wait()
	res.peak = float64(n.peakRSS()) / (1 << 20)
	res.slowest = time.Duration(slowest.Load())
	res.failed = int(failed.Load())
	return res, nil
}
