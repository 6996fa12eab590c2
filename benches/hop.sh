#!/usr/bin/env bash
# The cost of a hop, measured side by side in one run: `get_conversation` on one demo conversation,
#   1. straight to the simulator (GET /v2/apps/{app}/conversations/{id});
#   2. through one nginx proxy hop (Debian nginx: one worker, access_log off, keep-alive upstream
#      pool of 128) to the simulator;
#   3. through this server, stateless 2026-07-28 tools/call;
#   4. through this server, 2025-11-25 sessions (one per connection, opened before the run);
#   5. through this server sharing its state in Redis (Debian redis-server), stateless calls;
#   6. through the generated peer: a FastMCP server built from the same OpenAPI spec (PyPI
#      fastmcp, pinned, installed by this script under target/hop-peer), stateless.
# This server runs at the default log level (info), spans recorded and exported to an OTLP sink
# this script starts, no inbound tokens, with --rate-limit 100000:100000 --max-in-flight 1024
# --queue 4096, and Basic credentials upstream like the direct paths (HOP_AUTH_MODE=jwt for the
# default JWTs, which the simulator verifies on every request). Each path is driven by
# wrk -t2 -c64 -d8s (HOP_DURATION, HOP_CONNECTIONS override) in HOP_ROUNDS (3) rounds, the paths
# taking turns; the figures are each path's medians (the peer runs once). Prints calls/s, the CPU
# each process spent per call (from /proc), the ratios to the nginx hop, Redis commands per call, and the server's peak RSS after HOP_PEAK_CONNECTIONS (1000)
# concurrent connections of stateless calls on a fresh process.
#
# Needs: a release build (cargo build --release), wrk, nginx and redis-server (Debian packages),
# python3 with venv, the spec (SUNCO_OPENAPI_SPEC, else ../shared/spec/openapi.yaml).
# Usage: bash benches/hop.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${HOP_BIN:-target/release/zendesk-messaging-mcp}
DURATION=${HOP_DURATION:-8s}
CONNECTIONS=${HOP_CONNECTIONS:-64}
PEAK=${HOP_PEAK_CONNECTIONS:-1000}
# The server authenticates upstream with the credential the direct and nginx paths send (Basic),
# so the simulator does the same work on every path; HOP_AUTH_MODE=jwt measures the default.
AUTH_MODE=${HOP_AUTH_MODE:-basic}
SPEC=${SUNCO_OPENAPI_SPEC:-../shared/spec/openapi.yaml}
for tool in wrk nginx redis-server redis-cli python3; do
  command -v "$tool" >/dev/null || { echo "hop.sh needs $tool (apt-get install wrk nginx redis-server)" >&2; exit 1; }
done
[ -x "$BIN" ] || { echo "build first: cargo build --release" >&2; exit 1; }
[ -f "$SPEC" ] || { echo "hop.sh needs the SunCo OpenAPI spec: set SUNCO_OPENAPI_SPEC" >&2; exit 1; }
# The generated peer's Python, with the pinned FastMCP.
PEER_ENV=target/hop-peer
if [ ! -x "$PEER_ENV/bin/python" ] || ! "$PEER_ENV/bin/python" -c 'import fastmcp' 2>/dev/null; then
  python3 -m venv "$PEER_ENV"
  "$PEER_ENV/bin/pip" install -q fastmcp==4.2.3 pyyaml
fi
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

