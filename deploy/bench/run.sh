#!/usr/bin/env bash
# deploy/bench/run.sh: dnsperf against Meridian and gdnsd side by side, on
# the same GeoIP database, the same zone, and the same queries
# (`make bench` runs it after the Go benchmarks).
#
# Both servers answer www.bench.example with the nearest of three regions,
# chosen per EDNS Client Subnet. gdnsd does it with its geoip plugin in
# auto_dc_coords mode. Each server runs pinned to CPU 0 and dnsperf to CPU 1,
# so the server's CPU time is all its own. What we measure is the server's
# CPU time (utime+stime from /proc/PID/stat) per answered query, at the same
# offered load, and q/s with unlimited load. Then, optionally, a perf profile
# and callgrind instruction counts per query.
#
# Everything runs on loopback. The ECS subnets are private/shared/ULA space
# and are never contacted. Every step has a time limit, and everything the
# script starts is stopped on exit.
#
# Knobs (environment):
#   BENCH_SECONDS=15        length of each measured dnsperf run
#   BENCH_QPS=20000         offered load of the rate-limited runs
#   BENCH_QUERIES=40000     queries in the dnsperf file (dnsperf loops over it)
#   BENCH_ROUNDS=1          repeat the measured runs (a row per run)
#   BENCH_PERF=1            perf profile of both servers (0 to skip)
#   BENCH_CALLGRIND=1       callgrind Ir per query (0 to skip; ~1 min)
#   BENCH_CALLGRIND_QUERIES=20000
#   BENCH_NICE=-19          priority of servers and dnsperf (see NICE below)
#   BENCH_HARDENED=1        also measure Meridian with rate limiting, DNS
#                           cookies and NSID on ("meridian+h"; 0 to skip): the
#                           same zone with [dns.rrl] at a rate dnsperf never
#                           reaches (every response accounted, none withheld)
#                           and [dns.cookies], dnsperf sending a client cookie
#   MERIDIAN_PORT=53531 GDNSD_PORT=53532
#
# Output: the table on stdout and in deploy/bench/out/results.txt (and a
# time-stamped copy); configs, logs and raw dnsperf output in
# deploy/bench/out/work/.
set -euo pipefail

SELF=$(realpath "$0")
cd "$(dirname "$SELF")/../.."
ROOT=$PWD

SECONDS_PER_RUN=${BENCH_SECONDS:-15}
QPS=${BENCH_QPS:-20000}
NQUERIES=${BENCH_QUERIES:-40000}
ROUNDS=${BENCH_ROUNDS:-1}
DO_PERF=${BENCH_PERF:-1}
DO_CALLGRIND=${BENCH_CALLGRIND:-1}
CG_QUERIES=${BENCH_CALLGRIND_QUERIES:-20000}
DO_HARDENED=${BENCH_HARDENED:-1}
MPORT=${MERIDIAN_PORT:-53531}
HPORT=${MERIDIAN_HARDENED_PORT:-53533}
GPORT=${GDNSD_PORT:-53532}

OUT=$ROOT/deploy/bench/out
WORK=$OUT/work
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS=$OUT/results-$STAMP.txt

SERVER_CPU=0 # the server under test
CLIENT_CPU=1 # dnsperf
# nice -19 (root only; otherwise nice warns and runs at normal priority):
# on a shared machine, the bench then gets its CPUs almost whole.
# BENCH_NICE= (empty) leaves priorities alone.
NICE=${BENCH_NICE--19}
SERVER_PREFIX=(taskset -c "$SERVER_CPU")
CLIENT_PREFIX=(taskset -c "$CLIENT_CPU")
if [ -n "$NICE" ]; then
	SERVER_PREFIX=(nice -n "$NICE" "${SERVER_PREFIX[@]}")
	CLIENT_PREFIX=(nice -n "$NICE" "${CLIENT_PREFIX[@]}")
fi
# dnsperf: 4 sockets, enough queries in flight to saturate one server core
# on loopback; -t 2 so that a lost query is counted quickly.
DNSPERF_OPTS=(-B -s 127.0.0.1 -c 4 -q 200 -t 2)

