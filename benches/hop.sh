#!/usr/bin/env bash
# The cost of a hop, measured side by side in one run: `get_conversation` on one demo conversation,
#   1. straight to the simulator (GET /v2/apps/{app}/conversations/{id});
#   2. through one nginx proxy hop (Debian nginx: one worker, access_log off, keep-alive upstream
#      pool of 128) to the simulator;
#   3. through this server (stateless 2026-07-28 tools/call), default log level (info), spans
#      recorded and exported to an OTLP sink this script starts, no inbound tokens, with
#      --rate-limit 100000:100000 --max-in-flight 1024 --queue 4096.
# Each driven by wrk -t2 -c64 -d8s (HOP_DURATION, HOP_CONNECTIONS override). Prints calls/s, the
# CPU each process spent per call (from /proc), the ratios to the nginx hop, and the server's
# peak RSS after HOP_PEAK_CONNECTIONS (1000) concurrent connections on a fresh process.
#
# Needs: a release build (cargo build --release), wrk and nginx (Debian packages), python3.
# Usage: bash benches/hop.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/zendesk-messaging-mcp
DURATION=${HOP_DURATION:-8s}
CONNECTIONS=${HOP_CONNECTIONS:-64}
PEAK=${HOP_PEAK_CONNECTIONS:-1000}
for tool in wrk nginx python3; do
  command -v "$tool" >/dev/null || { echo "hop.sh needs $tool (apt-get install wrk nginx)" >&2; exit 1; }
done
[ -x "$BIN" ] || { echo "build first: cargo build --release" >&2; exit 1; }
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 1 200); do curl -s -o /dev/null "$1" && return 0; sleep 0.05; done; echo "no answer from $1" >&2; exit 1; }
# CPU seconds (user + system) a process has used, from /proc/PID/stat.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"; }
# Runs wrk; prints "REQUESTS RATE".
drive() {
  local out
  out=$(wrk -t2 -c"$2" -d"$DURATION" -s "$1" "$3" 2>&1)
  echo "$out" | awk '/requests in/ { n = $1 } /Requests\/sec/ { r = $2 } END { print n, r }'
}

APP=5f0c1e2d3b4a596877889900
KEY=app_5f0c1e2d3b4a596877889901
SECRET=sim-app-secret
AUTH="Basic $(printf '%s:%s' "$KEY" "$SECRET" | base64 -w0)"

SIM_PORT=$(free_port)
"$BIN" simulator --bind "127.0.0.1:$SIM_PORT" --seed demo --log-format text >"$WORK/sim.log" 2>&1 &
SIM=$!; PIDS+=("$SIM")
wait_http "http://127.0.0.1:$SIM_PORT/healthz"
CONV=$(curl -s -H "Authorization: $AUTH" \
  "http://127.0.0.1:$SIM_PORT/v2/apps/$APP/conversations?filter%5BuserExternalId%5D=demo-user-01" \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["conversations"][0]["id"])')

