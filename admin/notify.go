package admin

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// HookConfig is one webhook: the events it is sent, and how.
//
// Each event is POSTed as its JSON (Event) with these headers:
//
//	Content-Type:         application/json
//	User-Agent:           meridian-notify/1
//	X-Meridian-Event:     the event's type
//	X-Meridian-Delivery:  a random ID, the same on every attempt of one event
//	X-Meridian-Timestamp: the attempt's time, Unix seconds
//	X-Meridian-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
//
// A receiver verifies a delivery with VerifySignature over the raw body
// and the timestamp header, refuses a timestamp more than a few minutes
// from its clock (a replayed request), and ignores a delivery ID it has
// seen (a retry of a delivery it took but whose answer was lost).
//
// A 2xx answer delivers the event. A network error, a timeout, 5xx, 408
// or 429 is retried after 1 s, 2 s, 4 s… (at most 1 min, ±20%) until
// MaxAttempts; any other answer (4xx, and 3xx: redirects are not
// followed) fails the delivery at once.
type HookConfig struct {
	// Name labels the hook in metrics and logs; required, unique,
	// letters, digits, '.', '_' and '-'.
	Name string `toml:"name"`
	// URL is where events are POSTed, http or https. It is never logged:
	// webhook URLs often carry a credential.
	URL string `toml:"url"`
	// SecretFile holds the HMAC key (surrounding space trimmed, at least
	// 16 bytes); required.
	SecretFile string `toml:"secret_file"`
	// Events are the types sent; default DefaultHookEvents.
	Events []EventType `toml:"events"`
	// Timeout bounds one attempt; default 5s, at most 1m.
	Timeout time.Duration `toml:"timeout"`
	// MaxAttempts bounds the attempts at one event; default 6, at most 20.
	MaxAttempts int `toml:"max_attempts"`
	// QueueSize bounds the events waiting for delivery; when it is full
	// a new event is dropped (and counted). Default 256, at most 65536.
	QueueSize int `toml:"queue_size"`
}

// Hook defaults and bounds.
const (
	DefaultHookTimeout     = 5 * time.Second
	DefaultHookMaxAttempts = 6
	DefaultHookQueueSize   = 256

	maxHookTimeout     = time.Minute
	maxHookMaxAttempts = 20
	maxHookQueueSize   = 1 << 16
	minHookSecretLen   = 16

	// The retry backoff: the first wait, doubled for each retry up to
	// the cap, each ±20%.
	hookBackoffBase = time.Second
	hookBackoffCap  = time.Minute
)

// DefaultHookEvents are the types a hook without Events is sent: what
// changes where traffic goes, or says a node cannot be trusted.
func DefaultHookEvents() []EventType {
	return []EventType{EventVerdict, EventOverrideSet, EventOverrideCleared, EventOverrideExpired, EventIsolation, EventSelfDistrust}
}

// eventTypes are the types a hook may ask for.
var eventTypes = map[EventType]bool{
	EventVerdict: true, EventOverrideSet: true, EventOverrideCleared: true, EventOverrideExpired: true,
	EventMember: true, EventIsolation: true, EventSelfDistrust: true, EventConfig: true,
}

var hookNameRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// Validate reports every problem with h at once, each naming its key. It
// does not read SecretFile; NewNotifier does.
func (h HookConfig) Validate() error { return h.validate("hook") }

