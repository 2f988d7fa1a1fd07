package gossip

import (
	"encoding/binary"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/memberlist"
	"github.com/meridian-gtm/meridian/zones"
)

// The wire codec. Every message starts with a codec version byte and a
// type byte; the body is a fixed sequence of fields:
//
//	uvarint   versions, counts, string lengths
//	varint    times, as Unix nanoseconds (0: the zero time)
//	byte      enums and flag sets
//	string    uvarint length, then that many bytes of UTF-8
//
//	verdict   origin, target, version, flags (bits 0-1 state, 2 pending,
//	          3 removed, 4 lagging), reason, since, checked
//	override  action, pool, region, who, why, when, expires (v2 on),
//	          version, node, flags (bit 0 cleared)
//	heartbeat origin, version, as-of time, sum (8 bytes, big endian)
//	leave     node, version
//	state     uvarint n, n verdict bodies, uvarint m, m override bodies,
//	          uvarint k, k heartbeat bodies
//
// A hand-written binary codec rather than encoding/json or gob: a push/pull
// state of 5 nodes by 1,000 targets is ~60% smaller than its JSON (no field
// names, no quoting, times in 9 bytes instead of 37), which the gossip
// bytes-per-second figure counts; and every length and count is checked
// against a bound before anything is allocated, so a hostile or corrupt
// input costs at most its own size. A new field means a new codec version:
// a node refuses versions it does not know (ErrVersion) rather than
// misreading them, so a cluster is upgraded by nodes that speak both.
//
// Versions:
//
//	1  the first
//	2  an override carries expires, after when (zero: never)
//
// A node writes codecVersion and reads every version from minCodecVersion
// on: a v1 override decodes with a zero Expires, which is what its writer
// meant. A v1 node refuses everything a v2 node writes, so while a cluster
// is upgraded the old nodes do not hear the new ones (membership still
// works: it is memberlist's own protocol); upgrade all nodes before
// setting overrides that expire.
const (
	codecVersion    = 2
	minCodecVersion = 1
)

// msgType is the second byte of every message.
type msgType uint8

const (
	msgVerdict  msgType = 1 // one Entry (broadcast)
	msgOverride msgType = 2 // one override entry (broadcast)
	msgState    msgType = 3 // every entry (push/pull)
	msgLeave    msgType = 4 // a node says it is leaving (reliable send)
	msgBeat     msgType = 5 // an origin vouches for its entries (broadcast)
)

func (t msgType) String() string {
	switch t {
	case msgVerdict:
		return "verdict"
	case msgOverride:
		return "override"
	case msgState:
		return "state"
	case msgLeave:
		return "leave"
	case msgBeat:
		return "heartbeat"
	}
	return "unknown"
}

// Bounds on what a node writes and accepts. The string bounds keep the
// largest verdict and override under ~900 bytes, so each fits one UDP
// gossip packet (memberlist's 1,400 bytes less encryption, label and
// compound headers).
const (
	maxNameLen   = 128  // node names (origin, writer)
	maxTargetLen = 512  // target IDs: kind, endpoint, path, settings hash
	maxReasonLen = 200  // verdict reasons; longer ones are cut on SetLocalVerdicts
	maxPoolLen   = 255  // a pool owner FQDN
	maxRegionLen = 64   // a region name
	maxWhoLen    = 128  // an override's author
	maxWhyLen    = 256  // an override's reason
	maxFieldLen  = 1024 // meta fields

	// maxMessageBytes bounds a broadcast or leave message, far above the
	// largest valid one (~900 bytes).
	maxMessageBytes = 4 << 10
	// maxStateBytes and maxStateEntries bound a push/pull state: 1<<20
	// entries is 1,000 targets observed by 1,000 nodes.
	maxStateBytes   = 64 << 20
	maxStateEntries = 1 << 20
	// minEntryBytes is the least a verdict or override body can take; a
	// count is checked against the bytes left for it before allocating.
	minEntryBytes = 8
)

// Entry is one observer's verdict on one target, as replicated. The key is
// (Origin, Target); only the origin writes its entries, each with a newer
// Version, and a newer version replaces an older one everywhere.
type Entry struct {
	Origin  string // the observing node's name
	Target  string // zones.Target.ID
	Verdict zones.TargetVerdict
	Version uint64 // the origin's hybrid logical clock when it wrote this
	// Removed marks a retraction: the origin no longer observes the target
	// (it left the config, or another node observes it now). It never
	// votes, and it replaces the entry it retracts everywhere.
	Removed bool
	// Lagging: the origin's last probe of the target is over MaxAge/2
	// old, so its heartbeats do not vouch for this entry, which ages from
	// Verdict.Checked (see table).
	Lagging bool
}

