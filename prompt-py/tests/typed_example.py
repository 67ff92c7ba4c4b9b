"""Checked with `mypy --strict` (scripts/test-python.sh): the shipped stubs and inline
types give precise types to user code."""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal
from typing import List, Optional

import prompt_registry as pr


def sync_usage() -> None:
    reg: pr.Registry = pr.Registry.open("memory://")
    prompt: pr.Prompt = reg.create_prompt("a", description="d", tags=["t"])
    created: datetime = prompt.created_at
    v: pr.PromptVersion = reg.create_version("a", "Hi {{ n }}", config={"model": "m"}, labels=["production"])
    rendered: pr.Rendered = reg.get("a", label="production").render(n="x")
    text: str = rendered if isinstance(rendered, str) else ""
    run: pr.Run = reg.log_run(prompt="a", version=v.version, cost_usd=Decimal("0.1"), latency_ms=3)
    cost: Optional[Decimal] = run.cost_usd
    page: pr.Page[pr.Run] = reg.runs(prompt="a", status="completed", limit=10)
    ids: List[str] = [r.id for r in page]
    cursor: Optional[str] = page.next_cursor
    stats: pr.RunStats = reg.stats("a")
    p50: Optional[float] = stats.latency_p50_ms
    project: pr.RunStats = reg.stats()
    series: List[pr.RunStats] = reg.stats(since=created, bucket="hour")
    starts: List[Optional[datetime]] = [s.bucket for s in series]
    per_model: List[pr.RunStats] = reg.stats_by(None, "model", since=created, bucket="day")
    print(project.count, starts, len(per_model))
    moves: pr.Page[pr.LabelMove] = reg.label_history("a", "production")
    try:
        reg.get("missing")
    except pr.NotFoundError as e:
        what: Optional[str] = e.what
        print(what)
    except pr.TemplateError as e:
        missing: List[str] = e.missing_variables
        print(missing)
    print(created, text, cost, ids, cursor, p50, list(moves))

    # the change feed: parent versions, label compare-and-set, batches, the event log
    v2: pr.PromptVersion = reg.create_version("a", "Hello {{ n }}", parent_version=v.version)
    move: pr.LabelMove = reg.set_label("a", "production", v2.version, expected_version=v.version)
    results: List[pr.BatchResult] = reg.batch([
        {"op": "set_label", "name": "a", "label": "staging", "version": 1, "expected_version": None},
    ])
    try:
        reg.batch([{"op": "archive_prompt", "name": "missing"}])
    except pr.PromptRegistryError as e:
        index: Optional[int] = e.index
        print(index)
    head: int = reg.head()
    events: pr.EventPage = reg.events(after=0, limit=10)
    seqs: List[int] = [ev.seq for ev in events]
    types: List[str] = [ev.type for ev in events.events]
    print(move, results, head, events.next, events.has_more, seqs, types)


async def async_usage() -> None:
    reg: pr.AsyncRegistry = await pr.AsyncRegistry.open("memory://")
    v: pr.PromptVersion = await reg.create_version(
        "a", [{"role": "user", "content": "{{ q }}"}], config={"provider": "mock", "model": "mock/echo"}
    )
    run: pr.Run = await reg.execute("a", {"q": "hi"}, version=v.version)
    status: str = run.status
    print(status)


if __name__ == "__main__":
    sync_usage()
    asyncio.run(async_usage())
