"""Blocking calls release the GIL: a Python thread keeps running while another thread
waits inside the Rust core."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import List

import prompt_registry as pr


def test_gil_is_released_during_blocking_calls(tmp_path: Path) -> None:
    reg = pr.Registry.open(f"sqlite://{tmp_path}/threads.db")
    reg.create_version("p", "{{ x }}", labels=["production"])
    batch = [{"prompt": "p", "output": "o" * 200, "latency_ms": 5} for _ in range(2000)]

    # How far a pure-Python loop gets in the main thread while a worker thread is
    # inside log_runs. If the GIL were held for the whole call, it would get nowhere.
    durations: List[float] = []

    def worker() -> None:
        start = time.perf_counter()
        for _ in range(3):
            reg.log_runs(batch)
        durations.append(time.perf_counter() - start)

    t = threading.Thread(target=worker)
    ticks = 0
    t.start()
    time.sleep(0.01)  # let the worker enter the native call
    while t.is_alive():
        ticks += 1
    t.join()
    assert durations and durations[0] > 0.05, "the native work should take measurable time"
    assert len(reg.runs(prompt="p", limit=1)) == 1
    # Python bytecode ran concurrently with the native call: many iterations happened.
    assert ticks > 10_000, f"main thread made only {ticks} iterations in {durations[0]:.3f}s"


def test_threads_share_one_registry(tmp_path: Path) -> None:
    reg = pr.Registry.open(f"sqlite://{tmp_path}/shared.db")
    reg.create_version("p", "{{ i }}", labels=["production"])
    errors: List[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(25):
                assert reg.render("p", {"i": i}) == str(i)
                reg.log_run(prompt="p", metadata={"thread": n})
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert reg.stats("p").count == 100
