package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// within runs f and fails the test if it does not return within d: for
// calls that must never block.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s blocked for over %v", what, d)
	}
}

func seqs(evs []Event) []uint64 {
	var out []uint64
	for _, ev := range evs {
		out = append(out, ev.Seq)
	}
	return out
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func TestEventsPublishStamps(t *testing.T) {
	e := NewEvents(func() time.Time { return testTime })
	o := &Override{ID: "pin:a.", Region: "eu"}
	first := e.Publish(Event{Type: EventOverrideSet, Seq: 99, Override: o})
	if first.Seq != 1 || !first.Time.Equal(testTime) {
		t.Errorf("first event seq %d time %v, want 1, %v", first.Seq, first.Time, testTime)
	}
	o.Region = "changed by the publisher"
	at := testTime.Add(-time.Minute)
	second := e.Publish(Event{Type: EventVerdict, Time: at})
	if second.Seq != 2 || !second.Time.Equal(at) {
		t.Errorf("second event seq %d time %v, want 2, %v", second.Seq, second.Time, at)
	}
	got := e.Since(0)
	if !slices.Equal(seqs(got), []uint64{1, 2}) {
		t.Fatalf("Since(0) seqs %v", seqs(got))
	}
	if got[0].Override.Region != "eu" {
		t.Errorf("retained override changed with the publisher's: %q", got[0].Override.Region)
	}
	if s := seqs(e.Since(1)); !slices.Equal(s, []uint64{2}) {
		t.Errorf("Since(1) %v", s)
	}
}

func TestEventsRetention(t *testing.T) {
	t.Run("an hour", func(t *testing.T) {
		c := &clock{t: testTime}
		e := NewEvents(c.now)
		for _, ago := range []time.Duration{90 * time.Minute, 61 * time.Minute, 59 * time.Minute, 20 * time.Minute, 0} {
			e.Publish(Event{Type: EventMember, Time: testTime.Add(-ago)})
		}
		if s := seqs(e.Since(0)); !slices.Equal(s, []uint64{3, 4, 5}) {
			t.Errorf("Since(0) %v, want the last hour: 3 4 5", s)
		}
		if s := seqs(e.Recent(30 * time.Minute)); !slices.Equal(s, []uint64{4, 5}) {
			t.Errorf("Recent(30m) %v", s)
		}
		if s := seqs(e.Recent(24 * time.Hour)); !slices.Equal(s, []uint64{3, 4, 5}) {
			t.Errorf("Recent(24h) %v, want at most the hour retained", s)
		}
		c.set(testTime.Add(30 * time.Minute))
		if s := seqs(e.Since(0)); !slices.Equal(s, []uint64{4, 5}) {
			t.Errorf("half an hour later, Since(0) %v", s)
		}
	})
	t.Run("4096 events", func(t *testing.T) {
		e := NewEvents(func() time.Time { return testTime })
		for range EventsRetained + 100 {
			e.Publish(Event{Type: EventVerdict})
		}
		got := e.Since(0)
		if len(got) != EventsRetained || got[0].Seq != 101 || got[len(got)-1].Seq != EventsRetained+100 {
			t.Errorf("retained %d events, %d to %d", len(got), got[0].Seq, got[len(got)-1].Seq)
		}
		if s := seqs(e.Since(EventsRetained + 98)); !slices.Equal(s, []uint64{EventsRetained + 99, EventsRetained + 100}) {
			t.Errorf("Since near the end: %v", s)
		}
	})
}

// TestEventsSlowSubscriber: a subscriber that stops reading is dropped
// when its buffer is full; Publish does not wait for it, and the others
// go on receiving.
func TestEventsSlowSubscriber(t *testing.T) {
	e := newEvents(func() time.Time { return testTime }, 100, 2)
	slow, cancelSlow := e.Subscribe()
	defer cancelSlow()
	fast, cancelFast := e.Subscribe()
	defer cancelFast()
	if n := testutil.ToFloat64(e.subscribers); n != 2 {
		t.Fatalf("subscribers gauge %v, want 2", n)
	}
	within(t, 5*time.Second, "Publish", func() {
		e.Publish(Event{Type: EventVerdict})
		e.Publish(Event{Type: EventVerdict})
	})
	for want := uint64(1); want <= 2; want++ {
		if ev := <-fast; ev.Seq != want {
			t.Fatalf("fast subscriber got seq %d, want %d", ev.Seq, want)
		}
	}
	within(t, 5*time.Second, "Publish to a full subscriber", func() { e.Publish(Event{Type: EventVerdict}) })
	if ev := <-fast; ev.Seq != 3 {
		t.Errorf("fast subscriber got seq %d, want 3", ev.Seq)
	}
	var got []uint64
	for ev := range slow { // ends: the channel is closed
		got = append(got, ev.Seq)
	}
	if !slices.Equal(got, []uint64{1, 2}) {
		t.Errorf("slow subscriber got %v before being dropped, want 1 2", got)
	}
	if n := testutil.ToFloat64(e.dropped); n != 1 {
		t.Errorf("dropped subscribers %v, want 1", n)
	}
	if n := testutil.ToFloat64(e.subscribers); n != 1 {
		t.Errorf("subscribers gauge %v, want 1", n)
	}
	cancelSlow() // after the drop: no double close
}

func TestEventsCancel(t *testing.T) {
	e := NewEvents(func() time.Time { return testTime })
	ch, cancel := e.Subscribe()
	cancel()
	cancel()
	if _, ok := <-ch; ok {
		t.Error("channel open after cancel")
	}
	if n := testutil.ToFloat64(e.subscribers); n != 0 {
		t.Errorf("subscribers gauge %v, want 0", n)
	}
	e.Publish(Event{Type: EventConfig}) // nobody to send to
	if n := testutil.ToFloat64(e.dropped); n != 0 {
		t.Errorf("a cancelled subscriber counted as dropped")
	}
}

// serve runs ts.Serve on a loopback port until stop (or the test's end).
// stop cancels Serve's context and returns Serve's error and how long it
// took to return.
func serve(t *testing.T, ts *testServer) (base string, stop func() (error, time.Duration)) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- ts.Serve(ctx, ln) }()
	var once sync.Once
	var serr error
	var took time.Duration
	stop = func() (error, time.Duration) {
		once.Do(func() {
			start := time.Now()
			cancel()
			select {
			case serr = <-errc:
			case <-time.After(30 * time.Second):
				t.Fatal("Serve did not return 30s after its context ended")
			}
			took = time.Since(start)
		})
		return serr, took
	}
	t.Cleanup(func() { stop() })
	return "http://" + ln.Addr().String(), stop
}

