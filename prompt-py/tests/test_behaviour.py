"""The Rust behaviour scenarios at the Python level, on every backend."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

import prompt_registry as pr

from conftest import Backend

NAME = "support/triage"


def test_prompt_lifecycle(reg: pr.Registry) -> None:
    p = reg.create_prompt(NAME, description="Routes tickets", tags=["support", "b", "support"])
    assert isinstance(p, pr.Prompt)
    assert p.name == NAME and p.description == "Routes tickets"
    assert p.tags == ["b", "support"]  # sorted, deduplicated
    assert p.created_at.tzinfo is not None
    assert p.latest_version is None and p.labels == {}
    assert reg.get_prompt(NAME) == p
    assert p.to_dict()["name"] == NAME
    assert "support/triage" in repr(p)

    with pytest.raises(pr.AlreadyExistsError):
        reg.create_prompt(NAME)

    updated = reg.update_prompt(NAME, description=None, tags=["x"])
    assert updated.description is None and updated.tags == ["x"]
    with pytest.raises(pr.PreconditionFailedError):
        reg.update_prompt(NAME, tags=["y"], if_match=p.etag)
    assert reg.update_prompt(NAME, tags=["y"], if_match=updated.etag).tags == ["y"]

    reg.create_prompt("other")
    names = [x.name for x in reg.list_prompts()]
    assert names == sorted([NAME, "other"])
    assert [x.name for x in reg.list_prompts(tag="y")] == [NAME]
    reg.archive(NAME)
    with pytest.raises(pr.NotFoundError):
        reg.get_prompt(NAME)
    assert [x.name for x in reg.list_prompts()] == ["other"]


def test_versions_are_numbered_and_immutable(reg: pr.Registry) -> None:
    v1 = reg.create_version(NAME, "Classify: {{ ticket }}", config={"provider": "mock", "model": "mock-1"},
                            commit_message="first")
    v2 = reg.create_version(NAME, [{"role": "system", "content": "You triage."},
                                   {"role": "user", "content": "{{ ticket }}"}], labels=["production"])
    assert (v1.version, v2.version) == (1, 2)
    assert v1.kind == "text" and v2.kind == "chat"
    assert v1.variables == ["ticket"] and v1.config == {"provider": "mock", "model": "mock-1"}
    assert v1.commit_message == "first" and v1.template_format == "mustache"
    assert reg.get_version(NAME, 1) == reg.get(NAME, version=1)
    assert reg.get(NAME, version=1).template == "Classify: {{ ticket }}"
    assert [v.version for v in reg.list_versions(NAME)] == [2, 1]
    page = reg.list_versions(NAME, limit=1)
    assert [v.version for v in page] == [2] and page.next_cursor is not None
    rest = reg.list_versions(NAME, limit=1, cursor=page.next_cursor)
    assert [v.version for v in rest] == [1] and rest.next_cursor is None
    assert reg.get_prompt(NAME).latest_version == 2


def test_labels_latest_and_history(reg: pr.Registry) -> None:
    # A server records who moved a label from the API key, never from the client.
    mover = "key:pytest" if reg.remote_url else "ada"
    reg.create_version(NAME, "one {{ x }}")
    reg.create_version(NAME, "two {{ x }}", labels=["production"])
    assert reg.get(NAME).version == 2  # production by default
    assert reg.get(NAME, label="latest").version == 2
    move = reg.set_label(NAME, "production", version=1, actor="ada")
    assert isinstance(move, pr.LabelMove)
    assert (move.from_version, move.to_version, move.moved_by) == (2, 1, mover)
    assert reg.get(NAME).version == 1
    # get() reuses version objects, but never with stale labels
    assert "production" in reg.get(NAME, version=1).labels
    assert "production" not in reg.get(NAME, version=2).labels
    assert reg.get(NAME) is reg.get(NAME)
    reg.create_version(NAME, "three {{ x }}")
    assert reg.get(NAME, label="latest").version == 3
    assert reg.get(NAME).version == 1  # production did not move
    assert reg.get_prompt(NAME).labels == {"latest": 3, "production": 1}

    reg.set_label(NAME, "staging", 3)
    deleted = reg.delete_label(NAME, "staging")
    assert deleted.to_version is None
    with pytest.raises(pr.NotFoundError):
        reg.get(NAME, label="staging")

    history = reg.label_history(NAME, "production")
    assert [(m.from_version, m.to_version) for m in history] == [(2, 1), (None, 2)]
    assert all(m.moved_at.tzinfo is not None for m in history)
    with pytest.raises(pr.ValidationError):
        reg.set_label(NAME, "latest", version=1)


def test_delete_version_is_a_tombstone(reg: pr.Registry) -> None:
    for t in ["one", "two", "three"]:
        reg.create_version(NAME, t)
    reg.set_label(NAME, "staging", 2)
    with pytest.raises(pr.ConflictError, match="'staging'"):
        reg.delete_version(NAME, 2)
    reg.delete_label(NAME, "staging")
    assert reg.delete_version(NAME, 2) is None
    with pytest.raises(pr.NotFoundError, match="deleted"):
        reg.get(NAME, version=2)
    with pytest.raises(pr.NotFoundError, match="deleted"):
        reg.delete_version(NAME, 2)
    assert [v.version for v in reg.list_versions(NAME)] == [3, 1]
    reg.delete_version(NAME, 3)  # only `latest` points at it: it moves back
    assert reg.get(NAME, label="latest").version == 1
    assert reg.create_version(NAME, "four").version == 4  # numbers are never reused
    with pytest.raises(pr.ValidationError):
        reg.delete_version(NAME, 0)


def test_protected_labels(reg: pr.Registry) -> None:
    assert [p.label for p in reg.protected_labels()] == ["production"]
    p = reg.protect_label("staging")
    assert isinstance(p, pr.ProtectedLabel) and p.label == "staging"
    assert p.created_at.tzinfo is not None
    assert reg.protect_label("staging") == p  # already protected: unchanged
    reg.unprotect_label("production")
    assert [p.label for p in reg.protected_labels()] == ["staging"]
    with pytest.raises(pr.NotFoundError):
        reg.unprotect_label("production")
    with pytest.raises(pr.ValidationError):
        reg.protect_label("latest")


def test_resolve_errors(reg: pr.Registry) -> None:
    with pytest.raises(pr.NotFoundError):
        reg.get("missing")
    reg.create_version(NAME, "hi")
    with pytest.raises(pr.NotFoundError):
        reg.get(NAME)  # no production label yet
    with pytest.raises(pr.NotFoundError):
        reg.get(NAME, version=9)
    with pytest.raises(pr.ValidationError) as e:
        reg.get(NAME, label="latest", version=1)
    assert e.value.field == "label"
    with pytest.raises(pr.ValidationError) as e:
        reg.get(NAME, version=0)
    assert e.value.field == "version"
    with pytest.raises(pr.ValidationError):
        reg.get("")


def test_render_text_chat_and_missing_variables(reg: pr.Registry) -> None:
    text = reg.create_version(NAME, "Hi {{ name }}, {{ day }}! {% raw %} }}", labels=["production"])
    assert text.render(name="Ada", day="Monday") == "Hi Ada, Monday! {% raw %} }}"
    assert reg.render(NAME, {"name": "A", "day": "B"}) == "Hi A, B! {% raw %} }}"
    with pytest.raises(pr.TemplateError) as e:
        text.render(name="Ada")
    assert e.value.missing_variables == ["day"]
    assert isinstance(e.value, pr.ValidationError) and isinstance(e.value, ValueError)
    with pytest.raises(pr.TemplateError) as e:
        reg.render(NAME, {})
    assert e.value.missing_variables == ["day", "name"]

    chat = reg.create_version(NAME, [{"role": "system", "content": "You are {{ who }}."},
                                     {"role": "user", "content": "{{ q }}"}])
    assert chat.render(who="a bot", q="why?") == [
        {"role": "system", "content": "You are a bot."},
        {"role": "user", "content": "why?"},
    ]
    jinja = reg.create_version(NAME, "{% for i in items %}{{ i }},{% endfor %}", template_format="jinja")
    assert jinja.render(items=[1, 2, 3]) == "1,2,3,"
    # a variable called `self` still works
    s = reg.create_version(NAME, "{{ self }}")
    assert s.render(self="me") == "me"
    assert s.render_with({"self": "you"}) == "you"


def test_execute_with_mock_provider(reg: pr.Registry) -> None:
    reg.create_version(NAME, "Classify: {{ ticket }}", config={"provider": "mock", "model": "mock/echo"},
                       labels=["production"])
    run = reg.execute(NAME, variables={"ticket": "printer on fire"}, metadata={"user": "u1"})
    assert isinstance(run, pr.Run)
    assert run.status == "completed"
    assert run.output == "Classify: printer on fire"
    assert (run.prompt, run.version, run.label, run.provider) == (NAME, 1, "production", "mock")
    assert run.metadata == {"user": "u1"}
    assert run.completed_at is not None and run.completed_at.tzinfo is not None
    assert reg.get_run(run.id) == run
    assert run.attempts == 0, "executed by its caller, never claimed by a worker"

    failed = reg.execute(NAME, variables={"ticket": "x"}, model="mock/error-rate_limited")
    assert failed.status == "failed" and failed.error is not None
    assert failed.error.kind == "rate_limited"
    with pytest.raises(pr.ProviderError) as e:
        reg.execute(NAME, variables={"ticket": "x"}, model="mock/error-server", raise_on_error=True)
    assert e.value.retryable is True and e.value.provider == "mock"
    assert e.value.run is not None and e.value.run.status == "failed"

    pending = reg.submit(NAME, variables={"ticket": "later"})
    assert pending.status == "pending"


def test_submit_with_workers(reg: pr.Registry) -> None:
    import time

    reg.create_version(NAME, "{{ t }}", config={"provider": "mock", "model": "mock/echo"}, labels=["production"])
    run = reg.submit(NAME, {"t": "queued"})
    reg.start_workers(1)
    try:
        deadline = time.monotonic() + 20
        while reg.get_run(run.id).status != "completed":
            assert time.monotonic() < deadline, "worker did not finish the run"
            time.sleep(0.05)
    finally:
        reg.stop_workers()
    done = reg.get_run(run.id)
    assert done.output == "queued"
    # claimed once by a worker, under a lease it renewed or took at the claim
    assert done.attempts == 1 and run.attempts == 0


def test_log_runs_filters_and_pagination(reg: pr.Registry) -> None:
    reg.create_version(NAME, "{{ t }}", labels=["production"])
    reg.create_version(NAME, "v2 {{ t }}")
    logged = []
    for i in range(7):
        failed = i % 3 == 0
        logged.append(reg.log_run(
            prompt=NAME, version=1 + (i % 2), provider="openai", model="gpt-4o-mini",
            status="failed" if failed else "completed",
            error={"kind": "timeout", "message": "slow"} if failed else None,
            output=None if failed else f"out {i}", latency_ms=100 + i * 10,
            input_tokens=10, output_tokens=5, cost_usd=Decimal("0.0001"),
            metadata={"i": i},
        ))
    r0 = logged[1]
    assert r0.cost_usd == Decimal("0.0001") and isinstance(r0.cost_usd, Decimal)
    assert r0.status == "completed" and r0.metadata == {"i": 1}

    failed_page = reg.runs(prompt=NAME, status="failed", limit=50)
    assert {r.id for r in failed_page} == {logged[i].id for i in (0, 3, 6)}
    assert failed_page.next_cursor is None
    assert all(r.error is not None and r.error.kind == "timeout" for r in failed_page)
    assert len(reg.runs(prompt=NAME, version=2)) == 3
    assert len(reg.runs(model="nope")) == 0

    seen = []
    cursor = None
    while True:
        page = reg.runs(prompt=NAME, limit=3, cursor=cursor)
        seen.extend(r.id for r in page)
        assert len(page) <= 3
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [r.id for r in reversed(logged)]  # newest first, no gaps or repeats
    asc = reg.runs(prompt=NAME, order="asc", limit=2)
    assert [r.id for r in asc] == [logged[0].id, logged[1].id]

    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    assert len(reg.runs(since=later)) == 0
    assert len(reg.runs(until=later)) == 7

    with pytest.raises(pr.NotFoundError):
        reg.log_run(prompt="missing", status="completed")
    with pytest.raises(pr.ValidationError):
        reg.log_run(prompt=NAME, status="failed")  # a failed run needs an error

    results = reg.log_runs([{"prompt": NAME, "output": "ok"}, {"prompt": "missing"}])
    assert isinstance(results[0], pr.Run) and isinstance(results[1], pr.NotFoundError)


def test_stats(reg: pr.Registry) -> None:
    reg.create_version(NAME, "{{ t }}")
    assert reg.stats(NAME).count == 0
    for i, latency in enumerate([100, 200, 300, 400]):
        reg.log_run(prompt=NAME, version=1, model="m1" if i < 3 else "m2",
                    status="failed" if i == 0 else "completed",
                    error={"kind": "server", "message": "boom"} if i == 0 else None,
                    latency_ms=latency, input_tokens=10, output_tokens=2, cost_usd="0.25")
    s = reg.stats(NAME)
    assert isinstance(s, pr.RunStats)
    assert (s.count, s.failed, s.error_rate) == (4, 1, 0.25)
    assert s.latency_p50_ms == pytest.approx(250.0)
    assert s.latency_p95_ms is not None and s.latency_p99_ms is not None
    assert (s.input_tokens, s.output_tokens, s.tokens) == (40, 8, 48)
    assert s.cost_usd == Decimal("1.00")
    by_model = {g.group: g.count for g in reg.stats_by(NAME, "model")}
    assert by_model == {"m1": 3, "m2": 1}
    with pytest.raises(pr.NotFoundError):
        reg.stats("missing")


def test_stats_buckets_and_project_wide(reg: pr.Registry) -> None:
    reg.create_version("a", "x")
    reg.create_version("b", "y")
    since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    for name, latency in [("a", 10), ("a", 30), ("b", 50)]:
        reg.log_run(prompt=name, version=1, model="m1" if name == "a" else "m2",
                    status="completed", latency_ms=latency, input_tokens=3,
                    output_tokens=1, cost_usd="0.5")
    reg.log_run(prompt="b", version=1, model="m2", status="failed",
                error={"kind": "server", "message": "boom"})
    # The existing call forms, and the whole project with no name.
    assert reg.stats("a").count == 2
    assert reg.stats("b").failed == 1
    total = reg.stats()
    assert (total.count, total.failed, total.input_tokens, total.bucket) == (4, 1, 9, None)
    assert total.cost_usd == Decimal("1.5")
    assert {g.group: g.count for g in reg.stats_by(None, "model")} == {"m1": 2, "m2": 2}

    series = reg.stats(since=since, bucket="minute")
    assert isinstance(series, list) and 1 <= len(series) <= 7
    assert sum(s.count for s in series) == 4
    assert sum(s.failed for s in series) == 1
    starts = [s.bucket for s in series]
    assert starts == sorted(starts)
    for s in series:
        assert s.bucket is not None and s.bucket.utcoffset() == dt.timedelta(0)
        assert (s.bucket.second, s.bucket.microsecond) == (0, 0)
        assert s.bucket >= since.replace(second=0, microsecond=0)
    assert sum(s.count for s in reg.stats("a", since=since, bucket="hour")) == 2
    per_model: dict[object, int] = {}
    for g in reg.stats_by(None, "model", since=since, bucket="day"):
        assert g.bucket is not None and (g.bucket.hour, g.bucket.minute) == (0, 0)
        per_model[g.group] = per_model.get(g.group, 0) + g.count
    assert per_model == {"m1": 2, "m2": 2}

    with pytest.raises(pr.ValidationError) as e:
        reg.stats(bucket="hour")
    assert e.value.field == "since"
    with pytest.raises(pr.ValidationError) as e:
        reg.stats(since=since, bucket="week")
    assert e.value.field == "bucket"
    with pytest.raises(pr.ValidationError) as e:
        reg.stats_by("a", "model", since=since - dt.timedelta(days=30), bucket="minute")
    assert e.value.field == "bucket" and "10000" in str(e.value)


def test_projects_are_isolated(backend: Backend, project: str) -> None:
    if backend.kind == "memory":
        pytest.skip("each memory:// registry is its own store")
    a = backend.open(project + "a")
    b = backend.open(project + "b")
    a.create_version(NAME, "a", labels=["production"])
    with pytest.raises(pr.NotFoundError):
        b.get(NAME)
    assert len(b.list_prompts()) == 0


def test_sqlite_persists_across_opens(tmp_path: "pytest.TempPathFactory") -> None:
    url = f"sqlite://{tmp_path}/p.db"
    pr.Registry.open(url).create_version(NAME, "kept {{ x }}", labels=["production"])
    assert pr.Registry.open(url).get(NAME).render(x=1) == "kept 1"


def test_run_retention_and_deleting_old_runs(reg: pr.Registry) -> None:
    assert reg.run_retention_days() is None
    assert reg.set_run_retention(30) == 30
    assert reg.run_retention_days() == 30
    for bad in (0, -1, 36501, 2**40):
        with pytest.raises(pr.ValidationError) as e:
            reg.set_run_retention(bad)
        assert e.value.field == "run_retention_days"
    with pytest.raises(TypeError):
        reg.set_run_retention("30")  # type: ignore[arg-type]
    assert reg.set_run_retention(None) is None

    old = [reg.log_run(output=f"old {i}") for i in range(3)]
    cut = dt.datetime.now(dt.timezone.utc)
    kept = reg.log_run(output="new")
    assert reg.delete_runs(before=cut, limit=1) == 1
    left = {r.id for r in reg.runs(limit=50)}
    assert old[0].id not in left and {old[1].id, old[2].id, kept.id} <= left
    assert reg.delete_runs(before=cut) == 2
    assert {r.id for r in reg.runs(limit=50)} == {kept.id}
    assert reg.delete_runs(before=cut) == 0
    with pytest.raises(pr.ValidationError) as e:
        reg.delete_runs(before=cut, limit=0)
    assert e.value.field == "limit"
    with pytest.raises(ValueError):
        reg.delete_runs(before=dt.datetime(2026, 1, 1))  # naive: refused
    with pytest.raises(TypeError):
        reg.delete_runs(before="2026-01-01")  # type: ignore[arg-type]
