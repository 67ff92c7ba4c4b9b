"""Error mapping: every core error kind becomes its exception class, with attributes;
wrong Python argument types are TypeError/ValueError, never a crash."""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict, Type

import pytest

import prompt_registry as pr
from prompt_registry import _native

KINDS: Dict[str, Type[pr.PromptRegistryError]] = {
    "not_found": pr.NotFoundError,
    "already_exists": pr.AlreadyExistsError,
    "conflict": pr.ConflictError,
    "precondition_failed": pr.PreconditionFailedError,
    "invalid_input": pr.ValidationError,
    "template": pr.TemplateError,
    "provider": pr.ProviderError,
    "provider_auth": pr.ProviderAuthError,
    "unavailable": pr.UnavailableError,
    "storage": pr.UnavailableError,
    "unsupported": pr.UnsupportedError,
    "unauthorized": pr.AuthError,
    "forbidden": pr.AuthError,
    "internal": pr.InternalError,
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_maps_to_its_class(kind: str) -> None:
    exc = _native._error_for_kind(kind)
    assert type(exc) is KINDS[kind]
    assert isinstance(exc, pr.PromptRegistryError)
    assert str(exc) and exc.message == str(exc)


def test_attributes_of_mapped_errors() -> None:
    e: Any = _native._error_for_kind("invalid_input")
    assert e.field == "name" and e.kind == "invalid_input" and isinstance(e, ValueError)
    assert e.index is None  # set only by Registry.batch (see test_feed.py)
    e = _native._error_for_kind("template")
    assert e.missing_variables == ["a", "b"] and e.field == "variables"
    e = _native._error_for_kind("provider")
    assert (e.provider, e.provider_kind, e.status, e.retryable, e.retry_after) == (
        "openai", "rate_limited", 429, True, 1.5)
    e = _native._error_for_kind("provider_auth")
    assert isinstance(e, pr.AuthError) and isinstance(e, pr.ProviderError)
    assert e.status == 401 and e.retryable is False
    e = _native._error_for_kind("unavailable")
    assert e.retry_after == 2.0
    e = _native._error_for_kind("storage")
    assert (e.kind, e.retry_after) == ("storage", 1.0)
    e = _native._error_for_kind("unauthorized")
    assert (e.kind, e.status) == ("unauthorized", 401) and not isinstance(e, pr.ProviderError)
    e = _native._error_for_kind("forbidden")
    assert (e.kind, e.status) == ("forbidden", 403)
    e = _native._error_for_kind("not_found")
    assert e.what == "prompt 'x'" and isinstance(e, LookupError)


@pytest.fixture
def mem() -> pr.Registry:
    reg = pr.Registry.open("memory://")
    reg.create_version("p", "Hi {{ name }}", config={"provider": "mock", "model": "mock/echo"},
                       labels=["production"])
    return reg


def test_real_calls_raise_each_reachable_kind(mem: pr.Registry) -> None:
    with pytest.raises(pr.NotFoundError):
        mem.get("nope")
    with pytest.raises(pr.AlreadyExistsError):
        mem.create_prompt("p")
    with pytest.raises(pr.PreconditionFailedError):
        mem.update_prompt("p", tags=["a"], if_match='"stale"')
    with pytest.raises(pr.ValidationError) as v:
        mem.create_prompt("bad name\n")
    assert v.value.field == "name"
    with pytest.raises(pr.TemplateError) as t:
        mem.render("p", {})
    assert t.value.missing_variables == ["name"]
    with pytest.raises(pr.ValidationError) as j:  # a malformed template is refused up front
        mem.create_version("j", "{% if %}", template_format="jinja")
    assert j.value.field == "template"
    with pytest.raises(pr.ProviderError) as p:
        mem.execute("p", {"name": "x"}, model="mock/error-rate_limited", raise_on_error=True)
    assert p.value.retryable is True and p.value.provider_kind == "rate_limited"
    with pytest.raises(pr.AuthError) as a:
        mem.execute("p", {"name": "x"}, model="mock/error-auth", raise_on_error=True)
    assert isinstance(a.value, pr.ProviderError) and a.value.retryable is False
    with pytest.raises(pr.ValidationError) as u:
        pr.Registry.open("mysql://x")
    assert u.value.field == "url"


def test_unreachable_database_is_unavailable() -> None:
    # Nothing listens on port 1: the pool cannot connect.
    with pytest.raises(pr.PromptRegistryError) as e:
        pr.Registry.open("postgres://postgres@127.0.0.1:1/none")
    assert isinstance(e.value, pr.UnavailableError), repr(e.value)


def test_wrong_argument_types(mem: pr.Registry) -> None:
    bad: Any = 123
    with pytest.raises(TypeError):
        mem.get(bad)
    with pytest.raises(TypeError):
        pr.Registry.open(bad)
    with pytest.raises(TypeError):
        mem.create_version("p", bad)
    with pytest.raises(TypeError):
        mem.create_version("p", [bad])
    with pytest.raises(TypeError):
        mem.create_prompt("q", tags="notalist")
    with pytest.raises(TypeError):
        mem.get("p", version=bad and "2")
    with pytest.raises(TypeError):
        mem.render("p", bad)
    with pytest.raises(TypeError):
        mem.get("p").render(name=object())
    with pytest.raises(TypeError):
        mem.get("p").render_with(bad)
    with pytest.raises(TypeError):
        mem.create_version("p", "x", config={1: "a"})
    with pytest.raises(ValueError):
        mem.create_version("p", "x", config={"t": float("nan")})
    with pytest.raises(ValueError):
        mem.get("p", version=-1)
    with pytest.raises(ValueError):
        mem.get("p", version=2**40)
    with pytest.raises(ValueError):
        mem.runs(since=dt.datetime(2020, 1, 1))  # naive datetime
    with pytest.raises(TypeError):
        mem.runs(since=bad)
    with pytest.raises(ValueError):
        mem.runs(status="bogus")
    with pytest.raises(ValueError):
        mem.runs(limit=0)
    with pytest.raises(ValueError):
        mem.log_run(prompt="p", cost_usd="lots")
    with pytest.raises(TypeError):
        mem.log_run(prompt="p", cost_usd=bad and object())
    with pytest.raises(TypeError):
        mem.log_run(nonsense=1)  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        mem.get_run("not-a-uuid")
    with pytest.raises(ValueError):
        mem.execute("p", {"name": "x"}, timeout_ms=-5)
    cyclic: Any = []
    cyclic.append(cyclic)
    with pytest.raises(ValueError):
        mem.render("p", {"name": cyclic})
    # the registry still works afterwards
    assert mem.render("p", {"name": "ok"}) == "Hi ok"