// frame is one Server-Sent Events message: an event, or a comment.
type frame struct {
	id, event, data, comment string
}

// openStream GETs an events stream and returns its frames as they
// arrive; the channel closes when the stream ends. hdr are header
// name, value pairs.
func openStream(t *testing.T, ctx context.Context, url string, hdr ...string) <-chan frame {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = testHost
	req.Header.Set("Authorization", "Bearer "+readToken)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	client := &http.Client{Transport: &http.Transport{}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		t.Fatalf("events stream: status %d", resp.StatusCode)
	}
	for k, want := range map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s %q, want %q", k, got, want)
		}
	}
	frames := make(chan frame, 1024)
	go func() {
		defer close(frames)
		sc := bufio.NewScanner(resp.Body)
		var f frame
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if f != (frame{}) { // a frame of only "retry:" carries no event
					frames <- f
				}
				f = frame{}
			case strings.HasPrefix(line, ":"):
				f.comment = strings.TrimSpace(line[1:])
			default:
				k, v, _ := strings.Cut(line, ": ")
				switch k {
				case "id":
					f.id = v
				case "event":
					f.event = v
				case "data":
					f.data = v
				}
			}
		}
	}()
	return frames
}

// nextEvent returns the next event frame, skipping comments.
func nextEvent(t *testing.T, frames <-chan frame) frame {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case f, ok := <-frames:
			if !ok {
				t.Fatal("the stream ended")
			}
			if f.comment == "" {
				return f
			}
		case <-deadline:
			t.Fatal("no event within 5s")
		}
	}
}

// untilMarker collects the ids of event frames up to the event with id
// marker, not included.
func untilMarker(t *testing.T, frames <-chan frame, marker uint64) []uint64 {
	t.Helper()
	var ids []uint64
	for {
		f := nextEvent(t, frames)
		id, err := strconv.ParseUint(f.id, 10, 64)
		if err != nil {
			t.Fatalf("frame id %q", f.id)
		}
		if id == marker {
			return ids
		}
		ids = append(ids, id)
	}
}

// waitSubscribers waits until the hub has n subscribers.
func waitSubscribers(t *testing.T, e *Events, n float64) {
	t.Helper()
	waitFor(t, 5*time.Second, "subscribers == "+strconv.Itoa(int(n)), func() bool { return testutil.ToFloat64(e.subscribers) == n })
}

