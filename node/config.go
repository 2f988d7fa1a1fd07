package node

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/meridian-gtm/meridian/admin"
	"github.com/meridian-gtm/meridian/dnsserver"
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
	// Cluster, when its Listen is set, makes this node one of a gossip
	// cluster; without it the node runs alone.
	Cluster ClusterConfig `toml:"cluster"`
	// Admin, when its Listen is set, serves the admin HTTP API (status,
	// overrides, explain, reload, audit, events, metrics).
	Admin admin.Config `toml:"admin"`
	// Notify are webhooks that get verdict flips, overrides, expiries,
	// isolation and self-distrust as signed JSON (needs the admin API,
	// whose events they carry).
	Notify []admin.HookConfig `toml:"notify"`

	// Version is the build's version, announced to the cluster; set by
	// the binary, not the file.
	Version string `toml:"-"`
}

// ClusterConfig is the [cluster] part of Config: how this node gossips
// with the others (see package gossip).
type ClusterConfig struct {
	Name      string   `toml:"name"`      // unique node name; default: the host name
	Region    string   `toml:"region"`    // this node's region, shown to the others
	Listen    string   `toml:"listen"`    // gossip address:port, UDP and TCP, e.g. "192.0.2.53:7946"
	Advertise string   `toml:"advertise"` // address:port the others reach us at; default: Listen
	Seeds     []string `toml:"seeds"`     // address:port of nodes to join (may include this one)
	Profile   string   `toml:"profile"`   // "lan" (default) or "wan": memberlist timing
	// KeyFile holds the gossip keys, base64, one per line ('#' comments);
	// the first encrypts, all decrypt (for rotation). Required unless
	// InsecureNoEncryption is set.
	KeyFile string `toml:"key_file"`
	Label   string `toml:"label"` // cluster label: packets of another label are dropped
	// StateDir keeps overrides and the last verdicts across restarts.
	StateDir string `toml:"state_dir"`
	// InsecureNoEncryption allows a cluster without keys: development only.
	InsecureNoEncryption bool `toml:"insecure_no_encryption"`
	// QuorumShare is the share of fresh live observers that must say a
	// target is down; 0 means a majority.
	QuorumShare float64 `toml:"quorum_share"`
	// MaxAge is how old an observation may be and still vote (default 30s).
	MaxAge Duration `toml:"max_age"`
}

// Enabled reports whether the node is one of a cluster.
func (c ClusterConfig) Enabled() bool { return c.Listen != "" }

// DNSConfig is the DNS listener part of Config.
type DNSConfig struct {
	// Listen is the address:port pairs to serve on, UDP and TCP. A
	// wildcard ("0.0.0.0:53", "[::]:53") serves every address of the host,
	// also those it gains later (a pod's IP, unknown when the config is
	// written); each UDP reply still leaves from the address its query was
	// sent to. Wildcards work on Linux only (see dnsserver.Config.Listen
	// for how "[::]:53" shares IPv4).
	Listen         []string `toml:"listen"`
	UDPWorkers     int      `toml:"udp_workers"`
	MaxTCPConns    int      `toml:"max_tcp_conns"`
	TCPIdleTimeout Duration `toml:"tcp_idle_timeout"`
	// MaxTCPConnsPerClient bounds the TCP connections of one client
	// address (an IPv6 /64); default 8, negative for no bound.
	MaxTCPConnsPerClient int `toml:"max_tcp_conns_per_client"`
	// NSID is returned to queries that ask for it (RFC 5001). Unset: the
	// host name; "": none.
	NSID *string `toml:"nsid"`
	// Cookies: DNS cookies (RFC 7873, RFC 9018 server cookies).
	Cookies CookieConfig `toml:"cookies"`
	// RRL: response rate limiting, off until responses_per_second is set.
	RRL dnsserver.RRLConfig `toml:"rrl"`
}

// CookieConfig is [dns.cookies]. Cookies are on when SecretFile is set.
type CookieConfig struct {
	// SecretFile holds the server cookie secrets, hex, 16 bytes each, one
	// per line; the first makes cookies, all are accepted (rotation). Every
	// node behind one name must share it. It is read again on reload.
	SecretFile string `toml:"secret_file"`
	// Require answers UDP queries only with a valid server cookie: others
	// get BADCOOKIE (or TC=1 without any cookie). Off by default.
	Require bool `toml:"require"`
}

// maxNSID bounds the NSID: it rides in every answer that asks for it.
const maxNSID = 128

// nsid is the NSID to send: the configured one, else the host name.
func (c DNSConfig) nsid() []byte {
	if c.NSID != nil {
		return []byte(*c.NSID)
	}
	h, err := os.Hostname()
	if err != nil {
		return nil
	}
	return []byte(h)
}

func (c DNSConfig) validate() error {
	if c.NSID != nil && len(*c.NSID) > maxNSID {
		return fmt.Errorf("dns.nsid: at most %d bytes: %w", maxNSID, zones.ErrInvalid)
	}
	if err := c.RRL.Validate(); err != nil {
		return fmt.Errorf("[dns] %w: %w", err, zones.ErrInvalid)
	}
	if c.Cookies.Require && c.Cookies.SecretFile == "" {
		return fmt.Errorf("dns.cookies.require needs dns.cookies.secret_file: %w", zones.ErrInvalid)
	}
	if c.Cookies.SecretFile != "" {
		if _, err := dnsserver.LoadCookieSecrets(c.Cookies.SecretFile); err != nil && !errors.Is(err, dnsserver.ErrCookieFileMode) {
			return fmt.Errorf("dns.cookies.secret_file: %w: %w", err, zones.ErrInvalid)
		}
	}
	return nil
}

