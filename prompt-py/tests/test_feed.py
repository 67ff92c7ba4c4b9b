"""The change feed from Python, on every backend: edits based on a parent version,
label compare-and-set, batches (all or nothing, the failing operation's index) and the
project's event log."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from typing import Any, Dict, List, Union

import pytest

import prompt_registry as pr

from conftest import Backend, RemoteServer

NAME = "support/triage"

_FEED_ROUTES: Dict[str, bool] = {}


def _server_has_feed(server: RemoteServer, key: str) -> bool:
    """Whether the server answers ``GET /api/v1/events`` (a server built without the
    change-feed routes answers 404)."""
    if server.url not in _FEED_ROUTES:
        req = urllib.request.Request(
            f"{server.url}/api/v1/events?after=0&limit=1",
            headers={"Authorization": f"Bearer {key}"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                json.load(resp)
            _FEED_ROUTES[server.url] = True
        except urllib.error.HTTPError as e:
            if e.code != 404:
                raise
            _FEED_ROUTES[server.url] = False
    return _FEED_ROUTES[server.url]


@pytest.fixture
def feed(backend: Backend, project: str) -> None:
    """Label compare-and-set, batches and the event log need the server's change-feed
    routes (``expected_version``, ``POST /api/v1/batch``, ``GET /api/v1/events``):
    remote cases are skipped, saying so, against a server that has none."""
    server = backend.server
    if server is not None and not _server_has_feed(server, server.key(project)):
        pytest.skip("this prompt-registry server has no change-feed routes (/api/v1/events)")


# -- edits based on a parent version ------------------------------------------------


def test_an_edit_based_on_a_stale_version_conflicts(reg: pr.Registry) -> None:
    v1 = reg.create_version(NAME, "one", parent_version=0)
    assert v1.version == 1
    # Two editors read version 1; the first to save wins.
    mine = reg.create_version(NAME, "two (mine)", parent_version=v1.version)
    with pytest.raises(pr.ConflictError) as e:
        reg.create_version(NAME, "two (theirs)", parent_version=v1.version)
    assert "latest version is 2" in str(e.value), str(e.value)
    assert e.value.kind == "conflict" and e.value.index is None
    assert [v.version for v in reg.list_versions(NAME)] == [2, 1]  # nothing written
    assert reg.get(NAME, label="latest") == mine
    # Rebased on the latest, it goes through.
    assert reg.create_version(NAME, "three", parent_version=2).version == 3
    with pytest.raises(pr.ConflictError):
        reg.create_version(NAME, "as if new", parent_version=0)
    # No check without a parent.
    assert reg.create_version(NAME, "four").version == 4
    with pytest.raises(pr.ValidationError) as v:
        reg.create_version(NAME, "x", parent_version=-1)
    assert v.value.field == "parent_version"


def test_racing_editors_one_wins_threads(reg: pr.Registry) -> None:
    reg.create_version(NAME, "base")
    barrier = threading.Barrier(2)
    results: List[Union[pr.PromptVersion, BaseException]] = []
    lock = threading.Lock()

    def edit(text: str) -> None:
        barrier.wait()
        try:
            out: Union[pr.PromptVersion, BaseException] = reg.create_version(
                NAME, text, parent_version=1
            )
        except BaseException as exc:  # noqa: BLE001 - collected and checked below
            out = exc
        with lock:
            results.append(out)

    threads = [threading.Thread(target=edit, args=(t,)) for t in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    won = [r for r in results if isinstance(r, pr.PromptVersion)]
    lost = [r for r in results if not isinstance(r, pr.PromptVersion)]
    assert len(won) == 1 and len(lost) == 1, results
    assert isinstance(lost[0], pr.ConflictError), repr(lost[0])
    assert "latest version is 2" in str(lost[0])
    assert [v.version for v in reg.list_versions(NAME)] == [2, 1]
    assert reg.get(NAME, label="latest").template == won[0].template


@pytest.mark.asyncio
async def test_racing_editors_one_wins_async(backend: Backend, project: str) -> None:
    reg = await backend.open_async(project)
    await reg.create_version(NAME, "base")
    results = await asyncio.gather(
        reg.create_version(NAME, "a", parent_version=1),
        reg.create_version(NAME, "b", parent_version=1),
        return_exceptions=True,
    )
    won = [r for r in results if isinstance(r, pr.PromptVersion)]
    lost = [r for r in results if not isinstance(r, pr.PromptVersion)]
    assert len(won) == 1 and len(lost) == 1, results
    assert isinstance(lost[0], pr.ConflictError), repr(lost[0])
    assert "latest version is 2" in str(lost[0])
    assert [v.version for v in await reg.list_versions(NAME)] == [2, 1]


# -- label compare-and-set ---------------------------------------------------------


def test_label_compare_and_set(reg: pr.Registry, feed: None) -> None:
    reg.create_version(NAME, "one")
    reg.create_version(NAME, "two")
    first = reg.set_label(NAME, "production", 1, expected_version=0)  # must be unset: it is
    assert (first.from_version, first.to_version) == (None, 1)

    with pytest.raises(pr.PreconditionFailedError) as e:
        reg.set_label(NAME, "production", 2, expected_version=0)  # set meanwhile
    assert "points at version 1" in str(e.value), str(e.value)
    with pytest.raises(pr.PreconditionFailedError) as e:
        reg.set_label(NAME, "production", 2, expected_version=2)  # stale
    assert "points at version 1" in str(e.value)
    assert reg.get(NAME).version == 1  # neither moved it

    moved = reg.set_label(NAME, "production", 2, expected_version=1)
    assert (moved.from_version, moved.to_version) == (1, 2)
    assert reg.get(NAME).version == 2
    assert reg.set_label(NAME, "staging", 1).to_version == 1  # None: no check

    with pytest.raises(pr.PreconditionFailedError):
        reg.delete_label(NAME, "production", expected_version=1)  # stale
    assert reg.get(NAME).version == 2  # not deleted
    gone = reg.delete_label(NAME, "production", expected_version=2)
    assert (gone.from_version, gone.to_version) == (2, None)
    with pytest.raises(pr.NotFoundError):
        reg.get(NAME)

    for call in (
        lambda: reg.set_label(NAME, "production", 1, expected_version=-1),
        lambda: reg.delete_label(NAME, "staging", expected_version=-1),
    ):
        with pytest.raises(pr.ValidationError) as v:
            call()
        assert v.value.field == "expected_version"
    # Only the moves that went through are in the history.
    history = reg.label_history(NAME, "production")
    assert [(m.from_version, m.to_version) for m in history] == [(2, None), (1, 2), (None, 1)]


def test_deleting_a_label_expected_unset_never_deletes(reg: pr.Registry) -> None:
    reg.create_version(NAME, "one", labels=["production"])
    with pytest.raises(pr.PreconditionFailedError) as e:
        reg.delete_label(NAME, "production", expected_version=0)
    assert "points at version 1" in str(e.value)
    assert reg.get(NAME).version == 1
    with pytest.raises(pr.NotFoundError):
        reg.delete_label(NAME, "staging", expected_version=0)
    with pytest.raises(pr.ValidationError) as v:
        reg.delete_label(NAME, "latest", expected_version=0)
    assert v.value.field == "label"
    assert [m.to_version for m in reg.label_history(NAME, "production")] == [1]


@pytest.mark.asyncio
async def test_label_compare_and_set_async(backend: Backend, project: str, feed: None) -> None:
    reg = await backend.open_async(project)
    await reg.create_version(NAME, "one", labels=["production"])
    await reg.create_version(NAME, "two")
    with pytest.raises(pr.PreconditionFailedError):
        await reg.set_label(NAME, "production", 2, expected_version=2)
    assert (await reg.set_label(NAME, "production", 2, expected_version=1)).to_version == 2
    with pytest.raises(pr.PreconditionFailedError):
        await reg.delete_label(NAME, "production", expected_version=1)
    assert (await reg.delete_label(NAME, "production", expected_version=2)).to_version is None


# -- batches -----------------------------------------------------------------------


def test_batch_applies_every_operation_and_types_the_results(reg: pr.Registry,
                                                             feed: None) -> None:
    results = reg.batch([
        {"op": "create_prompt", "prompt": {"name": "a", "tags": ["x"]}},
        {"op": "create_version", "name": "a", "version": {"template": "A {{ x }}"}},
        {"op": "set_label", "name": "a", "label": "production", "version": 1,
         "expected_version": None},
        {"op": "update_prompt", "name": "a", "update": {"description": "the a"}},
        {"op": "create_version", "name": "b", "version": {"template": "B",
                                                          "labels": ["staging"]}},
        {"op": "archive_prompt", "name": "b"},
    ])
    assert [type(r).__name__ for r in results] == [
        "Prompt", "PromptVersion", "LabelMove", "Prompt", "PromptVersion", "str"]
    created, v1, move, updated, vb, archived = results
    assert isinstance(created, pr.Prompt) and created.name == "a" and created.tags == ["x"]
    assert isinstance(v1, pr.PromptVersion) and (v1.prompt, v1.version) == ("a", 1)
    assert v1.variables == ["x"]
    assert isinstance(move, pr.LabelMove)
    assert (move.label, move.from_version, move.to_version) == ("production", None, 1)
    assert isinstance(updated, pr.Prompt) and updated.description == "the a"
    assert isinstance(vb, pr.PromptVersion) and "staging" in vb.labels
    assert archived == "b"
    assert reg.get("a").render(x=1) == "A 1"
    assert [p.name for p in reg.list_prompts()] == ["a"]


def test_a_failing_operation_writes_nothing_and_names_its_index(reg: pr.Registry,
                                                                feed: None) -> None:
    reg.create_version("a", "one", labels=["production"])
    head = reg.head()
    ops: List[Dict[str, Any]] = [
        {"op": "create_version", "name": "c", "version": {"template": "C"}},
        {"op": "set_label", "name": "c", "label": "production", "version": 1},
        {"op": "set_label", "name": "a", "label": "production", "version": 1,
         "expected_version": 7},
        {"op": "archive_prompt", "name": "a"},
    ]
    with pytest.raises(pr.PreconditionFailedError) as e:
        reg.batch(ops)
    assert e.value.index == 2, repr(e.value)
    with pytest.raises(pr.NotFoundError):
        reg.get_prompt("c")  # the operations before it were rolled back
    assert reg.get("a").version == 1  # and the one after it never ran
    assert reg.head() == head  # no event either

    ops[2] = {"op": "set_label", "name": "a", "label": "latest", "version": 1}
    with pytest.raises(pr.ValidationError) as v:
        reg.batch(ops)
    assert (v.value.index, v.value.field) == (2, "ops[2].label")

    ops[2] = {"op": "create_version", "name": "bad name\n", "version": {"template": "x"}}
    with pytest.raises(pr.ValidationError) as v:
        reg.batch(ops)
    assert v.value.index == 2 and v.value.field == "ops[2].name"

    ops[1] = {"op": "rename_prompt", "name": "c"}
    with pytest.raises(pr.ValidationError) as v:
        reg.batch(ops)
    assert v.value.index == 1 and (v.value.field or "").startswith("ops[1]"), v.value.field

    with pytest.raises(pr.ValidationError) as v:
        reg.batch([])
    assert (v.value.index, v.value.field) == (None, "ops")
    too_many = [{"op": "archive_prompt", "name": "a"}] * 1001
    with pytest.raises(pr.ValidationError) as v:
        reg.batch(too_many)
    assert v.value.index is None
    assert reg.head() == head

    bad: Any = "not a list"
    with pytest.raises(TypeError):
        reg.batch(bad)
    with pytest.raises(TypeError):
        reg.batch([bad])
    with pytest.raises(TypeError):
        reg.batch([{"op": "archive_prompt", "name": object()}])


@pytest.mark.asyncio
async def test_batch_async(backend: Backend, project: str, feed: None) -> None:
    reg = await backend.open_async(project)
    results = await reg.batch([
        {"op": "create_version", "name": "a", "version": {"template": "A"}},
        {"op": "set_label", "name": "a", "label": "production", "version": 1},
    ])
    assert isinstance(results[0], pr.PromptVersion) and isinstance(results[1], pr.LabelMove)
    with pytest.raises(pr.NotFoundError) as e:
        await reg.batch([
            {"op": "create_version", "name": "b", "version": {"template": "B"}},
            {"op": "set_label", "name": "b", "label": "production", "version": 1},
            {"op": "set_label", "name": "a", "label": "production", "version": 9},
        ])
    assert e.value.index == 2
    with pytest.raises(pr.NotFoundError):
        await reg.get_prompt("b")
    with pytest.raises(pr.ValidationError) as v:
        await reg.batch([])
    assert v.value.index is None


# -- the event log -----------------------------------------------------------------


def test_every_write_shows_up_in_order(reg: pr.Registry, feed: None) -> None:
    start = reg.head()
    reg.create_prompt(NAME, tags=["t"])
    reg.create_version(NAME, "one {{ x }}", labels=["production"], commit_message="first")
    move = reg.set_label(NAME, "staging", 1, actor="ada")
    reg.delete_label(NAME, "staging")
    reg.update_prompt(NAME, description="triage")
    reg.archive(NAME)

    page = reg.events(after=start)
    assert isinstance(page, pr.EventPage)
    assert [(e.type, e.prompt, e.version, e.label) for e in page] == [
        ("prompt.created", NAME, None, None),
        ("version.created", NAME, 1, None),
        ("label.moved", NAME, 1, "production"),
        ("label.moved", NAME, 1, "staging"),
        ("label.removed", NAME, None, "staging"),
        ("prompt.updated", NAME, None, None),
        ("prompt.archived", NAME, None, None),
    ]
    assert [e.seq for e in page] == list(range(start + 1, start + 8))
    assert page.next == page.head == start + 7 == reg.head()
    assert not page.has_more and len(page) == 7
    events = page.events
    assert all(isinstance(e, pr.Event) and e.at.tzinfo is not None for e in events)
    assert len({e.id for e in events}) == 7
    assert events[1].data["commit_message"] == "first"
    assert events[3].actor == move.moved_by and events[4].data == {"from": 1}
    assert events[5].data == {"description": "triage"}
    assert page.to_dict()["events"][0]["type"] == "prompt.created"

    # Followed page by page with the cursor: the same events, none twice.
    seen: List[pr.Event] = []
    after = start
    while True:
        part = reg.events(after=after, limit=3)
        assert len(part) <= 3 and part.head == start + 7
        seen.extend(part)
        after = part.next
        if not part.has_more:
            break
    assert seen == events
    tail = reg.events(after=page.head)
    assert len(tail) == 0 and tail.next == page.head


def test_event_arguments_are_checked(reg: pr.Registry, feed: None) -> None:
    for kwargs, field in (({"after": -1}, "after"), ({"limit": 0}, "limit"),
                          ({"limit": 1001}, "limit"), ({"limit": -5}, "limit")):
        with pytest.raises(pr.ValidationError) as v:
            reg.events(**kwargs)
        assert v.value.field == field, kwargs
    full = reg.events(limit=1000)  # the upper bound is allowed
    assert full.next == full.head == reg.head()
    bad: Any = "0"
    with pytest.raises(TypeError):
        reg.events(after=bad)


@pytest.mark.asyncio
async def test_events_async(backend: Backend, project: str, feed: None) -> None:
    reg = await backend.open_async(project)
    start = await reg.head()
    await reg.batch([
        {"op": "create_version", "name": "a", "version": {"template": "A"}},
        {"op": "set_label", "name": "a", "label": "production", "version": 1},
    ])
    page = await reg.events(after=start)
    # A batch's events are appended together, in the order of its operations.
    assert [e.type for e in page] == [
        "prompt.created", "version.created", "label.moved"]
    assert page.head == await reg.head() == start + 3
    with pytest.raises(pr.ValidationError) as v:
        await reg.events(after=-1)
    assert v.value.field == "after"
