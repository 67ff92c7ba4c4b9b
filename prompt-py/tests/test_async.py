"""AsyncRegistry: the same behaviour through awaitables (pytest-asyncio)."""

from __future__ import annotations

import asyncio

import pytest

import prompt_registry as pr

from conftest import Backend

NAME = "support/triage"


@pytest.mark.asyncio
async def test_async_flow(backend: Backend, project: str) -> None:
    reg = await backend.open_async(project)
    assert isinstance(reg, pr.AsyncRegistry)
    await reg.create_prompt(NAME, description="d", tags=["t"])
    v1 = await reg.create_version(NAME, "Classify: {{ ticket }}",
                                  config={"provider": "mock", "model": "mock/echo"})
    await reg.create_version(NAME, [{"role": "user", "content": "{{ ticket }}"}], labels=["production"])
    move = await reg.set_label(NAME, "production", version=1)
    assert move.to_version == 1
    v = await reg.get(NAME)
    assert v == v1 or v.version == 1
    assert v.render(ticket="x") == "Classify: x"
    assert await reg.render(NAME, {"ticket": "y"}) == "Classify: y"
    run = await reg.execute(NAME, {"ticket": "z"})
    assert run.status == "completed" and run.output == "Classify: z"
    assert (await reg.get_run(run.id)) == run
    await reg.log_run(prompt=NAME, version=2, status="completed", latency_ms=10)
    page = await reg.runs(prompt=NAME, limit=1)
    assert len(page) == 1 and page.next_cursor is not None
    stats = await reg.stats(NAME)
    assert stats.count == 2
    history = await reg.label_history(NAME, "production")
    assert [m.to_version for m in history] == [1, 2]
    assert [p.name for p in await reg.list_prompts()] == [NAME]
    with pytest.raises(pr.NotFoundError):
        await reg.get("missing")
    with pytest.raises(pr.ValidationError):
        await reg.get(NAME, version=-3)


@pytest.mark.asyncio
async def test_async_calls_run_concurrently() -> None:
    reg = await pr.AsyncRegistry.open("memory://")
    await reg.create_version("p", "{{ i }}", labels=["production"])
    results = await asyncio.gather(*(reg.render("p", {"i": i}) for i in range(50)))
    assert results == [str(i) for i in range(50)]


def test_sync_registry_cannot_be_built_from_an_async_native() -> None:
    with pytest.raises(TypeError):
        pr.Registry(object())


@pytest.mark.asyncio
async def test_awaiting_does_not_block_the_event_loop(tmp_path: "pytest.TempPathFactory") -> None:
    reg = await pr.AsyncRegistry.open(f"sqlite://{tmp_path}/loop.db")
    await reg.create_version("p", "{{ x }}", labels=["production"])
    batch = [{"prompt": "p", "output": "o" * 200} for _ in range(2000)]
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0)

    t = asyncio.create_task(ticker())
    for _ in range(3):
        results = await reg.log_runs(batch)
        assert all(isinstance(r, pr.Run) for r in results)
    done.set()
    await t
    # The loop kept running other tasks while the runs were being written.
    assert ticks > 100, ticks
    assert (await reg.stats("p")).count == 6000


@pytest.mark.asyncio
async def test_async_delete_version(backend: Backend, project: str) -> None:
    reg = await backend.open_async(project)
    await reg.create_version(NAME, "one")
    await reg.create_version(NAME, "two", labels=["staging"])
    with pytest.raises(pr.ConflictError, match="'staging'"):
        await reg.delete_version(NAME, 2)
    await reg.delete_version(NAME, 1)
    with pytest.raises(pr.NotFoundError, match="deleted"):
        await reg.get_version(NAME, 1)
    assert [v.version for v in await reg.list_versions(NAME)] == [2]
    await reg.protect_label("staging")
    assert [p.label for p in await reg.protected_labels()] == ["production", "staging"]
    await reg.unprotect_label("staging")


@pytest.mark.asyncio
async def test_async_diff(backend: Backend, project: str) -> None:
    reg = await backend.open_async(project)
    await reg.create_version(NAME, "Classify {{ ticket }}\nBe brief.",
                             config={"model": "a"}, commit_message="first", labels=["production"])
    await reg.create_version(NAME, "Classify this {{ ticket }}\nBe brief.\n{{ team }}",
                             config={"model": "b", "temperature": 0}, commit_message="second")
    d = await reg.diff(NAME, from_="production", to=2)
    assert isinstance(d, pr.VersionDiff)
    assert (d.from_.version, d.to.version) == (1, 2)
    assert (d.from_.commit_message, d.to.commit_message) == ("first", "second")
    assert d.template_kind == "text" and not d.identical and not d.kind_changed
    line = d.hunks[0].lines[0]
    assert line.op == "change" and line.old_text == "Classify {{ ticket }}"
    assert pr.DiffSegment("insert", "this ") in line.segments, line.segments
    assert d.hunks[0].lines[-1] == pr.DiffLine("insert", None, 3, "{{ team }}", None, None, [])
    assert d.variables_added == ["team"] and d.variables_removed == []
    assert {"op": "replace", "path": "/model", "value": "b"} in d.config_patch

    await reg.create_version(NAME, [{"role": "user", "content": "{{ ticket }}"}])
    await reg.create_version(NAME, [{"role": "system", "content": "Be brief."},
                                    {"role": "user", "content": "{{ ticket }}"}])
    d = await reg.diff(NAME, from_=3, to="latest")
    assert d.template_kind == "chat"
    assert [m.status for m in d.messages] == ["added", "unchanged"]
    assert d.messages[0].to_message == {"role": "system", "content": "Be brief."}
    assert (await reg.diff(NAME, from_=4, to="latest")).identical

    with pytest.raises(pr.NotFoundError, match="`from`"):
        await reg.diff(NAME, from_=9, to=1)
    with pytest.raises(pr.NotFoundError, match="`to`"):
        await reg.diff(NAME, from_=1, to="nope")
    with pytest.raises(pr.ValidationError) as e:
        await reg.diff(NAME, from_=-1, to=1)
    assert e.value.field == "from_"
    with pytest.raises(TypeError):
        await reg.diff(NAME, from_=1.5, to=1)  # type: ignore[arg-type]


def test_sync_diff(reg: pr.Registry) -> None:
    reg.create_version(NAME, "a", labels=["production"])
    reg.create_version(NAME, "b", template_format="jinja")
    d = reg.diff(NAME, from_="production", to=2)
    assert d.format_changed and d.hunks[0].lines[0].segments == [
        pr.DiffSegment("delete", "a"), pr.DiffSegment("insert", "b")]
