"""The SDK clients read the proxy settings of the environment once, when they are made, and still obey them.

requests re-reads the whole environment on every request unless told not to; Orbit tells it not to
(``AzureEndpoints.transport``) and hands over what it would have found. These tests put a CONNECT proxy
on 127.0.0.1 between the clients and the emulators and check that it is used, and skipped for NO_PROXY hosts.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from orbit_ops.backends.azure.common import proxies_for
from orbit_ops.backends.azure.platform import AzurePlatform

if TYPE_CHECKING:
    from conftest import AzureEmulators  # tests/azure/conftest.py

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


class TunnelProxy:
    """An HTTP CONNECT proxy on 127.0.0.1 that tunnels to loopback targets and notes each CONNECT line."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.connects: list[str] = []
        self.heads: list[bytes] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client: socket.socket) -> None:
        with client:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(4096)
                if not chunk:
                    return
                head += chunk
            line = head.split(b"\r\n", 1)[0].decode()
            self.connects.append(line)
            self.heads.append(head)
            method, target, _ = line.split(" ", 2)
            host, port = target.rsplit(":", 1)
            if method != "CONNECT" or host != "127.0.0.1":
                client.sendall(b"HTTP/1.1 403 Forbidden\r\n\r\n")
                return
            with socket.create_connection((host, int(port))) as upstream:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                pump = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
                pump.start()
                _pump(client, upstream)
                pump.join(timeout=5)

    def close(self) -> None:
        self.server.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[TunnelProxy]:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    tunnel = TunnelProxy()
    monkeypatch.setenv("https_proxy", tunnel.url)
    yield tunnel
    tunnel.close()


def test_clients_go_through_the_proxy_of_the_environment(proxy: TunnelProxy, emulators: AzureEmulators) -> None:
    platform = AzurePlatform(emulators.settings(), emulators.fast)

    async def listings() -> tuple[dict[str, object], dict[str, object]]:
        return await platform.list_apps(), await platform.list_shares()

    assert asyncio.run(listings()) == ({}, {})
    arm_port = emulators.settings().arm_endpoint.rsplit(":", 1)[1].split("/")[0]
    files_port = emulators.settings().files_endpoint.rsplit(":", 1)[1].split("/")[0]
    assert {line.split(" ")[1] for line in proxy.connects} == {f"127.0.0.1:{arm_port}", f"127.0.0.1:{files_port}"}
    assert all(line.startswith("CONNECT ") for line in proxy.connects)


def test_no_proxy_hosts_are_reached_directly(
    proxy: TunnelProxy, emulators: AzureEmulators, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("no_proxy", "localhost,127.0.0.1")
    platform = AzurePlatform(emulators.settings(), emulators.fast)
    assert asyncio.run(platform.list_apps()) == {}
    assert proxy.connects == []
    assert proxies_for("https://127.0.0.1:8443/x") == {}
    assert proxies_for("https://management.azure.com/") == {"https": proxy.url}


def test_credentials_in_the_proxy_url_are_sent_to_the_proxy(
    proxy: TunnelProxy, emulators: AzureEmulators, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("https_proxy", proxy.url.replace("http://", "http://orbit:p%40ss@"))
    platform = AzurePlatform(emulators.settings(), emulators.fast)
    assert asyncio.run(platform.list_apps()) == {}
    assert proxy.heads
    for head in proxy.heads:
        fields = dict(line.split(b": ", 1) for line in head.strip().split(b"\r\n")[1:])
        assert {name.lower(): value for name, value in fields.items()}[b"proxy-authorization"] == (
            b"Basic b3JiaXQ6cEBzcw==")  # orbit:p@ss
