"""Fixtures for the end-to-end tests: the `portcullis proxy` binary in front of
@modelcontextprotocol/server-everything, driven by the official Python MCP SDK.

`tests/e2e/run.sh` sets PORTCULLIS_BIN; the upstream comes from this folder's node_modules.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
EVERYTHING = HERE / "node_modules" / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"


def portcullis_bin() -> str:
    path = os.environ.get("PORTCULLIS_BIN")
    if not path or not Path(path).is_file():
        pytest.fail("PORTCULLIS_BIN must name the built portcullis binary (tests/e2e/run.sh sets it)")
    return path


def upstream_command() -> list[str]:
    if not EVERYTHING.is_file():
        pytest.fail(f"{EVERYTHING} is missing: run `npm ci` in tests/e2e (tests/e2e/run.sh does)")
    return ["node", str(EVERYTHING), "stdio"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Policy:
    """A policy file the proxy watches; `write` replaces it atomically (write + rename)."""

    def __init__(self, folder: Path):
        self.path = folder / "policy.yaml"

    def write(self, text: str) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(textwrap.dedent(text))
        os.replace(tmp, self.path)


@pytest.fixture
def policy(tmp_path: Path) -> Policy:
    return Policy(tmp_path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def http_proxy(policy: Policy, log: Path, env: dict[str, str] | None = None):
    """Runs `portcullis proxy --listen` and yields its /mcp URL once it accepts connections."""
    port = free_port()
    cmd = [portcullis_bin(), "proxy", "--config", str(policy.path), "--listen", f"127.0.0.1:{port}", "--", *upstream_command()]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"proxy exited with {proc.returncode}: {log.read_text()}")
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
                if time.monotonic() > deadline:
                    pytest.fail(f"proxy did not listen on {port} within 30 s: {log.read_text()}")
                time.sleep(0.05)
            yield f"http://127.0.0.1:{port}/mcp"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                print(f"proxy ignored SIGTERM for 10 s", file=sys.stderr)
            assert proc.returncode == 0, f"proxy exited with {proc.returncode} on SIGTERM: {log.read_text()}"
