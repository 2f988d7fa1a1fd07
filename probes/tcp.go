package probes

import (
	"context"
	"net"
	"time"

	"github.com/meridian-gtm/meridian/zones"
)

// probeTCP passes when a TCP connection to the endpoint opens in time; it
// closes it at once.
func probeTCP(ctx context.Context, t *zones.Target) outcome {
	var d net.Dialer
	start := time.Now()
	conn, err := d.DialContext(ctx, "tcp", t.Endpoint.String())
	latency := time.Since(start)
	if err != nil {
		return fail(latency, errReason(ctx, err, t.Check.Timeout))
	}
	conn.Close()
	return pass(latency, "TCP connect after "+fmtDur(latency))
}