die() { echo "bench: $*" >&2; exit 1; }
say() { echo "bench: $*" >&2; }

# With autogroup scheduling (the default on most kernels), nice only
# ranks processes within one session: a test suite running in another
# session still gets half of each CPU, whatever our nice. So the bench
# re-runs itself in a session of its own and lowers that session's
# autogroup nice, which ranks it against the other sessions. The parent
# only waits and passes on Ctrl-C / TERM (the child's trap cleans up).
if [ -n "$NICE" ] && [ -z "${BENCH_IN_SESSION:-}" ] && [ "$(id -u)" = 0 ] &&
	[ "$(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null)" = 1 ] && command -v setsid >/dev/null; then
	BENCH_IN_SESSION=1 setsid "$SELF" "$@" &
	child=$!
	trap 'kill -TERM "$child" 2>/dev/null' INT TERM
	rc=0
	wait "$child" || rc=$?
	# A signal ends the first wait early: wait again for the clean-up.
	while kill -0 "$child" 2>/dev/null; do wait "$child" || rc=$?; done
	exit "$rc"
fi
if [ -n "${BENCH_IN_SESSION:-}" ]; then
	echo "$NICE" >/proc/self/autogroup 2>/dev/null || say "could not set the autogroup nice; other sessions will compete for the CPUs"
fi

# ---------------------------------------------------------------- cleanup
# Every process we start is recorded here and stopped on exit, by pid.
PIDS=()
cleanup() {
	local pid i
	for pid in "${PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	done
	PIDS=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# stop PID: end one server we started and wait (bounded) for it to exit, so
# that its port and gdnsd's run dir are free again and callgrind has
# written its profile.
stop() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 150; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	say "pid $pid ignored SIGTERM for 15s; killing it"
	kill -KILL "$pid" 2>/dev/null || true
}

# ------------------------------------------------------------- prerequisites
for tool in go dnsperf gdnsd dig taskset getconf; do
	command -v "$tool" >/dev/null || die "$tool not found (apt-get install dnsperf gdnsd bind9-dnsutils)"
done
[ "$(nproc)" -ge 2 ] || die "need 2 CPUs: the server on CPU $SERVER_CPU, dnsperf on CPU $CLIENT_CPU"
for port in "$MPORT" "$GPORT" "$HPORT"; do
	if [ -n "$(ss -Hln "sport = :$port" 2>/dev/null)" ]; then
		die "port $port is in use on this machine; set MERIDIAN_PORT / GDNSD_PORT"
	fi
done
CLK_TCK=$(getconf CLK_TCK)

rm -rf "$WORK"
mkdir -p "$WORK/meridian/zones" "$WORK/gdnsd/zones" "$WORK/meridian-h"

# Another build tree may be rebuilding bin/meridian under us; our own copy
# is stable for the whole run.
say "building meridian and the bench helper"
go build -o "$WORK/meridian-bin" ./cmd/meridian
go build -o "$WORK/gen" ./deploy/bench/gen
MERIDIAN=$WORK/meridian-bin
GEN=$WORK/gen

# ------------------------------------------------------- database, queries
DB=$WORK/bench-city.mmdb
"$GEN" geodb -out "$DB" -csv "$WORK/bench-city.csv" | tee "$WORK/gen.txt"
# Query file in dnsperf's binary (-B) format: dnsperf's text format can only
# attach one fixed EDNS option to every query (-E), but we need thousands of
# distinct client subnets. With -B, each query is a complete wire message
# that dnsperf sends as is (rewriting only the ID), so each carries its own
# ECS option.
"$GEN" queries -out "$WORK/queries.bin" -n "$NQUERIES" -name www.bench.example. | tee -a "$WORK/gen.txt"
# Callgrind gets a fixed number of queries (dnsperf -n 1 = one pass).
"$GEN" queries -out "$WORK/queries-cg.bin" -n "$CG_QUERIES" -name www.bench.example. >/dev/null

# ---------------------------------------------------------- meridian config
# The regions, coordinates and addresses must match deploy/bench/gen (its
# verify step checks answers against them) and the gdnsd config below.
cat >"$WORK/meridian/node.toml" <<EOF
zones = "zones"
geoip = "../bench-city.mmdb"
log_level = "warn"
watch_interval = "0s"

