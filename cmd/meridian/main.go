// Command meridian is the Meridian GeoDNS server and its operator tool.
//
//	meridian serve   -config node.toml
//	meridian check   -config node.toml
//	meridian explain -config node.toml -client 198.51.100.7 www.gslb.example.com [A]
//	meridian version
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
		err = explain(args[1:], stdout)
	case "version":
		fmt.Fprintln(stdout, versionString())
	case "help", "-h", "--help":
		usage(stdout)
	default:
		fmt.Fprintf(stderr, "meridian: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 2
		}
		fmt.Fprintf(stderr, "meridian %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: meridian <command> [flags]

commands:
  serve     run a node:                 meridian serve -config node.toml
  check     validate config and run its policy tests:
                                        meridian check -config node.toml
  explain   show how a client is answered and why:
                                        meridian explain -config node.toml -client 198.51.100.7 www.gslb.example.com A
  version   print the version
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

func explain(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	client := fs.String("client", "", "client address or ECS prefix, e.g. 198.51.100.7 or 198.51.100.0/24")
	probe := fs.Bool("probe", false, "probe every endpoint once from this machine and use what it sees as region health")
	path := fs.String("config", defaultConfig, "node config file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) < 1 || len(rest) > 2 || *client == "" {
		return fmt.Errorf("usage: meridian explain -config node.toml -client <addr or prefix> <name> [type]")
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
