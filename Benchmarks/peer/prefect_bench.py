#!/usr/bin/env python3
"""Load a Prefect 3 server with the same workloads we run against Runwarden.

Python 3.11 standard library only (http.client with one keep-alive connection per worker thread).

Workloads (each concurrency level is bounded by --duration seconds AND --max-requests iterations,
whichever comes first; an iteration already in flight when the bound is hit is allowed to finish and
is counted, and the wall time runs until the last worker has returned):

  lifecycle  POST /api/flow_runs/ (SCHEDULED) -> set_state PENDING -> RUNNING -> COMPLETED
             -> GET /api/flow_runs/{id} and check state_type == COMPLETED.
             An iteration is a success only if every step succeeded (HTTP 2xx, set_state status
             ACCEPT, final state_type COMPLETED). runs_per_s = successful iterations / wall seconds.
             A failed iteration is counted once, under the reason of its first failing step:
             the HTTP status ("503"), the set_state status ("ABORT", "REJECT", "WAIT"),
             "state:<TYPE>" for a wrong final state, or "error:<ExceptionName>" for a transport error.
  read       GET /api/flow_runs/{id} on ids created beforehand (cycled through).
  healthz    GET /api/health.

Latency figures are over every request that got an HTTP response (whatever its status); requests
that raised a transport error (timeout, reset) are counted as failures but have no latency.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import socket
import sys
import threading
import time
import urllib.parse
import uuid
from datetime import datetime, timezone

DEFAULT_LEVELS = (1, 8, 32)


# --------------------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------------------

class Conn:
    """One keep-alive HTTP/1.1 connection (one per worker thread)."""

    def __init__(self, host: str, port: int, timeout: float):
        self.host, self.port, self.timeout = host, port, timeout
        self.c: http.client.HTTPConnection | None = None
        self.used = False  # has the current connection already carried a request?

    def close(self) -> None:
        if self.c is not None:
            try:
                self.c.close()
            except Exception:
                pass
        self.c, self.used = None, False

    def request(self, method: str, path: str, body=None) -> tuple[int, bytes]:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        for attempt in (0, 1):
            if self.c is None:
                self.c = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                self.c.connect()
                self.c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            reused = self.used
            try:
                self.c.request(method, path, body=data, headers=headers)
                r = self.c.getresponse()
                payload = r.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                # A keep-alive connection the server had already closed: retry once on a fresh one.
                if attempt == 0 and reused:
                    continue
                raise
            except Exception:
                self.close()
                raise
            self.used = True
            if r.will_close:
                self.close()
            return r.status, payload
        raise RuntimeError("unreachable")


def percentile(sorted_vals: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list (q in 0..100)."""
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, int(-(-q * len(sorted_vals) // 100)) - 1))
    return sorted_vals[k]


def lat_summary(vals: list[float]) -> dict:
    s = sorted(vals)
    r = lambda v: None if v is None else round(v, 2)  # noqa: E731
    return {"p50": r(percentile(s, 50)), "p99": r(percentile(s, 99)), "n": len(s),
            "max": r(s[-1]) if s else None}


# --------------------------------------------------------------------------------------------------
# RSS of the server process tree
# --------------------------------------------------------------------------------------------------

def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(name))
    return kids


def _vmrss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return 0  # kernel thread / zombie


def rss_tree_mb(pid: int) -> tuple[float | None, dict[int, float]]:
    """VmRSS of pid and all its descendants (prefect server start runs uvicorn in a child)."""
    kids = _children_map()
    todo, seen, per = [pid], set(), {}
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        kib = _vmrss_kib(p)
        if kib is not None:
            per[p] = round(kib / 1024, 1)
        todo.extend(kids.get(p, []))
    if pid not in per:
        return None, {}
    return round(sum(per.values()), 1), per


class RssSampler(threading.Thread):
    def __init__(self, pid: int, every: float = 0.5):
        super().__init__(daemon=True)
        self.pid, self.every, self.peak = pid, every, 0.0
        self.stop_ev = threading.Event()

    def run(self) -> None:
        while not self.stop_ev.is_set():
            total, _ = rss_tree_mb(self.pid)
            if total is not None:
                self.peak = max(self.peak, total)
            self.stop_ev.wait(self.every)


# --------------------------------------------------------------------------------------------------
# Load runner
# --------------------------------------------------------------------------------------------------

class Level:
    """Shared, lock-protected bookkeeping for one workload at one concurrency level."""

    def __init__(self, max_iters: int, duration: float):
        self.lock = threading.Lock()
        self.max_iters, self.duration = max_iters, duration
        self.claimed = 0
        self.deadline = 0.0
        self.ok = 0
        self.failed = 0
        self.failures: dict[str, int] = {}
        self.failures_by_step: dict[str, dict[str, int]] = {}
        self.failure_samples: dict[str, str] = {}  # first response body seen per failure reason
        self.lat: dict[str, list[float]] = {}
        self.stopped_by = None
        self.ok_ids: list[str] = []

    def claim(self) -> bool:
        with self.lock:
            if self.claimed >= self.max_iters:
                self.stopped_by = self.stopped_by or "count"
                return False
            if time.perf_counter() >= self.deadline:
                self.stopped_by = self.stopped_by or "time"
                return False
            self.claimed += 1
            return True

    def record(self, lat: dict[str, list[float]], ok: bool, reason: str | None = None,
               step: str | None = None, run_id: str | None = None, sample=None) -> None:
        with self.lock:
            for k, v in lat.items():
                self.lat.setdefault(k, []).extend(v)
            if ok:
                self.ok += 1
                if run_id:
                    self.ok_ids.append(run_id)
            else:
                self.failed += 1
                self.failures[reason] = self.failures.get(reason, 0) + 1
                by = self.failures_by_step.setdefault(step, {})
                by[reason] = by.get(reason, 0) + 1
                if reason not in self.failure_samples and sample is not None:
                    if isinstance(sample, bytes):
                        sample = sample.decode("utf-8", "replace")
                    self.failure_samples[reason] = str(sample)[:300]


def run_level(concurrency: int, level: Level, make_worker_state, iteration) -> float:
    """Run `iteration(conn, state, level)` on `concurrency` threads; return wall seconds."""
    start_ev = threading.Barrier(concurrency + 1)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        conn = Conn(HOST, PORT, TIMEOUT)
        state = make_worker_state(i)
        try:
            start_ev.wait()
            while level.claim():
                iteration(conn, state, level)
        except BaseException as e:  # a bug in the harness, not a server failure
            errors.append(e)
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    for t in threads:
        t.start()
    level.deadline = time.perf_counter() + level.duration
    t0 = time.perf_counter()
    start_ev.wait()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return wall


def timed(conn: Conn, lat: dict, kind: str, method: str, path: str, body=None):
    t = time.perf_counter()
    status, payload = conn.request(method, path, body)
    lat.setdefault(kind, []).append((time.perf_counter() - t) * 1000)
    return status, payload


def lifecycle_iteration(flow_id: str):
    def it(conn: Conn, _state, level: Level) -> None:
        lat: dict[str, list[float]] = {}
        step = "create"
        try:
            status, payload = timed(conn, lat, "create", "POST", "/api/flow_runs/",
                                    {"flow_id": flow_id, "name": f"bench-{uuid.uuid4().hex[:12]}",
                                     "state": {"type": "SCHEDULED"}})
            if not 200 <= status < 300:
                return level.record(lat, False, str(status), step, sample=payload)
            run_id = json.loads(payload)["id"]
            for target in ("PENDING", "RUNNING", "COMPLETED"):
                step = f"set_state:{target}"
                status, payload = timed(conn, lat, "set_state", "POST",
                                        f"/api/flow_runs/{run_id}/set_state",
                                        {"state": {"type": target}})
                if not 200 <= status < 300:
                    return level.record(lat, False, str(status), step, sample=payload)
                verdict = json.loads(payload).get("status")
                if verdict != "ACCEPT":
                    return level.record(lat, False, str(verdict), step, sample=payload)
            step = "get"
            status, payload = timed(conn, lat, "get", "GET", f"/api/flow_runs/{run_id}")
            if not 200 <= status < 300:
                return level.record(lat, False, str(status), step, sample=payload)
            st = json.loads(payload).get("state_type")
            if st != "COMPLETED":
                return level.record(lat, False, f"state:{st}", step, sample=payload)
            level.record(lat, True, run_id=run_id)
        except (OSError, http.client.HTTPException, ValueError, KeyError) as e:
            level.record(lat, False, f"error:{type(e).__name__}", step, sample=repr(e))
    return it


def get_iteration(path_for):
    def it(conn: Conn, state, level: Level) -> None:
        lat: dict[str, list[float]] = {}
        path = path_for(state)
        try:
            status, payload = timed(conn, lat, "req", "GET", path)
            if 200 <= status < 300:
                level.record(lat, True)
            else:
                level.record(lat, False, str(status), "get", sample=payload)
        except (OSError, http.client.HTTPException) as e:
            level.record(lat, False, f"error:{type(e).__name__}", "get", sample=repr(e))
    return it


# --------------------------------------------------------------------------------------------------
# Setup helpers
# --------------------------------------------------------------------------------------------------

def api(method: str, path: str, body=None, tries: int = 20) -> tuple[int, object]:
    """A setup call outside the measurements; retried on 5xx / transport errors."""
    last = None
    for i in range(tries):
        conn = Conn(HOST, PORT, TIMEOUT)
        try:
            status, payload = conn.request(method, path, body)
            if status < 500:
                return status, (json.loads(payload) if payload else None)
            last = f"HTTP {status}: {payload[:200]!r}"
        except (OSError, http.client.HTTPException) as e:
            last = repr(e)
        finally:
            conn.close()
        time.sleep(min(0.2 * (i + 1), 2.0))
    raise RuntimeError(f"{method} {path} kept failing: {last}")


def ensure_flow() -> str:
    status, body = api("POST", "/api/flows/", {"name": "runwarden-bench"})
    if not 200 <= status < 300:
        raise RuntimeError(f"POST /api/flows/ -> {status} {body}")
    return body["id"]


def ensure_read_ids(flow_id: str, have: list[str], want: int) -> list[str]:
    ids = list(dict.fromkeys(have))[:want]
    while len(ids) < want:
        status, body = api("POST", "/api/flow_runs/",
                           {"flow_id": flow_id, "name": f"read-{uuid.uuid4().hex[:12]}",
                            "state": {"type": "SCHEDULED"}})
        if 200 <= status < 300:
            ids.append(body["id"])
    return ids


def server_version(fallback: str | None) -> str:
    try:
        status, body = api("GET", "/api/admin/version", tries=3)
        if status == 200 and isinstance(body, str):
            return body
    except RuntimeError:
        pass
    return fallback or "unknown"


def wait_healthy(timeout: float) -> None:
    end = time.time() + timeout
    while True:
        try:
            c = Conn(HOST, PORT, 5)
            status, _ = c.request("GET", "/api/health")
            c.close()
            if status == 200:
                return
        except (OSError, http.client.HTTPException):
            pass
        if time.time() > end:
            raise SystemExit(f"server at {HOST}:{PORT} not healthy after {timeout:.0f}s")
        time.sleep(0.5)


# --------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------

def fmt(v, nd=1) -> str:
    return "-" if v is None else f"{v:.{nd}f}"


def fails_str(d: dict) -> str:
    return ", ".join(f"{k}:{v}" for k, v in sorted(d.items(), key=lambda kv: -kv[1])) or "-"


def main() -> int:
    global HOST, PORT, TIMEOUT
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:4200")
    ap.add_argument("--out", default="results.json")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per level (default 10)")
    ap.add_argument("--max-requests", type=int, default=2000,
                    help="iterations per level (default 2000); a lifecycle iteration is 5 requests")
    ap.add_argument("--levels", default="1,8,32", help="concurrency levels (default 1,8,32)")
    ap.add_argument("--pid", type=int, help="server PID: report VmRSS of it and its descendants")
    ap.add_argument("--timeout", type=float, default=30.0, help="per-request timeout, s (default 30)")
    ap.add_argument("--settle", type=float, default=2.0, help="pause between levels, s (default 2)")
    ap.add_argument("--read-ids", type=int, default=200, help="distinct flow runs for the read workload")
    ap.add_argument("--health-timeout", type=float, default=30.0)
    ap.add_argument("--prefect-version", help="fallback if GET /api/admin/version fails")
    args = ap.parse_args()

    u = urllib.parse.urlsplit(args.url)
    if u.scheme != "http" or not u.hostname:
        ap.error("--url must be http://host:port")
    HOST, PORT, TIMEOUT = u.hostname, u.port or 80, args.timeout
    levels = [int(x) for x in args.levels.split(",") if x.strip()]

    wait_healthy(args.health_timeout)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    load_before = [round(x, 2) for x in os.getloadavg()]
    if load_before[0] > 0.5 * (os.cpu_count() or 1):
        print(f"warning: 1-min load average is {load_before[0]} on {os.cpu_count()} CPUs before the "
              "load starts; other work on this machine will skew the figures", file=sys.stderr)
    version = server_version(args.prefect_version)

    rss_idle, rss_idle_per = (None, {})
    sampler = None
    if args.pid:
        rss_idle, rss_idle_per = rss_tree_mb(args.pid)
        if rss_idle is None:
            print(f"warning: no /proc/{args.pid}/status", file=sys.stderr)
        else:
            sampler = RssSampler(args.pid)
            sampler.start()

    print(f"Prefect {version} at {args.url}  (levels {levels}, bound {args.duration:g}s or "
          f"{args.max_requests} iterations per level)", flush=True)
    if rss_idle is not None:
        print(f"server RSS idle: {rss_idle:.1f} MiB  (process tree: {rss_idle_per})", flush=True)

    flow_id = ensure_flow()
    results: dict = {"lifecycle": {}, "read": {}, "healthz": {}}
    completed_ids: list[str] = []
    t_all = time.perf_counter()

    # ---- lifecycle -------------------------------------------------------------------------------
    it = lifecycle_iteration(flow_id)
    for c in levels:
        lv = Level(args.max_requests, args.duration)
        wall = run_level(c, lv, lambda i: None, it)
        completed_ids.extend(lv.ok_ids)
        results["lifecycle"][str(c)] = {
            "runs_per_s": round(lv.ok / wall, 2),
            "ok": lv.ok, "failed": lv.failed, "failures": lv.failures,
            "failures_by_step": lv.failures_by_step, "failure_samples": lv.failure_samples,
            "latency_ms": {k: lat_summary(lv.lat.get(k, [])) for k in ("create", "set_state", "get")},
            "iterations": lv.claimed, "wall_s": round(wall, 2), "stopped_by": lv.stopped_by,
        }
        r = results["lifecycle"][str(c)]
        print(f"  lifecycle c={c:<3} {r['runs_per_s']:7.2f} runs/s  ok={lv.ok} failed={lv.failed}"
              f"  ({wall:.1f}s, {lv.stopped_by})", flush=True)
        time.sleep(args.settle)

    # ---- reads and health ------------------------------------------------------------------------
    read_ids = ensure_read_ids(flow_id, completed_ids, args.read_ids)
    for c in levels:
        for name, path_for, make_state in (
            ("read", lambda st: f"/api/flow_runs/{read_ids[next(st) % len(read_ids)]}",
             lambda i: iter(range(i * 7919, 1 << 62))),
            ("healthz", lambda st: "/api/health", lambda i: None),
        ):
            lv = Level(args.max_requests, args.duration)
            wall = run_level(c, lv, make_state, get_iteration(path_for))
            s = lat_summary(lv.lat.get("req", []))
            results[name][str(c)] = {
                "reads_per_s": round(lv.ok / wall, 2),
                "ok": lv.ok, "failed": lv.failed, "failures": lv.failures,
                "failure_samples": lv.failure_samples,
                "p50_ms": s["p50"], "p99_ms": s["p99"], "max_ms": s["max"],
                "iterations": lv.claimed, "wall_s": round(wall, 2), "stopped_by": lv.stopped_by,
            }
            r = results[name][str(c)]
            print(f"  {name:<9} c={c:<3} {r['reads_per_s']:7.2f} req/s   ok={lv.ok} failed={lv.failed}"
                  f"  ({wall:.1f}s, {lv.stopped_by})", flush=True)
            time.sleep(args.settle)
        h = results["healthz"][str(c)]["reads_per_s"]
        results["read"][str(c)]["read_over_health"] = (
            round(results["read"][str(c)]["reads_per_s"] / h, 3) if h else None)

    rss_after, _ = rss_tree_mb(args.pid) if args.pid else (None, {})
    if sampler:
        sampler.stop_ev.set()
        sampler.join()

    out = {
        "system": "prefect",
        "version": version,
        "workloads": results,
        "rss_mb_idle": rss_idle,
        "rss_mb_peak": sampler.peak if sampler else None,
        "rss_mb_after": rss_after,
        "meta": {
            "url": args.url, "levels": levels, "duration_s": args.duration,
            "max_requests": args.max_requests, "request_timeout_s": args.timeout,
            "read_ids": len(read_ids), "total_s": round(time.perf_counter() - t_all, 1),
            "started_utc": started,
            "finished_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "loadavg_before": load_before, "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "host": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "client": "python http.client, 1 keep-alive connection per worker thread",
            "notes": "runs_per_s/reads_per_s = successes / wall seconds of the level; latency over "
                     "every request that got an HTTP response; rss = VmRSS of --pid + descendants",
        },
    }
    d = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(d, exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=2)
        f.write("\n")

    # ---- table -----------------------------------------------------------------------------------
    print()
    print(f"Prefect {version}   RSS idle {fmt(rss_idle)} MiB, peak {fmt(out['rss_mb_peak'])} MiB, "
          f"after {fmt(rss_after)} MiB   (load avg before {load_before}, after "
          f"{out['meta']['loadavg_after']}, {os.cpu_count()} CPUs)")
    print()
    hdr = (f"{'lifecycle':<10}{'runs/s':>8}{'ok':>6}{'fail':>6}  {'create p50/p99':>15}  "
           f"{'set_state p50/p99':>17}  {'get p50/p99':>13}  failures")
    print(hdr)
    print("-" * len(hdr))
    for c in levels:
        r = results["lifecycle"][str(c)]
        L = r["latency_ms"]
        pp = lambda k: f"{fmt(L[k]['p50'], 0)}/{fmt(L[k]['p99'], 0)}"  # noqa: E731
        print(f"{'c=' + str(c):<10}{r['runs_per_s']:>8.2f}{r['ok']:>6}{r['failed']:>6}  {pp('create'):>15}  "
              f"{pp('set_state'):>17}  {pp('get'):>13}  {fails_str(r['failures'])}")
    print("(latencies in ms)")
    print()
    hdr = f"{'reads':<10}{'workload':<9}{'req/s':>9}{'ok':>7}{'fail':>6}{'p50 ms':>9}{'p99 ms':>9}  failures"
    print(hdr)
    print("-" * len(hdr))
    for c in levels:
        for name in ("read", "healthz"):
            r = results[name][str(c)]
            print(f"{'c=' + str(c):<10}{name:<9}{r['reads_per_s']:>9.1f}{r['ok']:>7}{r['failed']:>6}"
                  f"{fmt(r['p50_ms']):>9}{fmt(r['p99_ms']):>9}  {fails_str(r['failures'])}")
        print(f"{'':<10}read/health = {fmt(results['read'][str(c)]['read_over_health'], 3)}")
    print()
    print(f"wrote {args.out}")
    return 0


HOST, PORT, TIMEOUT = "127.0.0.1", 4200, 30.0

if __name__ == "__main__":
    sys.exit(main())