[dns]
listen = ["127.0.0.1:$MPORT"]
# udp_workers defaults to GOMAXPROCS, which is 1 under taskset -c $SERVER_CPU.
EOF
cat >"$WORK/meridian/zones/bench.example.toml" <<'EOF'
zone = "bench.example"
ttl = 300
ns = ["ns1", "ns2"]

[soa]
rname = "hostmaster@bench.example"
serial = 1
minimum = 60

[regions.us-east]
lat = 38.95
lon = -77.45
[regions.eu-west]
lat = 50.11
lon = 8.68
[regions.ap-southeast]
lat = 1.35
lon = 103.82

[records.ns1]
A = ["192.0.2.53"]
[records.ns2]
A = ["198.51.100.53"]

[pools.www]
policy = "nearest"
ttl = 30
order = ["us-east", "eu-west", "ap-southeast"]   # same as gdnsd's datacenters
[pools.www.members.us-east]
addresses = ["192.0.2.10", "2001:db8:1::10"]
[pools.www.members.eu-west]
addresses = ["198.51.100.10", "2001:db8:2::10"]
[pools.www.members.ap-southeast]
addresses = ["203.0.113.10", "2001:db8:3::10"]

[[test]]
client = "10.255.1.0/24"   # not in the bench database: the pool's order
name = "www"
region = "us-east"
EOF
"$MERIDIAN" check -config "$WORK/meridian/node.toml" >"$WORK/meridian-check.txt" 2>&1 ||
	{ cat "$WORK/meridian-check.txt" >&2; die "meridian check failed"; }
# The hardened twin: the same zone and database, rate limiting and cookies on.
head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/meridian-h/cookie.secret"
echo >>"$WORK/meridian-h/cookie.secret"
chmod 600 "$WORK/meridian-h/cookie.secret"
cat >"$WORK/meridian-h/node.toml" <<EOF
zones = "../meridian/zones"
geoip = "../bench-city.mmdb"
log_level = "warn"
watch_interval = "0s"

[dns]
listen = ["127.0.0.1:$HPORT"]
nsid = "bench"

[dns.rrl]
responses_per_second = 1000000

[dns.cookies]
secret_file = "cookie.secret"
EOF
"$MERIDIAN" check -config "$WORK/meridian-h/node.toml" >"$WORK/meridian-h-check.txt" 2>&1 ||
	{ cat "$WORK/meridian-h-check.txt" >&2; die "meridian check (hardened) failed"; }

# ------------------------------------------------------------- gdnsd config
# One UDP thread, as Meridian gets one UDP worker on its one CPU; health
# checks off ("up"), so nothing but DNS runs. run_dir and state_dir are
# private, so this needs no /run/gdnsd and can coexist with a system gdnsd.
cat >"$WORK/gdnsd/config" <<EOF
options => {
  listen => [ 127.0.0.1:$GPORT ]
  run_dir => "$WORK/gdnsd/run"
  state_dir => "$WORK/gdnsd/state"
  udp_threads => 1
  tcp_threads => 1
}
plugins => {
  geoip => {
    maps => {
      bench => {
        geoip2_db => "$DB"
        # Fallback order for clients the database does not place.
        datacenters => [ us-east, eu-west, ap-southeast ]
        auto_dc_coords => {
          us-east => [ 38.95, -77.45 ]
          eu-west => [ 50.11, 8.68 ]
          ap-southeast => [ 1.35, 103.82 ]
        }
      }
    }
    resources => {
      www => {
        map => bench
        service_types => up
        dcmap => {
          us-east => { addrs_v4 => 192.0.2.10, addrs_v6 => "2001:db8:1::10" }
          eu-west => { addrs_v4 => 198.51.100.10, addrs_v6 => "2001:db8:2::10" }
          ap-southeast => { addrs_v4 => 203.0.113.10, addrs_v6 => "2001:db8:3::10" }
        }
      }
    }
  }
}
EOF
cat >"$WORK/gdnsd/zones/bench.example" <<'EOF'
$TTL 300
@	60 SOA ns1 hostmaster ( 1 7200 1800 259200 60 )
@	NS ns1
@	NS ns2
ns1	A 192.0.2.53
ns2	A 198.51.100.53
www	30 DYNA geoip!www
EOF
gdnsd -c "$WORK/gdnsd" checkconf >"$WORK/gdnsd-checkconf.txt" 2>&1 ||
	{ cat "$WORK/gdnsd-checkconf.txt" >&2; die "gdnsd checkconf failed"; }