// Duration is a time.Duration written as "10s" in TOML.
type Duration = zones.Duration

// DefaultConfig returns the defaults every field starts from.
func DefaultConfig() Config {
	return Config{
		DNS: DNSConfig{
			Listen:         []string{"127.0.0.1:53", "[::1]:53"},
			TCPIdleTimeout: Duration{Duration: 10 * time.Second},
			RRL:            dnsserver.DefaultRRLConfig(),
		},
		Zones:         "zones",
		LogLevel:      "info",
		WatchInterval: Duration{Duration: 2 * time.Second},
	}
}

// LoadConfig reads a node config file. Relative paths in it are relative
// to the file's directory. Each dns.listen entry must be an IP address
// and port (a wildcard IP too); a host name is refused.
func LoadConfig(file string) (Config, error) {
	cfg := DefaultConfig()
	if err := zones.DecodeFile(file, &cfg); err != nil {
		return Config{}, err
	}
	dir := filepath.Dir(file)
	cfg.Zones = resolve(dir, cfg.Zones)
	cfg.GeoIP = resolve(dir, cfg.GeoIP)
	cfg.Cluster.KeyFile = resolve(dir, cfg.Cluster.KeyFile)
	cfg.Cluster.StateDir = resolve(dir, cfg.Cluster.StateDir)
	cfg.DNS.Cookies.SecretFile = resolve(dir, cfg.DNS.Cookies.SecretFile)
	if err := cfg.DNS.validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", file, err)
	}
	for _, p := range []*string{&cfg.Admin.AuditFile, &cfg.Admin.TLSCert, &cfg.Admin.TLSKey, &cfg.Admin.TLSClientCA} {
		*p = resolve(dir, *p)
	}
	for i := range cfg.Notify {
		cfg.Notify[i].SecretFile = resolve(dir, cfg.Notify[i].SecretFile)
		if err := cfg.Notify[i].Validate(); err != nil {
			return Config{}, fmt.Errorf("%s: notify[%d]: %w: %w", file, i, err, zones.ErrInvalid)
		}
	}
	if len(cfg.Notify) > 0 && cfg.Admin.Listen == "" {
		return Config{}, fmt.Errorf("%s: notify needs the admin API, whose events it sends: set admin.listen: %w", file, zones.ErrInvalid)
	}
	if cfg.Admin.Listen != "" {
		if err := cfg.Admin.Validate(); err != nil {
			return Config{}, fmt.Errorf("%s: %w: %w", file, err, zones.ErrInvalid)
		}
	}
	if err := cfg.Cluster.validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", file, err)
	}
	if _, err := cfg.Level(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", file, err)
	}
	if len(cfg.DNS.Listen) == 0 {
		return Config{}, fmt.Errorf("%s: dns.listen is empty: %w", file, zones.ErrInvalid)
	}
	for _, a := range cfg.DNS.Listen {
		if _, err := netip.ParseAddrPort(a); err != nil {
			return Config{}, fmt.Errorf("%s: dns.listen %q is not an IP address:port (e.g. \"192.0.2.53:53\", \"[2001:db8::53]:53\", \"0.0.0.0:53\" for every address): %w", file, a, zones.ErrInvalid)
		}
	}
	return cfg, nil
}

func (c ClusterConfig) validate() error {
	if !c.Enabled() {
		if c.Name != "" || len(c.Seeds) > 0 || c.KeyFile != "" {
			return fmt.Errorf("cluster.listen is not set, so the other cluster settings do nothing: set it (e.g. \"192.0.2.53:7946\") or remove them: %w", zones.ErrInvalid)
		}
		return nil
	}
	for key, a := range map[string]string{"listen": c.Listen, "advertise": c.Advertise} {
		if a == "" {
			continue
		}
		if _, err := netip.ParseAddrPort(a); err != nil {
			return fmt.Errorf("cluster.%s %q is not an address:port (e.g. \"192.0.2.53:7946\"): %w", key, a, zones.ErrInvalid)
		}
	}
	for _, s := range c.Seeds {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return fmt.Errorf("cluster.seeds: %q is not host:port: %w", s, zones.ErrInvalid)
		}
	}
	switch c.Profile {
	case "", "lan", "wan":
	default:
		return fmt.Errorf("cluster.profile %q is not lan or wan: %w", c.Profile, zones.ErrInvalid)
	}
	if c.KeyFile == "" && !c.InsecureNoEncryption {
		return fmt.Errorf("cluster.key_file is not set: gossip must be encrypted (generate a key with: head -c 32 /dev/urandom | base64), or set insecure_no_encryption = true for development: %w", zones.ErrInvalid)
	}
	if c.QuorumShare < 0 || c.QuorumShare > 1 {
		return fmt.Errorf("cluster.quorum_share %v is not between 0 and 1: %w", c.QuorumShare, zones.ErrInvalid)
	}
	return nil
}

// readKeys reads a key file: base64 keys, one per line, '#' comments.
func readKeys(file string) ([][]byte, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read cluster keys: %w", err)
	}
	var keys [][]byte
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := base64.StdEncoding.DecodeString(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: not a base64 key: %w", file, i+1, zones.ErrInvalid)
		}
		switch len(k) {
		case 16, 24, 32:
		default:
			return nil, fmt.Errorf("%s:%d: a key is 16, 24 or 32 bytes (AES-128/192/256), not %d: %w", file, i+1, len(k), zones.ErrInvalid)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: no key in the file: %w", file, zones.ErrInvalid)
	}
	return keys, nil
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
