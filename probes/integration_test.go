package probes

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridian-gtm/meridian/zones"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// listenAgain binds addr again after a server on it stopped, retrying
// while the port is still held (TIME_WAIT, a slow close).
func listenAgain(t *testing.T, network, addr string) net.Listener {
	t.Helper()
	var l net.Listener
	eventually(t, 5*time.Second, "rebind "+addr, func() bool {
		var err error
		l, err = net.Listen(network, addr)
		return err == nil
	})
	return l
}

// serveHTTP serves h on addr ("127.0.0.1:0" or a port to take again).
func serveHTTP(t *testing.T, addr string, h http.Handler) (stop func(), bound string) {
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = listenAgain(t, "tcp", addr)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Start()
	return srv.Close, srv.Listener.Addr().String()
}

// serveTCP accepts and closes connections on addr.
func serveTCP(t *testing.T, addr string) (stop func(), bound string) {
	l := listenAgain(t, "tcp", addr)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	})
	return func() { l.Close(); wg.Wait() }, l.Addr().String()
}

// serveDNS serves dnsServer's zone on addr, retrying while the port is
// still held.
func serveDNS(t *testing.T, addr string) (stop func(), bound string) {
	eventually(t, 5*time.Second, "rebind udp "+addr, func() bool {
		pc, err := net.ListenPacket("udp", addr)
		if err == nil {
			pc.Close()
		}
		return err == nil
	})
	return dnsServer(t, addr)
}

// watched is a running Prober with everything its callbacks saw.
type watched struct {
	p   *Prober
	reg *prometheus.Registry

	mu      sync.Mutex
	obs     []zones.Observation
	changes []change // one per OnChange call
	inside  atomic.Bool
	overlap atomic.Bool
}

// change is the verdict of the first target when OnChange was called, and
// how many observations had been delivered by then.
type change struct {
	v      zones.TargetVerdict
	judged bool
	n      int
}

// watch runs a Prober over ts; its changes record the verdict of ts[0].
func watch(t *testing.T, ts ...zones.Target) *watched {
	tg := ts[0]
	w := &watched{reg: prometheus.NewPedanticRegistry()}
	w.p = New(Options{
		OnObservation: func(o zones.Observation) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.obs = append(w.obs, o)
		},
		OnChange: func() {
			if !w.inside.CompareAndSwap(false, true) {
				w.overlap.Store(true)
			}
			defer w.inside.Store(false)
			v, ok := w.p.Verdicts()[tg.ID]
			w.mu.Lock()
			defer w.mu.Unlock()
			w.changes = append(w.changes, change{v: v, judged: ok, n: len(w.obs)})
		},
	}, w.reg)
	w.p.SetTargets(ts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if w.overlap.Load() {
			t.Error("OnChange calls overlapped")
		}
	})
	return w
}

func (w *watched) observed() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.obs)
}

func (w *watched) state(id string) (zones.TargetVerdict, bool) {
	v, ok := w.p.Verdicts()[id]
	return v, ok
}

// flip returns the first recorded change to state s (not pending) after
// the first `after` changes, and the observations up to it.
func (w *watched) flip(s zones.State, after int) (idx int, c change, obs []zones.Observation) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := after; i < len(w.changes); i++ {
		if c := w.changes[i]; c.judged && c.v.State == s && !c.v.Pending {
			return i, c, append([]zones.Observation(nil), w.obs[:c.n]...)
		}
	}
	return -1, change{}, nil
}

// streak reports whether the last n observations have ok and the one
// before does not.
func streak(obs []zones.Observation, n int, ok bool) bool {
	if len(obs) < n+1 {
		return false
	}
	for _, o := range obs[len(obs)-n:] {
		if o.OK != ok {
			return false
		}
	}
	return obs[len(obs)-n-1].OK != ok
}