// validate is Validate with the hook's key path ("hooks[2]") in front of
// each field's name.
func (h HookConfig) validate(key string) error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(key+"."+format, a...)) }
	switch {
	case h.Name == "":
		bad("name: empty")
	case !hookNameRE.MatchString(h.Name):
		bad("name: %q: use at most 64 letters, digits, '.', '_' and '-'", h.Name)
	}
	if h.URL == "" {
		bad("url: empty")
	} else if u, err := url.Parse(h.URL); err != nil {
		bad("url: not a URL") // the error would repeat the URL, which may hold a credential
	} else if u.Scheme != "http" && u.Scheme != "https" {
		bad("url: scheme %q: want http or https", u.Scheme)
	} else if u.Host == "" {
		bad("url: no host")
	}
	if h.SecretFile == "" {
		bad("secret_file: empty: a file holding the key receivers verify deliveries with is required")
	}
	for i, et := range h.Events {
		if !eventTypes[et] {
			bad("events[%d]: unknown event type %q", i, et)
		}
	}
	if h.Timeout < 0 || h.Timeout > maxHookTimeout {
		bad("timeout: %v: want at most %v", h.Timeout, maxHookTimeout)
	}
	if h.MaxAttempts < 0 || h.MaxAttempts > maxHookMaxAttempts {
		bad("max_attempts: %d: want 1 to %d", h.MaxAttempts, maxHookMaxAttempts)
	}
	if h.QueueSize < 0 || h.QueueSize > maxHookQueueSize {
		bad("queue_size: %d: want 1 to %d", h.QueueSize, maxHookQueueSize)
	}
	return errors.Join(errs...)
}

func (h HookConfig) withDefaults() HookConfig {
	if len(h.Events) == 0 {
		h.Events = DefaultHookEvents()
	}
	h.Events = append([]EventType(nil), h.Events...)
	if h.Timeout == 0 {
		h.Timeout = DefaultHookTimeout
	}
	if h.MaxAttempts == 0 {
		h.MaxAttempts = DefaultHookMaxAttempts
	}
	if h.QueueSize == 0 {
		h.QueueSize = DefaultHookQueueSize
	}
	return h
}

// Notifier sends a node's events to webhooks. Each hook has its own
// bounded queue and delivery goroutine, so a slow or dead receiver
// delays only its own deliveries, and never the hub or the node: when
// its queue is full, new events for it are dropped and counted.
type Notifier struct {
	log    *slog.Logger
	client *http.Client
	hooks  []*hook

	// Set by NewNotifier; tests change them before Run.
	backoffBase, backoffCap time.Duration
	now                     func() time.Time // X-Meridian-Timestamp
	beforeDispatch          func()           // called before each event is queued; nil in production

	deliveries *prometheus.CounterVec // hook, result
	attempts   *prometheus.CounterVec // hook
	missed     prometheus.Counter
	queues     *queueCollector
}

// hook is a configured hook and its queue; fixed after NewNotifier.
type hook struct {
	cfg    HookConfig
	secret []byte
	events map[EventType]bool
	queue  chan Event
}

// The result label of meridian_notify_deliveries_total.
const (
	resultSent    = "sent"    // a 2xx answer
	resultFailed  = "failed"  // out of attempts, or an answer not worth retrying
	resultDropped = "dropped" // the hook's queue was full
)

// NewNotifier checks hooks, reads their secrets and returns a Notifier
// for them; Run starts it. Every problem is reported at once, each under
// its hook's key ("hooks[1].url"). A nil client is a default one that
// dials and handshakes within 5 s and follows no redirects.
func NewNotifier(hooks []HookConfig, log *slog.Logger, client *http.Client) (*Notifier, error) {
	if log == nil {
		return nil, errors.New("notify: nil logger")
	}
	if client == nil {
		client = defaultHookClient()
	}
	n := &Notifier{
		log: log, client: client,
		backoffBase: hookBackoffBase, backoffCap: hookBackoffCap, now: time.Now,
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meridian_notify_deliveries_total",
			Help: "Events handed to a webhook, by hook and result (sent: answered 2xx; failed: out of attempts or refused; dropped: the hook's queue was full).",
		}, []string{"hook", "result"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meridian_notify_attempts_total",
			Help: "HTTP requests made to a webhook, retries included, by hook.",
		}, []string{"hook"}),
		missed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meridian_notify_missed_events_total",
			Help: "Events no hook was offered because the notifier fell behind the event hub and they were no longer retained when it caught up.",
		}),
	}
	var errs []error
	names := map[string]bool{}
	for i, hc := range hooks {
		key := fmt.Sprintf("hooks[%d]", i)
		if err := hc.validate(key); err != nil {
			errs = append(errs, err)
			continue
		}
		if names[hc.Name] {
			errs = append(errs, fmt.Errorf("%s.name: %q is used by another hook", key, hc.Name))
			continue
		}
		names[hc.Name] = true
		secret, err := readSecret(hc.SecretFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.secret_file: %w", key, err))
			continue
		}
		hc = hc.withDefaults()
		h := &hook{cfg: hc, secret: secret, events: map[EventType]bool{}, queue: make(chan Event, hc.QueueSize)}
		for _, et := range hc.Events {
			h.events[et] = true
		}
		n.hooks = append(n.hooks, h)
		// Every series from the start, at 0, so rates and alerts see it.
		for _, r := range []string{resultSent, resultFailed, resultDropped} {
			n.deliveries.WithLabelValues(hc.Name, r)
		}
		n.attempts.WithLabelValues(hc.Name)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("notify config: %w", err)
	}
	n.queues = &queueCollector{hooks: n.hooks, desc: prometheus.NewDesc("meridian_notify_queue_length",
		"Events waiting in a webhook's queue, by hook.", []string{"hook"}, nil)}
	return n, nil
}

func readSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b = bytes.TrimSpace(b)
	if len(b) < minHookSecretLen {
		return nil, fmt.Errorf("%s: the secret is shorter than %d bytes", path, minHookSecretLen)
	}
	return b, nil
}

func defaultHookClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = 5 * time.Second
	tr.MaxIdleConnsPerHost = 2
	return &http.Client{
		Transport: tr,
		// A redirect is answered as it is, a failure: following it would
		// turn the POST into a GET, or send the event somewhere else.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Collectors are the notifier's metrics, for node's registry.
func (n *Notifier) Collectors() []prometheus.Collector {
	return []prometheus.Collector{n.deliveries, n.attempts, n.missed, n.queues}
}

// Run sends the events published on ev from now on to the hooks that
// want them, until ctx is done; it returns when every delivery goroutine
// has. Events still queued then are not sent. Call it once.
//
// If the hub drops the notifier for falling behind (it only queues, so
// that takes a stalled process), it subscribes again and catches up from
// what the hub retains; events no longer retained are counted in
// meridian_notify_missed_events_total.
func (n *Notifier) Run(ctx context.Context, ev *Events) {
	if len(n.hooks) == 0 {
		<-ctx.Done()
		return
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, h := range n.hooks {
		wg.Go(func() { n.deliverAll(ctx, h) })
	}
	// Events up to last are not for us: last is read before subscribing,
	// so an event published in between comes on ch.
	last := ev.lastSeq()
	ch, cancel := ev.Subscribe()
	defer func() { cancel() }()
	for n.follow(ctx, ch, &last) {
		// Dropped. Subscribe again, then catch up from what the hub
		// retains; an event both caught up and on the new channel is
		// skipped by follow.
		ch, cancel = ev.Subscribe()
		missed, head := ev.since(last)
		if gap := head - last - uint64(len(missed)); gap > 0 {
			n.missed.Add(float64(gap))
			n.log.Warn("notify fell behind the event hub: events missed", "missed", gap, "after_seq", last)
		}
		for _, e := range missed {
			n.dispatch(e)
			last = e.Seq
		}
	}
}

// follow queues the events of ch after *last until ctx is done (false)
// or the hub drops the subscription (true).
func (n *Notifier) follow(ctx context.Context, ch <-chan Event, last *uint64) (dropped bool) {
	for {
		select {
		case <-ctx.Done():
			return false
		case e, ok := <-ch:
			if !ok {
				return ctx.Err() == nil
			}
			if e.Seq <= *last {
				continue
			}
			n.dispatch(e)
			*last = e.Seq
		}
	}
}

// dispatch queues e for each hook that wants it, dropping it for a hook
// whose queue is full.
func (n *Notifier) dispatch(e Event) {
	if n.beforeDispatch != nil {
		n.beforeDispatch()
	}
	for _, h := range n.hooks {
		if !h.events[e.Type] {
			continue
		}
		select {
		case h.queue <- e:
		default:
			n.deliveries.WithLabelValues(h.cfg.Name, resultDropped).Inc()
			n.log.Warn("notify queue full: event dropped", "hook", h.cfg.Name, "type", string(e.Type), "seq", e.Seq)
		}
	}
}

// deliverAll delivers h's queue, one event at a time, in order.
func (n *Notifier) deliverAll(ctx context.Context, h *hook) {
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-h.queue:
			n.deliver(ctx, h, e)
		}
	}
}

