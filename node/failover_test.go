package node

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridian-gtm/meridian/zones"
	"github.com/miekg/dns"
)

// endpoint is a real HTTP server on one loopback address that can be
// stopped and started again on the same address.
type endpoint struct {
	t    *testing.T
	addr string
	hits atomic.Int64
	mu   sync.Mutex
	srv  *http.Server
}

func newEndpoint(t *testing.T, ip string) *endpoint {
	e := &endpoint{t: t}
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Skipf("cannot listen on %s: %v", ip, err)
	}
	e.addr = l.Addr().String()
	e.serve(l)
	t.Cleanup(e.stop)
	return e
}

func (e *endpoint) serve(l net.Listener) {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		e.hits.Add(1)
		io.WriteString(w, "ok")
	})
	srv := &http.Server{Handler: mux}
	e.mu.Lock()
	e.srv = srv
	e.mu.Unlock()
	go srv.Serve(l)
}

func (e *endpoint) stop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.srv != nil {
		e.srv.Close()
		e.srv = nil
	}
}

func (e *endpoint) start() {
	var l net.Listener
	var err error
	deadline := time.Now().Add(5 * time.Second)
	for l, err = net.Listen("tcp", e.addr); err != nil; l, err = net.Listen("tcp", e.addr) {
		if time.Now().After(deadline) {
			e.t.Fatalf("restart %s: %v", e.addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.serve(l)
}

// failoverNode starts a node whose three regions are probed at real
// servers on 127.0.0.2-4: HTTP checks for us-east and eu-west, a TCP
// connect for ap-southeast.
func failoverNode(t *testing.T, interval string, rise int) (*Node, map[string]*endpoint) {
	eps := map[string]*endpoint{
		"us-east":      newEndpoint(t, "127.0.0.2"),
		"eu-west":      newEndpoint(t, "127.0.0.3"),
		"ap-southeast": newEndpoint(t, "127.0.0.4"),
	}
	dir := t.TempDir()
	zone := fmt.Sprintf(`zone = "gslb.example.com"
ns = ["ns.example.net."]
[regions.us-east]
lat = 38.95
lon = -77.45
[regions.eu-west]
lat = 50.11
lon = 8.68
[regions.ap-southeast]
lat = 1.35
lon = 103.82
[pools.www]
order = ["us-east", "eu-west", "ap-southeast"]
ttl = 30
ttl_unstable = 5
[pools.www.check]
type = "http"
path = "/healthz"
expect_body = "ok"
interval = %q
fall = 3
rise = %d
[pools.www.members.us-east]
addresses = ["192.0.2.10"]
endpoints = [%q]
[pools.www.members.eu-west]
addresses = ["198.51.100.10"]
endpoints = [%q]
[pools.www.members.ap-southeast]
addresses = ["203.0.113.10"]
endpoints = [%q]
[pools.www.members.ap-southeast.check]
type = "tcp"                  # this region is judged by a TCP connect
`, interval, rise, eps["us-east"].addr, eps["eu-west"].addr, eps["ap-southeast"].addr)
	os.MkdirAll(filepath.Join(dir, "zones"), 0o755)
	if err := os.WriteFile(filepath.Join(dir, "zones", "z.toml"), []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}
	geoData, err := os.ReadFile("../deploy/demo/demo-city.mmdb")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "geo.mmdb"), geoData, 0o644)
	os.WriteFile(filepath.Join(dir, "node.toml"), []byte("zones = \"zones\"\ngeoip = \"geo.mmdb\"\n[dns]\nlisten = [\"127.0.0.1:0\"]\n"), 0o644)
	n := startNode(t, filepath.Join(dir, "node.toml"), nil)
	return n, eps
}

// askEU asks the node over real UDP as a resolver with a German client.
func askEU(t *testing.T, n *Node) (addr string, ttl uint32) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion("www.gslb.example.com.", dns.TypeA)
	m.SetEdns0(1232, false)
	o := m.IsEdns0()
	o.Option = append(o.Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: []byte{198, 51, 100, 0}})
	r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, n.DNSAddrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("rcode %s, %d answers: never fail closed", dns.RcodeToString[r.Rcode], len(r.Answer))
	}
	return r.Answer[0].(*dns.A).A.String(), r.Answer[0].Header().Ttl
}

