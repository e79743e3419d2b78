"""Watches the Runwarden dashboard in headless Chromium, for DashboardBrowserTests.

Starts Chromium with the DevTools protocol on a free port, opens URL once, and polls the
page (never reloading it) until `#run-status` (or `--selector`) shows the expected status or the time runs
out. Writes READY_FILE as soon as the page shows a first status, and again with each new
status it shows, so the test can move the run along while the page watches (and wait for the
page to show a state rather than sleep). Saves a screenshot, then prints one JSON object:
{"initial", "final", "seen", "reloaded", "progress", "runner_tasks", "runner_links", "log", "exceptions", "clicked",
"graph", "bars", "chart", "selected", "drawn_ms", "background"}; "graph" has each node's statuses in the order the
page showed them, so a test can tell a node that changed live from one drawn finished.
With --click, clicks that element once it exists (a task row: the log pane opens); with
--press-enter, focuses it and presses Enter instead. --shot SELECTOR=PATH (repeatable) also saves
that element alone; --dark shows the page in the dark colour scheme; --until-mark NAME waits, after
the status, for the page's performance mark NAME (how long the page took to draw); --scroll-to
SELECTOR then scrolls to that element and waits until the task table has rows ("table").
"""

import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket  # PyPI websocket-client

PROBE = """(() => {
  if (window.__probeMarker === undefined) window.__probeMarker = 'set-once';
  const status = document.querySelector(SELECTOR);
  const progress = document.querySelector('#run-progress');
  return JSON.stringify({
    status: status ? status.dataset.status || '' : '',
    text: status ? status.textContent : '',
    done: progress ? Number(progress.dataset.done) : null,
    total: progress ? Number(progress.dataset.total) : null,
    runnerTasks: [...document.querySelectorAll('tr.selected [data-runner-task]')].map((a) => a.dataset.runnerTask),
    runnerLinks: [...document.querySelectorAll('#run-tasks [data-runner-link]')].map((a) => a.getAttribute('href')),
    navigations: performance.getEntriesByType('navigation').length,
    log: document.querySelector('#log-output')?.textContent ?? null,
    logRed: [...document.querySelectorAll('#log-output .ansi-fg-1')].map((s) => s.textContent),
    logNotes: [...document.querySelectorAll('#log-output .log-note')].map((s) => s.textContent),
    images: document.querySelectorAll('img').length,
    injected: window.__injected === true,
    marker: window.__probeMarker,
    graphMode: document.querySelector('svg[data-graph]')?.dataset.graph ?? null,
    nodes: [...document.querySelectorAll('svg[data-graph] g[data-task]')].map((g) => [g.dataset.task, g.dataset.status]),
    edges: [...document.querySelectorAll('svg[data-graph] path[data-from]')].map((p) => [p.dataset.from, p.dataset.to]),
    columns: [...document.querySelectorAll('svg[data-graph] g[data-depth]')].map((g) => Number(g.dataset.count)),
    bars: [...document.querySelectorAll('svg[data-timeline] rect[data-phase]')].map((r) => [r.dataset.task, Number(r.dataset.attempt), r.dataset.phase]),
    nowLine: !!document.querySelector('svg[data-timeline] [data-now]'),
    chart: [...document.querySelectorAll('svg[data-chart="durations"] rect[data-run-id]')].map((r) => [r.dataset.runId, r.dataset.status, Number(r.dataset.durationMs)]),
    selected: {node: document.querySelector('g.node.selected')?.dataset.task ?? null,
               row: document.querySelector('#run-tasks tr.log-selected')?.dataset.taskId ?? null,
               log: document.querySelector('#log-pane:not([hidden]) #log-task')?.textContent ?? null},
    drawnMs: performance.getEntriesByName(MARK)[0]?.startTime ?? null,
    background: getComputedStyle(document.documentElement).backgroundColor,
  });
})()"""


CLICK = """(() => {
  const target = document.querySelector(SELECTOR);
  if (target) target.click();
  return !!target;
})()"""

# The keyboard's way: focus the element, press Enter on it.
PRESS_ENTER = """(() => {
  const target = document.querySelector(SELECTOR);
  if (target) {
    target.focus();
    document.activeElement.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true }));
  }
  return !!target && document.activeElement === target;
})()"""


class Page:
    def __init__(self, url):
        self.socket = websocket.create_connection(url, timeout=10)
        self.next_id = 0
        self.exceptions = []
        self.violations = []

    def call(self, method, **params):
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("method") == "Runtime.exceptionThrown":
                details = message["params"]["exceptionDetails"]
                self.exceptions.append(details.get("exception", {}).get("description") or details.get("text"))
            if message.get("method") == "Log.entryAdded":
                entry = message["params"]["entry"]
                # What the page's Content-Security-Policy blocked (an inline script, a style).
                if entry.get("source") == "security" or "Content Security Policy" in entry.get("text", ""):
                    self.violations.append(entry.get("text"))
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")


# Where an element is on the page (scrolled into view first), for a screenshot of it alone.
ELEMENT_BOX = """(() => {
  const el = document.querySelector(SELECTOR);
  if (!el) return null;
  el.scrollIntoView({ block: "start" });
  const r = el.getBoundingClientRect();
  return { x: r.left + scrollX, y: r.top + scrollY, width: Math.ceil(r.width), height: Math.ceil(r.height) };
})()"""


TASK_ROWS = "document.querySelectorAll('#run-tasks tbody tr[data-task-id]').length"