// overrideEntry is an override as replicated: last-writer-wins under its
// OverrideKey, ordered by (Version, Node).
type overrideEntry struct {
	O       zones.Override
	Version uint64 // the writer's hybrid logical clock
	Node    string // the writer: breaks ties between equal versions
	Cleared bool   // a tombstone: the override was cleared (O says who, when, why)
}

// newer reports whether a replaces b under last-writer-wins.
func (a overrideEntry) newer(b overrideEntry) bool {
	if a.Version != b.Version {
		return a.Version > b.Version
	}
	return a.Node > b.Node
}

// leaveIntent is what a node sends just before it leaves, so that its peers
// record it as left rather than dead (memberlist tells them only that it
// is gone).
type leaveIntent struct {
	Node    string
	Version uint64
}

// message is one decoded broadcast or leave message; Type says which field
// is set.
type message struct {
	Type     msgType
	Verdict  Entry
	Override overrideEntry
	Beat     heartbeat
	Leave    leaveIntent
}

// stateMsg is a push/pull state: every entry a node holds.
type stateMsg struct {
	Verdicts  []Entry
	Overrides []overrideEntry
	Beats     []heartbeat
}

// Encoding.

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return binary.AppendVarint(b, 0)
	}
	return binary.AppendVarint(b, t.UnixNano())
}

func header(t msgType) []byte {
	return []byte{codecVersion, byte(t)}
}

const (
	flagPending = 1 << 2
	flagRemoved = 1 << 3
	flagLagging = 1 << 4
	flagCleared = 1 << 0
)

func appendVerdict(b []byte, e *Entry) []byte {
	b = appendString(b, e.Origin)
	b = appendString(b, e.Target)
	b = binary.AppendUvarint(b, e.Version)
	f := byte(e.Verdict.State) & 3
	if e.Verdict.Pending {
		f |= flagPending
	}
	if e.Removed {
		f |= flagRemoved
	}
	if e.Lagging {
		f |= flagLagging
	}
	b = append(b, f)
	b = appendString(b, e.Verdict.Reason)
	b = appendTime(b, e.Verdict.Since)
	return appendTime(b, e.Verdict.Checked)
}

func appendOverride(b []byte, o *overrideEntry) []byte {
	b = append(b, byte(o.O.Action))
	b = appendString(b, o.O.Pool)
	b = appendString(b, o.O.Region)
	b = appendString(b, o.O.Who)
	b = appendString(b, o.O.Why)
	b = appendTime(b, o.O.When)
	b = appendTime(b, o.O.Expires)
	b = binary.AppendUvarint(b, o.Version)
	b = appendString(b, o.Node)
	var f byte
	if o.Cleared {
		f |= flagCleared
	}
	return append(b, f)
}

func appendBeat(b []byte, h *heartbeat) []byte {
	b = appendString(b, h.Origin)
	b = binary.AppendUvarint(b, h.Version)
	b = appendTime(b, h.AsOf)
	return binary.BigEndian.AppendUint64(b, h.Sum)
}

func encodeBeat(h *heartbeat) []byte { return appendBeat(header(msgBeat), h) }

func encodeVerdict(e *Entry) []byte { return appendVerdict(header(msgVerdict), e) }

func encodeOverride(o *overrideEntry) []byte { return appendOverride(header(msgOverride), o) }

func encodeLeave(l leaveIntent) []byte {
	b := appendString(header(msgLeave), l.Node)
	return binary.AppendUvarint(b, l.Version)
}

func encodeState(s *stateMsg) []byte {
	b := header(msgState)
	b = binary.AppendUvarint(b, uint64(len(s.Verdicts)))
	for i := range s.Verdicts {
		b = appendVerdict(b, &s.Verdicts[i])
	}
	b = binary.AppendUvarint(b, uint64(len(s.Overrides)))
	for i := range s.Overrides {
		b = appendOverride(b, &s.Overrides[i])
	}
	b = binary.AppendUvarint(b, uint64(len(s.Beats)))
	for i := range s.Beats {
		b = appendBeat(b, &s.Beats[i])
	}
	return b
}

// Decoding. A reader keeps the first error and returns zero values after
// it, so a decoder reads every field and checks once at the end; it never
// indexes past its input.

type reader struct {
	b   []byte
	v   byte // the message's codec version, once checkHeader has read it
	err error
}

func (r *reader) fail(format string, a ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, a...)
	}
}

func (r *reader) byte(what string) byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.fail("%s: truncated: %w", what, ErrMalformed)
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("%s: bad varint: %w", what, ErrMalformed)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) time(what string) time.Time {
	if r.err != nil {
		return time.Time{}
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("%s: bad varint: %w", what, ErrMalformed)
		return time.Time{}
	}
	r.b = r.b[n:]
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(0, v)
}