# ------------------------------------------------------------ start / ready
# start NAME PORT LOG CMD...: starts CMD (nice, taskset, env and valgrind
# all exec in place, so $! is the server's own pid: what /proc, perf and callgrind_control need), waits up
# to 120s (callgrind starts slowly) for an answer; sets STARTED_PID.
start() {
	local name=$1 port=$2 log=$3 i
	shift 3
	"$@" >"$log" 2>&1 &
	STARTED_PID=$!
	PIDS+=("$STARTED_PID")
	for ((i = 0; i < 240; i++)); do
		if ! kill -0 "$STARTED_PID" 2>/dev/null; then
			tail -20 "$log" >&2
			die "$name exited during start-up (log: $log)"
		fi
		if dig +tries=1 +time=1 +norec @127.0.0.1 -p "$port" www.bench.example A 2>/dev/null | grep -q 'status: NOERROR'; then
			return 0
		fi
		sleep 0.5
	done
	tail -20 "$log" >&2
	die "$name did not answer on 127.0.0.1:$port within 120s (log: $log)"
}

start_meridian() { # [wrapper...]
	start meridian "$MPORT" "$WORK/meridian.log" "${SERVER_PREFIX[@]}" "$@" "$MERIDIAN" serve -config "$WORK/meridian/node.toml"
}
start_meridian_h() { # [wrapper...]
	start meridian+h "$HPORT" "$WORK/meridian-h.log" "${SERVER_PREFIX[@]}" "$@" "$MERIDIAN" serve -config "$WORK/meridian-h/node.toml"
}
# gdnsd 3.x "start" runs in the foreground (there is no -f). A fresh run
# dir each time: a killed instance would leave its lock behind.
start_gdnsd() { # [wrapper...]
	rm -rf "$WORK/gdnsd/run"
	start gdnsd "$GPORT" "$WORK/gdnsd.log" "${SERVER_PREFIX[@]}" "$@" gdnsd -c "$WORK/gdnsd" start
}

# cpu_ticks PID: utime+stime of the whole process (all threads), in ticks.
# Fields counted after the ")" that closes the command name.
cpu_ticks() {
	local stat
	stat=$(cat "/proc/$1/stat") || die "process $1 is gone"
	stat=${stat##*) }
	awk '{ print $12, $13 }' <<<"$stat"
}

# run_bg LIMIT OUT CMD...: runs CMD in the background with output to OUT
# and waits for it at most LIMIT seconds. In the background, because bash
# runs a trap only after a foreground command ends: this way Ctrl-C stops
# the bench at once. Sets BG_TICKS to CMD's own utime+stime, sampled every
# 0.1s until it exits (CMD must exec in place, as nice and taskset do; the
# last 0.1s of a run, dnsperf collecting late answers, may be missed).
run_bg() {
	local limit=$1 out=$2 pid state ticks last=0 deadline rc=0
	shift 2
	"$@" >"$out" 2>&1 &
	pid=$!
	PIDS+=("$pid")
	deadline=$((SECONDS + limit))
	while read -r state ticks < <(awk '{ sub(/.*\) /, ""); print $1, $12 + $13 }' "/proc/$pid/stat" 2>/dev/null); do
		last=$ticks
		[ "$state" != Z ] || break
		if [ "$SECONDS" -ge "$deadline" ]; then
			kill -TERM "$pid" 2>/dev/null || true
			say "$* ran for more than ${limit}s; stopped it"
			break
		fi
		sleep 0.1
	done
	BG_TICKS=$last
	wait "$pid" || rc=$?
	return "$rc"
}

# ------------------------------------------------------------------- verify
say "starting meridian (127.0.0.1:$MPORT) and gdnsd (127.0.0.1:$GPORT) on CPU $SERVER_CPU"
start_meridian
MPID=$STARTED_PID
if [ "$DO_HARDENED" = 1 ]; then
	start_meridian_h
	HPID=$STARTED_PID
fi
start_gdnsd
GPID=$STARTED_PID

# ask SERVER PORT SUBNET TYPE: one line, what the server answers and the
# ECS option (source/scope) it returns.
ask() {
	printf '%-9s %-22s %-4s -> %s\n' "$1" "$3" "$4" \
		"$(dig +norec +tries=1 +time=2 @127.0.0.1 -p "$2" www.bench.example "$4" +subnet="$3" |
			awk '/CLIENT-SUBNET/{ecs=$3} /^www\.bench\.example\..*IN/{ans=$5} END{print ans "  ECS " ecs}')"
}
# One subnet per region from the generated database, plus an unplaced one.
first_net() { awk -F, -v c="$1" -v fam="$2" '$3==c && ($1 ~ /:/) == (fam == 6) {print $1; exit}' "$WORK/bench-city.csv"; }
{
	echo "== sanity: the same subnets through both servers (dig +subnet)"
	for q in "10.255.7.0/24 A" "$(first_net DE 4) A" "$(first_net ID 4) AAAA" "$(first_net US 6) AAAA" "$(first_net JP 6) A"; do
		read -r subnet qtype <<<"$q"
		ask meridian "$MPORT" "$subnet" "$qtype"
		ask gdnsd "$GPORT" "$subnet" "$qtype"
	done
} | tee "$WORK/sanity.txt"

