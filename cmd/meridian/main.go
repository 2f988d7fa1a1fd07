// Command meridian is the Meridian GeoDNS server and its operator tool.
//
//	meridian serve   -config node.toml
//	meridian check   -config node.toml
//	meridian explain -config node.toml -client 198.51.100.7 www.gslb.example.com [A]
//	meridian version
//
// The operator commands call a running node's admin API (package admin):
//
//	meridian token     -role read|operate [-id NAME]
//	meridian status
//	meridian overrides
//	meridian failover  -pool P -to REGION -reason WHY [-expires 90m] [-force] [-dry-run]
//	meridian drain     -region R [-pool P] -reason WHY [-expires 90m] [-force] [-dry-run]
//	meridian undrain   -region R [-pool P] [-reason WHY]
//	meridian clear     [-reason WHY] ID
//	meridian reload    [-reason WHY]
//	meridian audit     [-since 2025-01-02T15:04:05Z|24h] [-limit N]
//	meridian explain   -live -client 198.51.100.7 www.gslb.example.com [A]
//
// They find the API at -admin (default $MERIDIAN_ADMIN, else
// 127.0.0.1:8053), trust -ca (default $MERIDIAN_CA) for https, and send
// the bearer token from $MERIDIAN_TOKEN or -token-file, never from a
// flag: flags show in ps. -json prints the API's JSON. An API error exits
// 1, a usage error 2.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/meridian-gtm/meridian/admin"
	"github.com/meridian-gtm/meridian/node"
	"github.com/meridian-gtm/meridian/zones"
	"github.com/miekg/dns"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const defaultConfig = "/etc/meridian/node.toml"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(args[1:], stderr)
	case "check":
		err = check(args[1:], stdout)
	case "explain":
		err = explain(args[1:], stdout, stderr)
	case "token":
		err = tokenCmd(args[1:], stdout, stderr)
	case "status":
		err = statusCmd(args[1:], stdout, stderr)
	case "overrides":
		err = overridesCmd(args[1:], stdout, stderr)
	case "failover":
		err = failoverCmd(args[1:], stdout, stderr)
	case "drain":
		err = drainCmd(args[1:], stdout, stderr)
	case "undrain":
		err = undrainCmd(args[1:], stdout, stderr)
	case "clear":
		err = clearCmd(args[1:], stdout, stderr)
	case "reload":
		err = reloadCmd(args[1:], stdout, stderr)
	case "audit":
		err = auditCmd(args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, versionString())
	case "help", "-h", "--help":
		usage(stdout)
	default:
		fmt.Fprintf(stderr, "meridian: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	var ae *admin.Error
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp), errors.Is(err, errFlags):
		return 2
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "meridian %s: %v\n(meridian %s -h lists its flags)\n", args[0], err, args[0])
		return 2
	case errors.As(err, &ae):
		fmt.Fprintf(stderr, "meridian: %v (HTTP %d)\n", ae, ae.Status)
		if hint := apiHint(args[0], ae); hint != "" {
			fmt.Fprintf(stderr, "meridian: %s\n", hint)
		}
		return 1
	}
	fmt.Fprintf(stderr, "meridian %s: %v\n", args[0], err)
	return 1
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: meridian <command> [flags]

commands:
  serve     run a node:                 meridian serve -config node.toml
  check     validate config and run its policy tests:
                                        meridian check -config node.toml
  explain   show how a client is answered and why:
                                        meridian explain -config node.toml -client 198.51.100.7 www.gslb.example.com A
            as the running node answers it now (admin API):
                                        meridian explain -live -client 198.51.100.7 www.gslb.example.com A
  version   print the version
  token     make an admin API token and its config block:
                                        meridian token -role operate [-id alice]

