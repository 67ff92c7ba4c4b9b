"""Per-call cost, from Python, of a warm get + render of a 1 KB / 5-variable template,
side by side with the Langfuse SDK's TextPromptClient.compile and a str.replace loop.

Run (release build of the module, langfuse installed in the same venv):
    pip install ./prompt-py langfuse && python prompt-py/bench/bench_get_render.py
With PROMPT_REGISTRY_URL and PROMPT_REGISTRY_API_KEY (an admin key) of a running server,
a remote-mode row is added.
Results go to BENCHMARKS.md, "Python (issue 6)".
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import tempfile
import timeit
from typing import Any, Callable, Dict, List, Tuple

import prompt_registry as pr

VARS: Dict[str, str] = {f"var{i}": f"value number {i}" for i in range(1, 6)}


def template_1kb() -> str:
    filler = "You are a careful support assistant. Answer precisely and cite the policy. "
    parts: List[str] = []
    for i in range(1, 6):
        parts.append(filler * 2)
        parts.append(f"{{{{var{i}}}}} ")
    text = "".join(parts)
    text += "x" * max(0, 1024 - len(text))
    return text[:1100]


def bench(fn: Callable[[], Any], number: int, repeat: int = 7) -> Tuple[float, float]:
    fn()  # warm
    times = timeit.repeat(fn, number=number, repeat=repeat)
    per_call = [t / number * 1e6 for t in times]
    return statistics.median(per_call), min(per_call)


def main() -> None:
    template = template_1kb()
    assert len(template.encode()) >= 1000, len(template)
    rows: List[Tuple[str, float, float]] = []

    with tempfile.TemporaryDirectory() as tmp:
        for url in ("memory://", f"sqlite://{os.path.join(tmp, 'b.db')}"):
            reg = pr.Registry.open(url)
            reg.create_version("bench", template, labels=["production"])
            expected = reg.get("bench", label="production").render(**VARS)
            assert isinstance(expected, str) and "{{" not in expected
            kind = url.split(":")[0]
            rows.append((f"prompt_registry get(label=) + render, {kind} (cached)",
                         *bench(lambda: reg.get("bench", label="production").render(**VARS), 20_000)))
            v = reg.get("bench", label="production")
            rows.append((f"prompt_registry get(label=) only, {kind} (cached)",
                         *bench(lambda: reg.get("bench", label="production"), 20_000)))
            if kind == "memory":
                rows.append(("prompt_registry version.render only",
                             *bench(lambda: v.render(**VARS), 50_000)))
                rows.append(("prompt_registry reg.render(name, vars) (resolve+render in Rust)",
                             *bench(lambda: reg.render("bench", VARS), 20_000)))

    # Remote mode, when a server is given: the lookup is answered by the client cache.
    url, key = os.environ.get("PROMPT_REGISTRY_URL"), os.environ.get("PROMPT_REGISTRY_API_KEY")
    if url and key:
        remote = pr.Registry.open(url, api_key=key)
        name = f"bench-{os.getpid()}"
        remote.create_version(name, template, labels=["production"])
        assert remote.get(name, label="production").render(**VARS) == expected
        rows.append(("prompt_registry get(label=) + render, remote http:// (client cache)",
                     *bench(lambda: remote.get(name, label="production").render(**VARS), 20_000)))
        remote.archive(name)
    else:
        print("PROMPT_REGISTRY_URL / PROMPT_REGISTRY_API_KEY not set; skipping the remote row",
              file=sys.stderr)

    try:
        import langfuse
        from langfuse.model import TextPromptClient

        try:
            from langfuse.api.resources.prompts import Prompt_Text
        except ImportError:  # older/newer layouts
            from langfuse.api import Prompt_Text  # type: ignore[no-redef,attr-defined]
        lf = TextPromptClient(Prompt_Text(name="bench", version=1, prompt=template, config={},
                                          labels=["production"], tags=[], type="text"))
        assert lf.compile(**VARS) == expected, "langfuse and prompt_registry disagree"
        rows.append((f"langfuse {langfuse.__version__} TextPromptClient.compile",
                     *bench(lambda: lf.compile(**VARS), 50_000)))
    except ImportError as e:
        print(f"langfuse not installed ({e}); skipping its row", file=sys.stderr)

    def replace_loop() -> str:
        s = template
        for k, val in VARS.items():
            s = s.replace("{{" + k + "}}", val)
        return s

    assert replace_loop() == expected
    rows.append(("str.replace loop", *bench(replace_loop, 200_000)))

    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cpus, "
          f"template {len(template)} bytes, 5 variables")
    print(f"| {'case':<66} | median µs/call | best µs/call |")
    print(f"|{'-' * 68}|---------------:|-------------:|")
    for name, med, best in rows:
        print(f"| {name:<66} | {med:14.2f} | {best:12.2f} |")


if __name__ == "__main__":
    main()
