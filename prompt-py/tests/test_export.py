"""Prompts as code from Python: ``export_prompts`` / ``import_prompts`` on every backend
(the one implementation is the Rust core's ``Registry::export_prompts``)."""

from __future__ import annotations

import uuid

import pytest

import prompt_registry as pr

from conftest import Backend


def test_export_import_round_trip(reg: pr.Registry, backend: Backend) -> None:
    reg.create_prompt("team/tone", description="How we sound", tags=["style"])
    reg.create_version("team/tone", "Be kind.\nBe brief.", commit_message="first")
    reg.create_version("team/tone", "Be kind, {{name}}.", labels=["staging"])
    reg.create_version(
        "chat",
        [{"role": "system", "content": "You are {{who}}."}],
        config={"model": "gpt-4o-mini", "temperature": 0.5},
        template_format="jinja",
    )
    docs = reg.export_prompts()
    assert [p["name"] for p in docs["prompts"]] == ["chat", "team/tone"]
    tone = docs["prompts"][1]
    assert tone["labels"] == {"staging": 2}
    assert [v["version"] for v in tone["versions"]] == [1, 2]
    assert tone["versions"][0]["commit_message"] == "first"
    heads = reg.export_prompts(heads=True, prefix="team/")
    assert [p["name"] for p in heads["prompts"]] == ["team/tone"]

    other = backend.open(f"t{uuid.uuid4().hex[:16]}")
    dry = other.import_prompts(docs, dry_run=True)
    assert isinstance(dry, pr.ImportPlan)
    assert not dry.applied and dry.created_prompts == ["chat", "team/tone"]
    assert other.export_prompts() == {"prompts": []}
    plan = other.import_prompts(docs)
    assert plan.applied and plan.conflicts == []
    assert [v["version"] for v in plan.created_versions] == [1, 1, 2]
    assert other.export_prompts() == docs
    again = other.import_prompts(docs)
    assert not again.applied and again.created_versions == [] and again.moved_labels == []

    # A conflict: refused whole, nothing written.
    broken = {"prompts": [dict(docs["prompts"][0], name="fresh"), dict(tone, labels={"x": 9})]}
    refused = other.import_prompts(broken)
    assert not refused.applied
    assert refused.conflicts[0]["prompt"] == "team/tone"
    with pytest.raises(pr.NotFoundError):
        other.get_prompt("fresh")
    # A malformed document is a validation error.
    with pytest.raises(pr.ValidationError):
        other.import_prompts({"prompts": [{"nam": "x"}]})

    assert plan.operations == 4 and dry.operations == 4 and again.operations == 0


def test_an_import_is_not_capped_at_a_batch(reg: pr.Registry, backend: Backend) -> None:
    # 1,050 operations: one transaction, where ``batch`` refuses more than 1000.
    docs = {"prompts": [
        {"name": f"bulk/p{i:04}", "versions": [{"version": 1, "template": f"Prompt {i}"}],
         "labels": {"production": 1}}
        for i in range(1050)
    ]}
    plan = reg.import_prompts(docs)
    assert plan.applied and plan.conflicts == [] and plan.operations == 1050
    assert len(reg.export_prompts(prefix="bulk/")["prompts"]) == 1050
    assert reg.get("bulk/p1049", label="production").template == "Prompt 1049"
    assert not reg.import_prompts(docs).applied
    with pytest.raises(pr.ValidationError):
        reg.batch([{"op": "archive_prompt", "name": f"bulk/p{i:04}"} for i in range(1001)])


def test_a_release_split_survives_export_and_import(reg: pr.Registry, backend: Backend) -> None:
    for t in ["one", "two", "three"]:
        reg.create_version("ab", t)
    reg.set_label_split("ab", "canary", {1: 90, 3: 10})
    docs = reg.export_prompts()
    (ab,) = docs["prompts"]
    split = ab["labels"]["canary"]["split"]
    assert {int(v): w for v, w in split.items()} == {1: 90, 3: 10}

    other = backend.open(f"t{uuid.uuid4().hex[:16]}")
    plan = other.import_prompts(docs)
    assert plan.applied and plan.conflicts == []
    assert other.get_prompt("ab").splits == {"canary": {1: 90, 3: 10}}
    assert other.export_prompts() == docs
    again = other.import_prompts(docs)
    assert not again.applied and again.moved_labels == []
    # Another split moves the label with it.
    ab["labels"]["canary"] = {"split": {"2": 50, "3": 50}}
    moved = other.import_prompts(docs)
    assert moved.applied and moved.moved_labels[0]["to"] == 3
    assert other.get_prompt("ab").splits == {"canary": {2: 50, 3: 50}}
