package probes

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/meridian-gtm/meridian/zones"
)

func TestOnce(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer up.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	c := &zones.Check{Kind: zones.CheckHTTP, Path: "/", Method: "GET", Timeout: 2 * time.Second, Interval: 5 * time.Second, Rise: 5, Fall: 3}
	ts := []zones.Target{target(t, strings.TrimPrefix(up.URL, "http://"), c), target(t, closed, c)}
	v := Once(context.Background(), ts, 0)
	if got := v[ts[0].ID]; got.State != zones.Up {
		t.Errorf("up server: %+v", got)
	}
	if got := v[ts[1].ID]; got.State != zones.Down || !strings.Contains(got.Reason, "refused") {
		t.Errorf("closed port: %+v, want down with the reason", got)
	}
}