# Both must steer by ECS, or the comparison is meaningless: fail loudly.
"$GEN" verify -server "127.0.0.1:$MPORT" -name www.bench.example. | tee "$WORK/verify.txt" ||
	die "meridian does not geo-steer by ECS; see above"
"$GEN" verify -server "127.0.0.1:$GPORT" -name www.bench.example. | tee -a "$WORK/verify.txt" ||
	die "gdnsd does not geo-steer by ECS; see above"

# ------------------------------------------------------------------ measure
# cpu_busy N: ticks CPU N spent not idle (user nice system irq softirq
# steal), from /proc/stat.
cpu_busy() {
	awk -v c="cpu$1" '$1==c { print $2+$3+$4+$7+$8+$9 }' /proc/stat
}

# measure SERVER PID PORT LOAD: one dnsperf run of SECONDS_PER_RUN against
# the server, LOAD q/s offered or "max". Appends a row to ROWS and adds the
# server's CPU ticks and answered queries to TICKS/ANSWERED[SERVER/LOAD].
#
# The "others" column is how much of the server's CPU something else used
# during the run (CPU busy minus the server's own time). This machine may be
# shared (tests running beside us): nice -19 keeps the bench ahead of them,
# and the column says how quiet the CPU was. Loopback softirq work lands on
# whichever CPU sends, so the split between server and client is not exact;
# it is the same for both servers.
ROWS=()
declare -A TICKS ANSWERED
measure() {
	local server=$1 pid=$2 port=$3 load=$4 f rate=() runtime sent answered lost qps
	local u0 s0 u1 s1 b0 b1 t0 real ctime ticks usr sys
	f=$WORK/dnsperf-$server-$load-$RUN.txt
	[ "$load" = max ] || rate=(-Q "$load")
	read -r u0 s0 < <(cpu_ticks "$pid")
	b0=$(cpu_busy "$SERVER_CPU")
	# dnsperf's own CPU use: near 100% in the max runs means the client,
	# not the server, is the limit.
	t0=$EPOCHREALTIME
	local extra=()
	[ "$server" = meridian+h ] && extra=(-E 10:0123456789abcdef) # a client cookie in every query
	run_bg $((SECONDS_PER_RUN + 30)) "$f" "${CLIENT_PREFIX[@]}" \
		dnsperf "${DNSPERF_OPTS[@]}" "${extra[@]}" -d "$WORK/queries.bin" -p "$port" -l "$SECONDS_PER_RUN" "${rate[@]}" ||
		{ cat "$f" >&2; die "dnsperf against $server failed"; }
	real=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{print b - a}')
	ctime=$(awk -v t="$BG_TICKS" -v hz="$CLK_TCK" 'BEGIN{print t / hz}')
	read -r u1 s1 < <(cpu_ticks "$pid")
	b1=$(cpu_busy "$SERVER_CPU")
	[ -n "$u0" ] && [ -n "$u1" ] || die "$server (pid $pid) is gone"
	sent=$(awk '/Queries sent:/{print $3}' "$f")
	answered=$(awk '/Queries completed:/{print $3}' "$f")
	lost=$(awk '/Queries lost:/{print $3}' "$f")
	runtime=$(awk '/Run time \(s\):/{print $4}' "$f")
	qps=$(awk '/Queries per second:/{printf "%.0f", $4}' "$f")
	[ -n "$answered" ] && [ "$answered" -gt 0 ] || { cat "$f" >&2; die "no answers from $server"; }
	ticks=$((u1 - u0 + s1 - s0))
	TICKS[$server/$load]=$((${TICKS[$server/$load]:-0} + ticks))
	ANSWERED[$server/$load]=$((${ANSWERED[$server/$load]:-0} + answered))
	usr=$(awk -v t="$((u1 - u0))" -v hz="$CLK_TCK" -v n="$answered" 'BEGIN{printf "%.2f", t/hz*1e6/n}')
	sys=$(awk -v t="$((s1 - s0))" -v hz="$CLK_TCK" -v n="$answered" 'BEGIN{printf "%.2f", t/hz*1e6/n}')
	ROWS+=("$(awk -v server="$server" -v load="$load" -v sent="$sent" -v rt="$runtime" -v qps="$qps" -v lost="$lost" \
		-v usr="$usr" -v sys="$sys" -v t="$ticks" -v b="$((b1 - b0))" -v hz="$CLK_TCK" -v real="$real" -v ct="$ctime" \
		'BEGIN{ others = (b-t)/hz/real*100; client = ct/real*100
			printf "%-9s %6s %8.0f %8d %6d %8.2f %6.2f %6.2f %6.0f%% %6.0f%% %6.0f%%", server, load, sent/rt, qps, lost,
				usr+sys, usr, sys, t/hz/real*100, others, client
			if (load == "max" && client >= 90) printf "  client-bound"
			if (others >= 10) printf "  CPU %d shared", '"$SERVER_CPU"' }')")
	say "$server @ $load: $qps q/s answered, $lost lost, $(awk -v a="$usr" -v b="$sys" 'BEGIN{print a+b}') µs CPU/query"
}

