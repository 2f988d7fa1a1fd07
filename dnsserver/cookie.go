package dnsserver

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/dchest/siphash"
)

// DNS cookies (RFC 7873) with the interoperable server cookie of RFC 9018.
//
// A client cookie is 8 bytes the client picks per server. We answer it with
// a 16-byte server cookie:
//
//	Version 1 | Reserved 0 (3 bytes) | Timestamp (4 bytes, Unix seconds)
//	| Hash = SipHash-2-4(secret, ClientCookie | Version | Reserved | Timestamp | ClientIP)
//
// ClientIP is the query's source address (not ECS), 4 bytes for IPv4 and
// IPv4-mapped IPv6, 16 otherwise. A client that sends it back proves it
// receives at its address, which is what rate limiting wants to know
// (query.serverCookie).
//
// Lifetime: a server cookie is accepted for an hour after its timestamp and
// up to 5 minutes before it (clock skew between nodes), as RFC 9018 §4.3
// recommends. A valid cookie less than half an hour old is sent back as it
// came rather than renewed (§4.3 allows it): the response then depends on
// nothing that changes every second, and the client's cookie stays put.
// Older ones, and ones with Reserved bytes set, get a fresh cookie.
//
// Rotation: every secret in the list is accepted, the first makes new
// cookies. To roll a secret without turning clients away: add the new one
// second on every node and reload; once all have it, put it first and
// reload; an hour later (the lifetime) remove the old one. Cookies made with
// either are accepted throughout the overlap.
//
// Anycast and several nodes behind one name: a resolver may take its cookie
// from one node and send it to another, so every node serving a name must
// share the secret file (and the rotation steps above), and keep its clock
// within a few minutes of the others.

// EDNS option codes.
const (
	optNSID   = 3  // RFC 5001
	optCookie = 10 // RFC 7873
)

// Cookie sizes and lifetimes (RFC 7873 §4, RFC 9018 §4.3).
const (
	clientCookieLen   = 8
	serverCookieLen   = 16 // the RFC 9018 construction
	minServerCookie   = 8
	maxServerCookie   = 32
	cookieSecretLen   = 16
	cookieVersion     = 1
	cookieLifetime    = 3600 // seconds after the timestamp a cookie is accepted
	cookieFutureSlack = 300  // seconds before its timestamp a cookie is accepted
	cookieReuseAge    = 1800 // younger valid cookies are sent back as they came
)

// Cookie errors.
var (
	// ErrCookieSecret rejects a secret that is not 16 bytes, or an empty list.
	ErrCookieSecret = errors.New("cookie secret must be 16 bytes (32 hex digits)")
	// ErrCookieFileMode comes with the secrets when the file is readable by
	// every user: the secrets are usable, the caller should warn.
	ErrCookieFileMode = errors.New("cookie secret file is world-readable")
)

// Cookies makes and checks server cookies. It is safe for concurrent use:
// the answer path reads the secrets through an atomic pointer, and
// SetSecrets swaps them whole.
type Cookies struct {
	keys atomic.Pointer[[]sipKey] // first makes cookies; written by SetSecrets only
	now  func() time.Time
}

// sipKey is a secret as SipHash wants it: two little-endian halves.
type sipKey struct{ k0, k1 uint64 }

// NewCookies returns Cookies with secrets (16 bytes each, at least one; the
// first makes new server cookies, all are accepted) and a clock (nil:
// time.Now).
func NewCookies(secrets [][]byte, now func() time.Time) (*Cookies, error) {
	if now == nil {
		now = time.Now
	}
	c := &Cookies{now: now}
	if err := c.SetSecrets(secrets); err != nil {
		return nil, err
	}
	return c, nil
}

// SetSecrets replaces the secrets at once, for a reload. Queries in flight
// finish with the old list. On error the old list stays.
func (c *Cookies) SetSecrets(secrets [][]byte) error {
	if len(secrets) == 0 {
		return fmt.Errorf("cookies: no secrets: %w", ErrCookieSecret)
	}
	keys := make([]sipKey, len(secrets))
	for i, s := range secrets {
		if len(s) != cookieSecretLen {
			return fmt.Errorf("cookies: secret %d is %d bytes: %w", i+1, len(s), ErrCookieSecret)
		}
		keys[i] = sipKey{binary.LittleEndian.Uint64(s), binary.LittleEndian.Uint64(s[8:])}
	}
	c.keys.Store(&keys)
	return nil
}

// LoadCookieSecrets reads a file of secrets, one per line as 32 hex digits
// (16 bytes), with blank lines and '#' comments allowed; the first secret
// makes new cookies. Errors name the file and line. When the file is
// readable by every user it still returns the secrets, with an error
// wrapping ErrCookieFileMode for the caller to log: a warning, not a
// failure.
func LoadCookieSecrets(file string) ([][]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("cookie secrets: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cookie secrets: %w", err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("cookie secrets: %w", err)
	}
	var secrets [][]byte
	var errs []error
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		text := sc.Bytes()
		if i := bytes.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		text = bytes.TrimSpace(text)
		if len(text) == 0 {
			continue
		}
		if len(text) != 2*cookieSecretLen {
			errs = append(errs, fmt.Errorf("%s:%d: %d characters: %w", file, line, len(text), ErrCookieSecret))
			continue
		}
		s := make([]byte, cookieSecretLen)
		if _, err := hex.Decode(s, text); err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %w", file, line, err))
			continue
		}
		secrets = append(secrets, s)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", file, err))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(secrets) == 0 {
		return nil, fmt.Errorf("%s: no secrets: %w", file, ErrCookieSecret)
	}
	if fi.Mode().Perm()&0o004 != 0 {
		return secrets, fmt.Errorf("%s: mode %v, anyone on this host can forge cookies (chmod o-r): %w", file, fi.Mode().Perm(), ErrCookieFileMode)
	}
	return secrets, nil
}

