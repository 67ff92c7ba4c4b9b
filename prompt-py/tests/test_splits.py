"""Release splits from Python, on every backend: set, sticky per ``split_key`` (get,
render, execute), ended by a move to one version, audited in the history, refused
when invalid, recorded on runs and compared by ``stats(group_by="version")``."""

from __future__ import annotations

import pytest

import prompt_registry as pr


def _seed(reg: pr.Registry) -> None:
    for t in ["one {{x}}", "two {{x}}", "three {{x}}"]:
        reg.create_version("ab", t, config={"provider": "mock", "model": "mock/echo"})


def test_split_is_sticky_and_ends(reg: pr.Registry) -> None:
    _seed(reg)
    m = reg.set_label_split("ab", "production", {2: 90, 3: 10}, expected_version=0)
    assert m.to_version == 2 and m.split == {2: 90, 3: 10}
    assert reg.get_prompt("ab").labels["production"] == 2
    assert reg.get_prompt("ab").splits == {"production": {2: 90, 3: 10}}

    first = reg.get("ab", split_key="user-123")
    assert first.split == pr.Split(label="production", weights={2: 90, 3: 10})
    for _ in range(1000):
        assert reg.get("ab", split_key="user-123").version == first.version
    seen = {reg.get("ab", split_key=f"user-{i}").version for i in range(300)}
    assert seen == {2, 3}
    rendered = reg.render("ab", {"x": "y"}, split_key="user-123")
    assert rendered == ("two y" if first.version == 2 else "three y")
    assert reg.get("ab", version=3).split is None

    run = reg.execute("ab", {"x": "y"}, split_key="user-123")
    assert run.version == first.version
    assert run.split is not None and run.split.weights == {2: 90, 3: 10}
    assert reg.get_run(run.id).split == run.split

    reg.set_label("ab", "production", 1, expected_version=2)
    assert reg.get("ab", split_key="user-123").version == 1
    history = reg.label_history("ab", "production").items
    assert [h.split for h in history] == [None, {2: 90, 3: 10}]


def test_invalid_splits_and_stats(reg: pr.Registry) -> None:
    _seed(reg)
    for split, field in [({2: 100}, "split"), ({2: 1, 3: 0}, "split.3"), ({2: 1, 9: 1}, "split.9")]:
        with pytest.raises(pr.ValidationError) as e:
            reg.set_label_split("ab", "production", split)
        assert e.value.field == field
    reg.set_label_split("ab", "production", {2: 1, 3: 1})
    with pytest.raises(pr.ConflictError):
        reg.delete_version("ab", 3)
    versions = [reg.execute("ab", {"x": "y"}, split_key=f"k{i}").version for i in range(20)]
    rows = reg.stats_by("ab", group_by="version")
    counts = {r.group: r.count for r in rows}
    for v in {2, 3}:
        assert counts.get(str(v), 0) == versions.count(v)
