#!/usr/bin/env bash
# Measure the peer (Prefect 3 server) with the same workloads we run against Runwarden.
#
#   Benchmarks/peer/run-prefect.sh [OUT.json]      (default: Benchmarks/results/prefect.json)
#
# Installs Prefect into .peer/venv (shared install script) if missing, starts `prefect server start`
# on 127.0.0.1 on a free port with PREFECT_HOME=.peer/home and a fresh SQLite database, waits for
# /api/health, runs prefect_bench.py, and always stops the server (its PID and all descendants).
#
# Environment: DURATION (s per level, default 10), MAX_REQUESTS (iterations per level, default 2000),
# LEVELS (default 1,8,32), HEALTH_TIMEOUT (default 90), KEEP_DB=1 to reuse .peer/home's database,
# INSTALL_SCRIPT (default /work/shared/peers/install-prefect.sh).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${1:-$ROOT/Benchmarks/results/prefect.json}
case $OUT in /*) ;; *) OUT=$PWD/$OUT ;; esac
PEER=$ROOT/.peer
VENV=$PEER/venv
INSTALL_SCRIPT=${INSTALL_SCRIPT:-/work/shared/peers/install-prefect.sh}
DURATION=${DURATION:-10}
MAX_REQUESTS=${MAX_REQUESTS:-2000}
LEVELS=${LEVELS:-1,8,32}
HEALTH_TIMEOUT=${HEALTH_TIMEOUT:-90}

export PREFECT_HOME=$PEER/home
export PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1 PREFECT_SERVER_UI_ENABLED=false
mkdir -p "$PREFECT_HOME" "$(dirname "$OUT")"

# ---- install ------------------------------------------------------------------------------------
if [[ ! -x $VENV/bin/prefect ]] || ! "$VENV/bin/python" -c 'import prefect, httpx' 2>/dev/null; then
  echo "== installing Prefect into $VENV" >&2
  t0=$SECONDS
  PEER_ROOT=$ROOT "$INSTALL_SCRIPT"
  echo "== install took $((SECONDS - t0)) s" >&2
fi
VERSION=$("$VENV/bin/python" -c 'import prefect; print(prefect.__version__)')
echo "Prefect version: $VERSION"

# ---- start the server ---------------------------------------------------------------------------
if [[ ${KEEP_DB:-0} != 1 ]]; then
  rm -f "$PREFECT_HOME"/prefect.db "$PREFECT_HOME"/prefect.db-wal "$PREFECT_HOME"/prefect.db-shm \
        "$PREFECT_HOME"/prefect.db-journal
fi
PORT=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
LOG=$PEER/prefect-server.log

SERVER_PID= BENCH_PID=
# The server and every process below it, found through parent PIDs (catches children that left
# the session) plus the server's session (setsid made the server its leader).
server_pids() {
  ps -e -o pid=,ppid=,sid= | awk -v root="$SERVER_PID" '
    { pid[NR]=$1; ppid[NR]=$2; sid[NR]=$3 }
    END {
      keep[root]=1
      for (i=1; i<=NR; i++) if (sid[i]==root) keep[pid[i]]=1
      do { added=0; for (i=1; i<=NR; i++) if ((ppid[i] in keep) && !(pid[i] in keep)) { keep[pid[i]]=1; added=1 } } while (added)
      for (i=1; i<=NR; i++) if (pid[i] in keep) print pid[i]
    }'
}
stop_server() {
  set +e  # best effort: never abandon the cleanup half-way
  if [[ -n $BENCH_PID ]]; then kill -TERM "$BENCH_PID" 2>/dev/null; wait "$BENCH_PID" 2>/dev/null; BENCH_PID=; fi
  [[ -n $SERVER_PID ]] || return 0
  local pids
  pids=$(server_pids)
  if [[ -n $pids ]]; then
    kill -TERM -- "-$SERVER_PID" $pids 2>/dev/null || true
    for _ in $(seq 1 50); do
      pids=$(for p in $pids; do if kill -0 "$p" 2>/dev/null; then echo "$p"; fi; done)
      [[ -z $pids ]] && break
      sleep 0.2
    done
    if [[ -n $pids ]]; then
      echo "still alive after 10 s, SIGKILL: $(echo $pids)" >&2
      kill -KILL $pids 2>/dev/null || true
    fi
  fi
  wait "$SERVER_PID" 2>/dev/null || true
  echo "== server stopped (pid $SERVER_PID)" >&2
  SERVER_PID=
}
trap stop_server EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "== starting prefect server on $URL (PREFECT_HOME=$PREFECT_HOME, log $LOG)" >&2
t_start=$SECONDS
setsid "$VENV/bin/prefect" server start --host 127.0.0.1 --port "$PORT" --no-ui --analytics-off \
  >"$LOG" 2>&1 </dev/null &
SERVER_PID=$!

deadline=$((SECONDS + HEALTH_TIMEOUT))
until curl -fsS -o /dev/null --max-time 2 "$URL/api/health" 2>/dev/null; do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "prefect server exited before becoming healthy; log:" >&2; tail -40 "$LOG" >&2; exit 1
  fi
  if (( SECONDS >= deadline )); then
    echo "prefect server not healthy after ${HEALTH_TIMEOUT}s; log:" >&2; tail -40 "$LOG" >&2; exit 1
  fi
  sleep 0.5
done
echo "== healthy after $((SECONDS - t_start)) s" >&2

# ---- idle RSS (server process group: the CLI plus the uvicorn child) ------------------------------
sleep 3
RSS_KB=0
for p in $(server_pids); do
  kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || true)
  RSS_KB=$((RSS_KB + ${kb:-0}))
done
echo "server RSS idle: $(awk -v k="$RSS_KB" 'BEGIN {printf "%.1f", k/1024}') MiB (VmRSS, server pid $SERVER_PID + descendants: $(echo $(server_pids)))"

# ---- benchmark ----------------------------------------------------------------------------------
t_bench=$SECONDS
# In the background + wait, so that INT/TERM reach our traps at once rather than after the bench.
"$VENV/bin/python" "$HERE/prefect_bench.py" --url "$URL" --out "$OUT" --duration "$DURATION" \
  --max-requests "$MAX_REQUESTS" --levels "$LEVELS" --pid "$SERVER_PID" --prefect-version "$VERSION" &
BENCH_PID=$!
wait "$BENCH_PID"
BENCH_PID=
echo "== benchmark took $((SECONDS - t_bench)) s; results in $OUT" >&2