start_server() { # port [extra serve arguments]
  local port=$1; shift
  SUNCO_AUTH=$AUTH_MODE SUNCO_APP_ID=$APP SUNCO_KEY_ID=$KEY SUNCO_KEY_SECRET=$SECRET \
    SUNCO_API_URL="http://127.0.0.1:$SIM_PORT" OTEL_EXPORTER_OTLP_ENDPOINT="$SINK" \
    "$BIN" serve --bind "127.0.0.1:$port" --rate-limit 100000:100000 --max-in-flight 1024 \
    --queue 4096 "$@" >"$WORK/serve-$port.log" 2>&1 &
  echo $!
}
MCP_PORT=$(free_port)
SERVER=$(start_server "$MCP_PORT"); PIDS+=("$SERVER")
wait_http "http://127.0.0.1:$MCP_PORT/healthz"

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no >"$WORK/redis.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 1 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
REDIS_MCP_PORT=$(free_port)
REDIS_SERVER=$(start_server "$REDIS_MCP_PORT" --redis-url "redis://127.0.0.1:$REDIS_PORT"); PIDS+=("$REDIS_SERVER")
wait_http "http://127.0.0.1:$REDIS_MCP_PORT/healthz"
# Redis commands the server has sent so far (INFO commandstats, summed).
redis_calls() { redis-cli -p "$REDIS_PORT" info commandstats | awk -F'[=,:]' '/^cmdstat_/ { n += $3 } END { print n + 0 }'; }

PEER_PORT=$(free_port)
"$PEER_ENV/bin/python" benches/hop/peer.py "$SPEC" "http://127.0.0.1:$SIM_PORT" "$KEY" "$SECRET" "$PEER_PORT" >"$WORK/peer.log" 2>&1 &
PEER=$!; PIDS+=("$PEER")
for _ in $(seq 1 600); do curl -s -o /dev/null "http://127.0.0.1:$PEER_PORT/mcp" && break; sleep 0.1; done

export HOP_AUTH="$AUTH" HOP_PATH="/v2/apps/$APP/conversations/$CONV" HOP_CONVERSATION="$CONV" HOP_APP="$APP"
export HOP_SESSIONS HOP_THREADS=2
HOP_SESSIONS=$(python3 benches/hop/sessions.py "http://127.0.0.1:$MCP_PORT/mcp" "$CONNECTIONS")

# Each path answers the conversation before it is measured (a wrong answer is not a call).
answers() { # script url
  local lua=$WORK/once.lua
  cat "$1" - >"$lua" <<'LUA'
function response(status, headers, body)
  if status ~= 200 or not string.find(body, os.getenv("HOP_CONVERSATION"), 1, true) then
    io.stderr:write("unexpected answer: ", status, " ", string.sub(body, 1, 300), "\n")
    os.exit(1)
  end
end
LUA
  wrk -t1 -c4 -d1s -s "$lua" "$2" >/dev/null || { echo "$2 did not answer the conversation" >&2; exit 1; }
}
answers benches/hop/rest.lua "http://127.0.0.1:$SIM_PORT"
answers benches/hop/rest.lua "http://127.0.0.1:$NGINX_PORT"
answers benches/hop/mcp.lua "http://127.0.0.1:$MCP_PORT"
HOP_THREADS=1 answers benches/hop/sessions.lua "http://127.0.0.1:$MCP_PORT"
answers benches/hop/mcp.lua "http://127.0.0.1:$REDIS_MCP_PORT"
answers benches/hop/peer.lua "http://127.0.0.1:$PEER_PORT"

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
# HOP_ROUNDS rounds (3), each path once per round in the same order; each figure is the median of
# its rounds (on a shared 2-core machine one 8 s window can land on a bad spell).
ROUNDS=${HOP_ROUNDS:-3}
: >"$WORK/rounds"
for _ in $(seq 1 "$ROUNDS"); do
  measure direct benches/hop/rest.lua "http://127.0.0.1:$SIM_PORT" "$SIM" >>"$WORK/rounds"
  measure nginx benches/hop/rest.lua "http://127.0.0.1:$NGINX_PORT" "$NGINX_WORKER" "$SIM" >>"$WORK/rounds"
  measure mcp benches/hop/mcp.lua "http://127.0.0.1:$MCP_PORT" "$SERVER" "$SIM" >>"$WORK/rounds"
  measure sessions benches/hop/sessions.lua "http://127.0.0.1:$MCP_PORT" "$SERVER" "$SIM" >>"$WORK/rounds"
  before=$(redis_calls)
  line=$(measure redis benches/hop/mcp.lua "http://127.0.0.1:$REDIS_MCP_PORT" "$REDIS_SERVER" "$SIM")
  echo "$line $before $(redis_calls)" >>"$WORK/rounds"
