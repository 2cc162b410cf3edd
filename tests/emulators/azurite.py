"""Azurite's blob service, started from the project's own ``node_modules`` on a free loopback port.

The Azure backend tests use it for what ACR Tasks keeps in blob storage: the uploaded build context
and the run's append-blob log. It always runs with ``--disableTelemetry`` (otherwise it calls a public
endpoint at start), ``--skipApiVersionCheck`` (the blob SDK sends a newer ``x-ms-version`` than Azurite
knows) and ``--silent``, with its data in a temporary ``--location``. Port 0 lets the OS pick the port;
Azurite prints the address it listens on, which is read back from its output.

Azurite may serve plain HTTP here: the SAS in each URL is the only credential sent to it, never a
bearer token (azure-core refuses those over http). Pass ``cert``/``key`` to serve HTTPS instead.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BINARY = ROOT / "node_modules" / ".bin" / "azurite-blob"
# Azurite's well-known development account (public, documented: not a secret).
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
REQUIRED_FLAGS = ("--disableTelemetry", "--skipApiVersionCheck", "--silent")
_LISTENING = re.compile(r"successfully listens on (https?://[0-9.]+:\d+)")


class AzuriteMissingError(RuntimeError):
    """Azurite is not installed in ``node_modules``."""


@dataclass
class Azurite:
    """A running Azurite blob service."""

    process: subprocess.Popen[bytes]
    url: str  # http(s)://127.0.0.1:<port>
    location: Path
    output: Path

    @property
    def blob_endpoint(self) -> str:
        """The account URL, path-style as Azurite serves it: ``<url>/devstoreaccount1``."""
        return f"{self.url}/{ACCOUNT}"

    def service_client(self, **options: Any) -> Any:
        """A ``BlobServiceClient`` with the development account's key (what the emulated service uses)."""
        from azure.storage.blob import BlobServiceClient

        options.setdefault("initial_backoff", 0)
        options.setdefault("increment_base", 0)
        options.setdefault("random_jitter_range", 0)
        return BlobServiceClient(self.blob_endpoint, credential={"account_name": ACCOUNT, "account_key": ACCOUNT_KEY},
                                 **options)

    def stop(self) -> None:
        """Stop Azurite (SIGTERM, then SIGKILL after 5 s) and wait for it."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_azurite(location: Path, *, cert: Path | None = None, key: Path | None = None,
                  timeout: float = 90.0) -> Azurite:
    """Start ``azurite-blob`` on 127.0.0.1 with its data in ``location``; return once it accepts connections.

    Raises:
        AzuriteMissingError: ``node_modules/.bin/azurite-blob`` does not exist (run ``npm ci``).
        RuntimeError: Azurite exited or did not listen within ``timeout`` seconds (its output is quoted).
    """
    if not BINARY.exists():
        raise AzuriteMissingError(
            f"Azurite is not installed ({BINARY.relative_to(ROOT)} is missing): run `npm ci` in {ROOT} "
            "(package.json and package-lock.json pin azurite); the Azure backend tests need it and are never skipped"
        )
    location.mkdir(parents=True, exist_ok=True)
    output = location / "azurite-output.log"
    command = [str(BINARY), "--blobHost", "127.0.0.1", "--blobPort", "0", "--location", str(location),
               *REQUIRED_FLAGS]
    if cert is not None and key is not None:
        command += ["--cert", str(cert), "--key", str(key)]
    with output.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   cwd=location, env={**os.environ, "NODE_NO_WARNINGS": "1"})
    azurite = Azurite(process, "", location, output)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            text = output.read_text(errors="replace")
            found = _LISTENING.search(text)
            if found and _accepts(found.group(1)):
                azurite.url = found.group(1)
                return azurite
            if process.poll() is not None:
                raise RuntimeError(f"Azurite exited with code {process.returncode}: {text.strip()[-2000:]}")
            time.sleep(0.05)
        text = output.read_text(errors="replace")
        raise RuntimeError(f"Azurite did not listen within {timeout:.0f} s: {text.strip()[-2000:]}")
    except BaseException:
        azurite.stop()
        raise


def _accepts(url: str) -> bool:
    host, port = url.rsplit("//", 1)[1].split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False
