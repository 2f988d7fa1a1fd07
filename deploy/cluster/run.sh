#!/usr/bin/env bash
# deploy/cluster/run.sh (`make cluster`): the local three-node cluster on one
# machine — nodes in us-east, eu-west and ap-southeast on 127.0.0.21-23
# (DNS :5353, gossip :7946, admin API :8053, metrics :9153) and one stand-in HTTP endpoint
# per region on 127.0.0.31-33:8080. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/../.."

go build -o bin/meridian ./cmd/meridian
go build -o bin/meridian-endpoints ./deploy/cluster/endpoints
mkdir -p deploy/cluster/state

pids=()
cleanup() {
	trap - EXIT INT TERM
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
	done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bin/meridian-endpoints > >(sed -u 's/^/endpoints: /') 2>&1 &
pids+=($!)
for i in 1 2 3; do
	bin/meridian serve -config "deploy/cluster/node$i.toml" > >(sed -u "s/^/node$i: /") 2>&1 &
	pids+=($!)
done

# Ready when every node answers (bounded).
for i in 1 2 3; do
	for _ in $(seq 100); do
		if dig +short +time=1 +tries=1 @"127.0.0.2$i" -p 5353 www.gslb.example.com A >/dev/null 2>&1; then
			break
		fi
		sleep 0.1
	done
done

cat <<'USAGE'

== Meridian local cluster: 3 nodes, 3 regions ==
Ask each node (198.51.100.0/24 is Frankfurt, so eu-west answers 198.51.100.10):
  dig @127.0.0.21 -p 5353 www.gslb.example.com A +subnet=198.51.100.0/24 +short
  dig @127.0.0.22 -p 5353 www.gslb.example.com A +subnet=198.51.100.0/24 +short
  dig @127.0.0.23 -p 5353 www.gslb.example.com A +subnet=198.51.100.0/24 +short
Fail eu-west's endpoint for every node (fall 3 at 1 s: all three move within seconds):
  curl -X POST http://127.0.0.32:8080/fail
  curl -X POST http://127.0.0.32:8080/recover
Fail www over from the CLI (admin API on 127.0.0.21-23:8053, demo tokens
demo-read and demo-operate):
  export MERIDIAN_ADMIN=127.0.0.21:8053 MERIDIAN_TOKEN=demo-operate
  bin/meridian failover -pool www.gslb.example.com -to eu-west -reason "us-east maintenance"
  bin/meridian status
  bin/meridian clear pin:www.gslb.example.com.
Metrics: curl -s http://127.0.0.21:9153/metrics | grep meridian_gossip
Ctrl-C stops everything; overrides and verdicts persist in deploy/cluster/state/.
USAGE
wait
