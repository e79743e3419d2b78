"""A scriptable webhook receiver for Runwarden's delivery tests. Every request is verified with
the Standard Webhooks reference implementation (PyPI `standardwebhooks`) — code we did not write.

Usage: webhook_scripted_receiver.py --port-file PATH --log PATH [--secret whsec_...]...
           [--port N] [--fail-first N] [--fail-status CODE] [--status CODE] [--retry-after SECONDS] [--hang]

Binds 127.0.0.1 (on --port, else a free port), writes the port to --port-file once it listens,
and appends one JSON line per request to --log:
  {"path", "verified", "secret_index", "webhook_id", "webhook_timestamp", "webhook_signature",
   "payload", "answered", "received_at"}
`secret_index` is the position of the --secret that verified the request (null when none did).
The first N requests (--fail-first) are answered 503, or --fail-status CODE (with `Retry-After`
when --retry-after is given: `N` seconds, or `date:N` for an HTTP date N seconds ahead); later ones
204, or --status CODE. With --hang a request is logged and never answered.
"""
import argparse
import email.utils
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

parser = argparse.ArgumentParser()
parser.add_argument("--port-file", required=True)
parser.add_argument("--log", required=True)
parser.add_argument("--secret", action="append", default=[])
parser.add_argument("--port", type=int, default=0)
parser.add_argument("--fail-first", type=int, default=0)
parser.add_argument("--fail-status", type=int, default=503)
parser.add_argument("--status", type=int, default=204)
parser.add_argument("--retry-after", default=None)
parser.add_argument("--hang", action="store_true")
options = parser.parse_args()

verifiers = [Webhook(secret) for secret in options.secret]
lock = threading.Lock()
seen = {"count": 0}


def log(record):
    with lock:
        with open(options.log, "a") as handle:
            handle.write(json.dumps(record) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {name.lower(): value for name, value in self.headers.items()}
        secret_index = None
        for index, verifier in enumerate(verifiers):
            try:
                verifier.verify(body, headers)
                secret_index = index
                break
            except WebhookVerificationError:
                continue
        try:
            payload = json.loads(body or b"null")
        except ValueError:
            payload = None
        with lock:
            seen["count"] += 1
            number = seen["count"]
        if options.hang:
            status = None
        elif number <= options.fail_first:
            status = options.fail_status
        else:
            status = options.status
        log({
            "path": self.path,
            "verified": secret_index is not None,
            "secret_index": secret_index,
            "webhook_id": headers.get("webhook-id"),
            "webhook_timestamp": headers.get("webhook-timestamp"),
            "webhook_signature": headers.get("webhook-signature"),
            "payload": payload,
            "answered": status,
            "received_at": time.time(),
        })
        if status is None:
            time.sleep(3600)  # accept, read, never answer
            return
        self.send_response(status)
        if number <= options.fail_first and options.retry_after is not None:
            value = options.retry_after
            if value.startswith("date:"):
                value = email.utils.formatdate(time.time() + float(value[5:]), usegmt=True)
            self.send_header("Retry-After", value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


server = Server(("127.0.0.1", options.port), Handler)
with open(options.port_file + ".tmp", "w") as handle:
    handle.write(str(server.server_address[1]))
os.replace(options.port_file + ".tmp", options.port_file)
server.serve_forever()