NGINX_PORT=$(free_port)
cat >"$WORK/nginx.conf" <<NGINX
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  upstream sim { server 127.0.0.1:$SIM_PORT; keepalive 128; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / { proxy_pass http://sim; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
NGINX
nginx -c "$WORK/nginx.conf" -p "$WORK" -g 'daemon off;' &
NGINX=$!; PIDS+=("$NGINX")
wait_http "http://127.0.0.1:$NGINX_PORT/healthz"
NGINX_WORKER=$(pgrep -P "$NGINX" | head -n1)

python3 benches/hop/sink.py >"$WORK/sink.port" &
PIDS+=("$!")
for _ in $(seq 1 100); do [ -s "$WORK/sink.port" ] && break; sleep 0.05; done
SINK="http://127.0.0.1:$(cat "$WORK/sink.port")"

start_server() {
  local port=$1
  SUNCO_APP_ID=$APP SUNCO_KEY_ID=$KEY SUNCO_KEY_SECRET=$SECRET \
    SUNCO_API_URL="http://127.0.0.1:$SIM_PORT" OTEL_EXPORTER_OTLP_ENDPOINT="$SINK" \
    "$BIN" serve --bind "127.0.0.1:$port" --rate-limit 100000:100000 --max-in-flight 1024 \
    --queue 4096 >"$WORK/serve-$port.log" 2>&1 &
  echo $!
}
MCP_PORT=$(free_port)
SERVER=$(start_server "$MCP_PORT"); PIDS+=("$SERVER")
wait_http "http://127.0.0.1:$MCP_PORT/healthz"

export HOP_AUTH="$AUTH" HOP_PATH="/v2/apps/$APP/conversations/$CONV" HOP_CONVERSATION="$CONV"
# Warm-up: every path once, briefly.
for url in "http://127.0.0.1:$SIM_PORT" "http://127.0.0.1:$NGINX_PORT"; do
  wrk -t1 -c4 -d1s -s benches/hop/rest.lua "$url" >/dev/null
done
wrk -t1 -c4 -d1s -s benches/hop/mcp.lua "http://127.0.0.1:$MCP_PORT" >/dev/null

measure() { # name script url processes...
  local name=$1 script=$2 url=$3; shift 3
  local before=() after=() i
  for p in "$@"; do before+=("$(cpu "$p")"); done
  read -r n rate < <(drive "$script" "$CONNECTIONS" "$url")
  for p in "$@"; do after+=("$(cpu "$p")"); done
  local line="$name $n $rate"
  for i in "${!before[@]}"; do
    line="$line $(python3 -c 'import sys; n, b, a = map(float, sys.argv[1:]); print(round((a - b) * 1e6 / n, 1))' "$n" "${before[$i]}" "${after[$i]}")"
  done
  echo "$line"
}
read -r _ _ DIRECT_RATE DIRECT_SIM < <(measure direct benches/hop/rest.lua "http://127.0.0.1:$SIM_PORT" "$SIM")
read -r _ _ NGINX_RATE NGINX_CPU NGINX_SIM < <(measure nginx benches/hop/rest.lua "http://127.0.0.1:$NGINX_PORT" "$NGINX_WORKER" "$SIM")
read -r _ _ MCP_RATE MCP_CPU MCP_SIM < <(measure mcp benches/hop/mcp.lua "http://127.0.0.1:$MCP_PORT" "$SERVER" "$SIM")

# Peak RSS: a fresh server process, PEAK connections of stateless calls.
PEAK_PORT=$(free_port)
FRESH=$(start_server "$PEAK_PORT"); PIDS+=("$FRESH")
wait_http "http://127.0.0.1:$PEAK_PORT/healthz"
ulimit -n 65536 2>/dev/null || true
read -r PEAK_N PEAK_RATE < <(drive benches/hop/mcp.lua "$PEAK" "http://127.0.0.1:$PEAK_PORT")
PEAK_RSS=$(awk '/VmHWM/ { print int($2 / 1024) }' "/proc/$FRESH/status")

ratio() { python3 -c 'import sys; print(f"{float(sys.argv[1]) / float(sys.argv[2]):.2f}")' "$1" "$2"; }
cat <<REPORT
get_conversation, wrk -t2 -c$CONNECTIONS -d$DURATION, one run

| path | calls/s | CPU µs/call: hop | simulator |
| --- | --- | --- | --- |
| straight to the simulator | $DIRECT_RATE | – | $DIRECT_SIM |
| through nginx (1 worker, keep-alive 128) | $NGINX_RATE | $NGINX_CPU | $NGINX_SIM |
| through this server (stateless, info, spans exported) | $MCP_RATE | $MCP_CPU | $MCP_SIM |

our throughput / nginx hop's: $(ratio "$MCP_RATE" "$NGINX_RATE") (target ≥ 0.40)
our CPU per call / nginx's: $(ratio "$MCP_CPU" "$NGINX_CPU") (target ≤ 3)
peak RSS after $PEAK connections (fresh process): $PEAK_RSS MB (target ≤ 64), $PEAK_N calls at $PEAK_RATE/s
REPORT
