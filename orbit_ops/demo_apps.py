"""The demo platform repo's components as released: each version's Dockerfile, ``.dockerignore`` and program.

The programs are small but real, so an image the demo builds would run in a container and a roll of it is
honest on a real registry too: the reader and the agent are standard-library Python HTTP servers, mission
control a dependency-free Node server; each reads its configuration from the environment, serves ``/healthz``
on ``PORT`` (the port its Dockerfile exposes) and stops cleanly on SIGTERM. The reader from ``1.3.0-rc.1`` on
links to the customer's mission control and needs ``MC_URL``: its Dockerfile declares that with the
``org.orbit.env.required`` label and the program refuses to start without it, so a roll of that release
really fails on the solutions lacking the variable (SPEC §3.6).
"""

from __future__ import annotations

from orbit_ops.versions import version_key

ENV_REQUIRED_LABEL = "org.orbit.env.required"
# The release that requires a variable only some demo solutions set, and that variable.
ENV_REQUIRING_RELEASE = ("orbit", "1.3.0-rc.1")
MC_URL = "MC_URL"


def requires_mc_url(component: str, version: str) -> bool:
    """Whether ``component`` at ``version`` links to mission control, so needs ``MC_URL`` (orbit 1.3.0-rc.1 on)."""
    first_component, first_version = ENV_REQUIRING_RELEASE
    key, first = version_key(version), version_key(first_version)
    return component == first_component and key is not None and first is not None and key >= first


def component_files(component: str, version: str, serial: int) -> dict[str, str]:
    """The files of ``component`` as released at ``version`` (each release changes real code)."""
    if component == "orbit":
        links = requires_mc_url(component, version)
        return {
            "apps/orbit/Dockerfile": orbit_dockerfile(links),
            "apps/orbit/.dockerignore": "# keep the image small\n**/__pycache__\n*.pyc\ntests/\n",
            "apps/orbit/orbit_reader/__init__.py": f'"""Orbit reader: read-only view of a customer repo."""\n\n'
            f'__version__ = "{version}"\n',
            "apps/orbit/orbit_reader/__main__.py": _orbit_main(serial, links),
            "apps/orbit/tests/test_reader.py": "def test_version():\n    import orbit_reader\n"
            "    assert orbit_reader.__version__\n",
        }
    if component == "agent":
        return {
            "apps/agent/Dockerfile": AGENT_DOCKERFILE,
            "apps/agent/.dockerignore": "# docs stay out of the image, but the README is packaged\n*.md\n!README.md\n"
            "tests/\n**/*.log\n",
            "apps/agent/README.md": f"# agent {version}\n\nWorks on the customer repo mounted at /repo.\n",
            "apps/agent/CHANGELOG.md": "".join(f"- change {n}\n" for n in range(serial + 1)),
            "apps/agent/pyproject.toml": _AGENT_PYPROJECT.replace("{VERSION}", version),
            "apps/agent/agent/__init__.py": f'__version__ = "{version}"\n',
            "apps/agent/agent/__main__.py": agent_main(str(serial)),
            "apps/agent/tests/test_agent.py": "def test_import():\n    import agent  # noqa: F401\n",
        }
    return {
        "apps/mc/Dockerfile": MC_DOCKERFILE,
        "apps/mc/.dockerignore": "node_modules\nnpm-debug.log\n",
        "apps/mc/package.json": f'{{"name": "mc", "version": "{version}", "private": true, "main": "server.js", '
        '"scripts": {"start": "node server.js"}}\n',
        "apps/mc/server.js": _MC_SERVER.replace("@VERSION@", version),
        "apps/mc/public/index.html": f"<!doctype html><title>Mission control {version}</title>\n",
    }


def agent_main(build: str) -> str:
    """The agent's program, stamped with its build (a release's serial, or ``unreleased`` on main)."""
    return _AGENT_MAIN.replace("{SERIAL}", build)


def orbit_dockerfile(links_to_mc: bool) -> str:
    """The reader's Dockerfile; declaring ``MC_URL`` required once the reader links to mission control."""
    label = f'LABEL {ENV_REQUIRED_LABEL}="{MC_URL}"\n' if links_to_mc else ""
    return _ORBIT_DOCKERFILE.replace("{LABEL}", label)


_ORBIT_DOCKERFILE = """\
# syntax=docker/dockerfile:1
FROM python:3.12-slim AS base
ARG VERSION=dev
{LABEL}ENV PYTHONUNBUFFERED=1 \\
    ORBIT_VERSION=${VERSION} \\
    PORT=8080 \\
    REPO_PATH=/repo
WORKDIR /app
COPY orbit_reader/ orbit_reader/
EXPOSE 8080
USER 10001
CMD ["python", "-m", "orbit_reader"]
"""

AGENT_DOCKERFILE = """\
FROM python:3.12-slim
LABEL org.opencontainers.image.title="orbit agent"
ENV PYTHONUNBUFFERED=1 \\
    METHODOLOGY_PATH=/repo/trajectory-methodology \\
    PORT=8081
WORKDIR /srv/agent
COPY pyproject.toml README.md ./
COPY agent/ agent/
RUN pip install --no-cache-dir .
VOLUME ["/repo", "/internal"]
EXPOSE 8081
ENTRYPOINT ["python", "-m", "agent"]
"""

MC_DOCKERFILE = """\
FROM node:22-alpine
ENV NODE_ENV=production \\
    PORT=3000
WORKDIR /srv/mc
COPY package.json server.js ./
COPY public/ public/
EXPOSE 3000
USER node
CMD ["node", "server.js"]
"""

