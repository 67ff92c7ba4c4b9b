"""Real clients against a real server.

Starts `mock-llm-server` (the fake OpenAI/Anthropic/Gemini vendor) and
`prompt-registry serve` on free loopback ports, with an OpenAI-compatible provider
`upstream` pointing at the mock, a master key, a fresh SQLite database, an admin API
key and a Langfuse key pair. The binaries come from the cargo target directory
(`PROMPT_REGISTRY_BIN` / `MOCK_LLM_SERVER_BIN` override); scripts/test-python.sh builds
them first.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
REGISTRY_BIN = os.environ.get("PROMPT_REGISTRY_BIN", str(TARGET / "debug" / "prompt-registry"))
MOCK_BIN = os.environ.get("MOCK_LLM_SERVER_BIN", str(TARGET / "debug" / "mock-llm-server"))
MASTER_KEY = "5c" * 32


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not become healthy")
        time.sleep(0.05)


def wait_port(port: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on port {port}")
            time.sleep(0.05)


class Server:
    def __init__(self, url: str, admin_key: str, langfuse_public: str, langfuse_secret: str, db_url: str) -> None:
        self.url = url
        self.admin_key = admin_key
        self.langfuse_public = langfuse_public
        self.langfuse_secret = langfuse_secret
        self.db_url = db_url


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("interop")
    mock_port = free_port()
    mock = subprocess.Popen(
        [MOCK_BIN, "--port", str(mock_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    mock_url = f"http://127.0.0.1:{mock_port}"
    db_url = f"sqlite://{tmp / 'registry.db'}"
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": db_url,
            "PROMPT_REGISTRY_MASTER_KEY": MASTER_KEY,
            "OPENAI_COMPATIBLE_PROVIDERS": "upstream",
            "UPSTREAM_BASE_URL": f"{mock_url}/v1",
            "UPSTREAM_API_KEY": "mock-key",
            "PROMPT_REGISTRY_RATE_LIMIT": "0",
            # The clients retry themselves: pass vendor 429s through at once.
            "PROMPT_REGISTRY_RETRY_MAX_ATTEMPTS": "1",
        }
    )
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        env.pop(var, None)
    pair = subprocess.run(
        [REGISTRY_BIN, "keys", "create", "--project", "default", "--role", "admin", "--langfuse"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    public, secret = pair.split(" ")
    admin = subprocess.run(
        [REGISTRY_BIN, "keys", "create", "--project", "default", "--role", "admin"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    port = free_port()
    env["PROMPT_REGISTRY_ADDR"] = f"127.0.0.1:{port}"
    log = open(tmp / "serve.log", "w")
    proc = subprocess.Popen([REGISTRY_BIN, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_port(mock_port)
        wait_healthy(f"{url}/healthz")
        yield Server(url, admin, public, secret, db_url)
    finally:
        proc.terminate()
        mock.terminate()
        proc.wait(timeout=30)
        mock.wait(timeout=30)
        log.close()
