"""Prompt Registry from Python against a running server (remote mode).

Start a server and make a key, then run this:

    cargo run --bin prompt-registry -- serve      # terminal 1
    export PROMPT_REGISTRY_API_KEY=$(cargo run -q --bin prompt-registry -- keys create --project demo --role admin)
    python examples/python/remote.py              # PROMPT_REGISTRY_URL defaults to http://127.0.0.1:8080

The same calls as the embedded quickstart; prompts live on the server, executions run
there (with its providers), and label lookups are cached here, served stale while they
refresh, so a server restart does not break a running app.
"""

from __future__ import annotations

import os
import uuid

import prompt_registry as pr


def main() -> None:
    url = os.environ.get("PROMPT_REGISTRY_URL", "http://127.0.0.1:8080")
    reg = pr.Registry.open(url)  # the key comes from $PROMPT_REGISTRY_API_KEY
    print(f"connected to {reg.remote_url} as project {reg.project!r}")

    name = f"examples/remote-{uuid.uuid4().hex[:8]}"  # a fresh prompt each run
    reg.create_prompt(name, description="Routes tickets", tags=["support"])
    v1 = reg.create_version(
        name,
        "Classify: {{ ticket }}",
        config={"provider": "mock", "model": "mock/echo"},
        labels=["production"],
        commit_message="first cut",
    )
    print("created", v1)

    v = reg.get(name)  # label "production"; cached for 60 s, then refreshed in the background
    print("rendered:", v.render(ticket="The printer is on fire"))

    run = reg.execute(name, variables={"ticket": "My invoice is wrong"})  # runs on the server
    print("executed:", run.status, repr(run.output), f"{run.latency_ms} ms")

    reg.log_run(prompt=name, version=v1.version, provider="openai", model="gpt-4o-mini",
                status="completed", output="billing", latency_ms=120,
                input_tokens=10, output_tokens=5)
    print("stats:", reg.stats(name))

    # If the server cannot be reached and nothing is cached, a fallback keeps the app up.
    offline = pr.Registry.open("http://127.0.0.1:9", api_key="pr_00000000_unused")
    fb = offline.get(name, fallback="Classify: {{ ticket }}")
    print("fallback:", fb.is_fallback, fb.render(ticket="x"))

    reg.archive(name)


if __name__ == "__main__":
    main()
