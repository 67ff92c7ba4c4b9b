"""The official `langfuse` package against /api/public/v2/prompts."""

from __future__ import annotations

from langfuse import Langfuse



def test_create_get_compile(server) -> None:
    lf = Langfuse(
        public_key=server.langfuse_public,
        secret_key=server.langfuse_secret,
        host=server.url,
        tracing_enabled=False,
    )
    created = lf.create_prompt(
        name="interop/movie-critic",
        type="text",
        prompt="As a {{criticlevel}} critic, rate {{movie}}.",
        labels=["production"],
        tags=["films"],
        config={"model": "mock/echo", "temperature": 0.5},
    )
    assert created.version == 1
    lf.create_prompt(
        name="interop/movie-critic",
        type="text",
        prompt="V2: as a {{criticlevel}} critic, review {{movie}}.",
        labels=["staging"],
    )
    by_label = lf.get_prompt("interop/movie-critic", cache_ttl_seconds=0)
    assert by_label.version == 1
    assert by_label.config == {"model": "mock/echo", "temperature": 0.5}
    assert by_label.compile(criticlevel="expert", movie="Dune") == "As a expert critic, rate Dune."
    staging = lf.get_prompt("interop/movie-critic", label="staging", cache_ttl_seconds=0)
    assert staging.version == 2
    by_version = lf.get_prompt("interop/movie-critic", version=2, cache_ttl_seconds=0)
    assert by_version.compile(criticlevel="casual", movie="Up") == "V2: as a casual critic, review Up."
    chat = lf.create_prompt(
        name="interop/chat",
        type="chat",
        prompt=[{"role": "system", "content": "You are {{persona}}."}, {"role": "user", "content": "{{q}}"}],
        labels=["production"],
    )
    fetched = lf.get_prompt("interop/chat", type="chat", cache_ttl_seconds=0)
    assert fetched.version == chat.version
    assert fetched.compile(persona="kind", q="hi") == [
        {"role": "system", "content": "You are kind."},
        {"role": "user", "content": "hi"},
    ]
    lf.update_prompt(name="interop/movie-critic", version=2, new_labels=["canary"])
    assert lf.get_prompt("interop/movie-critic", label="canary", cache_ttl_seconds=0).version == 2
    listed = lf.api.prompts.list(name="interop/movie-critic")
    assert listed.data[0].versions == [1, 2]
    assert listed.meta.total_items == 1
    lf.shutdown()


def test_chat_placeholders_round_trip(server) -> None:
    lf = Langfuse(
        public_key=server.langfuse_public,
        secret_key=server.langfuse_secret,
        host=server.url,
        tracing_enabled=False,
    )
    lf.create_prompt(
        name="interop/with-history",
        type="chat",
        prompt=[
            {"role": "system", "content": "You are {{persona}}."},
            {"type": "placeholder", "name": "history"},
            {"role": "user", "content": "{{q}}"},
        ],
        labels=["production"],
    )
    fetched = lf.get_prompt("interop/with-history", type="chat", cache_ttl_seconds=0)
    assert fetched.prompt[1] == {"type": "placeholder", "name": "history"}
    compiled = fetched.compile(
        persona="kind",
        q="and now?",
        history=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
    )
    assert compiled == [
        {"role": "system", "content": "You are kind."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "and now?"},
    ]
    lf.shutdown()


def test_errors_in_langfuse_shape(server) -> None:
    lf = Langfuse(
        public_key=server.langfuse_public,
        secret_key=server.langfuse_secret,
        host=server.url,
        tracing_enabled=False,
    )
    try:
        lf.api.prompts.get("interop/does-not-exist")
    except Exception as exc:  # the SDK's NotFoundError (an ApiError)
        assert getattr(exc, "status_code", None) == 404, exc
        body = getattr(exc, "body", None)
        assert isinstance(body, dict), body
        assert body["error"] == "LangfuseNotFoundError"
        assert "interop/does-not-exist" in body["message"]
    else:
        raise AssertionError("a missing prompt must raise")
    lf.shutdown()
