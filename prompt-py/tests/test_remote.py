"""Remote mode: a real ``prompt-registry serve`` behind ``Registry.open("http://…")``.

The behaviour scenarios run on remote too (the ``remote`` backend of conftest); these
tests cover what only remote has: API keys, the client cache that serves stale entries
while the server is down, ``fallback=``, and the remote example.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import prompt_registry as pr

from conftest import REPO, RemoteServer, registry_binary, start_server, stop_server

NAME = "support/triage"
# Nothing listens on port 9 (discard) on the loopback: connections are refused at once.
DOWN = "http://127.0.0.1:9"


def test_a_remote_registry_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMPT_REGISTRY_API_KEY", raising=False)
    with pytest.raises(pr.ValidationError) as e:
        pr.Registry.open(DOWN)
    assert e.value.field == "api_key"
    with pytest.raises(pr.ValidationError) as e:
        pr.Registry.open("memory://", api_key="pr_x_y")
    assert e.value.field == "api_key"
    with pytest.raises(pr.ValidationError) as e:
        pr.Registry.open("ftp://h", api_key="k")
    assert e.value.field == "url"
    with pytest.raises(pr.ValidationError) as e:
        pr.Registry.open("http://user:pw@127.0.0.1:9", api_key="k")
    assert e.value.field == "url" and "pw" not in str(e.value)
    with pytest.raises(TypeError):
        pr.Registry.open(DOWN, api_key=123)  # type: ignore[arg-type]


def test_keys_decide_project_and_rights(remote_server: RemoteServer, project: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(pr.AuthError) as e:
        pr.Registry.open(remote_server.url, api_key="pr_00000000_not-a-key")
    assert e.value.status == 401 and e.value.kind == "unauthorized"

    admin = remote_server.key(project)
    monkeypatch.setenv("PROMPT_REGISTRY_API_KEY", admin)
    reg = pr.Registry.open(remote_server.url)  # the key from the environment
    assert reg.project == project and reg.remote_url == remote_server.url
    reg.create_version(NAME, "Hi {{ name }}", labels=["production"])

    with pytest.raises(pr.ValidationError) as v:
        pr.Registry.open(remote_server.url, api_key=admin, project="someone-else")
    assert v.value.field == "project"

    viewer = pr.Registry.open(remote_server.url, api_key=remote_server.key(project, "viewer"))
    assert viewer.get(NAME).render(name="Ada") == "Hi Ada"
    with pytest.raises(pr.AuthError) as f:
        viewer.create_version(NAME, "nope")
    assert f.value.status == 403 and f.value.kind == "forbidden"

    other = pr.Registry.open(remote_server.url, api_key=remote_server.key(project + "x"))
    with pytest.raises(pr.NotFoundError):
        other.get(NAME)


def test_project_is_checked_once_the_server_is_reached(tmp_path: Path) -> None:
    # Opened while the server is down: nothing can be checked yet, nothing is wrong yet.
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    server = start_server(registry_binary(), tmp_path, {"PROMPT_REGISTRY_ADDR": f"127.0.0.1:{port}"})
    key = server.key("real")
    stop_server(server)
    wrong = pr.Registry.open(url, api_key=key, project="other")
    right = pr.Registry.open(url, api_key=key)
    assert "Registry(url=" in repr(right)
    with pytest.raises(pr.UnavailableError):
        right.project
    server = start_server(registry_binary(), tmp_path, {"PROMPT_REGISTRY_ADDR": f"127.0.0.1:{port}"})
    try:
        with pytest.raises(pr.ValidationError) as e:
            wrong.create_prompt("x")  # the first request that reaches the server checks it
        assert e.value.field == "project"
        assert right.project == "real"
        right.create_prompt("x")
    finally:
        stop_server(server)


def test_server_down_at_open_then_fallback() -> None:
    reg = pr.Registry.open(DOWN, api_key="pr_00000000_unused")  # not an error: nothing asked yet
    with pytest.raises(pr.UnavailableError):
        reg.get(NAME)
    fb = reg.get(NAME, fallback="Hello {{ name }}")
    assert fb.is_fallback and fb.version == 0 and fb.variables == ["name"]
    assert fb.render(name="Ada") == "Hello Ada"
    chat = reg.get(NAME, label="staging", fallback=[{"role": "user", "content": "{{ q }}"}])
    assert chat.is_fallback and chat.kind == "chat"
    assert chat.render(q="why?") == [{"role": "user", "content": "why?"}]
    with pytest.raises(pr.UnavailableError):
        reg.execute(NAME, {"name": "x"})


@pytest.mark.asyncio
async def test_async_fallback() -> None:
    reg = await pr.AsyncRegistry.open(DOWN, api_key="pr_00000000_unused")
    fb = await reg.get(NAME, fallback="Hello {{ name }}")
    assert fb.is_fallback and fb.render(name="B") == "Hello B"


def test_cache_follows_changes_at_once_and_serves_stale_while_down(tmp_path: Path) -> None:
    server = start_server(registry_binary(), tmp_path)
    try:
        key = server.key("cache")
        writer = pr.Registry.open(server.url, api_key=key, cache=False)
        writer.create_version(NAME, "one {{ x }}", labels=["production"])
        reader = pr.Registry.open(server.url, api_key=key, cache_ttl_ms=60_000)
        assert reader.get(NAME).version == 1

        # Another client moves the label: the reader's cache follows the server's event
        # stream, so it sees the move well before its TTL (a minute) runs out.
        writer.create_version(NAME, "two {{ x }}", labels=["production"])
        deadline = time.monotonic() + 10
        while reader.get(NAME).version != 2:
            assert time.monotonic() < deadline, "the move never reached the reader's cache"
            time.sleep(0.02)
        # Once the move's event has been handled, the answer stays cached.
        time.sleep(0.3)
        assert reader.get(NAME).version == 2
    finally:
        stop_server(server)

    # Server gone: what was fetched is still served (not the fallback); the rest falls back.
    time.sleep(0.25)
    v = reader.get(NAME, fallback="never used")
    assert (v.version, v.is_fallback) == (2, False)
    assert v.render(x=1) == "two 1"
    assert reader.get(NAME, label="latest", fallback="offline {{ x }}").is_fallback
    with pytest.raises(pr.UnavailableError):
        reader.get(NAME, label="latest")


def test_remote_example_runs(remote_server: RemoteServer) -> None:
    env = dict(os.environ)
    env["PROMPT_REGISTRY_URL"] = remote_server.url
    env["PROMPT_REGISTRY_API_KEY"] = remote_server.key("examples", "admin")
    out = subprocess.run(
        [sys.executable, str(REPO / "examples/python/remote.py")],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "executed: completed" in out.stdout and "fallback: True" in out.stdout, out.stdout


def _post_json(url: str, body: dict, token: str = "") -> dict:
    import json
    import urllib.request

    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        text = r.read().decode()
    return json.loads(text) if text else {}


def test_a_user_access_token_works_in_remote_mode(remote_server: RemoteServer) -> None:
    """``token=`` with ``project=``: the user's role in that project, the same methods."""
    import uuid

    email = f"py-{uuid.uuid4().hex[:8]}@example.com"
    password = "violet tugboat ferments quietly"
    base = remote_server.url
    _post_json(f"{base}/api/auth/register", {"email": email, "password": password})
    token = _post_json(f"{base}/api/auth/login", {"email": email, "password": password})["access_token"]
    org = f"py{uuid.uuid4().hex[:8]}"
    _post_json(f"{base}/api/v1/orgs", {"name": org}, token)
    _post_json(f"{base}/api/v1/orgs/{org}/projects", {"name": "app"}, token)

    reg = pr.Registry.open(base, token=token, project=f"{org}/app", cache=False)
    reg.create_version("greet", "Hello {{ who }}", labels=["production"])
    assert reg.get("greet").render(who="Ada") == "Hello Ada"
    run = reg.execute("greet", variables={"who": "Ada"}, provider="mock", model="mock/echo")
    assert run.status == "completed"
    assert reg.list_versions("greet").items[0].created_by == f"user:{email}"

    # Another organization's project is not found; the arguments are checked.
    with pytest.raises(pr.NotFoundError):
        pr.Registry.open(base, token=token, project="default/nope", cache=False)
    with pytest.raises(pr.ValidationError) as e:
        pr.Registry.open(base, token=token)
    assert e.value.field == "project"
    with pytest.raises(pr.ValidationError) as e:
        pr.Registry.open(base, token="pr_not_a_jwt", project="x")
    assert e.value.field == "token"
    with pytest.raises(pr.ValidationError) as e:
        pr.Registry.open(base, token=token, api_key="pr_x", project="x")
    assert e.value.field == "token"