// waitAnswer polls until the EU client gets want, or fails at the deadline.
func waitAnswer(t *testing.T, n *Node, want string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got, _ := askEU(t, n)
		if got == want {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("answer still %s after %s, want %s", got, within, want)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition
	}
}

func TestFailoverFollowsHealth(t *testing.T) {
	n, eps := failoverNode(t, "100ms", 2)
	if got, ttl := askEU(t, n); got != "198.51.100.10" || ttl != 30 {
		t.Fatalf("start: %s ttl %d, want eu-west with ttl 30", got, ttl)
	}
	// eu-west's endpoint stops: its region leaves the answers.
	eps["eu-west"].stop()
	waitAnswer(t, n, "192.0.2.10", 5*time.Second)
	e := n.Store().Load().Explain(netip.MustParsePrefix("198.51.100.0/24"), "www.gslb.example.com.", dns.TypeA)
	var euWhy string
	for _, r := range e.Pool.Regions {
		if r.Name == "eu-west" {
			euWhy = r.State + ": " + r.Reason
		}
	}
	if want := "down: 0 of 1 endpoints up"; len(euWhy) < len(want) || euWhy[:len(want)] != want {
		t.Errorf("explain says eu-west %q", euWhy)
	}
	// It comes back after rise successes.
	eps["eu-west"].start()
	waitAnswer(t, n, "198.51.100.10", 5*time.Second)
	// Everything down: fail open to the client's own first choice, short TTL.
	for _, ep := range eps {
		ep.stop()
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		h := n.Store().Load().Inputs.Health
		if h[zones.MemberKey{Pool: "www.gslb.example.com.", Region: "us-east"}].State == zones.Down &&
			h[zones.MemberKey{Pool: "www.gslb.example.com.", Region: "eu-west"}].State == zones.Down &&
			h[zones.MemberKey{Pool: "www.gslb.example.com.", Region: "ap-southeast"}].State == zones.Down {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not all regions down: %v", h)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got, ttl := askEU(t, n); got != "198.51.100.10" || ttl != 5 {
		t.Fatalf("all down: %s ttl %d, want eu-west (fail open, client's first choice) with ttl 5", got, ttl)
	}
}

// TestMeasureFailoverTime measures how long a region's endpoint takes to
// leave the answers with interval 1s and fall 3, over 10 runs, and the probe
// load per target. It takes about a minute, so it runs only when asked:
//
//	MERIDIAN_MEASURE=1 go test ./node -run MeasureFailover -v
func TestMeasureFailoverTime(t *testing.T) {
	if os.Getenv("MERIDIAN_MEASURE") == "" {
		t.Skip("set MERIDIAN_MEASURE=1 to measure failover time")
	}
	n, eps := failoverNode(t, "1s", 1)
	eu := eps["eu-west"]
	// Probe load: hits on one endpoint over 20 s.
	h0 := eu.hits.Load()
	t0 := time.Now()
	for time.Since(t0) < 20*time.Second {
		time.Sleep(100 * time.Millisecond)
	}
	perMin := float64(eu.hits.Load()-h0) / time.Since(t0).Minutes()
	t.Logf("probe load: %.1f requests per target per minute (interval 1s: 60 expected)", perMin)
	var ds []time.Duration
	for i := 0; i < 10; i++ {
		waitAnswer(t, n, "198.51.100.10", 10*time.Second)
		eu.stop()
		d := waitAnswer(t, n, "192.0.2.10", 10*time.Second)
		ds = append(ds, d)
		eu.start()
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	t.Logf("failover time, interval 1s fall 3, %d runs: min %s median %s max %s", len(ds), ds[0].Round(time.Millisecond), ((ds[4] + ds[5]) / 2).Round(time.Millisecond), ds[len(ds)-1].Round(time.Millisecond))
}
