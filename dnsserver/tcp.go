package dnsserver

import (
	"cmp"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// TCP fairness. One host holding many idle connections must not deny TCP
// (and with it every truncated answer) to everyone else, so the server
// keeps a table of its connections and:
//
//   - closes at once a new connection from a client that already holds
//     MaxTCPConnsPerClient of them;
//   - when the table is full, evicts the connection idle longest to make
//     room for the new one (RFC 7766 §6.2.3 lets a server close idle
//     connections under pressure); a connection in the middle of a
//     message or an answer is never evicted, and when all are, the new
//     one is refused;
//   - shrinks the idle timeout as the table fills (effectiveIdle), and
//     closes a connection idle longer than the timeout at the occupancy of
//     the moment: checked when its read deadline passes and by a periodic
//     sweep, one connection at a time under the lock, so shedding stops as
//     soon as the occupancy no longer calls for it;
//   - bounds every read and write with a deadline, so a slow client holds
//     its connection for seconds, not forever.
//
// The table's lock is taken per connection (accept, close, evict, and the
// periodic sweep), never per query: a query touches only its connection's
// atomic state and the table's atomic count.

// Defaults for the deadlines that are not in Config's exported fields.
const (
	defaultMaxTCPConnsPerClient = 8
	// defaultTCPMessageTimeout is how long the rest of a message may take
	// once its first byte has arrived.
	defaultTCPMessageTimeout = 2 * time.Second
	// defaultTCPWriteTimeout is how long writing one answer may take.
	defaultTCPWriteTimeout = 2 * time.Second
	// defaultTCPIdleFloor is the idle timeout with the table full.
	defaultTCPIdleFloor = 500 * time.Millisecond
	// pressureLogEvery is the least time between two log lines about
	// connections shed under pressure.
	pressureLogEvery = 10 * time.Second
)

// Reasons a connection is closed by the server rather than by its client;
// the label values of meridian_dns_tcp_evicted_connections_total.
type closeReason int

const (
	reasonIdle      closeReason = iota // idle longer than the effective idle timeout
	reasonForNew                       // evicted to make room for a new one (table full)
	reasonPerClient                    // its client already held the most allowed
	reasonSlow                         // a deadline passed mid-message or mid-write
	numReasons
)

var reasonLabels = [numReasons]string{"idle_timeout", "evicted_for_new", "per_client_limit", "slow"}

// A connection's state, one atomic word: positive is "idle since" (the
// table's clock plus one, so it is never 0), stateBusy is in the middle of a
// message or an answer, stateTaken means the table (or the deadline that
// expired) has claimed it for closing. The serving goroutine moves it
// between idle and busy; whoever moves it from idle to taken, with a
// compare-and-swap, counts the close: so a connection that turns busy is
// never evicted, and no close is counted twice.
const (
	stateBusy  int64 = 0
	stateTaken int64 = -1
)

// tcpConn is one served TCP connection.
type tcpConn struct {
	c      net.Conn
	client netip.Addr   // clientKey of the remote address
	state  atomic.Int64 // see stateBusy; written by the serving goroutine and the table
	// inTable is whether the table still counts it; written under the
	// table's mu.
	inTable bool
}

// clientKey is the unit of the per-client limit: an IPv4 address, or the
// /64 an IPv6 address is in, since a single host usually holds a whole /64
// and could otherwise open connections from as many addresses as it likes.
func clientKey(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// effectiveIdle is the idle timeout with n of max connections open: idle
// below 75% occupancy, then falling linearly to floor at 100% (with idle
// 10s and floor 500ms: 10s at 75%, 5.25s at 87.5%, 500ms full). A floor at
// or above idle turns the shrinking off.
func effectiveIdle(n, max int, idle, floor time.Duration) time.Duration {
	if floor >= idle || 4*n < 3*max {
		return idle
	}
	if n >= max {
		return floor
	}
	over := float64(4*n-3*max) / float64(max) // 0 at 75%, 1 at 100%
	return idle - time.Duration(over*float64(idle-floor))
}

// connTable is the set of open connections.
type connTable struct {
	epoch     time.Time // the table's clock is nanoseconds since epoch
	max       int
	perClient int // <0: unlimited
	idle      time.Duration
	floor     time.Duration
	m         *Metrics

	n atomic.Int64 // open connections; written under mu, read without

	mu      sync.Mutex
	conns   map[*tcpConn]struct{}
	clients map[netip.Addr]int // open connections per clientKey
	closed  bool               // Serve is shutting down: admit nothing
	// Connections shed under pressure since the last log line, by reason
	// (reasonIdle only those closed at a shrunk timeout), and refused ones.
	shed    [numReasons]int
	refused int
	lastLog int64 // table clock of the last log line; 0: none yet
}

func newConnTable(cfg *Config, m *Metrics) *connTable {
	return &connTable{
		epoch:     time.Now(),
		max:       cfg.MaxTCPConns,
		perClient: cfg.MaxTCPConnsPerClient,
		idle:      cfg.TCPIdleTimeout,
		floor:     cfg.tcpIdleFloor,
		m:         m,
		conns:     map[*tcpConn]struct{}{},
		clients:   map[netip.Addr]int{},
	}
}

// now is the table's clock.
func (t *connTable) now() int64 { return int64(time.Since(t.epoch)) }

// idleTimeout is the effective idle timeout now. Lock-free.
func (t *connTable) idleTimeout() time.Duration {
	return effectiveIdle(int(t.n.Load()), t.max, t.idle, t.floor)
}

// verdict is what admit decided for a new connection.
type verdict int

const (
	admitted verdict = iota
	overClientLimit
	allBusy
	shuttingDown
)

// admit adds tc to the table, idle since now, evicting the connection idle
// longest if the table is full. It returns the evicted connection, for
// the caller to close outside the lock.
func (t *connTable) admit(tc *tcpConn, now int64) (verdict, *tcpConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return shuttingDown, nil
	}
	if t.perClient >= 0 && t.clients[tc.client] >= t.perClient {
		t.m.tcpClosed[reasonPerClient].Inc()
		t.shed[reasonPerClient]++
		return overClientLimit, nil
	}
	var victim *tcpConn
	if len(t.conns) >= t.max {
		victim = t.takeIdlest()
		if victim == nil {
			t.m.tcpRefused.Inc()
			t.refused++
			return allBusy, nil
		}
		t.removeLocked(victim)
		t.m.tcpClosed[reasonForNew].Inc()
		t.shed[reasonForNew]++
	}
	tc.state.Store(now + 1)
	tc.inTable = true
	t.conns[tc] = struct{}{}
	t.clients[tc.client]++
	t.n.Add(1)
	t.m.tcpOpen.Inc()
	return admitted, victim
}

// takeIdlest claims the connection idle longest, or returns nil when every
// one is busy. A connection that turns busy while we look is skipped.
func (t *connTable) takeIdlest() *tcpConn {
	for {
		var best *tcpConn
		var since int64
		for c := range t.conns {
			if s := c.state.Load(); s > 0 && (best == nil || s < since) {
				best, since = c, s
			}
		}
		if best == nil || best.state.CompareAndSwap(since, stateTaken) {
			return best
		}
	}
}

// remove takes tc out of the table if it is still there.
func (t *connTable) remove(tc *tcpConn) {
	t.mu.Lock()
	t.removeLocked(tc)
	t.mu.Unlock()
}

func (t *connTable) removeLocked(tc *tcpConn) {
	if !tc.inTable {
		return
	}
	tc.inTable = false
	delete(t.conns, tc)
	if k := t.clients[tc.client] - 1; k > 0 {
		t.clients[tc.client] = k
	} else {
		delete(t.clients, tc.client)
	}
	t.n.Add(-1)
	t.m.tcpOpen.Dec()
}

// expire decides, when tc's read deadline has passed while it was idle
// since idle, whether it has now been idle longer than the effective
// timeout at the current occupancy. If so it takes tc out of the table
// (counted) and returns false; if not (others closed meanwhile, and the
// timeout grew), it returns the new deadline. Deciding under the lock,
// one connection at a time, keeps connections whose deadlines pass
// together from all closing at an occupancy that the first close relieved.
func (t *connTable) expire(tc *tcpConn, idle int64) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !tc.inTable {
		return time.Time{}, false
	}
	eff := effectiveIdle(len(t.conns), t.max, t.idle, t.floor)
	if time.Duration(t.now()+1-idle) < eff {
		return t.epoch.Add(time.Duration(idle-1) + eff), true
	}
	if !tc.state.CompareAndSwap(idle, stateTaken) {
		return time.Time{}, false
	}
	t.removeLocked(tc)
	t.m.tcpClosed[reasonIdle].Inc()
	if eff < t.idle {
		t.shed[reasonIdle]++ // closed sooner than it would have been without pressure
	}
	return time.Time{}, false
}

