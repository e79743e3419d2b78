"""Watches the Runwarden dashboard in headless Chromium, for DashboardBrowserTests.

Starts Chromium with the DevTools protocol on a free port, opens URL once, and polls the
page (never reloading it) until `#run-status` (or `--selector`) shows the expected status or the time runs
out. Writes READY_FILE as soon as the page shows a first status, and again with each new
status it shows, so the test can move the run along while the page watches (and wait for the
page to show a state rather than sleep). Saves a screenshot, then prints one JSON object:
{"initial", "final", "seen", "reloaded", "progress", "runner_tasks", "runner_links", "log", "exceptions", "clicked"}.
With --click, clicks that element once it exists (a task row: the log pane opens); with
--press-enter, focuses it and presses Enter instead.
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
    args = parser.parse_args()
    probe = PROBE.replace("SELECTOR", json.dumps(args.selector))

    profile = tempfile.mkdtemp(prefix="runwarden-chromium-")
    chromium, port = start_chromium(args.chromium, profile)
    try:
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
        target = next(t for t in targets if t.get("type") == "page")
        page = Page(target["webSocketDebuggerUrl"])
        page.call("Runtime.enable")
        page.call("Page.enable")
        page.call("Log.enable")
        page.call("Page.navigate", url=args.url)

        seen, initial, state = [], None, {}

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
            if status and (not seen or seen[-1] != status):
                seen.append(status)
                # Replaced whole, so the test never reads half a status.
                with open(args.ready_file + ".tmp", "w") as ready:
                    ready.write(status)
                os.replace(args.ready_file + ".tmp", args.ready_file)
            if status == args.expect:
                break
            time.sleep(0.1)
        time.sleep(0.3)  # let the progress bar's last update paint before the screenshot
        state = json.loads(page.evaluate(probe) or "{}")
        shot = page.call("Page.captureScreenshot", format="png")
        with open(args.screenshot, "wb") as out:
            out.write(base64.b64decode(shot["data"]))
        reloaded = state.get("navigations") != 1 or state.get("marker") != first_marker
        print(json.dumps({
            "initial": initial, "final": state.get("status"), "text": state.get("text"), "seen": seen,
            "reloaded": reloaded, "progress": {"done": state.get("done"), "total": state.get("total")},
            "runner_tasks": state.get("runnerTasks"), "runner_links": state.get("runnerLinks"),
            "log": {"text": state.get("log"), "red": state.get("logRed"), "notes": state.get("logNotes"),
                    "images": state.get("images"), "injected": state.get("injected")},
            "exceptions": page.exceptions, "policy_violations": page.violations, "clicked": clicked,
        }))
    finally:
        chromium.kill()
        chromium.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
