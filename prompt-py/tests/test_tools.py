"""The prompt tools from Python: analyze, remix, create_from_goal, optimize, with the
default ``mock/echo`` tools model (it echoes its input, so rewrites come back
unchanged and the critique is reported unavailable, with the reason)."""

from __future__ import annotations

import pytest

import prompt_registry as pr

from conftest import Backend


def test_analyze_static_report_and_echo_critique(reg: pr.Registry) -> None:
    a = reg.analyze("Summarize {text} for {{ audience }}", variables=["audience", "tone"])
    assert isinstance(a, pr.Analysis)
    assert a.kind == "text" and a.variables == ["audience"]
    assert a.codes == ["unused_variable", "single_brace_placeholder"]
    assert all(isinstance(lint, pr.Lint) and lint.severity == "warning" for lint in a.lints)
    assert a.length.chars == 35 and a.length.tokens == 9
    assert "ceil(characters / 4)" in a.length.tokenizer
    assert not a.critique.available
    assert a.critique.reason is not None and "mock/echo" in a.critique.reason
    assert len(a.critique.runs) == 2
    runs = reg.runs(prompt="_tools/analyze")
    assert len(runs) == 2 and all(r.metadata["tool"] == "analyze" for r in runs)

    reg.create_version("greet", [{"role": "user", "content": "Hi {{ name }}"}])
    a = reg.analyze(prompt="greet", label="latest", critique=False)
    assert a.source == {"prompt": "greet", "version": 1}
    assert a.kind == "chat" and a.messages == 1 and a.lints == []
    assert a.critique.runs == []


def test_remix_create_optimize_with_echo(reg: pr.Registry) -> None:
    r = reg.remix("Translate {{ text }} into {{ lang }}", "concise")
    assert isinstance(r, pr.Remix)
    assert r.template == "Translate {{ text }} into {{ lang }}"
    assert r.variables == ["text", "lang"] and r.model == "mock/echo"
    r = reg.remix([{"role": "user", "content": "{{ q }}"}], {"custom": "pirate talk"})
    assert r.kind == "chat" and r.style == "custom"

    c = reg.create_from_goal(
        "Answer billing questions", audience="customers", constraints=["under 100 words"],
        variables=["question"], save_as="billing/answer",
    )
    assert isinstance(c, pr.Created)
    assert c.variables == ["question"]
    assert c.saved is not None and c.saved.version == 1
    with pytest.raises(pr.AlreadyExistsError):
        reg.create_from_goal("again", save_as="billing/answer")

    o = reg.optimize("billing/answer", label="latest", goal="shorter")
    assert isinstance(o, pr.Optimized)
    assert (o.source_version, o.version.version) == (1, 2)
    assert o.version.labels == ["latest"]
    assert o.version.commit_message is not None
    assert o.version.commit_message.startswith("Optimized from version 1")


def test_tool_errors_name_the_field(reg: pr.Registry) -> None:
    with pytest.raises(pr.ValidationError) as e:
        reg.analyze()
    assert e.value.field == "template"
    with pytest.raises(pr.ValidationError) as e:
        reg.remix("{{ a }}", "loud")
    assert e.value.field == "style"
    with pytest.raises(pr.ValidationError) as e:
        reg.create_from_goal("g", variables=["ok", "not ok"])
    assert e.value.field == "variables[1]"
    with pytest.raises(pr.NotFoundError):
        reg.optimize("missing")
    with pytest.raises(TypeError):
        reg.remix("{{ a }}", 3)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_async_tools(backend: Backend, project: str) -> None:
    reg = await backend.open_async(project)
    a = await reg.analyze([{"role": "system", "content": "Be brief."}], critique=False)
    assert "no_user_message" in a.codes
    r = await reg.remix("Sum up {{ text }}", "step_by_step")
    assert r.variables == ["text"]
    c = await reg.create_from_goal("Write haiku about {{ topic }}", variables=["topic"], kind="chat")
    assert c.kind == "chat" and c.variables == ["topic"]
    await reg.create_version("h", "Haiku about {{ topic }}")
    o = await reg.optimize("h", version=1)
    assert o.version.version == 2


def test_tools_model_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    # The mock provider's `mock/error-<kind>` models fail with that kind.
    monkeypatch.setenv("PROMPT_REGISTRY_TOOLS_MODEL", "mock/error-timeout")
    reg = pr.Registry.open("memory://")
    with pytest.raises(pr.UnavailableError):
        reg.remix("Sum up {{ text }}", "concise")
    a = reg.analyze("Sum up {{ text }}")
    assert not a.critique.available
    assert a.critique.reason is not None and "timeout" in a.critique.reason
    assert a.variables == ["text"]

    monkeypatch.setenv("PROMPT_REGISTRY_TOOLS_MODEL", "mock/error-auth")
    reg = pr.Registry.open("memory://")
    with pytest.raises(pr.ProviderAuthError):
        reg.create_from_goal("Write haiku")

    monkeypatch.setenv("PROMPT_REGISTRY_TOOLS_MODEL", "gpt-4o")
    with pytest.raises(pr.ValidationError) as e:
        pr.Registry.open("memory://")
    assert e.value.field == "tools_model"