say "load average before measuring: $(cut -d' ' -f1-3 /proc/loadavg) (other work on CPU $SERVER_CPU skews max q/s, less so CPU/query)"
for ((RUN = 1; RUN <= ROUNDS; RUN++)); do
	for load in "$QPS" max; do
		measure meridian "$MPID" "$MPORT" "$load"
		[ "$DO_HARDENED" = 1 ] && measure meridian+h "$HPID" "$HPORT" "$load"
		measure gdnsd "$GPID" "$GPORT" "$load"
	done
done

# ------------------------------------------------------------------ profile
# perf (cpu-clock sampling works without hardware counters, e.g. in a VM)
# on each server under the rate-limited load; kernel symbols included,
# since much of a DNS server's time is in the UDP stack.
PROFILE=()
perf_profile() { # SERVER PID PORT
	local server=$1 pid=$2 port=$3 data=$WORK/perf-$1.data dp
	"${CLIENT_PREFIX[@]}" dnsperf "${DNSPERF_OPTS[@]}" -d "$WORK/queries.bin" \
		-p "$port" -l 10 -Q "$QPS" >"$WORK/dnsperf-$server-perf.txt" 2>&1 &
	dp=$!
	PIDS+=("$dp")
	sleep 1
	run_bg 30 "$WORK/perf-record-$server.txt" perf record -q -F 999 -g -p "$pid" -o "$data" -- sleep 8 ||
		{ say "perf record failed (see $WORK/perf-record-$server.txt); skipping profile"; return 0; }
	wait "$dp" || true
	perf report -i "$data" --stdio --no-children --sort dso,symbol -g none 2>/dev/null |
		grep -E '^ +[0-9.]+%' | sed -E 's/[[:space:]]+-[[:space:]]+-[[:space:]]*$//' >"$WORK/perf-$server.txt" || true
	PROFILE+=("== perf: $server @ $QPS q/s, $(awk '$3=="[k]"{k+=$1} $3=="[.]"{u+=$1} END{printf "%.0f%% kernel, %.0f%% user", k, u}' "$WORK/perf-$server.txt")")
	PROFILE+=("   top user-space functions:")
	while IFS= read -r l; do PROFILE+=("$l"); done < <(awk '$3=="[.]"' "$WORK/perf-$server.txt" | head -12)
	PROFILE+=("   top kernel functions:")
	while IFS= read -r l; do PROFILE+=("$l"); done < <(awk '$3=="[k]"' "$WORK/perf-$server.txt" | head -6)
}
if [ "$DO_PERF" = 1 ] && command -v perf >/dev/null && perf record -q -o /dev/null -- true >/dev/null 2>&1; then
	say "perf profiles at $QPS q/s"
	perf_profile meridian "$MPID" "$MPORT"
	perf_profile gdnsd "$GPID" "$GPORT"
