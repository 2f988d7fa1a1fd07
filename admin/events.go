package admin

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Retention and fan-out bounds of an Events hub.
const (
	// EventsRetention is how far back Since and Recent reach: the
	// dashboard's timeline.
	EventsRetention = time.Hour
	// EventsRetained bounds the events kept, whatever their age, so a
	// flapping member cannot grow the hub without limit.
	EventsRetained = 4096
	// EventsSubscriberBuffer is the events a subscriber may fall behind
	// by before it is dropped.
	EventsSubscriberBuffer = 256
)

// Events numbers, keeps and fans out a node's events: node publishes,
// the events stream and the notification hooks subscribe. Safe for
// concurrent use.
//
// Publish never blocks: each subscriber has a bounded channel, and a
// subscriber that falls EventsSubscriberBuffer events behind is dropped
// (its channel closed) rather than slowing the node or anyone else. It
// may catch up with Since and subscribe again.
type Events struct {
	now func() time.Time
	// max and buf are EventsRetained and EventsSubscriberBuffer; tests
	// shrink them.
	max, buf int

	// dropped counts subscribers dropped for being slow; subscribers
	// follows len(subs). Both are updated under mu.
	dropped     prometheus.Counter
	subscribers prometheus.Gauge

	mu   sync.Mutex
	seq  uint64               // the last Seq stamped
	ring []Event              // retained events; once full, ring[head] is the oldest
	head int                  // see ring
	subs map[*subscriber]bool // live subscribers; a dropped or cancelled one is removed and its channel closed, under mu
}

type subscriber struct{ ch chan Event }

// NewEvents returns an empty hub stamping events with now.
func NewEvents(now func() time.Time) *Events {
	return newEvents(now, EventsRetained, EventsSubscriberBuffer)
}

func newEvents(now func() time.Time, max, buf int) *Events {
	return &Events{
		now: now, max: max, buf: buf,
		subs:        map[*subscriber]bool{},
		dropped:     newDroppedSubscribers(),
		subscribers: newSubscribersGauge(),
	}
}

// Publish stamps ev with the next Seq (1, 2, 3… in this process) and,
// when zero, the time; keeps it; hands it to every subscriber without
// waiting for any; and returns it as stamped. A Seq set by the caller is
// overwritten: the hub alone orders events.
func (e *Events) Publish(ev Event) Event {
	if ev.Override != nil {
		o := *ev.Override // the subscribers' copy, not the publisher's
		ev.Override = &o
	}
	if ev.Time.IsZero() {
		ev.Time = e.now()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seq++
	ev.Seq = e.seq
	if len(e.ring) < e.max {
		e.ring = append(e.ring, ev)
	} else {
		e.ring[e.head] = ev
		e.head = (e.head + 1) % e.max
	}
	for s := range e.subs {
		select {
		case s.ch <- ev:
		default:
			// Slow: drop it rather than wait or skip events silently.
			delete(e.subs, s)
			close(s.ch)
			e.dropped.Inc()
			e.subscribers.Dec()
		}
	}
	return ev
}

// Subscribe returns a channel of the events published from now on, in
// order. The channel is closed when cancel is called or when the
// subscriber fell too far behind and was dropped; the caller tells the
// two apart by having called cancel. cancel may be called more than once.
func (e *Events) Subscribe() (ch <-chan Event, cancel func()) {
	s := &subscriber{ch: make(chan Event, e.buf)}
	e.mu.Lock()
	e.subs[s] = true
	e.subscribers.Inc()
	e.mu.Unlock()
	return s.ch, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.subs[s] {
			delete(e.subs, s)
			close(s.ch)
			e.subscribers.Dec()
		}
	}
}

// Since returns the retained events after seq, oldest first: those of
// the last EventsRetention, at most EventsRetained.
func (e *Events) Since(seq uint64) []Event {
	evs, _ := e.since(seq)
	return evs
}

// since is Since and the last Seq stamped, read together: the events
// after seq that Since cannot return number last-seq-len(evs).
func (e *Events) since(seq uint64) (evs []Event, last uint64) {
	cut := e.now().Add(-EventsRetention)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.each(func(ev *Event) {
		if ev.Seq > seq && !ev.Time.Before(cut) {
			evs = append(evs, *ev)
		}
	})
	return evs, e.seq
}

// lastSeq is the last Seq stamped, 0 before the first event.
func (e *Events) lastSeq() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.seq
}

// Recent returns the retained events of the last d (at most
// EventsRetention), oldest first.
func (e *Events) Recent(d time.Duration) []Event {
	cut := e.now().Add(-min(d, EventsRetention))
	e.mu.Lock()
	defer e.mu.Unlock()
	var evs []Event
	e.each(func(ev *Event) {
		if !ev.Time.Before(cut) {
			evs = append(evs, *ev)
		}
	})
	return evs
}