func (r *reader) string(what string, limit int) string {
	n := r.uvarint(what)
	if r.err != nil {
		return ""
	}
	if n > uint64(limit) {
		r.fail("%s: %d bytes, over %d: %w", what, n, limit, ErrTooLarge)
		return ""
	}
	if n > uint64(len(r.b)) {
		r.fail("%s: truncated: %w", what, ErrMalformed)
		return ""
	}
	s := string(r.b[:n]) // a copy: memberlist reuses its buffers
	r.b = r.b[n:]
	if !utf8.ValidString(s) {
		r.fail("%s: not UTF-8: %w", what, ErrMalformed)
		return ""
	}
	return s
}

// count reads an entry count and checks it against maxStateEntries and
// against the bytes left, before anything is allocated for it.
func (r *reader) count(what string) int {
	n := r.uvarint(what)
	if r.err != nil {
		return 0
	}
	if n > maxStateEntries {
		r.fail("%s: %d entries, over %d: %w", what, n, maxStateEntries, ErrTooLarge)
		return 0
	}
	if n > uint64(len(r.b)/minEntryBytes) {
		r.fail("%s: %d entries in %d bytes: %w", what, n, len(r.b), ErrMalformed)
		return 0
	}
	return int(n)
}

func (r *reader) verdict() Entry {
	var e Entry
	e.Origin = r.string("verdict origin", maxNameLen)
	e.Target = r.string("verdict target", maxTargetLen)
	e.Version = r.uvarint("verdict version")
	f := r.byte("verdict flags")
	e.Verdict.State = zones.State(f & 3)
	e.Verdict.Pending = f&flagPending != 0
	e.Removed = f&flagRemoved != 0
	e.Lagging = f&flagLagging != 0
	e.Verdict.Reason = r.string("verdict reason", maxReasonLen)
	e.Verdict.Since = r.time("verdict since")
	e.Verdict.Checked = r.time("verdict checked")
	if r.err == nil {
		if f&^(3|flagPending|flagRemoved|flagLagging) != 0 {
			r.fail("verdict flags %#x: %w", f, ErrMalformed)
		} else if err := validEntry(&e); err != nil {
			r.err = err
		}
	}
	return e
}

func (r *reader) override() overrideEntry {
	var o overrideEntry
	o.O.Action = zones.OverrideAction(r.byte("override action"))
	o.O.Pool = r.string("override pool", maxPoolLen)
	o.O.Region = r.string("override region", maxRegionLen)
	o.O.Who = r.string("override who", maxWhoLen)
	o.O.Why = r.string("override why", maxWhyLen)
	o.O.When = r.time("override when")
	if r.v >= 2 {
		o.O.Expires = r.time("override expires")
	}
	o.Version = r.uvarint("override version")
	o.Node = r.string("override node", maxNameLen)
	f := r.byte("override flags")
	o.Cleared = f&flagCleared != 0
	if r.err == nil {
		if f&^flagCleared != 0 {
			r.fail("override flags %#x: %w", f, ErrMalformed)
		} else if err := validOverrideEntry(&o); err != nil {
			r.err = err
		}
	}
	return o
}

func (r *reader) beat() heartbeat {
	var h heartbeat
	h.Origin = r.string("heartbeat origin", maxNameLen)
	h.Version = r.uvarint("heartbeat version")
	h.AsOf = r.time("heartbeat as-of")
	if r.err == nil && len(r.b) < 8 {
		r.fail("heartbeat sum: truncated: %w", ErrMalformed)
	}
	if r.err != nil {
		return heartbeat{}
	}
	h.Sum = binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	if h.Origin == "" || h.Version == 0 {
		r.fail("heartbeat without origin or version: %w", ErrMalformed)
	}
	return h
}

// validEntry checks what a decoder cannot: that an entry names its origin
// and target and has a version and a known state.
func validEntry(e *Entry) error {
	switch {
	case e.Origin == "" || len(e.Origin) > maxNameLen:
		return fmt.Errorf("verdict origin %q: %w", e.Origin, ErrMalformed)
	case e.Target == "" || len(e.Target) > maxTargetLen:
		return fmt.Errorf("verdict target of %d bytes: %w", len(e.Target), ErrMalformed)
	case len(e.Verdict.Reason) > maxReasonLen:
		return fmt.Errorf("verdict reason of %d bytes: %w", len(e.Verdict.Reason), ErrTooLarge)
	case e.Version == 0:
		return fmt.Errorf("verdict without a version: %w", ErrMalformed)
	case e.Verdict.State > zones.Down:
		return fmt.Errorf("verdict state %d: %w", e.Verdict.State, ErrMalformed)
	}
	return nil
}