elif [ "$DO_PERF" = 1 ]; then
	say "perf not usable here; skipping profiles"
fi

stop "$MPID"
[ "$DO_HARDENED" = 1 ] && stop "$HPID"
stop "$GPID"

# ---------------------------------------------------------------- callgrind
# Instructions (user space only) per query, with a fixed number of queries:
# instrumentation is switched on just before dnsperf and off after, so
# start-up (loading and compiling the database) is not counted. Go's async
# preemption signals crash callgrind (threads.c assertion), so Meridian runs
# with GODEBUG=asyncpreemptoff=1, which does not change the query path.
CALLGRIND=()
declare -A IRQ
callgrind_run() { # SERVER PORT startfn [env...]
	local server=$1 port=$2 startfn=$3 pid f cgout answered ir
	shift 3
	cgout=$WORK/callgrind.$server.out
	"$startfn" env "$@" valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$cgout"
	pid=$STARTED_PID
	callgrind_control -i on "$pid" >/dev/null 2>&1
	f=$WORK/dnsperf-$server-callgrind.txt
	# 2000 q/s: what either server keeps up with under callgrind, no losses.
	run_bg 120 "$f" "${CLIENT_PREFIX[@]}" dnsperf "${DNSPERF_OPTS[@]}" -d "$WORK/queries-cg.bin" -p "$port" \
		-n 1 -Q 2000 || { cat "$f" >&2; die "dnsperf against $server under callgrind failed"; }
	callgrind_control -i off "$pid" >/dev/null 2>&1
	stop "$pid" # callgrind writes its profile at exit
	answered=$(awk '/Queries completed:/{print $3}' "$f")
	ir=$(awk '/^totals:/{print $2}' "$cgout")
	[ -n "$ir" ] && [ -n "$answered" ] && [ "$answered" -gt 0 ] || die "no callgrind totals for $server (see $cgout, $WORK/$server.log)"
	IRQ[$server]=$(awk -v i="$ir" -v n="$answered" 'BEGIN{printf "%.0f", i/n}')
	CALLGRIND+=("$(printf '%-9s %12s Ir over %6s answered queries = %7s Ir/query' "$server" "$ir" "$answered" "${IRQ[$server]}")")
	# Shorten "GOROOT/src/x.go:pkg.Func [binary]" to "x.go:pkg.Func".
	callgrind_annotate "$cgout" 2>/dev/null | awk '/file:function/{p=1; getline; next} p && NF' | head -12 |
		sed -E "s# \[[^]]*\]\$##; s#$(go env GOROOT)/src/##; s#$(go env GOMODCACHE)/##; s#$ROOT/##" \
			>"$WORK/callgrind-$server-top.txt" || true
}
if [ "$DO_CALLGRIND" = 1 ] && command -v valgrind >/dev/null && command -v callgrind_control >/dev/null; then
	say "callgrind: $CG_QUERIES queries per server at 2000 q/s"
	callgrind_run meridian "$MPORT" start_meridian GODEBUG=asyncpreemptoff=1
	callgrind_run gdnsd "$GPORT" start_gdnsd
