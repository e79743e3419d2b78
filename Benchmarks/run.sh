#!/usr/bin/env bash
# The benchmark of BENCHMARKS.md, in one command:
#
#   Benchmarks/run.sh [runwarden-bench run options…]      e.g.  Benchmarks/run.sh --quick
#
# 1. builds `runwarden` and `runwarden-bench` in release mode (scratch path $SCRATCH, default
#    /tmp/bench-build — not .build, so a concurrent debug build keeps its lock);
# 2. runs runwarden-bench: it starts release servers on loopback (fresh SQLite databases in a
#    temporary directory; `--postgres URL` adds a PostgreSQL-backed server) and writes
#    Benchmarks/results/runwarden.json;
# 3. runs the Prefect 3 peer with the same lifecycle and read workloads
#    (Benchmarks/peer/run-prefect.sh → Benchmarks/results/prefect.json; SKIP_PEER=1 skips it);
# 4. prints both side by side with the targets (Benchmarks/results/summary.md) and records the
#    machine (Benchmarks/results/machine.txt);
# 5. with SCALE=1, the scale figures of BENCHMARKS.md "Scale": runwarden-bench's width, backlog and
#    retention workloads (Benchmarks/results/scale.json), wrk's reads against /healthz
#    (Benchmarks/wrk-read.sh → results/wrk-read.txt) and, with PGBENCH_URL=postgres://… (a
#    database of the cluster given to --postgres), pgbench TPC-B at c=1, 8 and 32 on it
#    (results/pgbench.txt): the database's own ceiling beside Runwarden's lifecycle on it.
#
# Every server the steps start is stopped at the end, also on error or Ctrl-C.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SCRATCH=${SCRATCH:-/tmp/bench-build}
RESULTS=$ROOT/Benchmarks/results
cd "$ROOT"
mkdir -p "$RESULTS"

echo "== building (release, scratch path $SCRATCH)" >&2
swift build -c release --scratch-path "$SCRATCH" --product runwarden >&2
swift build -c release --scratch-path "$SCRATCH" --product runwarden-bench >&2
BIN=$(swift build -c release --scratch-path "$SCRATCH" --show-bin-path)

# The commit measured (LABEL=… overrides it, e.g. when ROOT is an exported copy of a commit).
if [[ -z ${LABEL:-} ]]; then
  LABEL=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
  if ! git diff --quiet HEAD -- Sources Package.swift 2>/dev/null; then LABEL=$LABEL-dirty; fi
fi

{
  echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit:  $LABEL"
  echo "cpus:    $(nproc)"
  echo "cpu:     $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
  echo "memory:  $(awk '/^MemTotal:/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "os:      $( (. /etc/os-release && echo "$PRETTY_NAME") ), kernel $(uname -r)"
  echo "swift:   $(swift --version 2>&1 | head -1)"
  echo "disk:    $(df -T "${TMPDIR:-/tmp}" | awk 'NR==2 {print $2 " (" $1 ")"}') under ${TMPDIR:-/tmp}"
} > "$RESULTS/machine.txt"
cat "$RESULTS/machine.txt"

echo "== runwarden-bench" >&2
"$BIN/runwarden-bench" run --server-binary "$BIN/runwarden" --out "$RESULTS/runwarden.json" --label "$LABEL" "$@"

if [[ ${SKIP_PEER:-0} != 1 ]]; then
  echo "== Prefect peer" >&2
  "$ROOT/Benchmarks/peer/run-prefect.sh" "$RESULTS/prefect.json"
fi

"$BIN/runwarden-bench" compare "$RESULTS/runwarden.json" "$RESULTS/prefect.json" | tee "$RESULTS/summary.md"

if [[ ${SCALE:-0} == 1 ]]; then
  echo "== scale: width, backlog, retention" >&2
  "$BIN/runwarden-bench" run --server-binary "$BIN/runwarden" --workloads width,backlog,retention --out "$RESULTS/scale.json" \
    --label "$LABEL"
  echo "== scale: wrk reads" >&2
  "$ROOT/Benchmarks/wrk-read.sh" "$BIN/runwarden" | tee "$RESULTS/wrk-read.txt"
  if [[ -n ${PGBENCH_URL:-} ]]; then
    echo "== scale: pgbench TPC-B on $PGBENCH_URL" >&2
    pgbench -i -s 32 -q "$PGBENCH_URL" >&2
    for clients in 1 8 32; do
      echo "c=$clients $(pgbench -c "$clients" -j 2 -T 10 "$PGBENCH_URL" 2>/dev/null | grep '^tps')"
    done | tee "$RESULTS/pgbench.txt"
  fi
fi
echo "== results in $RESULTS (runwarden.json, prefect.json, summary.md, machine.txt)" >&2
