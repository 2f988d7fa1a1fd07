package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meridian-gtm/meridian/admin"
	"github.com/meridian-gtm/meridian/dnsserver"
	"github.com/meridian-gtm/meridian/geo"
	"github.com/meridian-gtm/meridian/gossip"
	"github.com/meridian-gtm/meridian/probes"
	"github.com/meridian-gtm/meridian/zones"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Node is one running Meridian node.
type Node struct {
	cfg   Config
	log   *slog.Logger
	store *zones.Store
	dns   *dnsserver.Server
	reg   *prometheus.Registry

	reloadMu sync.Mutex // serializes reloads (SIGHUP and the watcher)
	seen     uint64     // fingerprint of the files last loaded; under reloadMu
	metrics  nodeMetrics

	prober    *probes.Prober
	cookies   *dnsserver.Cookies // nil when DNS cookies are off
	metricsLn net.Listener       // nil unless metrics_listen is set

	// healthKick (cap 1) tells the health goroutine that verdicts or
	// members changed; a kick that finds one pending is dropped, which is
	// what coalesces a burst of flips into one publish.
	healthKick chan struct{}
	kickedAt   atomic.Int64 // UnixNano of the first kick not yet folded; 0 when none
	healthMu   sync.Mutex   // serializes health folds; guards published and publishedOverrides
	published  zones.HealthView
	// publishedOverrides are the cluster's overrides last published; a
	// node alone takes overrides through its Store directly.
	publishedOverrides []zones.Override
	cluster            *gossip.Cluster // nil when the node runs alone
	assignedFor        string          // the live members the prober's targets were assigned for; under healthMu
	sharedVerdicts     atomic.Bool     // this node has given the cluster verdicts since it started
	healthMetrics

	// The admin API; nil when admin.listen is not set.
	admin    *admin.Server
	adminLn  net.Listener
	notifier *admin.Notifier
	// overrideMu serializes override changes from the API, so a safety
	// rail judges the overrides the change replaces.
	overrideMu sync.Mutex
	local      localOverrides // a lone node's overrides
	noticed    seenState      // what notice last saw; under healthMu
	joined     atomic.Bool    // the cluster join succeeded (or the node runs alone)
	now        func() time.Time
	self       string                 // this node's name (see nodeName); set once by New
	hash       atomic.Pointer[string] // the zone files' hash, as last loaded
	assigned   atomic.Int64           // targets this node probes
	firstRound atomic.Bool            // ready has seen every target judged once
}

// setTargets gives the prober its targets.
func (n *Node) setTargets(ts []zones.Target) {
	n.prober.SetTargets(ts)
	n.assigned.Store(int64(len(ts)))
}

type nodeMetrics struct {
	reloads  *prometheus.CounterVec
	lastLoad prometheus.Gauge
}

// Load reads the zones and GeoIP database of cfg, compiles them once and
// runs the policy tests, exactly as serve and reload do: `meridian check`
// and `explain` call it.
func Load(cfg Config) (*zones.Base, error) {
	g := geo.Empty()
	if cfg.GeoIP != "" {
		var err error
		if g, err = geo.Open(cfg.GeoIP); err != nil {
			return nil, fmt.Errorf("load geoip: %w", err)
		}
	}
	zc, err := zones.LoadDir(cfg.Zones)
	if err != nil {
		return nil, err
	}
	b, err := zones.Build(zc, g)
	if err != nil {
		return nil, err
	}
	if err := b.Test(); err != nil {
		return nil, err
	}
	return b, nil
}

