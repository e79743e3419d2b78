#!/usr/bin/env bash
# GET /v1/runs/{id} against GET /healthz with wrk, on one release server (BENCHMARKS.md "Scale"):
#
#   Benchmarks/wrk-read.sh [RUNWARDEN_BINARY]      (default /tmp/bench-build/release/runwarden)
#
# Starts a server on a fresh SQLite file in a temporary directory (loopback, a free port),
# creates 200 one-task runs, then runs wrk at c=32 (2 threads, 10 s) on the runs — each request
# a random one of the 200 ids (a Lua script) — and on /healthz, twice in alternation, and prints
# each figure and the ratios. The server is stopped at the end, also on error or Ctrl-C.
set -euo pipefail
BIN=${1:-/tmp/bench-build/release/runwarden}
WORK=$(mktemp -d)
PORT_FILE=$WORK/port
cleanup() { [[ -n ${SERVER:-} ]] && kill "$SERVER" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }

"$BIN" serve --host 127.0.0.1 --port 0 --database "$WORK/read.sqlite" --log-level warning > "$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 100); do
  PORT=$(grep -o 'http://127.0.0.1:[0-9]*' "$WORK/server.log" | head -1 | sed 's/.*://') && [[ -n $PORT ]] && break
  sleep 0.1
done
BASE=http://127.0.0.1:$PORT
IDS=()
for i in $(seq 1 200); do
  IDS+=("$(curl -s -X POST "$BASE/v1/runs" -H 'Content-Type: application/json' \
    -d '{"workflow":"wrk","tasks":[{"name":"t","command":["true"]}]}' | sed 's/.*"id":"\(run_[^"]*\)".*/\1/')")
done
{
  echo "local ids = {"
  for id in "${IDS[@]}"; do echo "\"$id\","; done
  echo "}"
  echo 'request = function() return wrk.format("GET", "/v1/runs/" .. ids[math.random(#ids)]) end'
} > "$WORK/runs.lua"

rate() { wrk -t2 -c32 -d10s --latency "$@" | awk '/^Requests\/sec/ {print $2}'; }
for round in 1 2; do
  runs=$(rate -s "$WORK/runs.lua" "$BASE")
  health=$(rate "$BASE/healthz")
  echo "round $round: GET /v1/runs/{id} $runs req/s, /healthz $health req/s, ratio $(awk -v a="$runs" -v b="$health" 'BEGIN {printf "%.3f", a / b}')"
done
