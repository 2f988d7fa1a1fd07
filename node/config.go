package node

import (
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/meridian-gtm/meridian/zones"
)

// Config is a node's own configuration (not its zones).
type Config struct {
	DNS DNSConfig `toml:"dns"`
	// Zones is the directory of zone-policy files (*.toml).
	Zones string `toml:"zones"`
	// GeoIP is a MaxMind-format database (GeoIP2/GeoLite2/DB-IP, City or
	// Country). Empty: no database, every client gets its pool's order.
	GeoIP string `toml:"geoip"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `toml:"log_level"`
	// MetricsListen, when set, serves Prometheus metrics at /metrics on
	// this address (e.g. "127.0.0.1:9153").
	MetricsListen string `toml:"metrics_listen"`
	// WatchInterval is how often the zone directory and GeoIP file are
	// checked for changes; "0s" turns watching off (SIGHUP still reloads).
	WatchInterval Duration `toml:"watch_interval"`
}

// DNSConfig is the DNS listener part of Config.
type DNSConfig struct {
	Listen         []string `toml:"listen"`
	UDPWorkers     int      `toml:"udp_workers"`
	MaxTCPConns    int      `toml:"max_tcp_conns"`
	TCPIdleTimeout Duration `toml:"tcp_idle_timeout"`
}

// Duration is a time.Duration written as "10s" in TOML.
type Duration = zones.Duration

// DefaultConfig returns the defaults every field starts from.
func DefaultConfig() Config {
	return Config{
		DNS: DNSConfig{
			Listen:         []string{"127.0.0.1:53", "[::1]:53"},
			TCPIdleTimeout: Duration{Duration: 10 * time.Second},
		},
		Zones:         "zones",
		LogLevel:      "info",
		WatchInterval: Duration{Duration: 2 * time.Second},
	}
}

// LoadConfig reads a node config file. Relative paths in it are relative
// to the file's directory.
func LoadConfig(file string) (Config, error) {
	cfg := DefaultConfig()
	if err := zones.DecodeFile(file, &cfg); err != nil {
		return Config{}, err
	}
	dir := filepath.Dir(file)
	cfg.Zones = resolve(dir, cfg.Zones)
	cfg.GeoIP = resolve(dir, cfg.GeoIP)
	if _, err := cfg.Level(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", file, err)
	}
	if len(cfg.DNS.Listen) == 0 {
		return Config{}, fmt.Errorf("%s: dns.listen is empty: %w", file, zones.ErrInvalid)
	}
	for _, a := range cfg.DNS.Listen {
		ap, err := netip.ParseAddrPort(a)
		switch {
		case err != nil:
			return Config{}, fmt.Errorf("%s: dns.listen %q is not an address:port (e.g. \"192.0.2.53:53\", \"[2001:db8::53]:53\"): %w", file, a, zones.ErrInvalid)
		case ap.Addr().IsUnspecified():
			return Config{}, fmt.Errorf("%s: dns.listen %q: list each address to serve on, not a wildcard (replies must leave from the address asked): %w", file, a, zones.ErrInvalid)
		}
	}
	return cfg, nil
}

func resolve(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// Level is the slog level of LogLevel.
func (c Config) Level() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToLower(c.LogLevel))); err != nil {
		return 0, fmt.Errorf("log_level %q is not debug, info, warn or error: %w", c.LogLevel, zones.ErrInvalid)
	}
	return l, nil
}