done
# The medians of a path's rounds: calls/s and each CPU figure, then Redis commands per call.
median() { python3 - "$1" "$WORK/rounds" <<'PY'
import statistics, sys
name, path = sys.argv[1], sys.argv[2]
rows = [l.split()[1:] for l in open(path) if l.split()[0] == name]
if name == "redis":
    rows = [r[:-2] + [str((float(r[-1]) - float(r[-2])) / float(r[0]))] for r in rows]
cols = list(zip(*[[float(v) for v in r[1:]] for r in rows]))
print(" ".join(str(round(statistics.median(c), 3)) for c in cols))
PY
}
read -r DIRECT_RATE DIRECT_SIM < <(median direct)
read -r NGINX_RATE NGINX_CPU NGINX_SIM < <(median nginx)
read -r MCP_RATE MCP_CPU MCP_SIM < <(median mcp)
read -r SESSION_RATE SESSION_CPU SESSION_SIM < <(median sessions)
read -r REDIS_RATE REDIS_CPU REDIS_SIM REDIS_PER_CALL < <(median redis)
read -r _ _ PEER_RATE PEER_CPU PEER_SIM < <(measure peer benches/hop/peer.lua "http://127.0.0.1:$PEER_PORT" "$PEER" "$SIM")

# Peak RSS: a fresh server process, PEAK connections of stateless calls.
PEAK_PORT=$(free_port)
FRESH=$(start_server "$PEAK_PORT"); PIDS+=("$FRESH")
wait_http "http://127.0.0.1:$PEAK_PORT/healthz"
ulimit -n 65536 2>/dev/null || true
read -r PEAK_N PEAK_RATE < <(drive benches/hop/mcp.lua "$PEAK" "http://127.0.0.1:$PEAK_PORT")
PEAK_RSS=$(awk '/VmHWM/ { print int($2 / 1024) }' "/proc/$FRESH/status")

ratio() { python3 -c 'import sys; print(f"{float(sys.argv[1]) / float(sys.argv[2]):.2f}")' "$1" "$2"; }
cat <<REPORT
get_conversation, wrk -t2 -c$CONNECTIONS -d$DURATION, medians of $ROUNDS rounds (the peer: one), upstream auth $AUTH_MODE

| path | calls/s | CPU µs/call: hop | simulator |
| --- | --- | --- | --- |
| straight to the simulator | $DIRECT_RATE | – | $DIRECT_SIM |
| through nginx (1 worker, keep-alive 128) | $NGINX_RATE | $NGINX_CPU | $NGINX_SIM |
| through this server, stateless 2026-07-28 | $MCP_RATE | $MCP_CPU | $MCP_SIM |
| through this server, 2025-11-25 sessions | $SESSION_RATE | $SESSION_CPU | $SESSION_SIM |
| through this server on Redis, stateless | $REDIS_RATE | $REDIS_CPU | $REDIS_SIM |
| through the FastMCP peer generated from the spec | $PEER_RATE | $PEER_CPU | $PEER_SIM |

stateless throughput / nginx hop's: $(ratio "$MCP_RATE" "$NGINX_RATE") (target ≥ 0.40)
sessions throughput / nginx hop's: $(ratio "$SESSION_RATE" "$NGINX_RATE") (target ≥ 0.40)
our CPU per call / nginx's: stateless $(ratio "$MCP_CPU" "$NGINX_CPU"), sessions $(ratio "$SESSION_CPU" "$NGINX_CPU") (target ≤ 3)
on Redis / in memory: $(ratio "$REDIS_RATE" "$MCP_RATE") (target ≥ 0.80), $REDIS_PER_CALL Redis commands per call
stateless throughput / the FastMCP peer's: $(ratio "$MCP_RATE" "$PEER_RATE")
peak RSS after $PEAK connections (fresh process): $PEAK_RSS MB (target ≤ 64), $PEAK_N calls at $PEAK_RATE/s
REPORT