// cookieOpt is a parsed COOKIE option (RFC 7873 §4).
type cookieOpt struct {
	present   bool
	serverLen uint8 // 0: client cookie only
	client    [clientCookieLen]byte
	server    [maxServerCookie]byte
}

var (
	errCookie    = errors.New("malformed COOKIE option")
	errTwoCookie = errors.New("more than one COOKIE option")
)

// parseCookie checks the lengths RFC 7873 §5.2.2 allows: an 8-byte client
// cookie alone, or with a server cookie of 8 to 32 bytes.
func parseCookie(b []byte, c *cookieOpt) error {
	if c.present {
		return errTwoCookie
	}
	n := len(b) - clientCookieLen
	if n < 0 || (n > 0 && n < minServerCookie) || n > maxServerCookie {
		return errCookie
	}
	c.present = true
	copy(c.client[:], b)
	c.serverLen = uint8(copy(c.server[:], b[clientCookieLen:]))
	return nil
}

// check reports whether the query's server cookie is one of ours for this
// client, and its timestamp.
func (c *Cookies) check(keys []sipKey, q *cookieOpt, ip netip.Addr, now uint32) (bool, uint32) {
	if q.serverLen != serverCookieLen || q.server[0] != cookieVersion {
		return false, 0
	}
	ts := binary.BigEndian.Uint32(q.server[4:])
	// Serial arithmetic (RFC 1982), as RFC 9018 §4.3 asks: the field wraps
	// in 2106.
	if age := int32(now - ts); age > cookieLifetime || age < -cookieFutureSlack {
		return false, 0
	}
	want := binary.LittleEndian.Uint64(q.server[8:])
	for _, k := range keys {
		if cookieHash(k, &q.client, [8]byte(q.server[:8]), ip) == want {
			return true, ts
		}
	}
	return false, 0
}

// answer checks the query's cookie, sets q.serverCookie, and writes the
// COOKIE option body we return (client cookie, then server cookie) to dst.
func (c *Cookies) answer(q *query, ip netip.Addr, dst *[clientCookieLen + serverCookieLen]byte) (result int) {
	keys := *c.keys.Load()
	now := uint32(c.now().Unix())
	copy(dst[:], q.cookie.client[:])
	result = cookieClientOnly
	if q.cookie.serverLen > 0 {
		result = cookieBad
		ok, ts := c.check(keys, &q.cookie, ip, now)
		if ok {
			q.serverCookie = true
			result = cookieGood
			if int32(now-ts) < cookieReuseAge && q.cookie.server[1]|q.cookie.server[2]|q.cookie.server[3] == 0 {
				copy(dst[clientCookieLen:], q.cookie.server[:serverCookieLen])
				return result
			}
		}
	}
	head := [8]byte{cookieVersion}
	binary.BigEndian.PutUint32(head[4:], now)
	copy(dst[clientCookieLen:], head[:])
	binary.LittleEndian.PutUint64(dst[clientCookieLen+8:], cookieHash(keys[0], &q.cookie.client, head, ip))
	return result
}

// cookieHash is RFC 9018's Hash: SipHash-2-4 over the client cookie, the
// first 8 bytes of the server cookie and the client address. SipHash's
// 64-bit result goes on the wire little-endian, as its reference code
// writes it.
func cookieHash(k sipKey, client *[clientCookieLen]byte, head [8]byte, ip netip.Addr) uint64 {
	var msg [clientCookieLen + 8 + 16]byte
	copy(msg[:], client[:])
	copy(msg[clientCookieLen:], head[:])
	n := clientCookieLen + 8
	ip = ip.Unmap()
	switch {
	case ip.Is4():
		a := ip.As4()
		n += copy(msg[n:], a[:])
	case ip.Is6():
		a := ip.As16()
		n += copy(msg[n:], a[:])
	}
	return siphash.Hash(k.k0, k.k1, msg[:n])
}

// Results counted by meridian_dns_cookies_total.
const (
	cookieNone       = iota // no COOKIE option
	cookieClientOnly        // a client cookie only
	cookieGood              // a server cookie of ours, in date
	cookieBad               // a server cookie not ours, out of date or another version
	cookieMalformed         // FORMERR
	cookieResults
)

var cookieResultLabels = [cookieResults]string{"none", "client_only", "good", "bad", "malformed"}

// replyOptions decides the reply's NSID and COOKIE options, and checks the
// query's cookie: it sets w.nsid, w.cookie and q.serverCookie.
func (h *Handler) replyOptions(w *worker, from netip.Addr) {
	q := &w.q
	if q.nsid && len(h.opts.NSID) > 0 {
		w.nsid = h.opts.NSID
	}
	c := h.opts.Cookies
	if c == nil {
		return
	}
	if !q.cookie.present {
		h.metrics.cookies[cookieNone].Inc()
		return
	}
	h.metrics.cookies[c.answer(q, from, &w.cookieBuf)].Inc()
	w.cookie = w.cookieBuf[:]
}