// TestStopAndRestart runs the prober against a real server of each kind:
// up while it serves; down after Fall failures once it stops; up again
// after Rise successes once it is back on the same port. OnChange fires on
// each change (never concurrently), observations flow, metrics follow.
func TestStopAndRestart(t *testing.T) {
	okHandler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	for _, tc := range []struct {
		kind  zones.CheckKind
		serve func(t *testing.T, addr string) (func(), string)
		check zones.Check
		down  string // the failure reason once stopped (pattern)
	}{
		{zones.CheckHTTP, func(t *testing.T, addr string) (func(), string) { return serveHTTP(t, addr, okHandler) },
			zones.Check{Path: "/", ExpectBody: "ok"}, "connect: connection refused"},
		{zones.CheckTCP, serveTCP, zones.Check{}, "connect: connection refused"},
		{zones.CheckDNS, serveDNS, zones.Check{DNSName: "ok.example.", DNSType: dns.TypeA, DNSAnswer: "192.0.2.1"}, "read: connection refused|timeout after 1s"},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			stop, addr := tc.serve(t, "127.0.0.1:0")
			c := tc.check
			// Probes every 50ms; the timeout is longer than usual (zones
			// caps it at the interval) so a slow race-detector run does not
			// fail a probe of a healthy server.
			c.Kind, c.Interval, c.Timeout, c.Rise, c.Fall = tc.kind, 50*time.Millisecond, time.Second, 5, 3
			tg := target(t, addr, &c)
			w := watch(t, tg)

			eventually(t, 5*time.Second, "first verdicts", func() bool {
				v, ok := w.state(tg.ID)
				return ok && v.State == zones.Up && w.observed() >= 3
			})

			stop()
			eventually(t, 5*time.Second, "down after the server stopped", func() bool {
				v, _ := w.state(tg.ID)
				return v.State == zones.Down
			})
			idx, down, obs := w.flip(zones.Down, 0)
			if idx < 0 {
				t.Fatalf("no OnChange for the flip to down; changes: %+v", w.changes)
			}
			if !streak(obs, 3, false) {
				t.Errorf("went down after %s; want exactly Fall=3 failures after a pass", okPattern(obs))
			}
			last := obs[len(obs)-1]
			if want := "3 consecutive failures, last: " + last.Reason; down.v.Reason != want {
				t.Errorf("down reason %q, want %q", down.v.Reason, want)
			}
			if !regexp.MustCompile("^(?:" + tc.down + ")$").MatchString(last.Reason) {
				t.Errorf("failure reason %q, want %q", last.Reason, tc.down)
			}
			if !down.v.Since.Equal(last.Time) || !down.v.Checked.Equal(last.Time) {
				t.Errorf("down since %v checked %v, want both %v (the third failure)", down.v.Since, down.v.Checked, last.Time)
			}
			if v, _ := w.state(tg.ID); v.Pending {
				t.Errorf("down and still failing, yet pending: %+v", v)
			}

			stop, _ = tc.serve(t, addr)
			defer stop()
			eventually(t, 5*time.Second, "up after the server came back", func() bool {
				v, _ := w.state(tg.ID)
				return v.State == zones.Up
			})
			idx, up, obs := w.flip(zones.Up, idx)
			if idx < 0 {
				t.Fatalf("no OnChange for the flip back up")
			}
			if !streak(obs, 5, true) {
				t.Errorf("came back after %s; want exactly Rise=5 passes after a failure", okPattern(obs))
			}
			if up.v.Reason != "5 consecutive successes" || !up.v.Since.Equal(obs[len(obs)-1].Time) {
				t.Errorf("up verdict %+v, want reason \"5 consecutive successes\" since the fifth pass", up.v)
			}
			// Between the two flips OnChange saw the recovery pending.
			w.mu.Lock()
			pendingSeen := false
			for _, ch := range w.changes {
				pendingSeen = pendingSeen || (ch.v.State == zones.Down && ch.v.Pending)
			}
			w.mu.Unlock()
			if !pendingSeen {
				t.Error("OnChange never reported the pending recovery")
			}

			id, kind := tg.ID, string(tc.kind)
			for _, m := range []struct {
				c    prometheus.Collector
				want float64
				min  bool // at least want
			}{
				{w.p.m.flips.WithLabelValues(id, "down"), 1, false},
				{w.p.m.flips.WithLabelValues(id, "up"), 1, false},
				{w.p.m.up.WithLabelValues(id), 1, false},
				{w.p.m.attempts.WithLabelValues(id, kind, "failure"), 3, true},
				{w.p.m.attempts.WithLabelValues(id, kind, "success"), 8, true},
			} {
				got := testutil.ToFloat64(m.c)
				if got < m.want || (!m.min && got != m.want) {
					t.Errorf("metric %v = %v, want %v", m.c.(prometheus.Metric).Desc(), got, m.want)
				}
			}
			if n := testutil.CollectAndCount(w.reg, "meridian_probe_duration_seconds"); n != 1 {
				t.Errorf("%d duration series, want 1 (kind %s)", n, kind)
			}
		})
	}
}

