"""Stored provider credentials from Python: sealed under the master key (never in the
database in clear), used by every execution, replaced and deleted, against the mock
vendor server speaking OpenAI's wire format (``mock-llm-server``, built by
scripts/test-python.sh)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

import prompt_registry as pr

from conftest import REPO, RemoteServer

MASTER_KEY = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
OTHER_KEY = "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1eff"
SECRET = "sk-test-secret-value-4242"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def vendor() -> Iterator[str]:
    """The mock vendor's OpenAI base URL."""
    binary = Path(os.environ.get("MOCK_LLM_SERVER_BIN") or REPO / "target/debug/mock-llm-server")
    if not binary.is_file():
        pytest.fail(f"{binary} does not exist: scripts/test-python.sh builds it")
    port = _free_port()
    process = subprocess.Popen(
        [str(binary), "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail("mock-llm-server did not start")
            time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/v1"
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def no_master_key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMPT_REGISTRY_MASTER_KEY", raising=False)
    monkeypatch.delenv("PROMPT_REGISTRY_PREVIOUS_MASTER_KEY", raising=False)


def _database_bytes(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in directory.iterdir() if p.name.startswith("r.db"))


def test_stored_credentials_are_sealed_and_used(
    tmp_path: Path, vendor: str, no_master_key_env: None
) -> None:
    url = f"sqlite:///{tmp_path}/r.db"
    reg = pr.Registry.open(url, master_key=MASTER_KEY)
    reg.create_version(
        "greet", "Hello {{ name }}", config={"provider": "vendor"}, labels=["production"]
    )

    # A key the vendor refuses: the stored key is the one sent.
    reg.put_provider("vendor", "openai_compatible", "bad-key", base_url=vendor,
                     default_params={"model": "gpt-4o-mini"})
    with pytest.raises(pr.ProviderAuthError):
        reg.execute("greet", {"name": "Ada"}, raise_on_error=True)

    shown = reg.put_provider("vendor", "openai_compatible", SECRET, base_url=vendor,
                             default_params={"model": "gpt-4o-mini"})
    assert isinstance(shown, pr.StoredProvider)
    assert shown.name == "vendor" and shown.kind == "openai_compatible"
    assert shown.api_key.endswith("4242") and SECRET not in shown.api_key
    assert [p.name for p in reg.providers()] == ["vendor"]

    run = reg.execute("greet", {"name": "Ada"}, raise_on_error=True)
    assert run.status == "completed"
    assert run.provider == "vendor" and run.model == "gpt-4o-mini"
    assert run.output is not None and "Hello Ada" in run.output
    # Priced as its vendor (OpenAI's gpt-4o-mini), not under the name "vendor".
    assert run.cost_usd is not None and run.cost_usd > 0

    # Background runs use the stored credential too.
    pending = reg.submit("greet", {"name": "Bob"})
    reg.start_workers(1)
    deadline = time.monotonic() + 30
    while reg.get_run(pending.id).status not in ("completed", "failed"):
        assert time.monotonic() < deadline, "the worker did not finish the run"
        time.sleep(0.05)
    reg.stop_workers()
    assert reg.get_run(pending.id).status == "completed"

    assert SECRET.encode() not in _database_bytes(tmp_path), "the key is stored in clear"

    # Another master key cannot open it: the calls naming it fail, saying why.
    other = pr.Registry.open(url, master_key=OTHER_KEY)
    failed = other.execute("greet", {"name": "Ada"})
    assert failed.status == "failed"
    assert failed.error is not None and "master key" in failed.error.message

    reg.delete_provider("vendor")
    assert reg.providers() == []
    with pytest.raises(pr.NotFoundError):
        reg.delete_provider("vendor")


def test_bad_input_and_missing_master_key(tmp_path: Path, no_master_key_env: None) -> None:
    reg = pr.Registry.open(f"sqlite:///{tmp_path}/r.db")
    with pytest.raises(pr.ValidationError) as e:
        reg.put_provider("vendor", "openai", SECRET)
    assert e.value.field == "master_key"

    keyed = pr.Registry.open(f"sqlite:///{tmp_path}/r.db", master_key=MASTER_KEY)
    with pytest.raises(pr.ValidationError) as e:
        keyed.put_provider("vendor", "nope", SECRET)
    assert e.value.field is not None and "kind" in e.value.field
    with pytest.raises(pr.ValidationError) as e:
        keyed.put_provider("Bad Name", "openai", SECRET)
    assert e.value.field == "name"
    with pytest.raises(pr.ValidationError) as e:
        keyed.put_provider("vendor", "openai", "  ")
    assert e.value.field == "api_key"
    with pytest.raises(pr.ValidationError) as e:
        keyed.put_provider("vendor", "openai_compatible", SECRET)
    assert e.value.field is not None and "base_url" in e.value.field

    with pytest.raises(pr.ValidationError) as e:
        pr.Registry.open("memory://", master_key="too short")
    assert e.value.field == "master_key"
    assert "too short" not in str(e.value)
    with pytest.raises(TypeError):
        pr.Registry.open("memory://", master_key=42)  # type: ignore[arg-type]


def test_remote_registries_use_the_servers_credentials(remote_server: RemoteServer) -> None:
    key = remote_server.key("stored-remote")
    with pytest.raises(pr.ValidationError) as e:
        pr.Registry.open(remote_server.url, api_key=key, master_key=MASTER_KEY)
    assert e.value.field == "master_key"
    reg = pr.Registry.open(remote_server.url, api_key=key)
    with pytest.raises(pr.UnsupportedError):
        reg.put_provider("vendor", "openai", SECRET)


@pytest.mark.asyncio
async def test_async_twin(tmp_path: Path, vendor: str, no_master_key_env: None) -> None:
    reg = await pr.AsyncRegistry.open(f"sqlite:///{tmp_path}/r.db", master_key=MASTER_KEY)
    await reg.create_version("greet", "Hi {{ name }}", config={"provider": "v2"},
                             labels=["production"])
    await reg.put_provider("v2", "openai", SECRET, base_url=vendor,
                           default_params={"model": "gpt-4o-mini", "temperature": 0.2})
    assert [p.default_params for p in await reg.providers()] == [
        {"model": "gpt-4o-mini", "temperature": 0.2}
    ]
    run = await reg.execute("greet", {"name": "Ada"}, raise_on_error=True)
    assert run.status == "completed" and run.provider == "v2"
    await reg.delete_provider("v2")
    assert await reg.providers() == []


def test_without_a_master_key_stored_credentials_do_not_shadow_the_environment(
    tmp_path: Path, vendor: str, no_master_key_env: None
) -> None:
    url = f"sqlite:///{tmp_path}/r.db"
    keyed = pr.Registry.open(url, master_key=MASTER_KEY)
    keyed.create_version(
        "p", "Hi", config={"provider": "mock", "model": "mock/echo"}, labels=["production"]
    )
    # A stored credential named like the environment's `mock`, with a key the vendor
    # refuses: with the master key, it is the one used.
    keyed.put_provider("mock", "openai", "bad-key", base_url=vendor)
    assert keyed.execute("p").status == "failed"
    # Without a master key the environment's providers serve, as before.
    plain = pr.Registry.open(url)
    assert plain.execute("p", raise_on_error=True).status == "completed"
