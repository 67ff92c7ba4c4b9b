"""Prompt Registry from Python, embedded: a SQLite file in a temp dir, the mock provider.

Run: pip install ./prompt-py && python examples/python/quickstart.py
"""

from __future__ import annotations

import os
import tempfile

import prompt_registry as pr


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        reg = pr.Registry.open(f"sqlite://{os.path.join(tmp, 'prompts.db')}")

        reg.create_prompt("support/triage", description="Routes tickets", tags=["support"])
        v1 = reg.create_version(
            "support/triage",
            "Classify: {{ ticket }}",
            config={"provider": "mock", "model": "mock/echo"},
            commit_message="first cut",
        )
        v2 = reg.create_version(
            "support/triage",
            [
                {"role": "system", "content": "You triage."},
                {"role": "user", "content": "{{ ticket }}"},
            ],
            config={"provider": "mock", "model": "mock/echo"},
            labels=["production"],
        )
        print(f"created v{v1.version} ({v1.kind}) and v{v2.version} ({v2.kind})")

        # Roll production back to v1 (audited).
        reg.set_label("support/triage", "production", version=1)
        v = reg.get("support/triage")  # label "production" by default
        print("production is v%d: %r" % (v.version, v.render(ticket="The printer is on fire")))
        print("v2 renders to", reg.get("support/triage", version=2).render(ticket="Hi"))

        try:
            v.render()
        except pr.TemplateError as e:
            print("missing variables are named:", e.missing_variables)

        run = reg.execute("support/triage", variables={"ticket": "My invoice is wrong"})
        print(f"executed: {run.status}, output={run.output!r}, tokens={run.input_tokens}+{run.output_tokens}")

        reg.log_run(
            prompt="support/triage", version=1, provider="openai", model="gpt-4o-mini",
            status="completed", output="billing", latency_ms=120, input_tokens=10,
            output_tokens=5, cost_usd="0.000009",
        )
        failed = reg.execute("support/triage", {"ticket": "x"}, model="mock/error-rate_limited")
        print(f"a failing call is recorded too: {failed.status} ({failed.error.kind if failed.error else ''})")

        page = reg.runs(prompt="support/triage", limit=50)
        print(f"{len(page)} runs, next_cursor={page.next_cursor}")
        stats = reg.stats("support/triage")
        print(
            f"stats: count={stats.count} failed={stats.failed} error_rate={stats.error_rate:.2f} "
            f"p50={stats.latency_p50_ms}ms tokens={stats.tokens} cost=${stats.cost_usd}"
        )
        for move in reg.label_history("support/triage", "production"):
            print(f"production: v{move.from_version} -> v{move.to_version} at {move.moved_at:%H:%M:%S}")


if __name__ == "__main__":
    main()