fi

# ------------------------------------------------------------------- report
{
	echo "Meridian vs gdnsd $(gdnsd -h 2>&1 | awk '/^gdnsd version/{print $3; exit}'): $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load avg before $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "meridian $(git describe --always --dirty 2>/dev/null || echo '?'), $(go version | awk '{print $3}'); dnsperf $(dnsperf -h 2>&1 | awk '/^Version/{print $2}')"
	sed 's/^/  /' "$WORK/gen.txt"
	echo "servers on CPU $SERVER_CPU, dnsperf on CPU $CLIENT_CPU, nice ${NICE:-unchanged}; ${SECONDS_PER_RUN}s per run; dnsperf -c 4 -q 200"
	echo
	printf '%-9s %6s %8s %8s %6s %8s %6s %6s %7s %7s %7s\n' server load "sent/s" "answ/s" lost "µs CPU/q" usr sys server others dnsperf
	printf '%s\n' "${ROWS[@]}"
	echo
	for load in "$QPS" max; do
		awk -v load="$load" -v hz="$CLK_TCK" -v mt="${TICKS[meridian/$load]}" -v mn="${ANSWERED[meridian/$load]}" \
			-v gt="${TICKS[gdnsd/$load]}" -v gn="${ANSWERED[gdnsd/$load]}" 'BEGIN{
			m = mt/hz*1e6/mn; g = gt/hz*1e6/gn
			printf "CPU per answered query @ %s: meridian %.2f µs, gdnsd %.2f µs; meridian/gdnsd = %.2fx\n", load, m, g, m/g }'
		if [ "$DO_HARDENED" = 1 ]; then
			awk -v load="$load" -v hz="$CLK_TCK" -v mt="${TICKS[meridian/$load]}" -v mn="${ANSWERED[meridian/$load]}" \
				-v ht="${TICKS[meridian+h/$load]}" -v hn="${ANSWERED[meridian+h/$load]}" 'BEGIN{
				m = mt/hz*1e6/mn; h = ht/hz*1e6/hn
				printf "  meridian with rate limiting, cookies and NSID on @ %s: %.2f µs; on/off = %.2fx\n", load, h, h/m }'
		fi
	done
	if [ "${#CALLGRIND[@]}" -eq 2 ]; then
		echo
		echo "callgrind (user-space instructions only, $CG_QUERIES queries at 2000 q/s):"
		printf '  %s\n' "${CALLGRIND[@]}"
		printf '  Ir per query, meridian/gdnsd: %s\n' "$(awk -v a="${IRQ[meridian]}" -v b="${IRQ[gdnsd]}" 'BEGIN{printf "%.2fx", a/b}')"
		echo "  meridian, top functions by Ir (self):"
		sed 's/^/    /' "$WORK/callgrind-meridian-top.txt"
	fi
	if [ "${#PROFILE[@]}" -gt 0 ]; then
		echo
		printf '%s\n' "${PROFILE[@]}"
	fi
	echo
	echo "sent/s and answer/s from dnsperf; lost = dnsperf's lost queries (in flight at the end of a run count as lost)."
	echo "µs CPU/q = server utime+stime (/proc/PID/stat, all threads) / answered queries (usr + sys)."
	echo "server, others, dnsperf = share of a CPU used over the run by the server, by anything else on CPU $SERVER_CPU, by dnsperf."
	echo "client-bound: dnsperf used >= 90% of its CPU, so max q/s is dnsperf's, not the server's (CPU/q still holds)."
	echo "CPU $SERVER_CPU shared: other processes used >= 10% of the server's CPU during the run; their cache and"
	echo "  scheduler noise inflates CPU/q, most at the lower rate. Rerun on a quiet machine for clean figures."
	echo "Details (configs, logs, raw dnsperf output): deploy/bench/out/work/."
} >"$RESULTS"
cp "$RESULTS" "$OUT/results.txt"
echo
cat "$RESULTS"