// TestEventStreamReplay: what a new stream replays, by Last-Event-ID,
// since_seq and history; then it follows live.
func TestEventStreamReplay(t *testing.T) {
	tests := []struct {
		name   string
		target string
		hdr    []string
		want   []uint64
	}{
		{"nothing asked", "/api/v1/events", nil, nil},
		{"Last-Event-ID", "/api/v1/events", []string{"Last-Event-ID", "2"}, []uint64{3, 4}},
		{"Last-Event-ID over since_seq", "/api/v1/events?since_seq=1", []string{"Last-Event-ID", "3"}, []uint64{4}},
		{"since_seq", "/api/v1/events?since_seq=1", nil, []uint64{2, 3, 4}},
		{"since_seq 0: all retained", "/api/v1/events?since_seq=0", nil, []uint64{2, 3, 4}},
		{"history", "/api/v1/events?history=30m", nil, []uint64{3, 4}},
		{"history 1h", "/api/v1/events?history=1h", nil, []uint64{2, 3, 4}},
		{"Last-Event-ID of an earlier process", "/api/v1/events", []string{"Last-Event-ID", "900"}, []uint64{2, 3, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, testConfig(t))
			for _, ago := range []time.Duration{61 * time.Minute, 50 * time.Minute, 20 * time.Minute, 5 * time.Minute} {
				ts.Events().Publish(Event{Type: EventVerdict, Node: "n1", Pool: "www.example.com.", Time: testTime.Add(-ago)})
			}
			base, _ := serve(t, ts)
			frames := openStream(t, context.Background(), base+tt.target, tt.hdr...)
			// The stream has subscribed and written its replay before
			// its headers arrived: a marker published now ends the replay.
			marker := ts.Events().Publish(Event{Type: EventConfig, Detail: "marker"})
			if got := untilMarker(t, frames, marker.Seq); !slices.Equal(got, tt.want) {
				t.Errorf("replayed %v, want %v", got, tt.want)
			}
		})
	}
}

// TestEventStreamLive: live events arrive in the SSE framing, as the
// Event's JSON, after the replay.
func TestEventStreamLive(t *testing.T) {
	ts := newTestServer(t, testConfig(t))
	ts.Events().Publish(Event{Type: EventVerdict, Node: "n1", Member: "web1", From: "up", To: "down"})
	base, _ := serve(t, ts)
	frames := openStream(t, context.Background(), base+"/api/v1/events", "Last-Event-ID", "0")
	if f := nextEvent(t, frames); f.id != "1" || f.event != "verdict" {
		t.Fatalf("replayed frame %+v", f)
	}
	sent := ts.Events().Publish(Event{Type: EventOverrideSet, Node: "n1", Who: "operator", Why: "dr test",
		Override: &Override{ID: "pin:www.example.com.", Action: ActionPin, Pool: "www.example.com.", Region: "eu-west", When: testTime}})
	f := nextEvent(t, frames)
	if f.id != "2" || f.event != "override.set" {
		t.Fatalf("live frame %+v", f)
	}
	var got Event
	if err := json.Unmarshal([]byte(f.data), &got); err != nil {
		t.Fatalf("data %q: %v", f.data, err)
	}
	if got.Seq != sent.Seq || got.Who != "operator" || got.Override == nil || *got.Override != *sent.Override || !got.Time.Equal(sent.Time) {
		t.Errorf("event %+v, want %+v", got, sent)
	}
}

