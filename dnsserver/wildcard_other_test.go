//go:build !linux

package dnsserver

import (
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
)

// Outside Linux a wildcard is refused, saying where it works.
func TestServerRejectsWildcard(t *testing.T) {
	for _, a := range []string{"0.0.0.0:0", "[::]:0"} {
		_, err := NewServer(slog.New(slog.NewTextHandler(io.Discard, nil)), Config{Listen: []string{"127.0.0.1:0", a}}, newTestHandler(t, demoStore(t)))
		if !errors.Is(err, ErrWildcard) || !strings.Contains(err.Error(), "Linux only") {
			t.Errorf("%s: err %v, want ErrWildcard, Linux only", a, err)
		}
	}
}
