// Command endpoints serves the stand-in health endpoints of the local
// cluster (`make cluster`): one HTTP server per region, each answering
// GET /healthz with 200 while up and 503 while failed. POST /fail and
// POST /recover on a server switch it, so one region can be failed for
// every node at once:
//
//	curl -X POST http://127.0.0.32:8080/fail      # eu-west fails its checks
//	curl -X POST http://127.0.0.32:8080/recover
//
// Everything listens on loopback addresses given with -addr.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	addrs := flag.String("addr", "127.0.0.31:8080,127.0.0.32:8080,127.0.0.33:8080", "comma-separated addresses to serve on")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, log, strings.Split(*addrs, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "endpoints:", err)
		os.Exit(1)
	}
}

// endpoint is one stand-in: healthy until failed.
type endpoint struct {
	failed atomic.Bool
	log    *slog.Logger
	addr   string
}

func (e *endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/healthz" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		if e.failed.Load() {
			http.Error(w, "failed (POST /recover to bring it back)", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	case r.URL.Path == "/fail" && r.Method == http.MethodPost:
		e.failed.Store(true)
		e.log.Info("endpoint failed", "addr", e.addr)
		fmt.Fprintln(w, "failed")
	case r.URL.Path == "/recover" && r.Method == http.MethodPost:
		e.failed.Store(false)
		e.log.Info("endpoint recovered", "addr", e.addr)
		fmt.Fprintln(w, "recovered")
	default:
		http.Error(w, "GET /healthz, POST /fail, POST /recover", http.StatusNotFound)
	}
}

func run(ctx context.Context, log *slog.Logger, addrs []string) error {
	var servers []*http.Server
	var wg sync.WaitGroup
	errc := make(chan error, len(addrs))
	for _, a := range addrs {
		ln, err := net.Listen("tcp", strings.TrimSpace(a))
		if err != nil {
			for _, s := range servers {
				s.Close()
			}
			return fmt.Errorf("listen %s: %w", a, err)
		}
		srv := &http.Server{Handler: &endpoint{log: log, addr: ln.Addr().String()}, ReadHeaderTimeout: 5 * time.Second}
		servers = append(servers, srv)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
		log.Info("endpoint serving", "url", "http://"+ln.Addr().String()+"/healthz")
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	for _, s := range servers {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		s.Shutdown(sctx)
		cancel()
	}
	wg.Wait()
	return err
}