// sweep closes idle connections while the table is under pressure: idlest
// first, each while it has been idle longer than the effective timeout at
// the occupancy left after the previous close. So it sheds only as many as
// the curve asks, and keeps the rest of the clients' connections. It
// returns the connections to close, outside the lock.
func (t *connTable) sweep(now int64, victims []*tcpConn) []*tcpConn {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(t.conns)
	if effectiveIdle(n, t.max, t.idle, t.floor) == t.idle {
		return victims
	}
	type cand struct {
		c     *tcpConn
		since int64
	}
	var cands []cand
	for c := range t.conns {
		if s := c.state.Load(); s > 0 {
			cands = append(cands, cand{c, s})
		}
	}
	slices.SortFunc(cands, func(a, b cand) int { return cmp.Compare(a.since, b.since) })
	for _, cd := range cands {
		if time.Duration(now+1-cd.since) <= effectiveIdle(n, t.max, t.idle, t.floor) {
			break
		}
		if !cd.c.state.CompareAndSwap(cd.since, stateTaken) {
			continue // it turned busy
		}
		t.removeLocked(cd.c)
		t.m.tcpClosed[reasonIdle].Inc()
		t.shed[reasonIdle]++
		victims = append(victims, cd.c)
		n--
	}
	return victims
}

// pressureReport is what one log line says.
type pressureReport struct {
	open, refused int
	shed          [numReasons]int
	idle          time.Duration
}