// deliver sends e to h, retrying as HookConfig describes. An attempt cut
// short by ctx ending is neither sent nor failed.
func (n *Notifier) deliver(ctx context.Context, h *hook, e Event) {
	body, err := json.Marshal(e)
	if err != nil { // an Event has nothing that fails to encode
		n.log.Error("notify encode failed", "hook", h.cfg.Name, "seq", e.Seq, "err", err)
		return
	}
	id := newDeliveryID()
	name := h.cfg.Name
	for attempt := 1; ; attempt++ {
		n.attempts.WithLabelValues(name).Inc()
		status, err := n.post(ctx, h, e.Type, body, id)
		if ctx.Err() != nil {
			return
		}
		if err == nil && status >= 200 && status < 300 {
			n.deliveries.WithLabelValues(name, resultSent).Inc()
			n.log.Debug("notify delivered", "hook", name, "type", string(e.Type), "seq", e.Seq, "delivery", id, "attempts", attempt)
			return
		}
		retry := err != nil || status >= 500 || status == http.StatusRequestTimeout || status == http.StatusTooManyRequests
		if !retry || attempt >= h.cfg.MaxAttempts {
			n.deliveries.WithLabelValues(name, resultFailed).Inc()
			n.log.Warn("notify delivery failed", "hook", name, "type", string(e.Type), "seq", e.Seq, "delivery", id,
				"attempts", attempt, "status", status, "err", err)
			return
		}
		wait := n.backoff(attempt)
		n.log.Debug("notify attempt failed; retrying", "hook", name, "seq", e.Seq, "delivery", id, "attempt", attempt,
			"status", status, "err", err, "wait", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// post makes one attempt: the status of the answer, or an error without
// the URL in it.
func (n *Notifier) post(ctx context.Context, h *hook, typ EventType, body []byte, id string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return 0, errors.New("bad url") // validated; the error would repeat the URL
	}
	ts := strconv.FormatInt(n.now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "meridian-notify/1")
	req.Header.Set("X-Meridian-Event", string(typ))
	req.Header.Set("X-Meridian-Delivery", id)
	req.Header.Set("X-Meridian-Timestamp", ts)
	req.Header.Set("X-Meridian-Signature", "sha256="+hex.EncodeToString(signature(h.secret, ts, body)))
	resp, err := n.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which may hold a credential
		}
		return 0, err
	}
	defer resp.Body.Close()
	// Read a little of the answer, so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}

// backoff is the wait before the retry after attempt: the base doubled
// attempt-1 times, at most the cap, ±20%.
func (n *Notifier) backoff(attempt int) time.Duration {
	d := n.backoffBase
	for i := 1; i < attempt && d < n.backoffCap; i++ {
		d *= 2
	}
	d = min(d, n.backoffCap)
	if span := int64(d) * 2 / 5; span > 0 {
		d += time.Duration(mrand.Int64N(span+1) - span/2)
	}
	return d
}

// signature is HMAC-SHA256(secret, timestamp + "." + body).
func signature(secret []byte, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// VerifySignature reports whether header, an X-Meridian-Signature
// ("sha256=<hex>"), is the signature of body sent at timestamp (the
// X-Meridian-Timestamp header, as sent) under secret. Compare the raw
// body, before any decoding. It does not judge the timestamp: a receiver
// should also refuse one far from its clock, or a replayed delivery
// verifies.
func VerifySignature(secret []byte, timestamp string, body []byte, header string) bool {
	h, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(h)
	if err != nil {
		return false
	}
	return hmac.Equal(got, signature(secret, timestamp, body))
}

func newDeliveryID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail
	return hex.EncodeToString(b[:])
}

// queueCollector reports each hook's queue length as it is when scraped.
type queueCollector struct {
	desc  *prometheus.Desc
	hooks []*hook
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	for _, h := range c.hooks {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(len(h.queue)), h.cfg.Name)
	}
}
