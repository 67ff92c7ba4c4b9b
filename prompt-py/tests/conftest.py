"""Backends for the behaviour tests: memory, SQLite (a file in a temp dir) and Postgres.

Postgres runs only when PROMPT_REGISTRY_TEST_POSTGRES_URL is set: the session creates a
throwaway database on that server (with psql), every test works in a fresh project of
it, and the database is dropped at the end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from typing import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

import prompt_registry as pr

PG_ENV = "PROMPT_REGISTRY_TEST_POSTGRES_URL"
BACKENDS = ["memory", "sqlite", "postgres"]


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


@pytest.fixture(params=BACKENDS)
def backend_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    kind = request.param
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return f"sqlite://{tmp_path_factory.mktemp('sqlite')}/registry.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def project() -> str:
    """A fresh project per test, so tests sharing the Postgres database stay apart."""
    return f"t{uuid.uuid4().hex[:16]}"


@pytest.fixture
def reg(backend_url: str, project: str) -> pr.Registry:
    return pr.Registry.open(backend_url, project=project)