def start_chromium(chromium, profile):
    process = subprocess.Popen(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
         "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1", f"--user-data-dir={profile}",
         "--window-size=1280,900", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            if process.poll() is not None:
                raise RuntimeError(f"chromium exited {process.returncode} before DevTools listened")
            continue
        found = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
        if found:
            return process, int(found.group(1))
    process.kill()
    raise RuntimeError("chromium did not report its DevTools port within 30 s")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--chromium", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--expect", required=True)
    parser.add_argument("--ready-file", required=True)
    parser.add_argument("--screenshot", required=True)
    parser.add_argument("--timeout", type=float, default=45)
    parser.add_argument("--selector", default="#run-status", help="the element whose data-status is watched")
    parser.add_argument("--click", help="an element to click once it exists")
    parser.add_argument("--press-enter", help="an element to focus and press Enter on once it exists")
    parser.add_argument("--shot", action="append", default=[], help="SELECTOR=PATH: a screenshot of that element")
    parser.add_argument("--dark", action="store_true", help="prefers-color-scheme: dark")
    parser.add_argument("--until-mark", help="also wait for this performance mark")
    parser.add_argument("--scroll-to", help="at the end, scroll to this element and wait for task rows")
    args = parser.parse_args()
    probe = PROBE.replace("SELECTOR", json.dumps(args.selector)).replace("MARK", json.dumps(args.until_mark or ""))

    profile = tempfile.mkdtemp(prefix="runwarden-chromium-")
    chromium, port = start_chromium(args.chromium, profile)
    try:
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
        target = next(t for t in targets if t.get("type") == "page")
        page = Page(target["webSocketDebuggerUrl"])
        page.call("Runtime.enable")
        page.call("Page.enable")
        page.call("Log.enable")
        if args.dark:
            page.call("Emulation.setEmulatedMedia", features=[{"name": "prefers-color-scheme", "value": "dark"}])
        page.call("Page.navigate", url=args.url)

        seen, initial, state = [], None, {}
        node_statuses = {}  # task name → the statuses its node showed, in order

        clicked = False
        first_marker = None
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            if args.click and page.evaluate(CLICK.replace("SELECTOR", json.dumps(args.click))):
                args.click, clicked = None, True
            if args.press_enter and page.evaluate(PRESS_ENTER.replace("SELECTOR", json.dumps(args.press_enter))):
                args.press_enter = None
            value = page.evaluate(probe)
            state = json.loads(value) if value else {}
            status = state.get("status", "")
            if status and initial is None:
                initial = status
                first_marker = state.get("marker")
            for name, node_status in state.get("nodes") or []:
                shown = node_statuses.setdefault(name, [])
                if not shown or shown[-1] != node_status:
                    shown.append(node_status)
            if status and (not seen or seen[-1] != status):
                seen.append(status)
                # Replaced whole, so the test never reads half a status.
                with open(args.ready_file + ".tmp", "w") as ready:
                    ready.write(status)
                os.replace(args.ready_file + ".tmp", args.ready_file)
            if status == args.expect and (not args.until_mark or state.get("drawnMs") is not None):
                break
            time.sleep(0.1)
        table = None
        if args.scroll_to:
            page.evaluate(f"document.querySelector({json.dumps(args.scroll_to)})?.scrollIntoView()")
            started, rows = time.monotonic(), 0
            while time.monotonic() - started < 10 and not rows:
                rows = page.evaluate(TASK_ROWS)
                time.sleep(0.05)
            table = {"rows": rows, "ms": round((time.monotonic() - started) * 1000)}
        time.sleep(0.3)  # let the progress bar's last update paint before the screenshot
        state = json.loads(page.evaluate(probe) or "{}")
        shot = page.call("Page.captureScreenshot", format="png")
        with open(args.screenshot, "wb") as out:
            out.write(base64.b64decode(shot["data"]))
        for spec in args.shot:
            selector, path = spec.rsplit("=", 1)
            box = page.evaluate(ELEMENT_BOX.replace("SELECTOR", json.dumps(selector)))
            if box and box["width"] and box["height"]:
                time.sleep(0.1)
                shot = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                                 clip=dict(box, scale=1))
                with open(path, "wb") as out:
                    out.write(base64.b64decode(shot["data"]))
        reloaded = state.get("navigations") != 1 or state.get("marker") != first_marker
        print(json.dumps({
            "initial": initial, "final": state.get("status"), "text": state.get("text"), "seen": seen,
            "reloaded": reloaded, "progress": {"done": state.get("done"), "total": state.get("total")},
            "runner_tasks": state.get("runnerTasks"), "runner_links": state.get("runnerLinks"),
            "log": {"text": state.get("log"), "red": state.get("logRed"), "notes": state.get("logNotes"),
                    "images": state.get("images"), "injected": state.get("injected")},
            "exceptions": page.exceptions, "policy_violations": page.violations, "clicked": clicked,
            "graph": {"mode": state.get("graphMode"), "nodes": dict(state.get("nodes") or []), "seen": node_statuses,
                      "edges": state.get("edges"), "columns": state.get("columns")},
            "bars": state.get("bars"), "now_line": state.get("nowLine"), "chart": state.get("chart"),
            "selected": state.get("selected"), "drawn_ms": state.get("drawnMs"), "background": state.get("background"),
            "table": table,
        }))
    finally:
        chromium.kill()
        chromium.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