operator commands (a node's admin API):
  status     members, health per pool and observer, where each continent goes, overrides
  overrides  the overrides in force
  failover   pin a pool to a region:    meridian failover -pool www.gslb.example.com -to us-east -reason "DR test" [-expires 90m]
  drain      take a region out:         meridian drain -region eu-west [-pool P] -reason "maintenance" [-expires 2h]
  undrain    put it back:               meridian undrain -region eu-west [-pool P]
  clear      clear an override by ID:   meridian clear pin:www.gslb.example.com.
  reload     reload the node's config:  meridian reload -reason "new zone"
  audit      the audit log:             meridian audit [-since 24h] [-limit 50]

  failover and drain take -dry-run (show who would move, change nothing) and
  -force (pass the safety rails; say why in -reason).
  Flags of every operator command:
    -admin ADDR       host:port or http(s):// URL (default $MERIDIAN_ADMIN, else 127.0.0.1:8053)
    -ca FILE          PEM CA to trust for https (default $MERIDIAN_CA)
    -token-file FILE  the bearer token (default: $MERIDIAN_TOKEN; never a flag)
    -json             print the API's JSON
    -timeout 10s      give up after this long
`)
}

func versionString() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v = "dev-" + s.Value[:12]
			}
		}
	}
	return "meridian " + v
}

func loadConfig(fs *flag.FlagSet, args []string) (node.Config, error) {
	path := fs.String("config", defaultConfig, "node config file")
	if err := fs.Parse(args); err != nil {
		return node.Config{}, err
	}
	return node.LoadConfig(*path)
}

func serve(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile (go tool pprof) to this file until shutdown")
	cfg, err := loadConfig(fs, args)
	if err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	// With a single P, a UDP worker blocked in recvmmsg leaves no idle P, and
	// the runtime's monitor then takes the P back on every packet. A second
	// P (on however many CPUs) avoids that; see dnsserver.Config.UDPWorkers.
	if runtime.GOMAXPROCS(0) < 2 {
		runtime.GOMAXPROCS(2)
	}
	level, _ := cfg.Level()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg.Version = version
	n, err := node.New(log, cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				log.Info("SIGHUP: reloading")
				n.Reload() // logs its own outcome
			}
		}
	}()
	return n.Run(ctx)
}

func check(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	cfg, err := loadConfig(fs, args)
	if err != nil {
		return err
	}
	b, err := node.Load(cfg)
	if err != nil {
		return err
	}
	zc, g := b.Config(), b.Geo()
	tests := 0
	for _, z := range zc.Zones {
		tests += len(z.Tests)
		fmt.Fprintf(stdout, "ok  %s  (%s: %d records, %d pools, %d regions, %d policy tests)\n",
			z.Origin, z.File, len(z.Records), len(z.Pools), len(z.Regions), len(z.Tests))
	}
	info := g.Info()
	fmt.Fprintf(stdout, "geoip: %s (%s, %d networks); %d policy tests passed\n", orNone(cfg.GeoIP), info.DatabaseType, info.Networks, tests)
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func explain(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	client := fs.String("client", "", "client address or ECS prefix, e.g. 198.51.100.7 or 198.51.100.0/24")
	probe := fs.Bool("probe", false, "probe every endpoint once from this machine and use what it sees as region health")
	path := fs.String("config", defaultConfig, "node config file")
	live := fs.Bool("live", false, "ask the running node through its admin API (-admin) instead of loading -config: its answer and health now")
	cf := addClientFlags(fs)
	rest, err := parseArgs(fs, args, stderr)
	if err != nil {
		return err
	}
	if len(rest) < 1 || len(rest) > 2 || *client == "" {
		return fmt.Errorf("usage: meridian explain [-config node.toml | -live] -client <addr or prefix> <name> [type]")
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *live {
		if set["config"] || *probe {
			return usagef("-live asks the running node: -config and -probe are for an offline explain")
		}
		qtype := ""
		if len(rest) == 2 {
			qtype = rest[1]
		}
		return explainLive(cf, *client, rest[0], qtype, stdout)
	}
	for _, f := range []string{"admin", "ca", "token-file", "json", "timeout"} {
		if set[f] {
			return usagef("-%s is for -live", f)
		}
	}
	pfx, err := zones.ParseClient(*client)
	if err != nil {
		return err
	}
	qtype := dns.TypeA
	if len(rest) == 2 {
		t, ok := dns.StringToType[strings.ToUpper(rest[1])]
		if !ok {
			return fmt.Errorf("%q is not a DNS type", rest[1])
		}
		qtype = t
	}
	cfg, err := node.LoadConfig(*path)
	if err != nil {
		return err
	}
	b, err := node.Load(cfg)
	if err != nil {
		return err
	}
	zc := b.Config()
	var health zones.HealthView
	if *probe {
		health = node.ProbeOnce(context.Background(), zc)
		fmt.Fprintf(stdout, "health:    one probe of each of %d endpoints from this machine (no rise/fall)\n", len(zc.Targets()))
	} else {
		fmt.Fprintf(stdout, "health:    not probed: every region counts as up (-probe checks each endpoint once)\n")
	}
	snap := b.Snapshot(health, nil, rest[0])
	snap.Explain(pfx, rest[0], qtype).Format(stdout)
	return nil
}
