"""Prompt composition from Python: ``{{> name@label }}`` expanded by ``render`` with
its ``resolution``, recorded on runs, and refused at creation when it cannot be."""

from __future__ import annotations

import pytest

import prompt_registry as pr


def test_render_and_runs_expose_the_resolution(reg: pr.Registry) -> None:
    reg.create_version("team/tone", "Be {{ mood }}.", labels=["production"])
    reg.create_version(
        "mail",
        "Hi {{ name }}. {{> team/tone }}",
        config={"provider": "mock", "model": "mock/echo"},
        labels=["production"],
    )
    out = reg.render("mail", {"name": "Ann", "mood": "kind"})
    assert out == "Hi Ann. Be kind."
    assert isinstance(out, pr.RenderedText)
    want = [{"name": "team/tone", "selector": "production", "version": 1, "includes": []}]
    assert out.resolution == want

    reg.create_version("chat", [{"role": "system", "content": "{{> team/tone#1 }}"}])
    msgs = reg.render("chat", {"mood": "calm"}, label="latest")
    assert msgs == [{"role": "system", "content": "Be calm."}]
    assert msgs.resolution == [dict(want[0], selector="#1")]
    plain = reg.render("team/tone", {"mood": "x"})
    assert plain == "Be x." and plain.resolution == []

    run = reg.execute("mail", {"name": "Ann", "mood": "calm"})
    assert run.output == "Hi Ann. Be calm."
    assert run.resolution == want
    assert reg.get_run(run.id).resolution == want

    with pytest.raises(pr.ValidationError) as e:
        reg.create_version("team/tone", "{{> mail }}")
    assert "include cycle: team/tone -> mail -> team/tone" in str(e.value)


def test_get_expands_includes_so_render_works_offline(reg: pr.Registry) -> None:
    reg.create_version("team/tone", "Be {{ mood }}.", labels=["production"])
    reg.create_version("mail", "Hi {{ name }}. {{> team/tone }}", labels=["production"])
    v = reg.get("mail")
    assert v.template == "Hi {{ name }}. Be {{ mood }}."
    assert sorted(v.variables) == ["mood", "name"]
    assert v.resolution == [
        {"name": "team/tone", "selector": "production", "version": 1, "includes": []}
    ]
    assert v.render(name="Ann", mood="kind") == "Hi Ann. Be kind."

    raw = reg.get("mail", resolve=False)
    assert raw.template == "Hi {{ name }}. {{> team/tone }}"
    assert raw.resolution == []
    with pytest.raises(TypeError):
        reg.get("mail", resolve="no")  # type: ignore[arg-type]

    # A label moved on the dependency is seen by the next get.
    reg.create_version("team/tone", "Be brief.", labels=["production"])
    again = reg.get("mail")
    assert again.render(name="Ann") == "Hi Ann. Be brief."
    assert again.resolution[0]["version"] == 2
    # A version without includes has an empty resolution.
    assert reg.get("team/tone").resolution == []