func TestEventStreamKeepalive(t *testing.T) {
	ts := newTestServer(t, testConfig(t))
	ts.keepalive = 10 * time.Millisecond
	base, _ := serve(t, ts)
	frames := openStream(t, context.Background(), base+"/api/v1/events")
	select {
	case f := <-frames:
		if f.comment != "keepalive" {
			t.Errorf("first frame on an idle stream %+v, want the keepalive comment", f)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no keepalive within 5s")
	}
}

// TestEventStreamOutlivesTimeouts: the server's read and write timeouts
// bound ordinary requests, not a stream.
func TestEventStreamOutlivesTimeouts(t *testing.T) {
	cfg := testConfig(t)
	cfg.ReadTimeout, cfg.WriteTimeout = 150*time.Millisecond, 150*time.Millisecond
	ts := newTestServer(t, cfg)
	ts.keepalive = 20 * time.Millisecond
	base, _ := serve(t, ts)
	start := time.Now()
	frames := openStream(t, context.Background(), base+"/api/v1/events")
	for time.Since(start) < 4*cfg.WriteTimeout {
		select {
		case _, ok := <-frames:
			if !ok {
				t.Fatalf("the stream ended after %v", time.Since(start))
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no keepalive within 5s")
		}
	}
	ts.Events().Publish(Event{Type: EventIsolation, To: "isolated"})
	if f := nextEvent(t, frames); f.event != "isolation" {
		t.Errorf("frame %+v", f)
	}
}

// blockingWriter is a ResponseWriter whose writes wait for release: a
// client that stopped reading.
type blockingWriter struct {
	h       http.Header
	release chan struct{}
	mu      sync.Mutex
	body    strings.Builder
}

func (w *blockingWriter) Header() http.Header { return w.h }
func (w *blockingWriter) WriteHeader(int)     {}
func (w *blockingWriter) Flush()              {}
func (w *blockingWriter) Write(p []byte) (int, error) {
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.body.Write(p)
}

// TestEventStreamSlowClientDropped: a stream whose client does not read
// is dropped by the hub without holding up Publish, and ends once it has
// written what it had.
func TestEventStreamSlowClientDropped(t *testing.T) {
	ts := newTestServer(t, testConfig(t))
	ts.events = newEvents(ts.now, 100, 2)
	ts.keepalive = time.Hour
	w := &blockingWriter{h: http.Header{}, release: make(chan struct{})}
	req := httptest.NewRequest("GET", "/api/v1/events", nil)
	req.Host = testHost
	req.Header.Set("Authorization", "Bearer "+readToken)
	done := make(chan struct{})
	go func() { defer close(done); ts.Handler().ServeHTTP(w, req) }()
	waitSubscribers(t, ts.events, 1)
	within(t, 5*time.Second, "Publish to a stalled stream", func() {
		for range 3 {
			ts.events.Publish(Event{Type: EventMember})
		}
	})
	if n := testutil.ToFloat64(ts.events.dropped); n != 1 {
		t.Errorf("dropped subscribers %v, want 1", n)
	}
	close(w.release)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the dropped stream did not end")
	}
	body := w.body.String()
	if !strings.Contains(body, "id: 2\n") || strings.Contains(body, "id: 3\n") {
		t.Errorf("a dropped stream writes what it had buffered (1, 2) and ends; wrote %q", body)
	}
}

// TestEventStreamEndsOnShutdown: Serve's context ending ends the streams
// at once, instead of Shutdown waiting its timeout for them.
func TestEventStreamEndsOnShutdown(t *testing.T) {
	cfg := testConfig(t)
	cfg.ShutdownTimeout = 20 * time.Second
	ts := newTestServer(t, cfg)
	base, stop := serve(t, ts)
	frames := openStream(t, context.Background(), base+"/api/v1/events")
	waitSubscribers(t, ts.events, 1)
	err, took := stop()
	if err != nil {
		t.Errorf("Serve: %v", err)
	}
	if took > 5*time.Second {
		t.Errorf("Serve took %v to return with a stream open", took)
	}
	for range frames { // ends: the stream is closed
	}
	waitSubscribers(t, ts.events, 0)
}

// TestEventStreamClientGone: a client going away ends its stream and
// its subscription.
func TestEventStreamClientGone(t *testing.T) {
	ts := newTestServer(t, testConfig(t))
	base, _ := serve(t, ts)
	ctx, cancel := context.WithCancel(context.Background())
	openStream(t, ctx, base+"/api/v1/events")
	waitSubscribers(t, ts.events, 1)
	cancel()
	waitSubscribers(t, ts.events, 0)
}

func TestEventStreamRefused(t *testing.T) {
	tests := []struct {
		name, target, token string
		hdr                 []string
		want                int
	}{
		{"no token", "/api/v1/events", "", nil, 401},
		{"wrong token", "/api/v1/events", wrongToken, nil, 401},
		{"rebound host", "/api/v1/events", readToken, []string{"Host", "evil.example"}, 403},
		{"bad Last-Event-ID", "/api/v1/events", readToken, []string{"Last-Event-ID", "x"}, 400},
		{"bad since_seq", "/api/v1/events?since_seq=-1", readToken, nil, 400},
		{"history over an hour", "/api/v1/events?history=2h", readToken, nil, 400},
		{"history not a duration", "/api/v1/events?history=1", readToken, nil, 400},
		{"history zero", "/api/v1/events?history=0s", readToken, nil, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, testConfig(t))
			w := ts.do("GET", tt.target, tt.token, "", tt.hdr...)
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.want, w.Body)
			}
			apiErr(t, w)
			if n := testutil.ToFloat64(ts.events.subscribers); n != 0 {
				t.Errorf("a refused stream left %v subscribers", n)
			}
		})
	}
}