class _LossyProxy:
    """A TCP proxy to a server that loses the answer to the first ``POST`` it forwards
    (the server handles it, the client's connection is closed unanswered); everything
    else passes through. ``posts`` counts the ``POST`` requests it saw."""

    def __init__(self, target: str) -> None:
        import socket
        import threading

        host, port = target.removeprefix("http://").split(":")
        self.target = (host, int(port))
        self.posts = 0
        self._dropped = False
        self._lock = threading.Lock()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import threading

        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: "socket.socket") -> None:  # noqa: F821
        import socket
        import threading

        server = socket.create_connection(self.target)
        lose = threading.Event()

        def close_both() -> None:
            for s in (client, server):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        def upstream() -> None:
            try:
                while data := client.recv(65536):
                    if data.startswith(b"POST"):
                        with self._lock:
                            self.posts += 1
                            if not self._dropped:
                                self._dropped = True
                                lose.set()
                    server.sendall(data)
            except OSError:
                pass
            close_both()

        threading.Thread(target=upstream, daemon=True).start()
        try:
            # Requests on one connection are sequential: once the first POST is sent,
            # the next bytes from the server are its answer, which is lost.
            while data := server.recv(65536):
                if lose.is_set():
                    break
                client.sendall(data)
        except OSError:
            pass
        close_both()

    def close(self) -> None:
        self.listener.close()


def test_a_retried_ingestion_is_stored_once(remote_server: RemoteServer, project: str) -> None:
    key = remote_server.key(project)
    proxy = _LossyProxy(remote_server.url)
    try:
        reg = pr.Registry.open(proxy.url, api_key=key)
        results = reg.log_runs([{"provider": "mock", "model": "m", "output": f"r{i}"} for i in range(3)])
        assert all(isinstance(r, pr.Run) for r in results), results
        assert proxy.posts >= 2, "the first answer was lost and the batch sent again"
    finally:
        proxy.close()
    direct = pr.Registry.open(remote_server.url, api_key=key)
    assert len(list(direct.runs(limit=50))) == 3