// takeReport returns the connections shed since the last report, when
// there are some and the last report is pressureLogEvery old.
func (t *connTable) takeReport(now int64) (pressureReport, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.shed == [numReasons]int{} && t.refused == 0 {
		return pressureReport{}, false
	}
	if t.lastLog != 0 && time.Duration(now-t.lastLog) < pressureLogEvery {
		return pressureReport{}, false
	}
	r := pressureReport{open: len(t.conns), refused: t.refused, shed: t.shed,
		idle: effectiveIdle(len(t.conns), t.max, t.idle, t.floor)}
	t.shed, t.refused, t.lastLog = [numReasons]int{}, 0, max(now, 1)
	return r, true
}

// closeAll closes every connection and admits no more.
func (t *connTable) closeAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	for c := range t.conns {
		c.c.Close()
	}
}

// logPressure logs connections shed under pressure, at most once per
// pressureLogEvery.
func (s *Server) logPressure() {
	r, ok := s.tab.takeReport(s.tab.now())
	if !ok {
		return
	}
	s.log.Info("tcp connections shed under pressure",
		"open", r.open, "max", s.cfg.MaxTCPConns, "effective_idle_timeout", r.idle,
		"evicted_for_new", r.shed[reasonForNew], "idle_shed", r.shed[reasonIdle],
		"per_client_limit", r.shed[reasonPerClient], "refused_all_busy", r.refused)
}

// sweepTCP runs the sweep until done is closed.
func (s *Server) sweepTCP(done <-chan struct{}) {
	defer s.wg.Done()
	every := min(max(s.cfg.tcpIdleFloor/2, 10*time.Millisecond), time.Second)
	tk := time.NewTicker(every)
	defer tk.Stop()
	var victims []*tcpConn
	for {
		select {
		case <-done:
			return
		case <-tk.C:
		}
		victims = s.tab.sweep(s.tab.now(), victims[:0])
		for i, v := range victims {
			v.c.Close()
			victims[i] = nil
		}
		s.logPressure()
	}
}

