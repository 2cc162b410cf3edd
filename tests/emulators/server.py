"""A small HTTPS server for emulating Azure REST APIs on loopback, with a request log and faults.

The real Azure SDK clients talk to it over real TLS: a certificate for 127.0.0.1/localhost is made
at start and the clients verify it (``connection_verify`` / ``ca_bundle``), nothing is turned off.
Sockets get TCP_NODELAY (without it every request stalls ~40 ms on delayed ACKs) and every error
has a JSON body, as the SDKs expect. Handlers register per method and path pattern; faults can be
queued for matching requests (429 with Retry-After, 500/503, latency, a response time, dropped
connections) or drawn at a rate from a seeded random generator.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import random
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape


def make_certificate(folder: Path, names: tuple[str, ...] = ("localhost", "127.0.0.1")) -> tuple[Path, Path]:
    """A self-signed certificate (and key) for ``names`` (host names and IP addresses); returns (cert.pem,
    key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "orbit-test-emulator")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([_san(name) for name in names]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "emulator-cert.pem", folder / "emulator-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def _san(name: str) -> Any:
    from cryptography import x509

    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    raw_headers: list[tuple[str, str]]  # as sent (case kept), for metadata keys
    body: bytes
    match: re.Match[str] | None = None

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class Response:
    status: int = 200
    body: Any = None  # dict/list → JSON; bytes → as is; None → empty
    headers: dict[str, str] = field(default_factory=dict)


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    """An ARM-style JSON error (``{"error": {"code", "message"}}``), also carried in ``x-ms-error-code``."""
    body = {"error": {"code": code, "message": message}}
    return Response(status, body, {"x-ms-error-code": code, **(headers or {})})


def storage_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    """A storage-style XML error (``<Error><Code/><Message/></Error>``), also carried in ``x-ms-error-code``."""
    body = (f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{escape(code)}</Code>'
            f"<Message>{escape(message)}</Message></Error>")
    return Response(status, body.encode(), {"x-ms-error-code": code, "Content-Type": "application/xml",
                                            **(headers or {})})


@dataclass
class Fault:
    """What to do to a matching request instead of (or before) handling it."""

    # "429" | "500" | "503" | "drop" | "latency" (``seconds`` slept before the request is handled) |
    # "response-time" (answered ``seconds`` after the request arrived, the emulator's own work done within that
    # time, as a service's response time is; when its work takes longer, as soon as it is done: decision 0089)
    kind: str
    method: str | None = None  # None: any method
    path: str | None = None  # regex searched in the path; None: any
    count: int = 1  # how many requests it hits (-1: forever)
    retry_after: float = 0
    seconds: float = 0  # for latency

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method:
            return False
        return self.path is None or bool(re.search(self.path, path))


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: str
    status: int
    fault: str | None
    at: float


Handler = Callable[[Request], Response]


class Emulator:
    """Routes plus state; serve it with :func:`serve`."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.log: list[LoggedRequest] = []
        self.faults: list[Fault] = []
        self.fault_rate = 0.0
        self.fault_kinds: tuple[str, ...] = ("429", "503")
        self.random = random.Random(1234)
        self.lock = threading.RLock()
        self.base_url = ""
        self.error = error  # how this service words its errors (storage services answer XML)

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.routes.append((method, re.compile(pattern + r"$", re.IGNORECASE), handler))
            return handler

        return register

    def inject(self, fault: Fault) -> Fault:
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear_log(self) -> None:
        with self.lock:
            self.log.clear()

    def requests(self, method: str | None = None, path: str | None = None) -> list[LoggedRequest]:
        with self.lock:
            return [r for r in self.log if (method is None or r.method == method)
                    and (path is None or re.search(path, r.path))]

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.count != 0 and fault.matches(method, path):
                    if fault.count > 0:
                        fault.count -= 1
                    return fault
            if self.fault_rate and self.random.random() < self.fault_rate:
                return Fault(kind=self.random.choice(self.fault_kinds), retry_after=0)
        return None

    def dispatch(self, request: Request) -> Response:
        for method, pattern, handler in self.routes:
            if method == request.method and (match := pattern.match(request.path)):
                request.match = match
                return handler(request)
        return self.error(404, "NotFound", f"no emulated operation for {request.method} {request.path}")


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        arrived = time.monotonic()
        emulator = self.server.emulator
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fault = emulator._take_fault(self.command, split.path)
        answer_at = None
        if fault is not None and fault.kind == "latency":
            time.sleep(fault.seconds)
            fault = None
        elif fault is not None and fault.kind == "response-time":
            answer_at = arrived + fault.seconds
            fault = None
        if fault is not None and fault.kind == "drop":
            self._record(split, 0, "drop")
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault is not None:
            status = int(fault.kind)
            headers = {"Retry-After": str(int(fault.retry_after))} if status == 429 else {}
            code = {429: "TooManyRequests", 500: "InternalServerError", 503: "ServiceUnavailable"}[status]
            response = emulator.error(status, code, f"injected fault {status}", headers)
        else:
            request = Request(
                method=self.command,
                path=split.path,
                query=parse_qs(split.query, keep_blank_values=True),
                headers={k.lower(): v for k, v in self.headers.items()},
                raw_headers=list(self.headers.items()),
                body=body,
            )
            try:
                response = emulator.dispatch(request)
            except Exception as exc:  # an emulator bug must show up as a clear 500, not a hung client
                response = emulator.error(500, "EmulatorError", f"{type(exc).__name__}: {exc}")
        self._record(split, response.status, fault.kind if fault else None)
        self._send(response, answer_at)

    def _record(self, split: Any, status: int, fault: str | None) -> None:
        with self.server.emulator.lock:
            self.server.emulator.log.append(LoggedRequest(self.command, split.path, split.query, status, fault,
                                                          time.monotonic()))

    def _send(self, response: Response, answer_at: float | None = None) -> None:
        """Write ``response``; not before ``answer_at`` (``time.monotonic``) when one is given, its body made first."""
        if isinstance(response.body, bytes):
            payload = response.body
            content_type = response.headers.get("Content-Type", "application/octet-stream")
        elif response.body is None:
            payload, content_type = b"", response.headers.get("Content-Type", "application/json")
        else:
            payload, content_type = json.dumps(response.body).encode(), "application/json"
        if answer_at is not None:
            time.sleep(max(0.0, answer_at - time.monotonic()))
        self.send_response(response.status)
        for key, value in response.headers.items():
            if key.lower() != "content-type":
                self.send_header(key, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-ms-request-id", f"emulator-{len(self.server.emulator.log)}")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = do_HEAD = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    emulator: Emulator

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock, address


@dataclass
class Running:
    emulator: Emulator
    server: _Server
    thread: threading.Thread
    url: str
    cert: Path

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve(emulator: Emulator, cert: Path, key: Path) -> Running:
    """Serve ``emulator`` over HTTPS on 127.0.0.1 (a free port) in a background thread."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.emulator = emulator
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    # The handshake runs in the handler's thread, so one slow client cannot stall the accept loop.
    server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    thread = threading.Thread(target=server.serve_forever, name="orbit-emulator", daemon=True)
    thread.start()
    url = f"https://127.0.0.1:{server.server_address[1]}"
    emulator.base_url = url
    return Running(emulator, server, thread, url, cert)