// New loads everything and binds the DNS listeners; Run serves.
func New(log *slog.Logger, cfg Config) (*Node, error) {
	start := time.Now()
	b, err := Load(cfg)
	if err != nil {
		return nil, err
	}
	zc, g := b.Config(), b.Geo()
	store, err := zones.NewStoreFrom(b)
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: log, store: store, reg: prometheus.NewRegistry(), healthKick: make(chan struct{}, 1), now: time.Now}
	n.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	n.metrics.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meridian_config_reloads_total",
		Help: "Configuration reloads, by result (ok, error).",
	}, []string{"result"})
	n.metrics.lastLoad = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "meridian_config_last_reload_success_timestamp_seconds",
		Help: "When a configuration was last loaded successfully.",
	})
	n.reg.MustRegister(n.metrics.reloads, n.metrics.lastLoad, snapshotCollector{store}, buildInfo(cmp.Or(cfg.Version, "dev")))
	n.metrics.lastLoad.SetToCurrentTime()
	n.seen, _ = n.fingerprint()
	n.newHealthMetrics()
	hash, err := zoneHash(cfg.Zones)
	if err != nil {
		return nil, err
	}
	n.hash.Store(&hash)
	if n.cluster, err = n.newCluster(cfg, hash); err != nil {
		return nil, err
	}
	if n.cluster != nil {
		// Warm start: the persisted overrides (and verdicts still fresh
		// enough to vote) apply before anything is served.
		n.published = zones.FoldHealth(zc, n.cluster.Verdicts())
		n.publishedOverrides = n.cluster.Overrides()
		store.SetHealthAndOverrides(n.published, n.publishedOverrides)
	}
	n.self = n.nodeName()
	n.local.kick, n.local.self = n.kickHealth, n.self
	if n.cluster == nil {
		n.joined.Store(true) // alone by configuration
	}
	n.loadShapes.Set(float64(b.Shapes()))
	n.setGeoBuild(b)
	store.OnPublish(n.observePublish)
	n.observePublish(zones.PublishInfo{Snapshot: store.Load()})
	// Probes start as soon as a config is loaded, not on the first query.
	// The prober only signals; folding and publishing happen on the node's
	// health goroutine, so probing never waits for a publish.
	popts := probes.Options{Log: log, OnChange: n.kickHealth}
	if n.cluster != nil {
		popts.UserAgent = "meridian-probe/1 (" + n.cluster.Name() + ")"
	}
	n.prober = probes.New(popts, n.reg)
	n.setTargets(n.assignTargets(zc))
	opts, err := n.dnsOptions(cfg.DNS)
	if err != nil {
		n.closeCluster()
		return nil, err
	}
	h := dnsserver.NewHandlerWith(log, store, dnsserver.NewMetrics(n.reg), opts)
	n.dns, err = dnsserver.NewServer(log, dnsserver.Config{
		Listen:               cfg.DNS.Listen,
		UDPWorkers:           cfg.DNS.UDPWorkers,
		MaxTCPConns:          cfg.DNS.MaxTCPConns,
		MaxTCPConnsPerClient: cfg.DNS.MaxTCPConnsPerClient,
		TCPIdleTimeout:       cfg.DNS.TCPIdleTimeout.Duration,
	}, h)
	if err != nil {
		n.closeCluster()
		return nil, err
	}
	if cfg.MetricsListen != "" {
		if n.metricsLn, err = net.Listen("tcp", cfg.MetricsListen); err != nil {
			n.closeCluster()
			return nil, fmt.Errorf("metrics listener: %w", err)
		}
	}
	if err := n.newAdmin(cfg.Admin); err != nil {
		n.closeCluster()
		if n.metricsLn != nil {
			n.metricsLn.Close()
		}
		return nil, err
	}
	n.healthMu.Lock()
	n.notice() // what is in force at start is not news
	n.healthMu.Unlock()
	info := g.Info()
	log.Info("node loaded", "zones", len(zc.Zones), "pool_shapes", b.Shapes(), "geoip", cfg.GeoIP, "geoip_type", info.DatabaseType, "geoip_networks", info.Networks, "took", time.Since(start).Round(time.Millisecond))
	return n, nil
}

func (n *Node) metricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(n.reg, promhttp.HandlerOpts{}))
	return mux
}

// MetricsAddr is the bound metrics address, or "" when metrics are off.
func (n *Node) MetricsAddr() string {
	if n.metricsLn == nil {
		return ""
	}
	return n.metricsLn.Addr().String()
}

// Store is the node's snapshot store.
func (n *Node) Store() *zones.Store { return n.store }

// Registry is the node's Prometheus registry.
func (n *Node) Registry() *prometheus.Registry { return n.reg }

// DNSAddrs are the bound DNS addresses.
func (n *Node) DNSAddrs() []netip.AddrPort { return n.dns.Addrs() }

