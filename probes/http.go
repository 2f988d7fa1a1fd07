package probes

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/meridian-gtm/meridian/zones"
)

// maxBody is how much of a response body ExpectBody and ExpectRegexp see.
const maxBody = 64 << 10

// userAgent identifies probes in the endpoints' access logs; a clustered
// node adds its name (Options.UserAgent).
const userAgent = "meridian-probe/1"

// probeHTTP runs an HTTP or HTTPS check: one request to the endpoint
// itself (the check's Host goes in the Host header and TLS server name,
// never to a resolver), on a fresh connection that is closed afterwards,
// following no redirects.
func probeHTTP(ctx context.Context, t *zones.Target, ua string) outcome {
	c := t.Check
	scheme := "http"
	var tlsConf *tls.Config
	if c.Kind == zones.CheckHTTPS {
		scheme = "https"
		var err error
		if tlsConf, err = clientTLS(c, t.Endpoint.Addr().String()); err != nil {
			return fail(0, err.Error())
		}
	}
	method := c.Method
	if method == "" {
		method = http.MethodGet
		if c.Body != "" {
			method = http.MethodPost
		}
	}
	path := c.Path
	if t.Path != "" {
		path = t.Path // the endpoint was given as a URL
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	var body io.Reader
	if c.Body != "" {
		body = strings.NewReader(c.Body)
	}
	req, err := http.NewRequestWithContext(ctx, method, scheme+"://"+t.Endpoint.String()+path, body)
	if err != nil {
		return fail(0, "bad request: "+err.Error())
	}
	req.Header.Set("User-Agent", ua)
	for k, v := range c.Headers {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	if c.Host != "" {
		req.Host = c.Host
	}

	// A transport per attempt: TLS settings differ per target, and a
	// transport shared between targets could hand one target's connection
	// (its SNI, its verification) to another's request. Keep-alives are off,
	// so the connection closes with the body.
	tr := &http.Transport{
		Proxy:                  nil, // probe the endpoint, never a proxy from the environment
		DialContext:            (&net.Dialer{}).DialContext,
		TLSClientConfig:        tlsConf,
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: maxBody,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return fail(time.Since(start), errReason(ctx, markTLS(err), c.Timeout))
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
	latency := time.Since(start)
	if err != nil {
		return fail(latency, fmt.Sprintf("HTTP %d, body: %s", resp.StatusCode, errReason(ctx, err, c.Timeout)))
	}
	status := fmt.Sprintf("HTTP %d after %s", resp.StatusCode, fmtDur(latency))
	if !statusOK(c.ExpectStatus, resp.StatusCode) {
		return fail(latency, status)
	}
	if c.ExpectBody != "" && !bytes.Contains(data, []byte(c.ExpectBody)) {
		return fail(latency, fmt.Sprintf("body lacks %q", c.ExpectBody))
	}
	if c.ExpectRegexp != nil && !c.ExpectRegexp.Match(data) {
		return fail(latency, fmt.Sprintf("body does not match %q", c.ExpectRegexp.String()))
	}
	return pass(latency, status)
}

// statusOK reports whether code is expected: one of want, or any 2xx when
// want is empty.
func statusOK(want []int, code int) bool {
	if len(want) == 0 {
		return code >= 200 && code <= 299
	}
	for _, w := range want {
		if w == code {
			return true
		}
	}
	return false
}

// clientTLS is the TLS configuration of an HTTPS check: the server name is
// TLSServerName, else Host (without a port), else the endpoint's address;
// the roots are TLSCAFile when set (read at each attempt, so a rotated CA
// is picked up), else the system's.
func clientTLS(c *zones.Check, addr string) (*tls.Config, error) {
	name := c.TLSServerName
	if name == "" {
		name = c.Host
		if h, _, err := net.SplitHostPort(name); err == nil {
			name = h
		}
	}
	if name == "" {
		name = addr
	}
	conf := &tls.Config{
		ServerName:         name,
		InsecureSkipVerify: c.TLSSkipVerify,
		MinVersion:         tls.VersionTLS12,
	}
	if c.TLSCAFile != "" {
		pem, err := os.ReadFile(c.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("TLS CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS CA file %s: no PEM certificate", c.TLSCAFile)
		}
		conf.RootCAs = pool
	}
	return conf, nil
}

// markTLS tags an error that came out of the TLS handshake, which
// net/http returns wrapped like any other.
func markTLS(err error) error {
	var cv *tls.CertificateVerificationError
	var rh tls.RecordHeaderError
	var oe *net.OpError
	switch {
	case errors.As(err, &cv), errors.As(err, &rh),
		errors.As(err, &oe) && oe.Op == "remote error", // an alert from the server
		strings.HasPrefix(innermost(err).Error(), "tls: "):
		return &tlsError{err: err}
	}
	return err
}