func validOverrideEntry(o *overrideEntry) error {
	if err := validOverride(&o.O); err != nil {
		return err
	}
	switch {
	case o.Version == 0:
		return fmt.Errorf("override without a version: %w", ErrMalformed)
	case o.Node == "" || len(o.Node) > maxNameLen:
		return fmt.Errorf("override writer %q: %w", o.Node, ErrMalformed)
	}
	return nil
}

// checkHeader reads the version and type bytes, and keeps the version in r
// for the fields that depend on it.
func checkHeader(r *reader, size, limit int) msgType {
	if size > limit {
		r.fail("message of %d bytes, over %d: %w", size, limit, ErrTooLarge)
		return 0
	}
	v := r.byte("codec version")
	t := msgType(r.byte("message type"))
	if r.err == nil && (v < minCodecVersion || v > codecVersion) {
		r.fail("codec version %d: %w", v, ErrVersion)
	}
	r.v = v
	return t
}

// decodeMessage decodes one broadcast or leave message. It never panics
// and allocates at most a few times the input's size.
func decodeMessage(b []byte) (message, error) {
	r := &reader{b: b}
	m := message{Type: checkHeader(r, len(b), maxMessageBytes)}
	if r.err != nil {
		return message{}, fmt.Errorf("decode message: %w", r.err)
	}
	switch m.Type {
	case msgVerdict:
		m.Verdict = r.verdict()
	case msgOverride:
		m.Override = r.override()
	case msgBeat:
		m.Beat = r.beat()
	case msgLeave:
		m.Leave.Node = r.string("leave node", maxNameLen)
		m.Leave.Version = r.uvarint("leave version")
		if r.err == nil && (m.Leave.Node == "" || m.Leave.Version == 0) {
			r.fail("leave without node or version: %w", ErrMalformed)
		}
	default:
		r.fail("message type %d: %w", m.Type, ErrMalformed)
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d bytes after the %s message: %w", len(r.b), m.Type, ErrMalformed)
	}
	if r.err != nil {
		return message{}, fmt.Errorf("decode %s message: %w", m.Type, r.err)
	}
	return m, nil
}

// decodeState decodes a push/pull state. Counts are bounded before
// anything is allocated for them (maxStateEntries, and the bytes left).
func decodeState(b []byte) (stateMsg, error) {
	r := &reader{b: b}
	if t := checkHeader(r, len(b), maxStateBytes); r.err == nil && t != msgState {
		r.fail("message type %d where a state was expected: %w", t, ErrMalformed)
	}
	var s stateMsg
	if n := r.count("verdict count"); n > 0 {
		s.Verdicts = make([]Entry, 0, n)
		for range n {
			if e := r.verdict(); r.err == nil {
				s.Verdicts = append(s.Verdicts, e)
			}
		}
	}
	if n := r.count("override count"); n > 0 {
		s.Overrides = make([]overrideEntry, 0, n)
		for range n {
			if o := r.override(); r.err == nil {
				s.Overrides = append(s.Overrides, o)
			}
		}
	}
	if n := r.count("heartbeat count"); n > 0 {
		s.Beats = make([]heartbeat, 0, n)
		for range n {
			if h := r.beat(); r.err == nil {
				s.Beats = append(s.Beats, h)
			}
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d bytes after the state: %w", len(r.b), ErrMalformed)
	}
	if r.err != nil {
		return stateMsg{}, fmt.Errorf("decode state: %w", r.err)
	}
	return s, nil
}

// nodeMeta is what a node tells the others about itself in memberlist's
// node metadata (at most memberlist.MetaMaxSize bytes): a version byte,
// then region, build version and config hash as strings.
type nodeMeta struct {
	Region     string
	Version    string
	ConfigHash string
}

const metaVersion = 1

func encodeMeta(m nodeMeta) []byte {
	b := []byte{metaVersion}
	b = appendString(b, m.Region)
	b = appendString(b, m.Version)
	return appendString(b, m.ConfigHash)
}

// decodeMeta decodes another node's metadata.
func decodeMeta(b []byte) (nodeMeta, error) {
	r := &reader{b: b}
	if len(b) > memberlist.MetaMaxSize {
		r.fail("meta of %d bytes, over %d: %w", len(b), memberlist.MetaMaxSize, ErrTooLarge)
	}
	if v := r.byte("meta version"); r.err == nil && v != metaVersion {
		r.fail("meta version %d: %w", v, ErrVersion)
	}
	var m nodeMeta
	m.Region = r.string("meta region", maxFieldLen)
	m.Version = r.string("meta version string", maxFieldLen)
	m.ConfigHash = r.string("meta config hash", maxFieldLen)
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d bytes after the meta: %w", len(r.b), ErrMalformed)
	}
	if r.err != nil {
		return nodeMeta{}, fmt.Errorf("decode node meta: %w", r.err)
	}
	return m, nil
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
