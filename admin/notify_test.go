package admin

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

const testSecret = "hook-secret-for-tests-0123456789"

// writeSecret writes a secret file, with the newline editors add.
func writeSecret(t *testing.T, secret string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hook.secret")
	if err := os.WriteFile(p, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// delivery is one request a receiver got.
type delivery struct {
	hdr  http.Header
	body []byte
}

// receiver is a webhook endpoint answering the nth request (from 1) with
// status(n).
type receiver struct {
	*httptest.Server
	status func(n int) int

	mu   sync.Mutex
	got  []delivery
	seen chan struct{} // a value per request, when not full
}

func newReceiver(t *testing.T, status func(n int) int) *receiver {
	t.Helper()
	rc := &receiver{status: status, seen: make(chan struct{}, 1024)}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, delivery{hdr: r.Header.Clone(), body: body})
		n := len(rc.got)
		rc.mu.Unlock()
		select {
		case rc.seen <- struct{}{}:
		default:
		}
		w.WriteHeader(rc.status(n))
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) deliveries() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.got)
}

// events decodes the bodies received.
func (rc *receiver) events(t *testing.T) []Event {
	t.Helper()
	var out []Event
	for _, d := range rc.deliveries() {
		var e Event
		if err := json.Unmarshal(d.body, &e); err != nil {
			t.Fatalf("body %q: %v", d.body, err)
		}
		out = append(out, e)
	}
	return out
}

func always(status int) func(int) int { return func(int) int { return status } }

// startNotifier runs a notifier over hooks on hub until the test ends,
// with millisecond backoffs.
func startNotifier(t *testing.T, hub *Events, hooks ...HookConfig) *Notifier {
	t.Helper()
	n := newNotifier(t, hooks...)
	runNotifier(t, n, hub)
	return n
}

func newNotifier(t *testing.T, hooks ...HookConfig) *Notifier {
	t.Helper()
	n, err := NewNotifier(hooks, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	n.backoffBase, n.backoffCap = time.Millisecond, 4*time.Millisecond
	n.now = func() time.Time { return testTime }
	return n
}

// runNotifier runs n and waits until it has subscribed to hub; the
// test's end stops it and waits for it.
func runNotifier(t *testing.T, n *Notifier, hub *Events) {
	t.Helper()
	before := testutil.ToFloat64(hub.subscribers)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); n.Run(ctx, hub) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return 10s after its context ended")
		}
	})
	waitFor(t, 5*time.Second, "the notifier to subscribe", func() bool { return testutil.ToFloat64(hub.subscribers) == before+1 })
}

func hookFor(t *testing.T, rc *receiver, name string) HookConfig {
	return HookConfig{Name: name, URL: rc.URL + "/hook", SecretFile: writeSecret(t, testSecret), MaxAttempts: 4}
}

func counterOf(n *Notifier, hook, result string) float64 {
	return testutil.ToFloat64(n.deliveries.WithLabelValues(hook, result))
}

func attemptsOf(n *Notifier, hook string) float64 {
	return testutil.ToFloat64(n.attempts.WithLabelValues(hook))
}

