"""Schemathesis hooks for .ci/schemathesis.sh.

They change only what would make the fuzz run slow or send traffic off this machine; the OpenAPI
document itself stays truthful:

- `wait` (long-poll seconds, up to 60) is clamped to 0, so no request waits.
- Webhook and callback URLs in request bodies are pointed at a closed loopback port, so the
  server's webhook dispatcher never tries to reach a generated host.
- Server-Sent Events streams (which may never end) are read for STREAM_SECONDS only; schemathesis
  checks the frames that arrived in that time.
"""

from urllib.parse import urlsplit, urlunsplit

import schemathesis

# Port 9 (discard) on loopback: nothing listens there, so deliveries fail fast and stay local.
SAFE_NETLOC = "127.0.0.1:9"
URL_FIELDS = ("url", "callback_url")
STREAM_SECONDS = 1


def _clamp_wait(query):
    if not isinstance(query, dict) or "wait" not in query:
        return
    value = query["wait"]
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return  # a malformed value is answered 422 at once
    if seconds > 0:
        query["wait"] = 0


def _localise_url(value):
    if not isinstance(value, str):
        return value
    try:
        parts = urlsplit(value)
    except ValueError:
        return "http://%s/" % SAFE_NETLOC
    scheme = parts.scheme if parts.scheme.lower() in ("http", "https") else "http"
    return urlunsplit((scheme, SAFE_NETLOC, parts.path, parts.query, parts.fragment))


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.operation.path.endswith("/stream"):
        kwargs["timeout"] = STREAM_SECONDS
    _clamp_wait(case.query)
    body = case.body
    if isinstance(body, dict):
        for field in URL_FIELDS:
            if field in body:
                body[field] = _localise_url(body[field])