func (s *Server) acceptTCP(l net.Listener) {
	defer s.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		tc := &tcpConn{c: c}
		if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
			tc.client = clientKey(ta.AddrPort().Addr())
		}
		v, victim := s.tab.admit(tc, s.tab.now())
		if victim != nil {
			victim.c.Close()
		}
		if v != admitted {
			c.Close()
			if v != shuttingDown {
				s.logPressure()
			}
			continue
		}
		if victim != nil {
			s.logPressure()
		}
		s.wg.Add(1)
		go s.serveTCP(tc)
	}
}

// tcpScratch is what a connection needs while it answers a message; idle
// connections hold none of it (it is pooled), so a table of idle
// connections costs their goroutines' stacks and not 200 KB each.
type tcpScratch struct {
	w   *worker
	in  []byte
	out []byte
}

var tcpScratchPool = sync.Pool{New: func() any {
	return &tcpScratch{w: newWorker(), in: make([]byte, 65535), out: make([]byte, 0, 65537)}
}}

// serveTCP answers length-prefixed queries on one connection in order,
// until the client closes it, it idles past the effective idle timeout, a
// message or an answer misses its deadline, the table evicts it, or the
// client sends garbage.
func (s *Server) serveTCP(tc *tcpConn) {
	defer s.wg.Done()
	defer func() {
		s.tab.remove(tc)
		tc.c.Close()
	}()
	c := tc.c
	from := netip.Addr{}
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		from = ta.AddrPort().Addr().Unmap()
	}
	var hdr [2]byte
	idle := tc.state.Load() // admit marked it idle since accept
	deadline := s.tab.epoch.Add(time.Duration(idle-1) + s.tab.idleTimeout())
	for {
		c.SetReadDeadline(deadline)
		k, err := c.Read(hdr[:])
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				return
			}
			// The deadline was armed with the timeout at the occupancy
			// then; whether to close is decided at the occupancy now.
			var keep bool
			if deadline, keep = s.tab.expire(tc, idle); !keep {
				return
			}
			continue
		}
		if !tc.state.CompareAndSwap(idle, stateBusy) {
			return // the table took it while the byte arrived
		}
		if !s.answerTCP(c, hdr[:], k, from) {
			return
		}
		idle = s.tab.now() + 1
		tc.state.Store(idle)
		deadline = s.tab.epoch.Add(time.Duration(idle-1) + s.tab.idleTimeout())
	}
}

// answerTCP reads the rest of a message whose first k bytes of length are
// in hdr, answers it, and says whether the connection may go on.
func (s *Server) answerTCP(c net.Conn, hdr []byte, k int, from netip.Addr) bool {
	c.SetReadDeadline(time.Now().Add(s.cfg.tcpMessageTimeout))
	if k < 2 {
		if _, err := io.ReadFull(c, hdr[k:]); err != nil {
			s.countSlow(err)
			return false
		}
	}
	sc := tcpScratchPool.Get().(*tcpScratch)
	defer tcpScratchPool.Put(sc)
	n := int(binary.BigEndian.Uint16(hdr))
	if _, err := io.ReadFull(c, sc.in[:n]); err != nil {
		s.countSlow(err)
		return false
	}
	resp := s.h.Serve(sc.w, sc.in[:n], from, false)
	if resp == nil {
		return true
	}
	sc.out = binary.BigEndian.AppendUint16(sc.out[:0], uint16(len(resp)))
	sc.out = append(sc.out, resp...)
	c.SetWriteDeadline(time.Now().Add(s.cfg.tcpWriteTimeout))
	if _, err := c.Write(sc.out); err != nil {
		s.countSlow(err)
		return false
	}
	return true
}

// countSlow counts a read or write that missed its deadline.
func (s *Server) countSlow(err error) {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		s.h.metrics.tcpClosed[reasonSlow].Inc()
	}
}
