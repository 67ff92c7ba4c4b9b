"""Backends for the behaviour tests: memory, SQLite (a file in a temp dir), Postgres and
remote (a real ``prompt-registry serve`` on a free loopback port).

Postgres runs only when PROMPT_REGISTRY_TEST_POSTGRES_URL is set: the session creates a
throwaway database on that server (with psql), every test works in a fresh project of
it, and the database is dropped at the end.

Remote needs the ``prompt-registry`` binary: ``$PROMPT_REGISTRY_BIN``, else
``target/debug/prompt-registry`` (``scripts/test-python.sh`` builds it). The session
starts one server on a SQLite file; each test gets a key of its own fresh project
(made with ``prompt-registry keys create``, as a user would).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, Optional
from urllib.parse import urlsplit, urlunsplit

import pytest

import prompt_registry as pr

PG_ENV = "PROMPT_REGISTRY_TEST_POSTGRES_URL"
BACKENDS = ["memory", "sqlite", "postgres", "remote"]
REPO = Path(__file__).resolve().parents[2]


def _psql(url: str, sql: str) -> None:
    subprocess.run(
        ["psql", url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
        check=True,
        capture_output=True,
        timeout=60,
    )


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set: Postgres backend not tested")
    if shutil.which("psql") is None:
        pytest.skip("psql is not installed: cannot create a throwaway Postgres database")
    name = f"prompt_registry_py_{uuid.uuid4().hex[:12]}"
    _psql(base, f'CREATE DATABASE "{name}"')
    parts = urlsplit(base)
    url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))
    try:
        yield url
    finally:
        _psql(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def registry_binary() -> Path:
    path = Path(os.environ.get("PROMPT_REGISTRY_BIN") or REPO / "target/debug/prompt-registry")
    if not path.is_file():
        pytest.fail(
            f"{path} does not exist: build it with `cargo build --bin prompt-registry` "
            "(scripts/test-python.sh does) or set PROMPT_REGISTRY_BIN"
        )
    return path


@dataclass
class RemoteServer:
    """A running ``prompt-registry serve``."""

    url: str
    binary: Path
    env: Dict[str, str]
    process: "subprocess.Popen[bytes]"
    keys: Dict[str, str] = field(default_factory=dict)

    def key(self, project: str, role: str = "admin") -> str:
        """A key of ``project`` (created if missing), made with the CLI."""
        cache_key = f"{project}/{role}"
        if cache_key not in self.keys:
            out = subprocess.run(
                [str(self.binary), "keys", "create", "--project", project, "--role", role,
                 "--name", "pytest"],
                env=self.env, capture_output=True, text=True, timeout=60, check=True,
            )
            self.keys[cache_key] = out.stdout.strip()
        return self.keys[cache_key]


def start_server(binary: Path, workdir: Path, extra_env: Optional[Dict[str, str]] = None) -> RemoteServer:
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": f"sqlite://{workdir}/remote.db",
        "PROMPT_REGISTRY_ADDR": "127.0.0.1:0",
        "RUST_LOG": "warn",
    })
    env.update(extra_env or {})
    out, err = workdir / "stdout.log", workdir / "stderr.log"
    with out.open("wb") as o, err.open("wb") as e:
        process = subprocess.Popen([str(binary), "serve"], env=env, stdout=o, stderr=e)
    deadline = time.monotonic() + 60
    while True:
        m = re.search(r"listening on (http://[0-9.:]+)", err.read_text(errors="replace"))
        if m:
            return RemoteServer(url=m.group(1), binary=binary, env=env, process=process)
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"prompt-registry serve did not start:\n{err.read_text(errors='replace')}")
        time.sleep(0.05)


def stop_server(server: RemoteServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="session")
def remote_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoteServer]:
    server = start_server(registry_binary(), tmp_path_factory.mktemp("remote"))
    try:
        yield server
    finally:
        stop_server(server)


@dataclass
class Backend:
    """Where a test's registries live, and how to open one of a project."""

    kind: str
    url: str
    server: Optional[RemoteServer] = None

    def api_key(self, project: str) -> Optional[str]:
        return self.server.key(project) if self.server is not None else None

    def open(self, project: str, **kwargs: object) -> pr.Registry:
        return pr.Registry.open(self.url, project=project, api_key=self.api_key(project), **kwargs)  # type: ignore[arg-type]

    async def open_async(self, project: str, **kwargs: object) -> pr.AsyncRegistry:
        return await pr.AsyncRegistry.open(
            self.url, project=project, api_key=self.api_key(project), **kwargs  # type: ignore[arg-type]
        )


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Backend:
    kind = request.param
    if kind == "memory":
        return Backend(kind, "memory://")
    if kind == "sqlite":
        return Backend(kind, f"sqlite://{tmp_path_factory.mktemp('sqlite')}/registry.db")
    if kind == "remote":
        server: RemoteServer = request.getfixturevalue("remote_server")
        return Backend(kind, server.url, server)
    url: str = request.getfixturevalue("postgres_url")
    return Backend(kind, url)


@pytest.fixture
def backend_url(backend: Backend) -> str:
    return backend.url


@pytest.fixture
def project() -> str:
    """A fresh project per test, so tests sharing a database or a server stay apart."""
    return f"t{uuid.uuid4().hex[:16]}"


@pytest.fixture
def reg(backend: Backend, project: str) -> pr.Registry:
    return backend.open(project)