_AGENT_PYPROJECT = """\
[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"

[project]
name = "agent"
version = "{VERSION}"
requires-python = ">=3.11"

[tool.setuptools]
packages = ["agent"]
"""


def _orbit_main(serial: int, links_to_mc: bool) -> str:
    parts = _ORBIT_LINKS_TO_MC if links_to_mc else dict.fromkeys(_ORBIT_LINKS_TO_MC, "")
    program = _ORBIT_MAIN.replace("{SERIAL}", str(serial))
    for placeholder, text in parts.items():
        program = program.replace(placeholder, text)
    return program


# What the reader gains from 1.3.0-rc.1 on: mission control's address, required, and a link to it.
_ORBIT_LINKS_TO_MC = {
    "{MC_SETTING}": 'MC_URL = os.environ.get("MC_URL", "")\n',
    "{MC_LINK}": '            page += f"<p><a href=\'{html.escape(MC_URL)}\'>Mission control</a></p>\\n"\n',
    "{MC_CHECK}": '    if not MC_URL:\n'
    '        sys.exit("orbit reader: MC_URL is not set (the address of mission control, which the reader links to)")\n',
}

_ORBIT_MAIN = '''\
"""Serve the reader: a read-only view of the customer repo mounted at REPO_PATH, on PORT."""
import html
import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from orbit_reader import __version__

BUILD = "{SERIAL}"
REPO = Path(os.environ.get("REPO_PATH", "/repo")).resolve()
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://localhost").rstrip("/")
{MC_SETTING}

class Reader(BaseHTTPRequestHandler):
    server_version = f"orbit-reader/{__version__}"

    def do_GET(self) -> None:
        path = unquote(urlsplit(self.path).path)
        if path == "/healthz":
            body = {"status": "ok", "version": __version__, "build": BUILD, "repo": REPO.is_dir()}
            self.send("application/json", json.dumps(body).encode())
            return
        target = (REPO / path.lstrip("/")).resolve()
        if not target.is_relative_to(REPO) or not target.exists():
            self.send_error(404)
        elif target.is_dir():
            base = html.escape(PUBLIC_BASE_URL)
            links = "".join(
                f'<li><a href="{base}/{quote(str(entry.relative_to(REPO)))}">{html.escape(entry.name)}</a>'
                for entry in sorted(target.iterdir())
            )
            page = f"<!doctype html><ul>{links}</ul>\\n"
{MC_LINK}            self.send("text/html; charset=utf-8", page.encode())
        else:
            self.send("text/plain; charset=utf-8", target.read_bytes())

    def send(self, content_type: str, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main() -> None:
{MC_CHECK}    port = int(os.environ.get("PORT", "8080"))
    server = ThreadingHTTPServer((os.environ.get("HOST", "0.0.0.0"), port), Reader)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"orbit reader {__version__} (build {BUILD}) on :{port}, public at {PUBLIC_BASE_URL}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
'''

_AGENT_MAIN = '''\
"""Run the agent over the customer repo: rescan the methodology every SCAN_SECONDS, answer /healthz on PORT."""
import json
import logging
import os
import signal
import sys
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from agent import __version__

BUILD = "{SERIAL}"
LEVELS = ("debug", "info", "warning", "error")
METHODOLOGY = Path(os.environ.get("METHODOLOGY_PATH", "/repo/trajectory-methodology"))
log = logging.getLogger("agent")
last_scan: dict[str, object] = {}


def scan() -> None:
    """Count the methodology's files; a repo not mounted yet is waited for, not an error."""
    files = sum(1 for path in METHODOLOGY.rglob("*") if path.is_file()) if METHODOLOGY.is_dir() else None
    last_scan.update(at=datetime.now(UTC).isoformat(), methodology_files=files)
    log.debug("scanned %s: %s files", METHODOLOGY, files)


class Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path != "/healthz":
            self.send_error(404)
            return
        body = json.dumps({"status": "ok", "version": __version__, "build": BUILD,
                           "methodology": str(METHODOLOGY), **last_scan}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        log.debug(format, *args)


def main() -> None:
    level = os.environ.get("LOG_LEVEL", "info").lower()
    if level not in LEVELS:
        sys.exit(f"agent: LOG_LEVEL must be one of {', '.join(LEVELS)}, not {level!r}")
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    interval = float(os.environ.get("SCAN_SECONDS", "30"))
    port = int(os.environ.get("PORT", "8081"))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    scan()
    server = ThreadingHTTPServer((os.environ.get("HOST", "0.0.0.0"), port), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    log.info("agent %s (build %s) on :%s reading %s", __version__, BUILD, port, METHODOLOGY)
    while not stop.wait(interval):
        scan()
    server.shutdown()
    server.server_close()


if __name__ == "__main__":
    main()
'''


_MC_SERVER = """\
"use strict";
// Mission control: its page and /healthz on PORT, with Node's own http module (no dependencies).
const fs = require("node:fs");
const http = require("node:http");
const path = require("node:path");

const VERSION = "@VERSION@";
const port = Number(process.env.PORT || 3000);
const page = fs.readFileSync(path.join(__dirname, "public", "index.html"), "utf8");
const server = http.createServer((req, res) => {
  const { pathname } = new URL(req.url, "http://mc");
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { Allow: "GET, HEAD" }).end();
  } else if (pathname === "/healthz") {
    res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ ok: true, version: VERSION }));
  } else if (pathname === "/") {
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" }).end(page);
  } else {
    res.writeHead(404).end();
  }
});
server.listen(port, process.env.HOST || "0.0.0.0", () => console.log(`mission control ${VERSION} on :${port}`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
"""