// TestNotifyDelivers: an event arrives as its JSON, with the headers
// HookConfig documents, and its signature verifies.
func TestNotifyDelivers(t *testing.T) {
	hub := NewEvents(func() time.Time { return testTime })
	hub.Publish(Event{Type: EventVerdict, Detail: "before the notifier ran: not sent"})
	rc := newReceiver(t, always(204))
	n := startNotifier(t, hub, hookFor(t, rc, "pager"))
	sent := hub.Publish(Event{Type: EventOverrideSet, Node: "n1", Who: "operator", Why: "dr test",
		Override: &Override{ID: "pin:www.example.com.", Action: ActionPin, Pool: "www.example.com.", Region: "eu-west", When: testTime}})
	waitFor(t, 5*time.Second, "the delivery to be counted", func() bool { return counterOf(n, "pager", resultSent) == 1 })
	ds := rc.deliveries()
	if len(ds) != 1 {
		t.Fatalf("%d requests, want 1", len(ds))
	}
	d := ds[0]
	ts := strconv.FormatInt(testTime.Unix(), 10)
	for k, want := range map[string]string{
		"Content-Type": "application/json", "User-Agent": "meridian-notify/1",
		"X-Meridian-Event": "override.set", "X-Meridian-Timestamp": ts,
	} {
		if got := d.hdr.Get(k); got != want {
			t.Errorf("%s %q, want %q", k, got, want)
		}
	}
	if id := d.hdr.Get("X-Meridian-Delivery"); len(id) != 32 {
		t.Errorf("X-Meridian-Delivery %q, want 32 hex digits", id)
	}
	sig := d.hdr.Get("X-Meridian-Signature")
	if !VerifySignature([]byte(testSecret), ts, d.body, sig) {
		t.Errorf("signature %q does not verify", sig)
	}
	var got Event
	if err := json.Unmarshal(d.body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Seq != sent.Seq || got.Type != EventOverrideSet || got.Override == nil || *got.Override != *sent.Override {
		t.Errorf("body %s, want %+v", d.body, sent)
	}
	if attemptsOf(n, "pager") != 1 || counterOf(n, "pager", resultFailed) != 0 {
		t.Errorf("attempts %v, failed %v", attemptsOf(n, "pager"), counterOf(n, "pager", resultFailed))
	}
}

func TestVerifySignature(t *testing.T) {
	secret, ts, body := []byte(testSecret), "1740830400", []byte(`{"seq":1}`)
	good := "sha256=" + hex.EncodeToString(signature(secret, ts, body))
	tests := []struct {
		name   string
		secret []byte
		ts     string
		body   []byte
		header string
		want   bool
	}{
		{"good", secret, ts, body, good, true},
		{"upper-case hex", secret, ts, body, "sha256=" + strings.ToUpper(good[7:]), true},
		{"other secret", []byte("another-secret-0123456789"), ts, body, good, false},
		{"other timestamp", secret, "1740830401", body, good, false},
		{"other body", secret, ts, []byte(`{"seq":2}`), good, false},
		{"no prefix", secret, ts, body, good[7:], false},
		{"other algorithm", secret, ts, body, "sha1=" + good[7:], false},
		{"not hex", secret, ts, body, "sha256=zz", false},
		{"empty", secret, ts, body, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := VerifySignature(tt.secret, tt.ts, tt.body, tt.header); got != tt.want {
				t.Errorf("VerifySignature = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestNotifyRetries: a receiver failing twice then answering gets three
// attempts of one delivery, each signed afresh, and the event.
func TestNotifyRetries(t *testing.T) {
	hub := NewEvents(func() time.Time { return testTime })
	rc := newReceiver(t, func(n int) int {
		if n <= 2 {
			return 503
		}
		return 200
	})
	n := startNotifier(t, hub, hookFor(t, rc, "pager"))
	hub.Publish(Event{Type: EventIsolation, To: "isolated"})
	waitFor(t, 5*time.Second, "the delivery", func() bool { return counterOf(n, "pager", resultSent) == 1 })
	ds := rc.deliveries()
	if len(ds) != 3 || attemptsOf(n, "pager") != 3 {
		t.Fatalf("%d requests, %v attempts counted; want 3", len(ds), attemptsOf(n, "pager"))
	}
	for _, d := range ds {
		if d.hdr.Get("X-Meridian-Delivery") != ds[0].hdr.Get("X-Meridian-Delivery") {
			t.Errorf("the delivery ID changed between attempts")
		}
		if !VerifySignature([]byte(testSecret), d.hdr.Get("X-Meridian-Timestamp"), d.body, d.hdr.Get("X-Meridian-Signature")) {
			t.Errorf("an attempt's signature does not verify")
		}
	}
	if evs := rc.events(t); evs[2].Type != EventIsolation {
		t.Errorf("delivered %+v", evs[2])
	}
	if counterOf(n, "pager", resultFailed) != 0 {
		t.Errorf("counted failed")
	}
}

// TestNotifyStatuses: which answers are retried up to MaxAttempts, and
// which fail at once.
func TestNotifyStatuses(t *testing.T) {
	tests := []struct {
		status   int
		attempts int
	}{
		{500, 4}, {502, 4}, {503, 4}, {408, 4}, {429, 4},
		{400, 1}, {401, 1}, {403, 1}, {404, 1}, {410, 1}, {422, 1},
		{301, 1}, // redirects are not followed
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			hub := NewEvents(func() time.Time { return testTime })
			rc := newReceiver(t, always(tt.status))
			n := startNotifier(t, hub, hookFor(t, rc, "pager"))
			hub.Publish(Event{Type: EventVerdict})
			waitFor(t, 5*time.Second, "the delivery to fail", func() bool { return counterOf(n, "pager", resultFailed) == 1 })
			if got := len(rc.deliveries()); got != tt.attempts || attemptsOf(n, "pager") != float64(tt.attempts) {
				t.Errorf("%d requests, %v attempts counted; want %d", got, attemptsOf(n, "pager"), tt.attempts)
			}
			if counterOf(n, "pager", resultSent) != 0 {
				t.Errorf("counted sent")
			}
		})
	}
}

// TestNotifyNetworkError: a receiver that does not answer is retried
// MaxAttempts times, then counted failed.
func TestNotifyNetworkError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: connections are refused
	hub := NewEvents(func() time.Time { return testTime })
	n := newNotifier(t, HookConfig{Name: "gone", URL: "http://" + addr + "/hook?token=secret-in-url",
		SecretFile: writeSecret(t, testSecret), MaxAttempts: 3})
	logs := &syncBuffer{}
	n.log = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	runNotifier(t, n, hub)
	hub.Publish(Event{Type: EventVerdict})
	waitFor(t, 5*time.Second, "the delivery to fail", func() bool { return counterOf(n, "gone", resultFailed) == 1 })
	if a := attemptsOf(n, "gone"); a != 3 {
		t.Errorf("%v attempts, want 3", a)
	}
	if l := logs.String(); !strings.Contains(l, "notify delivery failed") || strings.Contains(l, "secret-in-url") {
		t.Errorf("logs do not report the failure, or repeat the URL:\n%s", l)
	}
}

// TestNotifyQueueFull: while a receiver is stuck, events beyond the
// hook's queue are dropped and counted, and Publish does not wait.
func TestNotifyQueueFull(t *testing.T) {
	hub := NewEvents(func() time.Time { return testTime })
	release := make(chan struct{})
	var releaseOnce sync.Once
	stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(stuck.Close)
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	hc := HookConfig{Name: "slow", URL: stuck.URL, SecretFile: writeSecret(t, testSecret), QueueSize: 1, Timeout: time.Minute}
	n := startNotifier(t, hub, hc)
	hub.Publish(Event{Type: EventVerdict}) // taken by the delivery goroutine, stuck
	waitFor(t, 5*time.Second, "the first attempt", func() bool { return attemptsOf(n, "slow") == 1 })
	within(t, 5*time.Second, "Publish", func() {
		for range 4 { // the first fills the queue, the rest are dropped
			hub.Publish(Event{Type: EventVerdict})
		}
	})
	waitFor(t, 5*time.Second, "3 drops", func() bool { return counterOf(n, "slow", resultDropped) == 3 })
	if q := testutil.ToFloat64(n.queues); q != 1 {
		t.Errorf("queue length %v, want 1", q)
	}
	releaseOnce.Do(func() { close(release) })
	waitFor(t, 5*time.Second, "2 deliveries", func() bool { return counterOf(n, "slow", resultSent) == 2 })
	if q := testutil.ToFloat64(n.queues); q != 0 {
		t.Errorf("queue length %v, want 0", q)
	}
}

// TestNotifyFilter: a hook is sent the types it asks for, by default
// those of DefaultHookEvents.
func TestNotifyFilter(t *testing.T) {
	hub := NewEvents(func() time.Time { return testTime })
	def := newReceiver(t, always(200))
	only := newReceiver(t, always(200))
	onlyHook := hookFor(t, only, "members")
	onlyHook.Events = []EventType{EventMember, EventConfig}
	n := startNotifier(t, hub, hookFor(t, def, "default"), onlyHook)
	all := []EventType{EventVerdict, EventOverrideSet, EventOverrideCleared, EventOverrideExpired, EventMember, EventIsolation, EventSelfDistrust, EventConfig}
	for _, et := range all {
		hub.Publish(Event{Type: et})
	}
	// Each hook's queue is in order: once the last event it wants is in,
	// nothing else it would have been sent is still coming.
	waitFor(t, 5*time.Second, "the deliveries", func() bool {
		return counterOf(n, "default", resultSent) == 6 && counterOf(n, "members", resultSent) == 2
	})
	types := func(evs []Event) []EventType {
		var out []EventType
		for _, e := range evs {
			out = append(out, e.Type)
		}
		return out
	}
	if got := types(def.events(t)); !slices.Equal(got, DefaultHookEvents()) {
		t.Errorf("default hook got %v, want %v", got, DefaultHookEvents())
	}
	if got := types(only.events(t)); !slices.Equal(got, []EventType{EventMember, EventConfig}) {
		t.Errorf("filtered hook got %v", got)
	}
}

// TestNotifyResubscribes: a notifier the hub dropped subscribes again,
// catches up from what the hub retains, and counts what it no longer
// holds.
func TestNotifyResubscribes(t *testing.T) {
	hub := newEvents(func() time.Time { return testTime }, 4, 2)
	rc := newReceiver(t, always(200))
	n := newNotifier(t, hookFor(t, rc, "pager"))
	blocked, gate := make(chan struct{}), make(chan struct{})
	var once sync.Once
	n.beforeDispatch = func() {
		once.Do(func() {
			close(blocked)
			<-gate
		})
	}
	runNotifier(t, n, hub)
	hub.Publish(Event{Type: EventVerdict}) // 1: the notifier stalls on it
	<-blocked
	within(t, 5*time.Second, "Publish", func() {
		for range 8 { // 2 and 3 fill its channel; 4 drops it; 6 to 9 are retained
			hub.Publish(Event{Type: EventVerdict})
		}
	})
	if d := testutil.ToFloat64(hub.dropped); d != 1 {
		t.Fatalf("dropped subscribers %v, want 1", d)
	}
	close(gate)
	waitFor(t, 5*time.Second, "7 deliveries", func() bool { return counterOf(n, "pager", resultSent) == 7 })
	if got := seqs(rc.events(t)); !slices.Equal(got, []uint64{1, 2, 3, 6, 7, 8, 9}) {
		t.Errorf("delivered %v, want 1 2 3 6 7 8 9", got)
	}
	if m := testutil.ToFloat64(n.missed); m != 2 {
		t.Errorf("missed %v, want 2 (4 and 5)", m)
	}
	waitSubscribers(t, hub, 1)
	hub.Publish(Event{Type: EventVerdict})
	waitFor(t, 5*time.Second, "a live event after catching up", func() bool { return counterOf(n, "pager", resultSent) == 8 })
}

func TestHookConfigValidate(t *testing.T) {
	good := HookConfig{Name: "pager", URL: "https://hooks.example.net/meridian", SecretFile: "/etc/meridian/hook.secret"}
	if err := good.Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	tests := []struct {
		name   string
		change func(*HookConfig)
		want   []string
	}{
		{"no name", func(h *HookConfig) { h.Name = "" }, []string{"hook.name: empty"}},
		{"bad name", func(h *HookConfig) { h.Name = "pager duty" }, []string{"hook.name:"}},
		{"no url", func(h *HookConfig) { h.URL = "" }, []string{"hook.url: empty"}},
		{"ftp url", func(h *HookConfig) { h.URL = "ftp://hooks.example.net/x" }, []string{"hook.url: scheme \"ftp\""}},
		{"no host", func(h *HookConfig) { h.URL = "https:///x" }, []string{"hook.url: no host"}},
		{"not a url", func(h *HookConfig) { h.URL = "http://[::1" }, []string{"hook.url: not a URL"}},
		{"no secret", func(h *HookConfig) { h.SecretFile = "" }, []string{"hook.secret_file: empty"}},
		{"unknown event", func(h *HookConfig) { h.Events = []EventType{EventVerdict, "verdicts"} }, []string{"hook.events[1]: unknown event type \"verdicts\""}},
		{"negative timeout", func(h *HookConfig) { h.Timeout = -time.Second }, []string{"hook.timeout:"}},
		{"long timeout", func(h *HookConfig) { h.Timeout = time.Hour }, []string{"hook.timeout:"}},
		{"negative attempts", func(h *HookConfig) { h.MaxAttempts = -1 }, []string{"hook.max_attempts:"}},
		{"many attempts", func(h *HookConfig) { h.MaxAttempts = 1000 }, []string{"hook.max_attempts:"}},
		{"big queue", func(h *HookConfig) { h.QueueSize = 1 << 20 }, []string{"hook.queue_size:"}},
		{"all at once", func(h *HookConfig) { *h = HookConfig{QueueSize: -1} }, []string{"hook.name", "hook.url", "hook.secret_file", "hook.queue_size"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := good
			tt.change(&h)
			err := h.Validate()
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestNewNotifierErrors(t *testing.T) {
	secret := writeSecret(t, testSecret)
	short := writeSecret(t, "  short  ")
	hc := func(name, file string) HookConfig {
		return HookConfig{Name: name, URL: "https://hooks.example.net/x?token=do-not-log", SecretFile: file}
	}
	tests := []struct {
		name  string
		hooks []HookConfig
		want  []string
	}{
		{"missing secret file", []HookConfig{hc("a", filepath.Join(t.TempDir(), "nope"))}, []string{"hooks[0].secret_file:", "no such file"}},
		{"short secret", []HookConfig{hc("a", short)}, []string{"hooks[0].secret_file:", "shorter than 16 bytes"}},
		{"same name twice", []HookConfig{hc("a", secret), hc("a", secret)}, []string{"hooks[1].name: \"a\" is used by another hook"}},
		{"every problem", []HookConfig{hc("", secret), hc("b", short)}, []string{"hooks[0].name: empty", "hooks[1].secret_file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewNotifier(tt.hooks, slog.New(slog.DiscardHandler), nil)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "do-not-log") {
				t.Errorf("error %q repeats the URL", err)
			}
		})
	}
	n, err := NewNotifier([]HookConfig{hc("a", secret)}, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := n.hooks[0].cfg
	if h.Timeout != DefaultHookTimeout || h.MaxAttempts != DefaultHookMaxAttempts || h.QueueSize != DefaultHookQueueSize ||
		!slices.Equal(h.Events, DefaultHookEvents()) || string(n.hooks[0].secret) != testSecret {
		t.Errorf("defaults not filled: %+v", h)
	}
}

func TestNotifyBackoff(t *testing.T) {
	n := newNotifier(t)
	n.backoffBase, n.backoffCap = time.Second, time.Minute
	for _, tt := range []struct {
		attempt int
		base    time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {6, 32 * time.Second}, {7, time.Minute}, {100, time.Minute}} {
		for range 50 {
			d := n.backoff(tt.attempt)
			if d < tt.base*8/10 || d > tt.base*12/10 {
				t.Fatalf("backoff after attempt %d: %v, want %v ±20%%", tt.attempt, d, tt.base)
			}
		}
	}
}
