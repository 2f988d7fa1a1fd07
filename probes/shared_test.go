package probes

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridian-gtm/meridian/zones"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// sharedPools is a zone of n pools whose one member each is probed at addr
// with the same HTTP check (each pool answers with its own address).
func sharedPools(t *testing.T, n int, addr string, every time.Duration) *zones.Config {
	t.Helper()
	var b strings.Builder
	b.WriteString("zone = \"shared.test\"\nns = [\"ns.example.net.\"]\n[regions.a]\nlat = 0\nlon = 0\n")
	for i := range n {
		fmt.Fprintf(&b, "[pools.p%02d]\npolicy = \"failover\"\norder = [\"a\"]\n", i)
		fmt.Fprintf(&b, "[pools.p%02d.check]\npath = \"/healthz\"\nexpect_body = \"ok\"\ninterval = %q\ntimeout = %q\nrise = 2\nfall = 2\n", i, every, every)
		fmt.Fprintf(&b, "[pools.p%02d.members.a]\naddresses = [\"192.0.2.%d\"]\nendpoints = [%q]\n", i, i+1, addr)
	}
	z, err := zones.ParseZone("shared.toml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return &zones.Config{Zones: []*zones.Zone{z}}
}

// countingHandler answers "ok" and counts the requests.
func countingHandler(hits *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprint(w, "ok")
	})
}

// downMembers is how many members FoldHealth finds down.
func downMembers(cfg *zones.Config, v map[string]zones.TargetVerdict) int {
	n := 0
	for _, mh := range zones.FoldHealth(cfg, v) {
		if mh.State == zones.Down {
			n++
		}
	}
	return n
}

// TestSharedEndpointProbedOnce: 16 pools probe one real endpoint with one
// check. It gets one request per interval (not 16); when it stops, its one
// verdict flips once (one OnChange per change, not one per pool) and
// takes all 16 members down; when it is back, one flip brings them all up.
func TestSharedEndpointProbedOnce(t *testing.T) {
	const pools, every = 16, 200 * time.Millisecond
	var hits atomic.Int64
	stop, addr := serveHTTP(t, "127.0.0.1:0", countingHandler(&hits))
	cfg := sharedPools(t, pools, addr, every)
	ts := cfg.Targets()
	if len(ts) != 1 || len(ts[0].Members) != pools {
		t.Fatalf("targets %+v, want one serving all %d pools", ts, pools)
	}
	tg := ts[0]
	w := watch(t, ts...)

	// Probe load: over a window of several probes, each probe is one
	// request, and they come no faster than one per interval less its
	// 10% jitter (16 probes per interval would be about 16 times as many).
	eventually(t, 5*time.Second, "first probe", func() bool { return w.observed() >= 1 })
	h0, o0, t0 := hits.Load(), w.observed(), time.Now()
	const window = 6
	eventually(t, 10*time.Second, "probes in the window", func() bool { return w.observed() >= o0+window })
	elapsed, dh, do := time.Since(t0), hits.Load()-h0, int64(w.observed()-o0)
	if dh < do-1 || dh > do+1 {
		t.Errorf("%d requests for %d probes: want one request per probe (±1 in flight)", dh, do)
	}
	if most := int64(elapsed/(every*9/10)) + 2; dh > most {
		t.Errorf("%d requests in %s, want at most %d (one per %s interval)", dh, elapsed, most, every)
	}
	if v := w.p.Verdicts(); len(v) != 1 || v[tg.ID].State != zones.Up {
		t.Fatalf("verdicts %+v, want one, up", v)
	}

	// A spurious slow probe before this point may have left a pending
	// change; count the changes from here.
	w.mu.Lock()
	before := len(w.changes)
	w.mu.Unlock()
	stop()
	eventually(t, 5*time.Second, "down after the endpoint stopped", func() bool {
		v, _ := w.state(tg.ID)
		return v.State == zones.Down
	})
	// Still failing for a few more probes: no more changes.
	o1 := w.observed()
	eventually(t, 5*time.Second, "probes while down", func() bool { return w.observed() >= o1+3 })
	w.mu.Lock()
	after := append([]change(nil), w.changes[before:]...)
	w.mu.Unlock()
	downs := 0
	for _, c := range after {
		if c.v.State == zones.Down && !c.v.Pending {
			downs++
		}
	}
	if downs != 1 || len(after) > 2 || after[len(after)-1].v.State != zones.Down {
		t.Errorf("OnChange saw %+v after the stop, want (up, pending) then one down", after)
	}
	if n := testutil.ToFloat64(w.p.m.flips.WithLabelValues(tg.ID, "down")); n != 1 {
		t.Errorf("%v flips to down, want 1", n)
	}
	if n := downMembers(cfg, w.p.Verdicts()); n != pools {
		t.Errorf("%d members down, want all %d", n, pools)
	}

	w.mu.Lock()
	before = len(w.changes)
	w.mu.Unlock()
	stop, _ = serveHTTP(t, addr, countingHandler(&hits))
	defer stop()
	// OnChange runs after the verdict is in: wait for the call itself.
	eventually(t, 5*time.Second, "OnChange for the flip back up", func() bool {
		idx, _, _ := w.flip(zones.Up, before)
		return idx >= 0
	})
	w.mu.Lock()
	after = append([]change(nil), w.changes[before:]...)
	w.mu.Unlock()
	if len(after) != 2 || !(after[0].v.State == zones.Down && after[0].v.Pending) || after[1].v.State != zones.Up {
		t.Errorf("OnChange saw %+v on recovery, want (down, pending) then up", after)
	}
	if n := testutil.ToFloat64(w.p.m.flips.WithLabelValues(tg.ID, "up")); n != 1 {
		t.Errorf("%v flips to up, want 1", n)
	}
	if n := downMembers(cfg, w.p.Verdicts()); n != 0 {
		t.Errorf("%d members down after recovery, want none", n)
	}
}

// TestOnceShared: Once probes a target shared by 16 pools one time, even
// when the target is listed twice, and its verdict serves every pool.
func TestOnceShared(t *testing.T) {
	var hits atomic.Int64
	stop, addr := serveHTTP(t, "127.0.0.1:0", countingHandler(&hits))
	defer stop()
	cfg := sharedPools(t, 16, addr, time.Second)
	ts := cfg.Targets()
	v := Once(context.Background(), append(ts, ts...), 0)
	if n := hits.Load(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
	if len(v) != 1 || v[ts[0].ID].State != zones.Up {
		t.Errorf("verdicts %+v, want one, up", v)
	}

	stop()
	v = Once(context.Background(), ts, 0)
	if got := v[ts[0].ID]; got.State != zones.Down || !strings.Contains(got.Reason, "refused") {
		t.Errorf("stopped endpoint: %+v, want down with the reason", got)
	}
	if n := downMembers(cfg, v); n != 16 {
		t.Errorf("%d members down, want all 16", n)
	}
}