// each calls f on the retained events, oldest first. Called under mu.
func (e *Events) each(f func(*Event)) {
	for i := range e.ring {
		f(&e.ring[(e.head+i)%len(e.ring)])
	}
}

// collectors are the hub's metrics.
func (e *Events) collectors() []prometheus.Collector {
	return []prometheus.Collector{e.subscribers, e.dropped}
}

// DefaultEventsKeepalive is how often an idle events stream sends a
// comment line, so proxies and clients see it alive.
const DefaultEventsKeepalive = 15 * time.Second

// streamEvents is GET /api/v1/events: the hub as Server-Sent Events.
//
// Each event is "id: <seq>", "event: <type>" and "data: <Event as JSON>".
// On connect the stream replays the retained events after the
// Last-Event-ID header (what EventSource sends when it reconnects), else
// after ?since_seq=N, else those of the last ?history=<duration> (up to
// 1h), else none; then it follows live. A Last-Event-ID or since_seq
// beyond the last event stamped is from an earlier process of the node
// (Seq starts again at 1 when it restarts): everything retained is
// replayed. An idle stream sends ": keepalive" every 15 s. The stream
// starts with "retry: 1000", so browsers reconnect after a second.
//
// The stream ends when the client goes away, when it falls so far behind
// that the hub drops it (it may reconnect with Last-Event-ID and catch
// up from what is retained), and when the server shuts down.
func (s *Server) streamEvents(w http.ResponseWriter, r *http.Request, _ *call) *Error {
	from, e := replayFrom(r)
	if e != nil {
		return e
	}
	ch, cancel := s.events.Subscribe()
	defer cancel()
	// Read the replay after subscribing: an event published in between
	// comes twice, and is skipped the second time, rather than never.
	replay := from(s.events)
	var last uint64
	if len(replay) > 0 {
		last = replay[len(replay)-1].Seq
	}

	// The stream outlives the server's WriteTimeout: the write deadline
	// is pushed on before each write, so only a client that stops
	// reading is cut off. (ReadTimeout ends with the request's reading:
	// net/http clears the read deadline before it watches for the client
	// going away.) A writer without deadlines (a test's recorder) is not
	// under the server's timeouts either, so an error is ignored.
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	send := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	// A browser that loses the stream tries again after retry ms (its
	// default, about 3 s, is longer than a dashboard should stay stale).
	buf := []byte("retry: 1000\n\n")
	for _, ev := range replay {
		buf = appendSSE(buf, ev)
	}
	if !send(buf) {
		return nil
	}
	tick := time.NewTicker(s.keepalive)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-s.done:
			return nil
		case <-tick.C:
			if !send([]byte(": keepalive\n\n")) {
				return nil
			}
		case ev, ok := <-ch:
			if !ok {
				s.log.Debug("admin events stream dropped: the client fell behind", "source", r.RemoteAddr, "last_seq", last)
				return nil
			}
			if ev.Seq <= last {
				continue
			}
			last = ev.Seq
			if !send(appendSSE(buf[:0], ev)) {
				return nil
			}
		}
	}
}

// replayFrom reads what a new stream replays: after Last-Event-ID, after
// ?since_seq, the last ?history, or nothing.
func replayFrom(r *http.Request) (func(*Events) []Event, *Error) {
	after := func(seq uint64) func(*Events) []Event {
		return func(e *Events) []Event {
			evs, last := e.since(seq)
			if seq > last { // from an earlier process: see streamEvents
				evs, _ = e.since(0)
			}
			return evs
		}
	}
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		seq, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return nil, apiError(http.StatusBadRequest, "Last-Event-ID: want the id of an event, a number")
		}
		return after(seq), nil
	}
	q := r.URL.Query()
	if v := q.Get("since_seq"); v != "" {
		seq, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return nil, apiError(http.StatusBadRequest, "since_seq: want the seq of an event, a number")
		}
		return after(seq), nil
	}
	if v := q.Get("history"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > EventsRetention {
			return nil, apiError(http.StatusBadRequest, "history: want a duration up to 1h, e.g. 15m")
		}
		return func(e *Events) []Event { return e.Recent(d) }, nil
	}
	return func(*Events) []Event { return nil }, nil
}

// appendSSE appends ev as one Server-Sent Event.
func appendSSE(b []byte, ev Event) []byte {
	data, err := json.Marshal(ev)
	if err != nil { // an Event has nothing that fails to encode
		data = []byte(`{}`)
	}
	// A line break in the type would end the field early.
	typ := strings.NewReplacer("\r", "", "\n", "").Replace(string(ev.Type))
	b = append(b, "id: "...)
	b = strconv.AppendUint(b, ev.Seq, 10)
	b = append(b, "\nevent: "...)
	b = append(b, typ...)
	b = append(b, "\ndata: "...)
	b = append(b, data...)
	return append(b, "\n\n"...)
}