// okPattern prints the last observations as + (pass) and - (failure).
func okPattern(obs []zones.Observation) string {
	b := make([]byte, 0, 10)
	for _, o := range obs[max(0, len(obs)-10):] {
		b = append(b, map[bool]byte{true: '+', false: '-'}[o.OK])
	}
	return string(b)
}

// TestInferenceLatencyBudget: a POST JSON "inference" check must get the
// right answer within its budget. A slow right answer makes the target
// Degraded (still a success), a fast one makes it Up again.
func TestInferenceLatencyBudget(t *testing.T) {
	var delay atomic.Int64
	stop, addr := serveHTTP(t, "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || string(body) != `{"prompt":"capital of France?"}` {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		time.Sleep(time.Duration(delay.Load())) // the model thinking, after the headers
		fmt.Fprint(w, `{"answer":"Paris"}`)
	}))
	defer stop()
	c := &zones.Check{
		Kind: zones.CheckHTTP, Interval: 50 * time.Millisecond, Timeout: time.Second, Rise: 5, Fall: 3,
		Path: "/v1/infer", Body: `{"prompt":"capital of France?"}`,
		Headers:       map[string]string{"Content-Type": "application/json"},
		ExpectRegexp:  regexp.MustCompile(`"answer":"Paris"`),
		LatencyBudget: 100 * time.Millisecond,
	}
	tg := target(t, addr, c)
	w := watch(t, tg)
	eventually(t, 5*time.Second, "up", func() bool {
		v, ok := w.state(tg.ID)
		return ok && v.State == zones.Up
	})

	delay.Store(int64(150 * time.Millisecond))
	eventually(t, 5*time.Second, "degraded when over budget", func() bool {
		v, _ := w.state(tg.ID)
		return v.State == zones.Degraded
	})
	v, _ := w.state(tg.ID)
	var took time.Duration
	if m := regexp.MustCompile(`^HTTP 200 after (` + ms + `), over 100ms budget$`).FindStringSubmatch(v.Reason); m != nil {
		took, _ = time.ParseDuration(m[1])
	}
	if took < 150*time.Millisecond || v.Pending {
		t.Errorf("degraded verdict %+v, want a reason with the latency (at least the 150ms delay) and the budget", v)
	}

	delay.Store(0)
	eventually(t, 5*time.Second, "up again within budget", func() bool {
		v, _ := w.state(tg.ID)
		return v.State == zones.Up
	})
	v, _ = w.state(tg.ID)
	if !regexp.MustCompile(`^within latency budget: HTTP 200 after ` + ms + `$`).MatchString(v.Reason) {
		t.Errorf("recovered verdict %+v", v)
	}
	if n := testutil.ToFloat64(w.p.m.flips.WithLabelValues(tg.ID, "degraded")); n != 1 {
		t.Errorf("flips to degraded: %v, want 1", n)
	}
	if n := testutil.ToFloat64(w.p.m.attempts.WithLabelValues(tg.ID, "http", "degraded")); n < 1 {
		t.Errorf("degraded attempts: %v", n)
	}
	if n := testutil.ToFloat64(w.p.m.attempts.WithLabelValues(tg.ID, "http", "failure")); n != 0 {
		t.Errorf("failed attempts: %v, want 0 (slow is not failed)", n)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, o := range w.obs {
		if !o.OK || o.Target != tg.ID {
			t.Fatalf("observation %+v: want every one a pass of %s", o, tg.ID)
		}
	}
}
