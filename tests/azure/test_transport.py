"""Orbit's transport for the fleet-sized clients (urllib3 without requests, decision 0024): what the SDK
pipeline relies on from a transport, checked at the transport itself. The clients' whole behaviour over it
(LROs, paging, streamed bodies, faults) is what the rest of tests/azure and tests/resilience exercise."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from azure.core.exceptions import ServiceRequestError, ServiceResponseError, ServiceResponseTimeoutError
from azure.core.rest import HttpRequest
from emulators.server import Emulator, make_certificate, serve

from orbit_ops.backends.azure.transport import transport_class

PooledTransport = transport_class()

if TYPE_CHECKING:
    from conftest import AzureEmulators  # tests/azure/conftest.py


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        payload = b'{"method": "PUT", "got": "' + body + b'"}'
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("x-ms-request-id", self.headers.get("x-test", ""))
        self.send_header("WWW-Authenticate", 'Bearer realm="one"')
        self.send_header("WWW-Authenticate", 'PoP nonce="two"')
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class _Counting(ThreadingHTTPServer):
    daemon_threads = True
    connections = 0

    def get_request(self) -> tuple[socket.socket, Any]:
        self.connections += 1
        return super().get_request()


@pytest.fixture
def echo() -> Iterator[_Counting]:
    server = _Counting(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _url(server: ThreadingHTTPServer, path: str = "/thing") -> str:
    return f"http://127.0.0.1:{server.server_address[1]}{path}"


def test_a_request_and_its_answer_go_through_whole(echo: _Counting) -> None:
    with PooledTransport() as transport:
        response = transport.send(HttpRequest("PUT", _url(echo), content=b"body-1", headers={"x-test": "t1"}))
    assert response.status_code == 201
    assert response.headers["X-MS-REQUEST-ID"] == "t1"  # headers are case-insensitive, as the SDK expects
    assert response.json() == {"method": "PUT", "got": "body-1"}


def test_connections_are_kept_alive_and_shared_by_concurrent_calls(echo: _Counting) -> None:
    with PooledTransport(pool_size=16) as transport:
        for index in range(20):
            assert transport.send(HttpRequest("PUT", _url(echo), content=b"x")).status_code == 201, index
        assert echo.connections == 1

        def one(index: int) -> int:
            return int(transport.send(HttpRequest("PUT", _url(echo), content=str(index).encode())).status_code)

        with ThreadPoolExecutor(16) as pool:
            assert set(pool.map(one, range(160))) == {201}
    assert echo.connections <= 17  # one per call in flight at most, not one per call


def test_a_port_nobody_listens_on_is_a_request_error_the_pipeline_may_retry() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the call: nothing listens there
    with PooledTransport() as transport, pytest.raises(ServiceRequestError):
        transport.send(HttpRequest("GET", f"http://127.0.0.1:{port}/x"))


def test_an_answer_that_never_comes_times_out_as_a_response_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        url = f"http://127.0.0.1:{server.getsockname()[1]}/slow"
        with PooledTransport(read_timeout=0.2) as transport, pytest.raises(ServiceResponseTimeoutError):
            transport.send(HttpRequest("GET", url))
        with PooledTransport(read_timeout=30) as transport, pytest.raises(ServiceResponseTimeoutError):
            transport.send(HttpRequest("GET", url), read_timeout=0.2)  # a per-call timeout wins


def test_a_connection_dropped_before_the_answer_is_a_response_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        def drop() -> None:
            client, _ = server.accept()
            client.recv(65536)
            client.close()

        threading.Thread(target=drop, daemon=True).start()
        with PooledTransport() as transport, pytest.raises(ServiceResponseError):
            transport.send(HttpRequest("GET", f"http://127.0.0.1:{server.getsockname()[1]}/x"))


def test_tls_is_verified_against_the_given_bundle_and_nothing_else(emulators: AzureEmulators) -> None:
    url = f"{emulators.arm_url}/subscriptions/x/resourceGroups/y/providers/Microsoft.App/containerApps"
    with PooledTransport(connection_verify=str(emulators.ca_bundle)) as transport:
        assert transport.send(HttpRequest("GET", url)).status_code == 401  # reached; no token sent
    with PooledTransport(connection_verify=True) as transport, pytest.raises(ServiceRequestError) as caught:
        transport.send(HttpRequest("GET", url))  # the public bundle does not know the emulator's certificate
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)


def test_a_transport_reads_its_ca_bundle_once_for_all_its_connections(emulators: AzureEmulators,
                                                                         tmp_path: Path) -> None:
    # OpenSSL 3 takes ~30 ms of CPU to load certifi's bundle; urllib3 alone would load it for every connection.
    bundle = tmp_path / "bundle.pem"
    shutil.copyfile(emulators.ca_bundle, bundle)
    port = emulators.arm_url.rsplit(":", 1)[1]
    path = "/subscriptions/x/resourceGroups/y/providers/Microsoft.App/containerApps"
    with PooledTransport(connection_verify=str(bundle)) as transport:
        assert transport.send(HttpRequest("GET", f"https://127.0.0.1:{port}{path}")).status_code == 401
        bundle.unlink()
        # Another origin (the certificate names both): a pool and a connection of its own, the same bundle.
        assert transport.send(HttpRequest("GET", f"https://localhost:{port}{path}")).status_code == 401
    with PooledTransport(connection_verify=str(bundle)) as transport, pytest.raises(ServiceRequestError) as caught:
        transport.send(HttpRequest("GET", f"https://127.0.0.1:{port}{path}"))  # a new transport reads it again
    assert "No such file" in str(caught.value)


def test_a_certificate_for_another_host_is_refused(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path, names=("elsewhere.example",))
    running = serve(Emulator(), cert, key)
    try:
        with PooledTransport(connection_verify=str(cert)) as transport, pytest.raises(ServiceRequestError) as caught:
            transport.send(HttpRequest("GET", f"{running.url}/x"))  # the bundle trusts it, for another name
        assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
        assert "127.0.0.1" in str(caught.value)
    finally:
        running.stop()


def test_a_body_that_stops_arriving_times_out_as_a_response_error_when_streamed() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        def stall() -> None:
            client, _ = server.accept()
            client.recv(65536)
            client.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
            time.sleep(3)
            client.close()

        threading.Thread(target=stall, daemon=True).start()
        with PooledTransport(read_timeout=0.3) as transport:
            response = transport.send(HttpRequest("GET", f"http://127.0.0.1:{server.getsockname()[1]}/x"), stream=True)
            with pytest.raises(ServiceResponseTimeoutError):
                response.read()


def test_a_repeated_header_keeps_all_its_values(echo: _Counting) -> None:
    with PooledTransport() as transport:
        response = transport.send(HttpRequest("PUT", _url(echo), content=b"x", headers={"x-test": "a"}))
    assert response.headers["www-authenticate"] == 'Bearer realm="one", PoP nonce="two"'


def test_a_legacy_pipeline_request_is_refused_plainly(echo: _Counting) -> None:
    from azure.core.pipeline.transport import HttpRequest as LegacyRequest

    with PooledTransport() as transport, pytest.raises(TypeError, match=r"azure\.core\.rest requests"):
        transport.send(LegacyRequest("GET", _url(echo)))
    assert echo.connections == 0
