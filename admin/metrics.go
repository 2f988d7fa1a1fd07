package admin

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// The admin API's own series. Labels come from bounded sets: a route is
// one of the patterns routes registers or "other" (never the raw path,
// which a client chooses), a code one of the statuses the API answers.

func newRequestsTotal() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meridian_admin_requests_total",
		Help: "Admin API requests answered, by route pattern (\"other\" for unknown paths) and HTTP status code.",
	}, []string{"route", "code"})
}

func newSubscribersGauge() prometheus.Gauge {
	return prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "meridian_events_subscribers",
		Help: "Subscribers of this node's event hub: open event streams and notifiers.",
	})
}

func newDroppedSubscribers() prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{
		Name: "meridian_events_dropped_subscribers_total",
		Help: "Event subscribers dropped for falling too far behind (an event stream's client or a notifier too slow to read).",
	})
}

// routeOther is the route label of a request no pattern matched.
const routeOther = "other"

// Collectors are the server's metrics: admin requests and the event hub.
// Node registers them in its registry, beside the notifier's.
func (s *Server) Collectors() []prometheus.Collector {
	return append([]prometheus.Collector{s.requests}, s.events.collectors()...)
}

// instrument counts every answer of next by route and status. It is the
// outermost handler, so a panic answered 500 is counted too.
func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			// ServeMux sets r.Pattern on the request it routes, which is r.
			route := r.Pattern
			if !s.patterns[route] {
				route = routeOther
			}
			code := sw.status
			if code == 0 {
				code = http.StatusOK // nothing written: net/http answers 200
			}
			s.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
		}()
		next.ServeHTTP(sw, r)
	})
}

// statusWriter remembers the status of a response. It unwraps, so
// http.ResponseController reaches the connection's deadlines and
// flushing, and it is a Flusher for handlers that ask directly.
type statusWriter struct {
	http.ResponseWriter
	status int // the first final status written; 0 before
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

var _ http.Flusher = (*statusWriter)(nil)
