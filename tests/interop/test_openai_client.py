"""The official `openai` package against /v1/chat/completions (mock upstream)."""

from __future__ import annotations

import json
import urllib.request

import openai
import pytest



def client(server, key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(api_key=key or server.admin_key, base_url=f"{server.url}/v1", max_retries=0)


def get_run(server, run_id: str) -> dict:
    req = urllib.request.Request(
        f"{server.url}/api/v1/runs/{run_id}", headers={"Authorization": f"Bearer {server.admin_key}"}
    )
    with urllib.request.urlopen(req) as r:
        return json.load(r)


def test_chat_completion(server) -> None:
    raw = client(server).chat.completions.with_raw_response.create(
        model="upstream/gpt-4o-mini",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}],
        temperature=0.2,
    )
    c = raw.parse()
    assert c.object == "chat.completion"
    assert c.choices[0].message.role == "assistant"
    assert "hello there" in (c.choices[0].message.content or "")
    assert c.choices[0].finish_reason == "stop"
    assert c.usage is not None and c.usage.total_tokens == c.usage.prompt_tokens + c.usage.completion_tokens
    assert float(raw.headers["x-prompt-registry-overhead-ms"]) >= 0
    run = get_run(server, raw.headers["x-prompt-registry-run-id"])
    assert run["status"] == "completed"
    assert run["provider"] == "upstream" and run["model"] == "gpt-4o-mini"
    assert run["input_tokens"] == c.usage.prompt_tokens


def test_streaming_with_usage(server) -> None:
    stream = client(server).chat.completions.create(
        model="upstream/gpt-4o-mini",
        messages=[{"role": "user", "content": "stream this answer"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text = ""
    usage = None
    finish = None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert text == "stream this answer"
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens > 0


def test_prompt_reference(server) -> None:
    body = json.dumps(
        {
            "template": [{"role": "system", "content": "You help {{name}}."}],
            "config": {"provider": "upstream", "model": "gpt-4o-mini"},
            "labels": ["production"],
        }
    ).encode()
    req = urllib.request.Request(
        f"{server.url}/api/v1/prompts/interop-helper/versions",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {server.admin_key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req) as r:
        assert r.status == 201
    c = client(server).chat.completions.create(
        model="prompt:interop-helper",
        messages=[{"role": "user", "content": "hi"}],
        extra_body={"prompt_variables": {"name": "Ada"}},
    )
    assert "You help Ada." in (c.choices[0].message.content or "")
    ids = [m.id for m in client(server).models.list()]
    assert "prompt:interop-helper" in ids and "mock/echo" in ids


def test_errors(server) -> None:
    with pytest.raises(openai.RateLimitError) as e:
        client(server).chat.completions.create(
            model="upstream/error-429", messages=[{"role": "user", "content": "x"}]
        )
    assert e.value.status_code == 429
    assert e.value.response.headers["retry-after"] == "20"
    with pytest.raises(openai.AuthenticationError):
        client(server, key="pr_00000000_wrong").chat.completions.create(
            model="mock/echo", messages=[{"role": "user", "content": "x"}]
        )
    with pytest.raises(openai.NotFoundError) as nf:
        client(server).chat.completions.create(model="nowhere/x", messages=[{"role": "user", "content": "x"}])
    assert nf.value.code == "model_not_found"
    with pytest.raises(openai.APIError):
        for _ in client(server).chat.completions.create(
            model="upstream/midstream-error", messages=[{"role": "user", "content": "x"}], stream=True
        ):
            pass
