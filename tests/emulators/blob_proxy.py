"""A fault-injecting HTTP proxy in front of Azurite, for the shared state store's retry and exactly-once tests.

Each request is, at random with ``fault_rate``: answered ``503 ServerBusy`` or ``429`` (with ``Retry-After: 0``)
without reaching Azurite; or *forwarded and then dropped*, its connection closed before the answer is sent.
That last one is the hard case: the service did the write, the client never heard, and its retry must not do it
twice. Everything else is passed through unchanged (the SharedKey signature covers the path and ``x-ms-*``
headers, both kept). The log counts what was done to each request.
"""

from __future__ import annotations

import http.client
import random
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

_HOP_HEADERS = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "upgrade"}


class FaultyBlobProxy:
    """``url`` forwards to ``target`` (``http://127.0.0.1:<port>``), injecting faults at ``fault_rate``."""

    def __init__(self, target: str, *, fault_rate: float = 0.0, seed: int = 7) -> None:
        parts = urlsplit(target)
        self.target_host, self.target_port = parts.hostname or "127.0.0.1", parts.port or 80
        self.fault_rate = fault_rate
        self.random = random.Random(seed)
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _any(self) -> None:
                proxy.handle(self)

            do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = do_PATCH = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _draw(self) -> str:
        with self.lock:
            if self.random.random() >= self.fault_rate:
                return "pass"
            return self.random.choice(("503", "429", "drop"))

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        fault = self._draw()
        with self.lock:
            self.counts[fault] += 1
        if fault in ("503", "429"):
            code = "ServerBusy" if fault == "503" else "TooManyRequests"
            payload = (f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code>'
                       f"<Message>injected {fault}</Message></Error>").encode()
            request.send_response(int(fault))
            request.send_header("x-ms-error-code", code)
            request.send_header("Content-Type", "application/xml")
            request.send_header("Content-Length", str(len(payload)))
            if fault == "429":
                request.send_header("Retry-After", "0")
            request.end_headers()
            request.wfile.write(payload)
            return
        upstream = http.client.HTTPConnection(self.target_host, self.target_port, timeout=30)
        try:
            headers = {key: value for key, value in request.headers.items() if key.lower() not in _HOP_HEADERS}
            upstream.request(request.command, request.path, body=body, headers=headers)
            answer = upstream.getresponse()
            data = answer.read()
        finally:
            upstream.close()
        if fault == "drop":
            request.close_connection = True
            request.connection.close()  # the service did it; the client never hears
            return
        request.send_response(answer.status, answer.reason)
        for key, value in answer.getheaders():
            if key.lower() not in _HOP_HEADERS and (key.lower() != "content-length" or request.command == "HEAD"):
                request.send_header(key, value)
        if request.command != "HEAD":
            request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(data)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
