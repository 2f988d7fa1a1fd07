package probes

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/meridian-gtm/meridian/zones"
)

// outcome is what one attempt found.
type outcome struct {
	ok      bool
	latency time.Duration // the protocol exchange, for the latency budget
	reason  string        // short and human: "HTTP 503 after 120ms"
}

func pass(latency time.Duration, reason string) outcome {
	return outcome{ok: true, latency: latency, reason: reason}
}

func fail(latency time.Duration, reason string) outcome {
	return outcome{latency: latency, reason: reason}
}

// probe runs one attempt of t's check; ctx carries the attempt's deadline.
// It is Prober.check unless a test swaps it.
func (p *Prober) probe(ctx context.Context, t *zones.Target) outcome {
	switch t.Check.Kind {
	case zones.CheckHTTP, zones.CheckHTTPS:
		return probeHTTP(ctx, t, p.opts.UserAgent)
	case zones.CheckTCP:
		return probeTCP(ctx, t)
	case zones.CheckDNS:
		return probeDNS(ctx, t)
	}
	return fail(0, fmt.Sprintf("unknown check kind %q", t.Check.Kind))
}

// tlsError marks a failed TLS handshake, so its reason says "TLS: ".
type tlsError struct{ err error }

func (e *tlsError) Error() string { return "tls handshake: " + e.err.Error() }
func (e *tlsError) Unwrap() error { return e.err }

// errReason turns an attempt's error into a short reason: the attempt's
// own deadline is "timeout after 2s"; a socket error is its system call
// ("connect: connection refused"); a handshake failure is "TLS: " and its
// cause; wrappers (url.Error, net.OpError) are peeled off.
func errReason(ctx context.Context, err error, timeout time.Duration) string {
	var ne net.Error
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout()) {
		return "timeout after " + fmtDur(timeout)
	}
	var te *tlsError
	if errors.As(err, &te) {
		var cv *tls.CertificateVerificationError
		if errors.As(te.err, &cv) {
			return "TLS: " + cv.Err.Error()
		}
		return "TLS: " + strings.TrimPrefix(innermost(te.err).Error(), "tls: ")
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "connection closed by peer"
	}
	return innermost(err).Error()
}

// innermost peels the wrappers that only repeat the operation and address.
func innermost(err error) error {
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se
	}
	for {
		var ue *url.Error
		var oe *net.OpError
		switch {
		case errors.As(err, &ue) && ue.Err != nil && err != ue.Err:
			err = ue.Err
		case errors.As(err, &oe) && oe.Err != nil && err != oe.Err:
			err = oe.Err
		default:
			return err
		}
	}
}

// fmtDur prints a duration for a reason: milliseconds, or microseconds
// below one millisecond.
func fmtDur(d time.Duration) string {
	if d < time.Millisecond {
		return d.Round(time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}
