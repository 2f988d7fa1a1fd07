package zones

import (
	"net/netip"
	"regexp"
	"time"
)

// CheckKind is the protocol of a health check.
type CheckKind string

// The kinds of health check.
const (
	CheckHTTP  CheckKind = "http"
	CheckHTTPS CheckKind = "https"
	CheckTCP   CheckKind = "tcp"
	CheckDNS   CheckKind = "dns"
)

// Check is a validated health check with every default filled in. It is
// declared per pool and may be refined per member; probes runs it against
// each of the member's endpoints.
type Check struct {
	Kind CheckKind

	// Schedule and verdicts.
	Interval time.Duration // between two probes of one endpoint
	Timeout  time.Duration // one attempt; default Interval/2, at most Interval
	Rise     int           // consecutive successes to come back up (default 5)
	Fall     int           // consecutive failures to go down (default 3)
	// LatencyBudget, when set, marks a passing check slower than this as
	// degraded.
	LatencyBudget time.Duration

	// HTTP and HTTPS.
	Method        string            // default GET (POST when Body is set)
	Path          string            // default "/"
	Host          string            // Host header (and default TLS server name)
	Headers       map[string]string // extra request headers
	Body          string            // request body, e.g. a small JSON inference request
	ExpectStatus  []int             // default 200..299 when empty
	ExpectBody    string            // substring the body must contain
	ExpectRegexp  *regexp.Regexp    // pattern the body must match
	TLSServerName string            // SNI and verification name
	TLSCAFile     string            // PEM bundle to verify with instead of the system roots
	TLSSkipVerify bool              // do not verify the certificate (lab use only)

	// DNS.
	DNSName   string // name to ask
	DNSType   uint16 // default A
	DNSRcode  int    // expected rcode, default NOERROR
	DNSAnswer string // substring an answer record must contain, optional
}

// DefaultCheckPort is the port of an endpoint given without one.
func (c *Check) DefaultPort() uint16 {
	switch c.Kind {
	case CheckHTTPS:
		return 443
	case CheckDNS:
		return 53
	}
	return 80
}

// Target is one endpoint probed with one check, on behalf of every pool
// member that probes that endpoint with that same check: it is probed once
// per interval and its one verdict serves them all, so an endpoint shared by
// 16 pools costs it one probe per interval (not 16) and, when it dies, flips
// one verdict (not 16).
type Target struct {
	// ID names the endpoint and everything about the check that decides
	// what is sent, how the reply is judged and when the verdict flips
	// (see targetID). It is stable across reloads while all of that is
	// unchanged, so a verdict survives them.
	ID string
	// Members are the pool members this target's verdict serves, sorted by
	// pool then region, without repeats.
	Members  []MemberKey
	Endpoint netip.AddrPort // where to connect
	// Path is the HTTP(S) path probed: a URL endpoint's own path, else
	// Check.Path. It is "" for tcp and dns checks.
	Path string
	// Check is the check of the first member (in config order); every
	// member's check is equal to it in everything the ID covers.
	Check *Check
	// Observers is how many nodes of a cluster probe the target: the most
	// that any of its pools asks for, 0 (every node) when any pool leaves
	// it unset.
	Observers int
}

// TargetVerdict is the state of one target after rise/fall.
type TargetVerdict struct {
	State   State     // Up, Degraded or Down
	Pending bool      // the last result disagrees with State: a flip may be coming
	Reason  string    // why, e.g. "3 consecutive failures, last: HTTP 503 after 120ms"
	Since   time.Time // when State last changed
	Checked time.Time // last probe
}