// Run serves until ctx is done, watching the config files for changes.
func (n *Node) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	if n.cluster != nil {
		// Take the peers' state before the first probe round: a restarted
		// node answers from the cluster's view, not from cold start. The
		// DNS sockets are already bound, so queries wait in their buffers
		// for at most the join's bound (joinTimeout), then get answers.
		n.joinCluster(ctx)
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := n.cluster.Run(ctx); err != nil {
				n.log.Error("cluster", "err", err)
			}
		}()
		go func() {
			defer wg.Done()
			n.restateVerdicts(ctx)
		}()
	}
	wg.Add(3)
	go func() {
		defer wg.Done()
		n.prober.Run(ctx)
	}()
	go func() {
		defer wg.Done()
		n.runHealth(ctx)
	}()
	go func() {
		defer wg.Done()
		n.store.Run(ctx)
	}()
	if n.metricsLn != nil {
		srv := &http.Server{Handler: n.metricsHandler(), ReadHeaderTimeout: 5 * time.Second}
		wg.Add(2)
		go func() {
			defer wg.Done()
			srv.Serve(n.metricsLn)
		}()
		go func() {
			defer wg.Done()
			<-ctx.Done()
			srv.Close()
		}()
	}
	if n.admin != nil {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := n.admin.Serve(ctx, n.adminLn); err != nil {
				n.log.Error("admin API", "err", err)
			}
		}()
		go func() {
			defer wg.Done()
			n.notifier.Run(ctx, n.admin.Events())
		}()
	}
	defer n.local.stop()
	if n.cfg.WatchInterval.Duration > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.watch(ctx)
		}()
	}
	err := n.dns.Serve(ctx)
	wg.Wait()
	return err
}

// Reload loads the zones and GeoIP database again. On any error the
// running snapshot keeps serving and the error is returned (and logged).
func (n *Node) Reload() error {
	n.reloadMu.Lock()
	defer n.reloadMu.Unlock()
	fp, _ := n.fingerprint()
	err := n.reload()
	n.seen = fp // a bad file is reported once, not on every poll
	if err != nil {
		n.metrics.reloads.WithLabelValues("error").Inc()
		n.log.Error("reload rejected, still serving the previous config", "err", err)
		n.publishEvent(admin.Event{Type: admin.EventConfig, To: "rejected", Detail: err.Error()})
		return err
	}
	n.metrics.reloads.WithLabelValues("ok").Inc()
	n.metrics.lastLoad.SetToCurrentTime()
	n.publishEvent(admin.Event{Type: admin.EventConfig, To: "loaded", Detail: "config hash " + n.configHash()})
	n.reloadCookies()
	n.log.Info("reloaded", "zones", len(n.store.Load().Inputs.Config.Zones))
	return nil
}

// reload compiles the new config without holding any lock a health
// change needs, then swaps it in.
func (n *Node) reload() error {
	b, err := Load(n.cfg)
	if err != nil {
		return err
	}
	n.healthMu.Lock()
	// The new pools get the health folded from today's verdicts at once,
	// not a moment of all-healthy.
	h, _ := n.foldInputs(b.Config())
	err = n.store.SetBase(b, h)
	if err == nil {
		n.published = h
		n.loadShapes.Set(float64(b.Shapes()))
		n.setGeoBuild(b)
	}
	n.healthMu.Unlock()
	if err != nil {
		return err
	}
	if hash, err := zoneHash(n.cfg.Zones); err == nil {
		n.hash.Store(&hash)
		if n.cluster != nil {
			n.cluster.SetConfigHash(hash)
		}
	}
	n.healthMu.Lock()
	n.setTargets(n.assignTargets(b.Config()))
	n.healthMu.Unlock()
	n.kickHealth() // members may have come or gone
	return nil
}

func (n *Node) watch(ctx context.Context) {
	t := time.NewTicker(n.cfg.WatchInterval.Duration)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fp, err := n.fingerprint()
		if err != nil {
			continue
		}
		n.reloadMu.Lock()
		changed := fp != n.seen
		n.reloadMu.Unlock()
		if changed {
			n.log.Info("config files changed, reloading")
			n.Reload()
		}
	}
}

// fingerprint hashes the names, sizes and modification times of the zone
// files and the GeoIP database, to notice edits without an fsnotify
// dependency (editors that write a new file and rename it are seen too).
func (n *Node) fingerprint() (uint64, error) {
	h := fnv.New64a()
	files, err := filepath.Glob(filepath.Join(n.cfg.Zones, "*.toml"))
	if err != nil {
		return 0, err
	}
	if n.cfg.GeoIP != "" {
		files = append(files, n.cfg.GeoIP)
	}
	if n.cfg.DNS.Cookies.SecretFile != "" {
		files = append(files, n.cfg.DNS.Cookies.SecretFile) // rotated by editing it
	}
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return 0, err
		}
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00", f, st.Size(), st.ModTime().UnixNano())
	}
	return h.Sum64(), nil
}
