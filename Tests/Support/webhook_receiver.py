"""A webhook receiver for Runwarden's tests, verifying every request with the Standard Webhooks
reference implementation (PyPI `standardwebhooks`) — code we did not write.

Usage: webhook_receiver.py SECRET PORT_FILE LOG_FILE [--fail-first N] [--status CODE]
Binds 127.0.0.1 on a free port, writes the port to PORT_FILE, and appends one JSON line per
request to LOG_FILE: {"verified": bool, "webhook_id", "type", "seq", "status", "answered"}.
The first N requests are answered 503 (to exercise retries); --status answers every request
with CODE instead of 204.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

secret, port_file, log_file = sys.argv[1], sys.argv[2], sys.argv[3]
fail_first = int(sys.argv[sys.argv.index("--fail-first") + 1]) if "--fail-first" in sys.argv else 0
fixed_status = int(sys.argv[sys.argv.index("--status") + 1]) if "--status" in sys.argv else None
verifier = Webhook(secret)
seen = {"count": 0}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            payload = verifier.verify(body, headers)
            verified = True
        except WebhookVerificationError:
            payload = json.loads(body or b"{}")
            verified = False
        seen["count"] += 1
        if fixed_status is not None:
            status = fixed_status
        else:
            status = 503 if seen["count"] <= fail_first else 204
        record = {
            "verified": verified,
            "webhook_id": headers.get("webhook-id"),
            "type": payload.get("type"),
            "seq": payload.get("seq"),
            "status": payload.get("status"),
            "run_status": (payload.get("run") or {}).get("status"),
            "answered": status,
        }
        with open(log_file, "a") as log:
            log.write(json.dumps(record) + "\n")
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as handle:
    handle.write(str(server.server_address[1]))
import os

os.replace(port_file + ".tmp", port_file)
server.serve_forever()
