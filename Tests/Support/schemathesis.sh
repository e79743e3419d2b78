#!/usr/bin/env bash
# Contract test: fuzzes a running server against its own OpenAPI document with schemathesis.
#
#   bash Tests/Support/schemathesis.sh .build/debug/runwarden   (run by OpenAPIContractTests)
#
# Starts the given binary on a free loopback port with a throw-away SQLite database and no
# tokens, waits for /readyz, loads the document the server serves at /openapi.json (falling back
# to Sources/RunwardenServer/Resources/openapi.json when the binary does not serve one) and runs
# schemathesis with the checks below. Exits non-zero on any failure; the server is always stopped.
#
# Environment knobs (all optional):
#   SCHEMATHESIS_MAX_EXAMPLES  test cases per operation and phase (default 10)
#   SCHEMATHESIS_SEED          hypothesis seed (default 1, so CI runs are reproducible; "random" for a new one)
#   SCHEMATHESIS_CHECKS        comma-separated checks (default below)
#   SCHEMATHESIS_EXTRA_ARGS    more arguments for `schemathesis run`, split on spaces
set -euo pipefail

SCHEMATHESIS_VERSION="4.32.5"
DEFAULT_CHECKS="not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"

if [ $# -lt 1 ]; then
  echo "usage: $0 PATH/TO/runwarden" >&2
  exit 2
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="$1"
case "$BIN" in /*) ;; *) BIN="$PWD/$BIN" ;; esac
if [ ! -x "$BIN" ]; then
  echo "schemathesis.sh: $BIN is not an executable" >&2
  exit 2
fi

# --- Python environment -----------------------------------------------------------------------
VENV="$ROOT/.build/test-python-schemathesis"
PYTHON=""
for candidate in python3.11 python3.12 python3.13 python3.10 python3; do
  if command -v "$candidate" >/dev/null 2>&1 \
    && "$candidate" -c 'import sys, venv; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
    PYTHON="$candidate"
    break
  fi
done
if [ -z "$PYTHON" ]; then
  echo "schemathesis.sh: needs Python 3.10 or newer with the venv module" >&2
  exit 2
fi

installed_version() {
  "$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null || true
}
if [ ! -x "$VENV/bin/python" ]; then
  echo "creating $VENV with $($PYTHON --version 2>&1)"
  mkdir -p "$(dirname "$VENV")"
  "$PYTHON" -m venv "$VENV"
fi
if [ "$(installed_version)" != "$SCHEMATHESIS_VERSION" ]; then
  echo "installing schemathesis $SCHEMATHESIS_VERSION"
  # Once more without pip's cache when it fails: a download cut or garbled on the way fails
  # pip's hash check (seen once in CI), and a second fetch is whole.
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" \
    || "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-cache-dir "schemathesis==$SCHEMATHESIS_VERSION"
fi
echo "schemathesis $(installed_version) in $VENV"

# --- Server -----------------------------------------------------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/runwarden-schemathesis.XXXXXX")"
SERVER_PID=""
cleanup() {
  local status=$?
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ "$status" -ne 0 ] && [ -f "$WORK/server.log" ]; then
    echo "--- last lines of the server log ---" >&2
    tail -n 40 "$WORK/server.log" >&2 || true
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# No tokens (open mode, loopback only): clear the environment fallbacks of every serve flag.
env -u RUNWARDEN_CLIENT_TOKEN -u RUNWARDEN_RUNNER_TOKEN -u RUNWARDEN_HOST -u RUNWARDEN_PORT \
  -u RUNWARDEN_DATABASE -u RUNWARDEN_MAX_BODY -u RUNWARDEN_LEASE -u RUNWARDEN_WEBHOOK_RETRY \
  -u RUNWARDEN_LOG_FORMAT \
  "$BIN" serve --host 127.0.0.1 --port 0 --database "$WORK/runwarden.sqlite" --log-level warning \
  >"$WORK/server.log" 2>&1 </dev/null &
SERVER_PID=$!

PORT=""
for _ in $(seq 1 600); do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "schemathesis.sh: the server exited before listening" >&2
    exit 1
  fi
  PORT="$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$WORK/server.log" | head -n 1)"
  [ -n "$PORT" ] && break
  sleep 0.1
done
if [ -z "$PORT" ]; then
  echo "schemathesis.sh: the server did not say which port it listens on within 60 s" >&2
  exit 1
fi
BASE="http://127.0.0.1:$PORT"

http_get() {  # URL OUTPUT-FILE -> prints the status code (000 when nothing answered)
  "$VENV/bin/python" - "$1" "$2" <<'PY'
import sys, urllib.error, urllib.request
url, out = sys.argv[1], sys.argv[2]
try:
    with urllib.request.urlopen(url, timeout=5) as response:
        status, body = response.status, response.read()
except urllib.error.HTTPError as error:
    status, body = error.code, error.read()
except Exception:
    status, body = 0, b""
open(out, "wb").write(body)
print("%03d" % status)
PY
}

READY=""
for _ in $(seq 1 300); do
  if [ "$(http_get "$BASE/readyz" "$WORK/readyz.json")" = "200" ]; then
    READY=1
    break
  fi
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.2
done
if [ -z "$READY" ]; then
  echo "schemathesis.sh: $BASE/readyz did not answer 200" >&2
  exit 1
fi
echo "server ready on $BASE"

# --- Schema -----------------------------------------------------------------------------------
SCHEMA="$WORK/openapi.json"
REPO_SCHEMA="$ROOT/Sources/RunwardenServer/Resources/openapi.json"
if [ "$(http_get "$BASE/openapi.json" "$SCHEMA")" = "200" ] \
  && "$VENV/bin/python" -c 'import json, sys; sys.exit(0 if "paths" in json.load(open(sys.argv[1])) else 1)' "$SCHEMA" 2>/dev/null; then
  echo "schema: $BASE/openapi.json"
  if ! cmp -s "$SCHEMA" "$REPO_SCHEMA"; then
    echo "warning: the served document differs from $REPO_SCHEMA (is the binary stale?)" >&2
  fi
else
  echo "warning: $BASE/openapi.json did not answer a document; using $REPO_SCHEMA" >&2
  cp "$REPO_SCHEMA" "$SCHEMA"
fi

# --- Run --------------------------------------------------------------------------------------
SEED_ARGS=(--seed "${SCHEMATHESIS_SEED:-1}")
if [ "${SCHEMATHESIS_SEED:-}" = "random" ]; then SEED_ARGS=(); fi
read -r -a EXTRA_ARGS <<<"${SCHEMATHESIS_EXTRA_ARGS:-}"

echo "running schemathesis against $BASE"
started=$SECONDS
# Run from the scratch directory: schemathesis keeps replay files under ./.schemathesis.
cd "$WORK"
set +e
SCHEMATHESIS_HOOKS="$ROOT/Tests/Support/schemathesis_hooks.py" \
  "$VENV/bin/schemathesis" run "$SCHEMA" \
  --url "$BASE" \
  --checks "${SCHEMATHESIS_CHECKS:-$DEFAULT_CHECKS}" \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-10}" \
  --workers 1 \
  --request-timeout 10 \
  --generation-database none \
  --suppress-health-check all \
  --no-color \
  --report junit --report-junit-path "$WORK/junit.xml" \
  "${SEED_ARGS[@]}" "${EXTRA_ARGS[@]}"
status=$?
set -e
echo "schemathesis finished in $((SECONDS - started)) s with exit code $status"

if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  echo "schemathesis.sh: the server died during the run" >&2
  status=1
fi

# One plain summary line: operations tested, and those with a failure or an error.
if [ -f "$WORK/junit.xml" ]; then
  "$VENV/bin/python" - "$WORK/junit.xml" <<'PY' || true
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
cases = root.iter("testcase")
passed = failed = skipped = 0
for case in cases:
    if case.find("failure") is not None or case.find("error") is not None:
        failed += 1
    elif case.find("skipped") is not None:
        skipped += 1
    else:
        passed += 1
print("schemathesis: %d passed, %d failed, %d skipped" % (passed, failed, skipped))
PY
fi
exit "$status"
